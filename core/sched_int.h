/* core/sched_int.h - what the files split from the scheduler share.
 *
 * The scheduler proper is core/sched.c; around it, each in a file of its
 * own: M's (core/m.c: start, idle parking, start-up), blocking calls and
 * system calls with sysmon's retake and eviction (core/syscall.c), the
 * deadlock check and thread-exhaustion report (core/deadlock.c), the
 * stack overflow handler (core/segv.c), fork (core/fork.c), and signal
 * delivery to G's (core/signal.c).  Not part of rt.h: nothing outside
 * core/ may use these.
 *
 * Hot-path helpers stay static inline here, so that the split costs no
 * call on the switch, park/ready or system call paths: the P ownership
 * helpers (p_owner_set is in every g_syscall_enter), casgstatus and the
 * signal-mask helpers of the switch.  Everything else shared is a plain
 * function declared at the end.
 */
#ifndef GSHIM_CORE_SCHED_INT_H
#define GSHIM_CORE_SCHED_INT_H

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include "internal.h"

/* errno is reached through a pointer the compiler cannot treat as const:
 * after a switch the same code may be on another M (another TCB). */
static int *(*volatile errno_loc)(void) __attribute__((unused)) = __errno_location;

static inline void casgstatus(g_t *g, uint32_t from, uint32_t to)
{
	uint32_t old = from;

	if (!atomic_compare_exchange_strong_explicit(&g->status, &old, to,
	        memory_order_acq_rel, memory_order_acquire))
		rt_fatal_num("bad g status transition, goid ", g->goid);
}

/* ---- P ownership ------------------------------------------------------ */

/* Attach p to m.  p must be idle (taken off sched.pidle). */
static inline void acquirep(m_t *m, p_t *p)
{
	if (m->p || p->m || atomic_load_explicit(&p->status, memory_order_relaxed) != P_IDLE)
		rt_fatal("acquirep: invalid p state");
	m->p = p;
	p->m = m;
	atomic_store_explicit(&p->status, P_RUNNING, memory_order_relaxed);
}

/* The owner moves its P out of P_RUNNING.  sysmon may hold it in
 * P_RETAKING for a moment (p_retake_running); it always backs off for an
 * owner inside the runtime, so wait for that. */
static inline void p_owner_set(p_t *p, uint32_t to)
{
	for (;;) {
		uint32_t st = P_RUNNING;

		if (atomic_compare_exchange_weak_explicit(&p->status, &st, to,
		        memory_order_acq_rel, memory_order_relaxed))
			return;
		if (st != P_RETAKING && st != P_RUNNING)
			rt_fatal("p_owner_set: P not running");
		arch_relax();
	}
}

static inline p_t *releasep(m_t *m)
{
	p_t *p = m->p;

	if (!p || p->m != m)
		rt_fatal("releasep: invalid p state");
	p_owner_set(p, P_IDLE);
	m->p = NULL;
	p->m = NULL;
	return p;
}

/* sched.lock must be held.  An M waiting in g_block_exit gets the P
 * first: its G then continues on the same M (see g_block_exit). */
static inline void pidle_put(p_t *p)
{
	m_t *w;

	if (!runq_empty(p))
		rt_fatal("pidle_put: P has non-empty run queue");
	w = sched.pwait;
	if (w) {
		sched.pwait = w->schedlink;
		w->schedlink = NULL;
		w->nextp = p;
		note_wakeup(&w->park);
		return;
	}
	p->link = sched.pidle;
	sched.pidle = p;
	atomic_fetch_add_explicit(&sched.npidle, 1, memory_order_seq_cst);
}

/* sched.lock must be held. */
static inline p_t *pidle_get(void)
{
	p_t *p = sched.pidle;

	if (p) {
		sched.pidle = p->link;
		atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst);
	}
	return p;
}

/* sched.lock must be held. */
static inline void midle_put(m_t *m)
{
	m->schedlink = sched.midle;
	sched.midle = m;
	sched.nmidle++;
}

/* sched.lock must be held. */
static inline m_t *midle_get(void)
{
	m_t *m = sched.midle;

	if (m) {
		sched.midle = m->schedlink;
		sched.nmidle--;
	}
	return m;
}

/* Load kernel mask k into the calling kernel thread.  k is the caller's
 * own copy: a signal handler that changes the mask between here and the
 * call, or a G that leaves this M inside a handler, cannot change what
 * this call loads (a buffer in the M tried in the fourth session made
 * sig_churn hang once at GOMAXPROCS=1). */
static inline void m_setmask(uint64_t k)
{
	arch_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&k, 0, 8, 0, 0);
}

/* Signal masks are per G (pthread_sigmask), but the kernel knows only the
 * M's.  Each G carries its mask; a G that starts or resumes on an M whose
 * kernel mask differs loads its own (one rt_sigprocmask).  G's of a program
 * that never changes masks all share one and never pay for it. */
static inline void sigmask_apply(g_t *g)
{
	m_t *m = g->m;

	if (__builtin_expect(g->sigmask != m->cur_mask, 0)) {
		/* The kick/preemption signal stays deliverable (preempt.c);
		 * SIGCANCEL never enters a G's mask (shim/signal.c). */
		m_setmask(g->sigmask & ~preempt_kmask_clear());
		m->cur_mask = g->sigmask;
	}
}

/* An M on g0 takes no signal but glibc's two (SIGCANCEL's handler does
 * nothing there, SIGSETXID's must run on every kernel thread): what a G
 * accepts while it has no M is the receiver's to take (core/signal.c).
 * cur_mask ~0 is no G's mask (G masks never hold the internal signals),
 * so the next G loads its own.  Only once the receiver runs: before, an
 * idle M with the last G's mask is what gets a signal to a program whose
 * threads are all parked. */
static inline void m_mask_idle(m_t *m)
{
	if (m->cur_mask != ~0ull && sig_receiver_on()) {
		m_setmask(~SIG_INTERNAL);
		m->cur_mask = ~0ull;
	}
}

enum switch_kind { SW_NONE, SW_PARK, SW_YIELD, SW_EXIT, SW_TOGLOBAL, SW_PREEMPT };

struct switch_req {
	g_t *prev;
	enum switch_kind kind;
	bool (*unlockf)(g_t *, void *);
	void *arg;
};


/* ---- shared between the split files ------------------------------------ */

/* Running out of M's (core/syscall.c): newm's clone backoff. */
#define MRETRY_MIN_NS  1000000      /* first retry of a failed clone: 1 ms */
#define MRETRY_MAX_NS  64000000     /* the backoff's cap: 64 ms */
#define MSHORT_NS      1000000000   /* twins stay in use 1 s after a failure */
extern _Atomic int64_t mshort_until;   /* 0: no M creation failed lately */
extern _Atomic int64_t mretry_at;      /* newm tries no clone before this */
extern _Atomic int64_t mretry_ns;
extern m_t *_Atomic mspare;            /* registered, never started */

/* sched.c */
void schedule(m_t *m) __attribute__((noreturn));
void g0_start(void *from_switch, void *data);
void handoffp(p_t *p);

/* m.c */
extern m_t m0;
extern lock_t init_lock;
bool newm(p_t *p, bool spinning, bool force);
void stopm(m_t *m);

/* deadlock.c */
void deadlock_check(void);
void starve_report(void);

/* segv.c */
void m_install_altstack(m_t *m);
void install_overflow_handler(void);

/* signal.c */
void deliver_pending(g_t *g);
void sig_kick(int sig, siginfo_t *si, void *uc);

#endif
