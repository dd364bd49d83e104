/* core/internal.h - what only core/ uses (and core's unit tests).
 *
 * core/rt.h is the runtime as shim/ and syscall_wrap/ see it; this adds
 * the scheduler's own objects: P's and their run queues, the scheduler's
 * globals, runtime locks and notes, timers, runtime sections, the poller's
 * and the descriptor map's runtime side, sysmon, preemption, fork resets.
 * Every .c file under core/ includes this header, never only rt.h.
 */
#ifndef GSHIM_CORE_INTERNAL_H
#define GSHIM_CORE_INTERNAL_H

#include "rt.h"

/* ---- lock.c: runtime locks ----------------------------------------------
 * A futex lock (Drepper's three-state mutex with a short spin).  Held only
 * for short critical sections; never held while blocking an M except where
 * a comment says so.  Lock ranks (lock order, lowest first, as in the
 * enum):
 *   RANK_GFUTEX  a gfutex bucket          (may take sched.lock inside)
 *   RANK_TIMER   the timer heap           (callbacks run without it)
 *   RANK_SCHED   sched.lock
 *   RANK_GFREE   sched.gflock             (leaf)
 *   RANK_REG     the G registry           (leaf)
 * Unranked (RANK_LEAF, not checked), outermost first: the poller's
 * initlock, then rtfd's transition lock (core/rtfd.c), then the poller's
 * sqlock and slot table lock.
 * Acquiring in decreasing order is a bug; GSHIM_DEBUG_LOCKS builds check. */
enum lock_rank { RANK_LEAF = 0, RANK_GFUTEX, RANK_TIMER, RANK_SCHED,
                 RANK_GFREE, RANK_REG, RANK_MAX };

typedef struct lock {
	_Atomic uint32_t key;   /* 0 unlocked, 1 locked, 2 locked + waiters */
	uint8_t rank;
} lock_t;

#define LOCK_INIT(r) { .key = 0, .rank = (r) }
void lock_init(lock_t *l, enum lock_rank rank);
void lock_acquire(lock_t *l);
void lock_release(lock_t *l);
bool lock_try(lock_t *l);

/* ---- note.c: one-shot sleep/wakeup for M's (Go's note; type in rt.h) -- */
void note_clear(note_t *n);
void note_wakeup(note_t *n);              /* any thread, at most once per clear */
void note_sleep(note_t *n);               /* blocks the M until woken */
bool note_sleep_ns(note_t *n, int64_t ns);/* false on timeout */

/* ---- G ---------------------------------------------------------------- */

/* Why a G is parked (g->waitreason; the deadlock report prints it). */
enum waitreason { WAIT_NONE = 0, WAIT_GFUTEX, WAIT_MAX };

/* A waiter on a gfutex address: lives on the waiter's own stack, which
 * cannot go away while it is queued (a parked G's stack is preserved). */
typedef struct gwaiter {
	uintptr_t addr;               /* bucket lock */
	struct gwaiter *next, *prev;  /* bucket lock */
	g_t *g;                       /* NULL: an OS thread waiting on `state` */
	_Atomic uint32_t state;       /* 0 queued, 1 woken, 2 timed out */
	void *bucket;                 /* bucket lock */
} gwaiter_t;

/* Per-G TLS: load tp as m's thread pointer, counted (schedtrace prints
 * the writes beside the switches: the cost that matters on hosts where a
 * write is arch_prctl).  Owner M only. */
static inline void m_set_tp(m_t *m, void *tp)
{
	arch_set_tp(tp);
	m->cur_tp = tp;
	atomic_store_explicit(&m->tpwrites,
	                      atomic_load_explicit(&m->tpwrites, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

/* The runtime's TLS slot (rt.h's getg): set on every switch. */
static inline void setg(g_t *g) { ARCH_TLS_STORE(gshim_tls_g, g); }

/* ---- P ---------------------------------------------------------------- */

/* P_RETAKING: sysmon is deciding whether to take the P from an M blocked
 * in a call gshim does not wrap (sysmon.c); it ends as P_RUNNING (kept)
 * or P_IDLE (taken) within a few instructions. */
enum pstatus { P_IDLE = 0, P_RUNNING, P_SYSCALL, P_RETAKING };

#define RUNQ_SIZE 256   /* Go's size: big enough to absorb bursts, small
                           enough that stealing half is cheap */

/* A timer heap (core/timer.c): one per P, one for callers without a P. */
typedef struct rtimer rtimer_t;
typedef struct theap {
	lock_t lock;
	rtimer_t **v;                 /* lock */
	int n, cap, nrunning;         /* lock; callbacks in progress */
	_Atomic int64_t next;         /* earliest when, INT64_MAX when empty */
} theap_t;

struct p {
	uint32_t id;
	_Atomic uint32_t status;      /* enum pstatus */
	p_t *link;                    /* sched.pidle (sched.lock) */
	m_t *m;                       /* owner M, NULL when idle */
	uint32_t schedtick;           /* owner; incremented per G run */

	/* Local run queue: written at the tail by the owner only, read at the
	 * head by the owner and by stealers (CAS on head). */
	_Atomic uint32_t runqhead;
	_Atomic uint32_t runqtail;
	_Atomic(g_t *) runq[RUNQ_SIZE];
	/* The G readied most recently by this P's G: runs next, inheriting
	 * the rest of the time slice (producer/consumer locality). */
	_Atomic(g_t *) runnext;

	/* sysmon's view (sysmon only): the last schedtick/syscalltick seen and
	 * when it changed. */
	uint32_t syscalltick;         /* owner; bumped per entersyscall */
	uint32_t sm_schedtick, sm_syscalltick;
	int64_t sm_when, sm_run_when;

	/* Dead G's with stacks, owner only. */
	g_t *gfree;
	uint32_t ngfree;

	theap_t timers;               /* timers of this P's G's */
} __attribute__((aligned(64)));

/* The M whose g0 this is (g0 is embedded in its M). */
static inline m_t *g0_m(g_t *g0)
{
	return (m_t *)((char *)g0 - offsetof(m_t, g0));
}

/* The M this code runs on, or NULL on a thread that is not an M. */
static inline m_t *getm(void)
{
	g_t *g = getg();

	if (!g)
		return NULL;
	return g->is_g0 ? g0_m(g) : g->m;
}

/* ---- sched ------------------------------------------------------------ */

struct sched {
	lock_t lock;
	m_t *midle;                   /* idle M's (lock) */
	int nmidle;                   /* (lock) */
	_Atomic int mcount;           /* M's created */
	m_t *_Atomic allm;            /* every M, push only */
	p_t *pidle;                   /* idle P's (lock) */
	m_t *pwait;                   /* M's in g_block_exit waiting for a P (lock) */
	_Atomic int npidle;
	_Atomic int nmspinning;       /* M's spinning; see "delicate dance" */
	/* Global run queue (lock) */
	g_t *runqhead, *runqtail;
	_Atomic int runqsize;
	/* G's at the head of the global queue readied by threads that are not
	 * M's (timer expiries, I/O): served before the local ring (runq.c). */
	_Atomic int nurgent;
	g_t *urgtail;                 /* last urgent G (lock) */
	/* Live user G's; the process exits when it drops to 0 after main
	 * exited through pthread_exit. */
	_Atomic long ngs;
	_Atomic uint64_t goidgen;
	_Atomic uint64_t mid;
	p_t *allp;                    /* array of gomaxprocs P's, fixed */
	int nprocs;
	/* Free G's beyond the per-P caches */
	lock_t gflock;
	g_t *gfree;
	uint32_t ngfree;
	bool inited;
	char comm[16];                /* the process name, for new M's */
};
extern struct sched sched;

/* ---- runq.c ----------------------------------------------------------- */
void runq_put(p_t *p, g_t *g, bool next);     /* owner P */
g_t *runq_get(p_t *p);                        /* owner P */
g_t *runq_get_ring(p_t *p);                   /* owner P; skips runnext */
bool runq_empty(p_t *p);                      /* any */
uint32_t runq_len(p_t *p);                    /* any, racy */
g_t *runq_steal(p_t *p, p_t *victim, bool steal_runnext);  /* owner of p */
void globrunq_put(g_t *g);                    /* sched.lock held */
void globrunq_put_head(g_t *g);               /* sched.lock held; urgent */
g_t *globrunq_get_plain(void);                /* sched.lock held */
void globrunq_put_batch(g_t *head, g_t *tail, int n); /* sched.lock held */
g_t *globrunq_get(p_t *p, int max);           /* sched.lock held; owner of p */

/* ---- sched.c ---------------------------------------------------------- */

/* Is anything waiting to run on p: its run queue, the global queue, or an
 * M in g_block_exit waiting for a P?  Racy; any thread. */
static inline bool sched_work_waiting(p_t *p)
{
	return !runq_empty(p) ||
	       atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0 ||
	       __atomic_load_n(&sched.pwait, __ATOMIC_RELAXED) != NULL;
}

/* Make g (status G_WAITING) runnable.  From a G: onto its P's runnext.
 * From anywhere else (g0, foreign thread, timer thread): global queue.
 * Mirrors Go's ready(). */
void g_ready(g_t *g);

/* Park the current G (Go's gopark).  unlockf(g, arg) runs after the G's
 * context is saved, on whatever runs next; if it returns false the G is
 * made runnable again at once.  Returns when the G is readied. */
void g_park(bool (*unlockf)(g_t *, void *), void *arg, enum waitreason why);

/* sysmon: runnable G's wait beside an idle P with no M for it; retry the
 * clone, evict an M from a call with a twin, or report once
 * (core/syscall.c, "Running out of M's").  true while starved. */
bool sched_mstarve(int64_t now);
#define SCNR_WAIT (-1L)   /* g->scnr of a kernel wait of g_block_enter */

/* For schedtrace and tests: the scheduler's counters. */
void sched_snapshot(int *idleprocs, int *threads, int *spinning, int *idlem,
                    int *globq);

/* preempt.c */
bool preempt_request(p_t *p, m_t *m, g_t *g, uint32_t tick);
void preempt_handle(void *uc);
void preempt_drain(m_t *m);
bool preempt_sig_ours(void);
void preempt_set_handler(void (*h)(int, siginfo_t *, void *));
/* Asynchronous signals (asynchronous cancellation): g->asyncsig = sig,
 * the M running g is signalled now and, until preempt_async_clear, by
 * sysmon at every round in which g runs (preempt_async_kicks), since the
 * handler may refuse (the PC not in the program's code). */
void preempt_async_set(g_t *g, int sig);
void preempt_async_kicks(void);       /* sysmon */
bool preempt_async_pending(void);     /* sysmon: a G has one */
/* May a handler act on the G it interrupted at pc (program code, outside
 * the runtime)?  false until sysmon built the code ranges. */
bool preempt_pc_safe(uintptr_t pc);

/* netpoll.c: the runtime's side of the poller (rt.h has the waits). */
void netpoll_fork_child(void);
/* Reaping events (netpoll.c essay): find_runnable and sysmon poll without
 * blocking; an idle M may become the one M sleeping in the kernel for
 * events (begin, block, then done once it knows whether it has a P);
 * startm breaks that sleep. */
/* Thread creation: a waiting slot per live G (nslots); false: no memory. */
bool netpoll_reserve(uint64_t nslots);
bool netpoll_waiting(void);
bool netpoll_unwatched(void);
int netpoll_poll(bool sysmon);
bool netpoll_block_begin(void);
void netpoll_block(void);
int netpoll_block_done(void);
void netpoll_block_abandon(void);
void netpoll_break(void);
/* Deferred submission (core/netpoll_wait.c): sysmon, before each sleep,
 * says whether the sleep ends within NETPOLL_NS (false first, then the
 * answer, around its look at netpoll_sq_pending); queued SQEs shorten
 * its round to NETPOLL_NS and its reap submits them. */
void netpoll_sysmon_soon(bool soon);
bool netpoll_sq_pending(void);

/* In a transition (core/rtfd.c), before a program's dup2/dup3 replaces
 * fd, one of the poller's: move it to another number. */
void netpoll_fd_moved(int fd);

/* rtfd.c: the runtime's own descriptors and the program's calls that
 * close or replace numbers (essay there).  Runtime side: a transition
 * (begin ... end) around creating, moving, closing or using a transient
 * descriptor; the map says which numbers are ours.  Program side: the
 * wrappers of close, close_range, closefrom, dup2, dup3. */
bool rtfd_begin(bool wait);
void rtfd_end(void);
bool rtfd_held(void);                 /* this thread runs the transition */
bool rtfd_is(int fd);
void rtfd_mark(int fd);
void rtfd_unmark(int fd);
int rtfd_dup_high(int fd);            /* -errno, or a marked dup at the top */
int rtfd_adopt(int fd);               /* fd moved to the top and marked */
void rtfd_close(int fd);
char rtfd_thread_state(pid_t tid);    /* os_thread_state, 0: unknown */
void rtfd_fork_prepare(void);        /* no transition runs across fork */
void rtfd_fork_parent(void);
void rtfd_fork_child(void);

/* sysmon.c */
void sysmon_start(void);
void sysmon_kick(void);
/* Start an M on an idle P if there is one and no M spins (Go's wakep):
 * it finds nothing, and goes idle watching the earliest timer. */
void sched_wake_idle(void);
void sysmon_fork_child(void);
/* sysmon: hand a P that sits in P_SYSCALL to another M.  true if taken. */
bool p_retake_syscall(p_t *p);
bool p_retake_running(p_t *p, m_t *m, g_t *g, uint32_t tick);

/* Fork: the robust list (rt.h), and the runtime's state in the child. */
void rt_robust_register(void);
void gfutex_fork_child(void);
void timer_fork_child(void);
void g_fork_child(void);

/* core/signal.c: start a runtime or M thread (os_thread_start), then make
 * sure glibc's SIGSETXID handler runs on the right TCB (see the essay). */
int rt_thread_start(void *(*fn)(void *), void *arg, size_t stack_size);

/* core/signal.c: process-directed signals (see its essay).  The
 * receiver takes the signals some G accepts and hands each to a G. */
void sig_note_mask(uint64_t mask);   /* a G runs with this mask now */
void sig_receiver_start(void);
bool sig_receiver_on(void);
void sig_fork_child(g_t *self);
/* si_errno of an eviction's SIGCANCEL (core/syscall.c, m_evict); a sigwait
 * kick carries its wait round there instead. */
#define SIGCANCEL_EVICT_TAG 0x45564354

/* ---- g.c: the runtime's side ------------------------------------------ */
g_t *g_alloc_main(void);               /* the main thread's G, once */
void g_unref(g_t *g);
void g_exited_publish(g_t *g);         /* set exited, wake joiners */
uint64_t g_count_all(void);
void g_foreach(void (*fn)(g_t *, void *), void *arg);
void gfree_put(p_t *p, g_t *g);        /* owner P (or NULL: global) */
g_t *gfree_get(p_t *p, size_t size, size_t guard);

/* Runtime sections (see g->rtdepth).  Every core entry that takes locks or
 * touches P state is bracketed; nesting is fine. */
void rt_defer_drain(g_t *g);
uint32_t *rt_defer_pop(g_t *g);
void g_deliver_deferred(g_t *g);   /* signal.c: raise what sigdefer held back */
void m_reacquire_p(g_t *g);

/* Does this G's M still own its P?  sysmon may have taken it while the G
 * was blocked in a call gshim does not wrap.  Called with rtdepth raised:
 * the seq_cst fence pairs with sysmon's (Dekker: sysmon claims the P, then
 * reads rtdepth; we raise rtdepth, then read the P's state). */
static inline void rt_check_p(g_t *g)
{
	m_t *m = g->m;
	p_t *p;

	if (!m || !(p = m->p))
		return;
	atomic_thread_fence(memory_order_seq_cst);
	if (__builtin_expect(atomic_load_explicit(&p->status, memory_order_relaxed) == P_RUNNING &&
	                     __atomic_load_n(&p->m, __ATOMIC_RELAXED) == m, 1))
		return;
	m_reacquire_p(g);
}

static inline g_t *rt_enter(void)
{
	g_t *g = getg();

	if (g) {
		g->rtdepth++;
		if (g->rtdepth == 1 && !g->is_g0 &&
		    atomic_load_explicit(&g->status, memory_order_relaxed) == G_RUNNING)
			rt_check_p(g);
	}
	return g;
}
static inline void rt_exit(g_t *g)
{
	if (g && --g->rtdepth == 0 &&
	    __builtin_expect((atomic_load_explicit(&g->ndefer, memory_order_relaxed) !=
	                      atomic_load_explicit(&g->dhead, memory_order_relaxed)) |
	                     atomic_load_explicit(&g->sigdefer, memory_order_relaxed), 0))
		rt_defer_drain(g);
}

static inline void g_sighold_begin(g_t *g, bool nointr)
{
	g->sighold++;
	g->sighold_nointr += nointr;
}
static inline void g_sighold_end(g_t *g, bool nointr)
{
	g->sighold_nointr -= nointr;
	if (--g->sighold == 0 && g->rtdepth == 0 &&
	    __builtin_expect(atomic_load_explicit(&g->sigdefer, memory_order_relaxed), 0))
		g_deliver_deferred(g);
}

/* ---- timer.c ---------------------------------------------------------- */
struct rtimer {
	int64_t when;                 /* CLOCK_MONOTONIC ns (heap lock) */
	void (*fn)(struct rtimer *);  /* runs on the timer thread, no locks */
	theap_t *h;                   /* the heap it is on (set by timer_add) */
	int32_t idx;                  /* heap index, -1 if not queued */
	bool running;                 /* callback in progress (heap lock) */
};

void theap_init(theap_t *h);
/* Queue t (t->when, t->fn set; not queued).  false when the heap cannot
 * grow (out of memory): t is not queued, timer_del of it is a no-op, and
 * the caller must wait some other way (core/gfutex.c: in the kernel). */
bool timer_add(rtimer_t *t);
/* Remove t; if its callback is running, wait for it to finish.  Returns
 * true if t was still queued (the callback will not run). */
bool timer_del(rtimer_t *t);
int timer_count(void);            /* queued or running, racy */
/* Run the timers whose deadline has passed (callbacks ready G's).  Any
 * thread, no runtime lock held; never from inside switch_out.  Costs one
 * load when no timer is queued. */
int timer_run_expired(void);
bool timer_due(void);             /* an expired timer waits to run */
/* The earliest deadline while the timer thread is not running (it could
 * not be started): sysmon and idle M's must wake for it then and run
 * timer_run_expired.  INT64_MAX when the timer thread serves them or no
 * timer is queued.  One load on the fast path. */
int64_t timer_next_unserved(void);
bool timer_unserved(void);        /* the timer thread is not running */
/* Thread creation: room for ntimers timers on the heaps together (one per
 * live G), so that no timed wait lacks one.  false: out of memory. */
bool timer_reserve(int64_t ntimers);
void timer_start(void);           /* the timer thread, early (g_start_new) */

/* ---- tls.c: the runtime's side of per-G TLS ----------------------------- */
bool tls_init(void);              /* false: unsupported here (warned) */
void *tls_new_g0(g_t *g0);       /* NULL: out of memory */
void tls_free_g0(g_t *g0);
void tls_first_run(void);         /* on the new TCB */

/* Where the struct pthread fields gshim writes live in this process's
 * glibc: offsets from the thread pointer, found by tls_layout_find
 * (descriptors, the calling thread's own TCB, a table per release). */
struct tls_layout {
	const char *row;              /* glibc release of the table row used */
	uint32_t size;                /* sizeof(struct pthread) */
	uint32_t list, tid, robust_prev, robust_head, cleanup_jmp_buf,
	         cancelhandling, specific_1st, specific, nspecific,
	         specific_used, schedparam, schedpolicy, stackblock,
	         stackblock_size, guardsize, reported_guardsize, res;
	long robust_futex_offset;     /* robust_head.futex_offset */
	intptr_t rseq;                /* rseq area (< 0: in static TLS) */
	uint32_t rseq_len;            /* bytes to clear there */
};
/* Fill *l for this libc, on a thread glibc set up (not a G's TCB).
 * NULL on success, else why per-G TLS cannot be used (one line). */
const char *tls_layout_find(struct tls_layout *l);

/* ---- trace.c ---------------------------------------------------------- */
void trace_start(void);           /* schedtrace thread if configured */
void trace_line(void);
#define TRACE_BUF 4096
size_t trace_fmt(char *buf);      /* trace_line's text, TRACE_BUF bytes */

/* ---- traceback.c ------------------------------------------------------ */
/* The handler of SIGQUIT and of the dump signal (the receiver of
 * process-directed signals calls it itself: core/signal.c); a fault on
 * the thread that dumps ends the dump of that G (core/segv.c calls
 * traceback_fault first; it returns only when the fault is not the
 * dump's); rt_fatal's dump. */
_Noreturn void rt_die_of(int sig);   /* fatal.c: sig's default action, now */
void traceback_sighandler(int sig, siginfo_t *si, void *uc);
void traceback_fault(void);
void traceback_fatal(void);
/* G's of every slab, without the registry lock (a dump may interrupt
 * its holder): racy, never stale memory (slabs are never unmapped). */
void g_foreach_nolock(void (*fn)(g_t *, void *), void *arg);
/* deadlock.c: the name of a system call a G blocks in, or NULL. */
const char *deadlock_sc_name(long nr);

/* Random numbers for victim choice (xorshift), owner M. */
static inline uint32_t m_rand(m_t *m)
{
	uint64_t x = m->rand;
	x ^= x << 13; x ^= x >> 7; x ^= x << 17;
	m->rand = x;
	return (uint32_t)(x >> 32);
}

#endif
