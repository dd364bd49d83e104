/* core/rt.h - the runtime's table of contents.
 *
 * Three objects, as in the Go runtime (runtime2.go):
 *   G  a thread of the program: a saved context and a stack.
 *   M  an OS thread that runs G's.  Each M has a g0: its own native stack
 *      and TCB, used to run the scheduler when it has no G to switch to.
 *   P  the right to run G's; exactly GOMAXPROCS of them.  Owns a run queue
 *      and a free-G cache.  An M runs G's only while holding a P.
 *
 * Who owns what (the status words say it):
 *   G_RUNNING   the G's stack and context belong to the M in g->m.
 *   G_RUNNABLE  the G is on exactly one run queue (local, runnext or global)
 *               or is being handed to an M that just took it off one.
 *   G_WAITING   the G is parked; only the structure it parked on (a gfutex
 *               bucket, a timer) may make it runnable, via g_ready.
 *   G_DEAD      on a free list or about to be; nobody runs it.
 *   P_IDLE      on sched.pidle; no M.  P_RUNNING: owned by p->m.
 *
 * Switching protocol (core/sched.c essay): a G leaving the CPU chooses the
 * next G itself and switches to it directly (one switch, no detour through
 * g0) when its own P has one; otherwise it switches to g0.  What must
 * happen to the G being left (park commit, requeue, exit) is described by a
 * switch_req on its stack and carried out by whoever runs next, after the
 * old context is fully saved: the Linux finish_task_switch pattern.
 */
#ifndef GSHIM_CORE_RT_H
#define GSHIM_CORE_RT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arch.h"
#include "arch/os.h"
#include "arch/stack.h"

typedef struct g g_t;
typedef struct m m_t;
typedef struct p p_t;

/* A symbol of libgshim's interface: the interposed names (shim/ and
 * syscall_wrap/ define them; everything else is hidden). */
#define RT_EXPORT __attribute__((visibility("default")))

/* ---- fatal.c ---------------------------------------------------------- */

/* Print "gshim: fatal: <msg>" with raw write(2) and abort.  No malloc, no
 * stdio, no locks: safe anywhere, including signal handlers. */
_Noreturn void rt_fatal(const char *msg);
/* Same, with a decimal number appended ("... thread 42"). */
_Noreturn void rt_fatal_num(const char *msg, unsigned long long n);
/* One-line user-facing warning, "gshim: <msg>\n", raw write(2). */
void rt_warn(const char *msg);

#define rt_assert(cond, msg) do { if (__builtin_expect(!(cond), 0)) rt_fatal(msg); } while (0)

/* ---- lock.c: runtime locks ----------------------------------------------
 * A futex lock (Drepper's three-state mutex with a short spin).  Held only
 * for short critical sections; never held while blocking an M except where
 * a comment says so.  Lock ranks (lock order, lowest first):
 *   RANK_SCHED   sched.lock
 *   RANK_GFUTEX  a gfutex bucket          (may take sched.lock inside)
 *   RANK_TIMER   the timer heap           (callbacks run without it)
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

/* ---- note.c: one-shot sleep/wakeup for M's (Go's note) ----------------- */
typedef struct note {
	_Atomic uint32_t key;   /* 0 clear, 1 woken */
} note_t;

void note_clear(note_t *n);
void note_wakeup(note_t *n);              /* any thread, at most once per clear */
void note_sleep(note_t *n);               /* blocks the M until woken */
bool note_sleep_ns(note_t *n, int64_t ns);/* false on timeout */

/* ---- G ---------------------------------------------------------------- */

enum gstatus {
	G_IDLE = 0,     /* just allocated, not yet initialised */
	G_RUNNABLE,
	G_RUNNING,
	G_SYSCALL,      /* reserved for entersyscall (syscall_wrap) */
	G_WAITING,
	G_DEAD,
};

enum waitreason {
	WAIT_NONE = 0, WAIT_JOIN, WAIT_GFUTEX, WAIT_ONCE, WAIT_SLEEP,
	WAIT_YIELD_FOREVER, WAIT_MAX,
};

/* A waiter on a gfutex address: lives on the waiter's own stack, which
 * cannot go away while it is queued (a parked G's stack is preserved). */
typedef struct gwaiter {
	uintptr_t addr;               /* bucket lock */
	struct gwaiter *next, *prev;  /* bucket lock */
	g_t *g;                       /* NULL: an OS thread waiting on `state` */
	_Atomic uint32_t state;       /* 0 queued, 1 woken, 2 timed out */
	void *bucket;                 /* bucket lock */
} gwaiter_t;

/* Detach/join protocol, see core/g.c. */
enum { GJ_JOINABLE = 0, GJ_DETACHED = 1, GJ_EXITED = 2 };

struct g {
	arch_ctx_t ctx;               /* owner M; saved context when not running */
	_Atomic uint32_t status;      /* enum gstatus; transitions by CAS (g.c) */
	uint32_t waitreason;          /* set by the parking G before g_park */
	m_t *m;                       /* M running it, NULL when not running */
	g_t *schedlink;               /* global runq or free list link */
	uint64_t goid;                /* unique, never reused; 1 = main */
	gstack_t stack;               /* owner M while running; free list owner */
	bool is_g0;                   /* this is an M's scheduler context */
	bool is_main;                 /* the program's main thread */
	bool urgent;                  /* at the global queue's head, readied
	                                 from outside the scheduler (sched.lock) */
	int saved_errno;              /* errno of this G while it is not running */

	void (*fn)(void *);           /* entry for a fresh G */
	void *fnarg;

	/* Join protocol (g.c): */
	_Atomic uint32_t joinstate;   /* GJ_*; written by exit, detach */
	_Atomic uint32_t exited;      /* 0 -> 1 once, a gfutex address */
	_Atomic uint32_t refs;        /* G + stack freed when it drops to 0 */
	_Atomic(g_t *) joiner;        /* G blocked in join on this one (EDEADLK check) */
	void *retval;                 /* written before exited = 1 */

	_Atomic uint64_t sigpending;  /* signals to raise when it next runs */
	_Atomic uint64_t sigdelivered; /* raised by deliver_pending (pio.c's
	                                 EINTR-or-restart decision; owner) */
	_Atomic uint64_t sigdeliv_handled;   /* of those: a handler was set when
	                                        raised ... */
	_Atomic uint64_t sigdeliv_norestart; /* ... without SA_RESTART (the
	                                        handler may reset it: tst-sem6) */
	uint64_t sigmask;             /* blocked signals of this G (owner) */
	_Atomic uint64_t sigwait_set; /* waiting in sigwait & co. for these
	                                 (owner; read by g_signal, signal.c) */
	_Atomic uint32_t sigwake;     /* its kernel sigwait must end: a signal
	                                 was made pending for it, or a cancel
	                                 (shim/signal.c, cancel.c) */
	_Atomic uint32_t sigwait_seq; /* which wait a kick is for (owner bumps) */
	_Atomic uint32_t sigstray;    /* a kick meant for another G interrupted
	                                 its call: not a handler (cancel.c) */

	/* The call that holds this G's M (sched.c, "Running out of M's"):
	 * written by the owner before the call, read racily by sysmon for
	 * the thread-exhaustion report.  scnr: the system call number,
	 * SCNR_WAIT for a kernel wait of g_block_enter, 0 none. */
	long scnr, sca0;
	int64_t scsince;              /* when the call began (ns) */
	/* The call has a non-blocking twin (syscall_wrap, sc_call_twin):
	 * when no M can be had for runnable G's, sysmon may evict it -
	 * set evict and signal its M (SIGCANCEL) - and the G goes on
	 * with the twin, parking between tries.  evictable: owner;
	 * evict: sysmon sets, owner clears. */
	_Atomic uint32_t evictable, evict;

	/* Async-signal safety (see gfutex.c, "Wakes from signal handlers"):
	 * rtdepth > 0 while this G runs runtime code that holds locks or
	 * touches P state; a signal handler interrupting it must not re-enter
	 * that code, so its wakes are parked in defer[] and done by the G
	 * when its depth drops back to 0.  Owner G only (a handler runs on
	 * the same thread, so plain accesses are ordered by program order;
	 * ndefer is atomic for the compiler's sake). */
	uint32_t rtdepth;
	_Atomic uint32_t ndefer;      /* pending = ndefer - dhead */
	_Atomic uint32_t dhead;       /* next to wake (drain advances it) */
	_Atomic(uint32_t *) defer[8]; /* ring, indexed mod 8 */
	/* Pending signals found while rtdepth > 0 (a G resuming from a park
	 * inside a runtime section, a kick landing in one): raised when the
	 * depth drops to 0, so the handler runs as user code - its own
	 * blocking calls park the G and hand the P on (sched.c,
	 * deliver_pending).  Owner G only. */
	_Atomic uint32_t sigdefer;
	/* Regions where a handler must not run even at rtdepth 0: the G has
	 * kernel-side state on its stack (a poll request or a file operation
	 * in flight, netpoll.c) that unwinding out of the handler
	 * (cancellation, pthread_exit, longjmp) would skip, leaving the
	 * kernel to complete into a dead frame.  Delivery waits for the
	 * region's end (g_sighold_end).  nointr: the region's wait is not
	 * even cut short for a signal (a file operation, as natively).
	 * Counters, since a handler the kernel runs inside a region may
	 * open one of its own.  Owner only. */
	uint16_t sighold, sighold_nointr;
	/* g_block_enter calls made by a handler inside a blocking call or a
	 * switch, left alone (their g_block_exit skips too).  Owner only. */
	uint16_t block_skip;

	/* Interruptible waits (cancellation): the address the G waits on. */
	_Atomic(uint32_t *) waitaddr;
	/* Cancellation (core/cancel.c's essay): the request (a gfutex
	 * address), the owner's state and type (PTHREAD_CANCEL_*), acting on
	 * it already, and whether the G is in a cancellable plain system call
	 * (1; 2: interruptible only, for a sigwait kick or an eviction). */
	_Atomic uint32_t cancel_req;
	_Atomic uint32_t in_cp;
	int cancelstate, canceltype;
	bool canceling;
	/* A preemption request found this G at an unsafe point (in libc or
	 * gshim): it yields at the next synchronisation call that is a safe
	 * place to (g_coop_yield).  Owner G and its handler only. */
	_Atomic uint32_t preempt_coop;
	/* A signal to keep sending to this G's M while the G runs, until its
	 * handler acts on it (asynchronous cancellation, preempt.c); 0 none. */
	_Atomic uint32_t asyncsig;
	void *tcb;                    /* per-g TLS: this G's thread pointer (kept
	                                 across reuse, like the stack) */
	bool tcb_fresh;               /* tls_first_run still to do */
	int tls_nmods;                /* tls.c: static TLS modules initialised
	                                 in this TCB (-1: glibc's own thread) */
	_Atomic uint32_t gen;         /* bumped on every reuse */
	g_t *allnext;                 /* registry chain (reg lock) */
	/* The shim's per-thread area (keys, name, ...) follows the struct:
	 * g_ext(g).  Its size is rt_cfg.g_ext_size. */
};

static inline void *g_ext(g_t *g) { return (char *)g + sizeof(g_t); }

/* Before a wait that a signal may cut short: forget what earlier handlers
 * did (g_sig_outcome reads what ran during this wait). */
static inline void g_sig_outcome_reset(g_t *g)
{
	atomic_store_explicit(&g->sigdelivered, 0, memory_order_relaxed);
	atomic_store_explicit(&g->sigdeliv_handled, 0, memory_order_relaxed);
	atomic_store_explicit(&g->sigdeliv_norestart, 0, memory_order_relaxed);
}

/* The runtime's TLS slot: the running G, or the M's g0, or NULL on a thread
 * that is not an M. */
ARCH_TLS_SLOT_DECL(gshim_tls_g);
static inline g_t *getg(void) { return (g_t *)ARCH_TLS_LOAD(gshim_tls_g); }
static inline void setg(g_t *g) { ARCH_TLS_STORE(gshim_tls_g, g); }

/* The current user G (not a g0), or NULL. */
static inline g_t *getcurg(void)
{
	g_t *g = getg();
	return g && !g->is_g0 ? g : NULL;
}

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

/* ---- M ---------------------------------------------------------------- */

struct m {
	uint64_t id;
	pid_t tid;                    /* kernel thread id */
	g_t g0;                       /* scheduler context, native stack */
	g_t *curg;                    /* running user G or NULL (owner) */
	p_t *p;                       /* attached P (owner) */
	p_t *nextp;                   /* P handed over by startm (sched.lock / note) */
	bool spinning;                /* looking for work, counted in nmspinning */
	_Atomic uint32_t idle_sleeping; /* in stopm's sleep: holds nothing */
	bool in_netpoll;              /* idle, the poller's blocker (sched.lock) */
	bool handoff;                 /* g0: give the P to a g_block_exit waiter */

	note_t park;                  /* stopm sleeps here */
	m_t *schedlink;               /* sched.midle (sched.lock) */
	m_t *alllink;                 /* sched.allm, append only */
	uint64_t rand;                /* owner */
	void *altstack;               /* sigaltstack for overflow reports */
	void *cur_tp;                 /* per-g: thread pointer loaded now */
	void *fork_tp;                /* per-g: the G's, across glibc's fork */
	void *os_tcb;                 /* glibc's TCB of this kernel thread: the
	                                 one in its thread lists (M0: the main
	                                 thread's, which the main G runs on) */
	uint64_t cur_mask;            /* signal mask of the kernel thread now */
	_Atomic uint32_t preempt;     /* sysmon asked for a yield (preempt.c) */
	uint32_t locks_held;          /* debug lock rank stack depth */
	uint8_t lock_ranks[16];
};

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

enum { TLS_SHARED = 0, TLS_PER_G = 1 };
enum { IO_URING = 0, IO_EPOLL = 1, IO_SYSCALL = 2 };

struct rt_cfg {
	int gomaxprocs;               /* >= 1 */
	size_t g_ext_size;            /* shim area after each G */
	int schedtrace_ms;            /* 0 = off */
	int scheddetail;
	int deadlock;                 /* GSHIM_DEBUG=deadlock=1: report and exit */
	int tls_mode;                 /* TLS_SHARED or TLS_PER_G (GSHIM_TLS) */
	int nofsgsbase;               /* GSHIM_DEBUG=nofsgsbase=1 */
	int preempt;                  /* GSHIM_PREEMPT: async preemption on */
	int io_mode;                  /* GSHIM_IO: IO_URING, IO_EPOLL, IO_SYSCALL */
	int maxm;                     /* GSHIM_MAXM: most M's (0: no limit) */
	/* Act on a cancellation of the calling G (core/cancel.c decided it
	 * is one, its flags say so): the shim runs the cleanup handlers and
	 * ends the thread.  Does not return. */
	void (*cancel_exit)(g_t *g) __attribute__((noreturn));
	/* Called when the last live G has exited (pthread_exit from main and
	 * then every other thread): glibc's rule is exit(0). */
	void (*on_last_exit)(void);
	/* Called on a fresh G's stack before fn, and after fn returns on the
	 * G's stack, e.g. to run key destructors. */
};
extern struct rt_cfg rt_cfg;

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

/* Bring the runtime up on the calling thread, which becomes M0 and whose
 * current context becomes the main G (goid 1).  Idempotent. */
/* Make the calling (main) thread M0 with the main G on P0.  false when
 * the memory for that cannot be had (a tiny RLIMIT_AS): nothing was
 * changed, and sched_disabled() says so from then on. */
bool sched_init(void);
bool sched_disabled(void);
bool sched_ready(void);

/* Make g (status G_WAITING) runnable.  From a G: onto its P's runnext.
 * From anywhere else (g0, foreign thread, timer thread): global queue.
 * Mirrors Go's ready(). */
void g_ready(g_t *g);

/* Park the current G (Go's gopark).  unlockf(g, arg) runs after the G's
 * context is saved, on whatever runs next; if it returns false the G is
 * made runnable again at once.  Returns when the G is readied. */
void g_park(bool (*unlockf)(g_t *, void *), void *arg, enum waitreason why);

/* Yield the P to other runnable G's, if any (sched_yield). */
void g_yield(void);
/* sched_yield for any caller: g_yield on a G, the system call elsewhere. */
static inline void rt_sched_yield(void)
{
	if (getcurg())
		g_yield();
	else
		os_sched_yield();
}

/* Make g (fresh from g_alloc: stack set, status G_IDLE) run fn(arg):
 * onto the current P's runnext, or the global queue from a non-G thread.
 * Mirrors the tail of Go's newproc1. */
void g_start_new(g_t *g, void (*fn)(void *), void *arg);

/* Leave the current G for good (the thread exits).  Never returns. */
_Noreturn void g_exit(void *retval);

int sched_gomaxprocs(void);

/* Long blocking calls the runtime cannot park (process-shared futex
 * waits): hand the P to another M first (Go's entersyscallblock +
 * handoffp), take a P back after (exitsyscall; if none is free the G
 * queues and this M sleeps).  Between the two the G runs with no P. */
void g_block_enter(void);
void g_block_exit(void);

/* Running out of M's (sched.c).  sched_mshort: an M could not be
 * created lately, so calls with a non-blocking twin should use it
 * instead of holding an M (one load while M's are plentiful).
 * sched_mstarve (sysmon): runnable G's wait beside an idle P with no M
 * for it; retry the clone, evict an M from a call with a twin, or
 * report once.  true while starved. */
bool sched_mshort(void);
bool sched_mstarve(int64_t now);
#define SCNR_WAIT (-1L)

/* Short blocking calls (Go's entersyscall/exitsyscall): the P stays with
 * the M in P_SYSCALL; sysmon hands it to another M if the call lasts more
 * than a tick while work waits.  enter returns false when there is
 * nothing to do (not a G, or the G is already in a call: a signal handler
 * interrupting one, e.g. waitpid in SIGCHLD), and then exit must not be
 * called.  errno is preserved by exit. */
bool g_syscall_enter(void);
void g_syscall_exit(void);

/* The signal handler's half of preemption: yield the P (g_yield, run
 * from inside the handler). */
void g_preempt_yield(void);

/* Cooperative half: a G that a preemption request found in library code
 * (preempt_coop) yields here, where the shim knows it holds nothing -
 * after a mutex unlock, a condvar signal or broadcast.  A G that loops
 * through libc and the pthread API without ever parking (glibc's
 * tst-cond16: lock, fputc, unlock, broadcast) would otherwise keep
 * GOMAXPROCS=1's only P forever: async preemption lands in program code
 * only, and such a G is hardly ever there. */
static inline void g_coop_yield(g_t *g)
{
	if (__builtin_expect(g && atomic_load_explicit(&g->preempt_coop,
	                         memory_order_relaxed), 0) && g->rtdepth == 0) {
		atomic_store_explicit(&g->preempt_coop, 0, memory_order_relaxed);
		g_preempt_yield();
	}
}

/* glibc's internal cancellation signal, unused by glibc since
 * pthread_cancel is ours: gshim interrupts plain blocking calls with it
 * (shim/cancel.c), and keeps it unblocked in M's. */
#define SIGCANCEL 32

/* preempt.c */
bool preempt_request(p_t *p, m_t *m, g_t *g, uint32_t tick);
void preempt_handle(void *uc);
void preempt_drain(m_t *m);
bool preempt_sig_ours(void);
uint64_t preempt_kmask_clear(void);   /* signals kept unblocked in M's */
void preempt_set_handler(void (*h)(int, siginfo_t *, void *));
/* Asynchronous signals (asynchronous cancellation): g->asyncsig = sig,
 * the M running g is signalled now and, until preempt_async_clear, by
 * sysmon at every round in which g runs (preempt_async_kicks), since the
 * handler may refuse (the PC not in the program's code). */
void preempt_async_set(g_t *g, int sig);
void preempt_async_clear(g_t *g);
void preempt_async_kicks(void);       /* sysmon */
bool preempt_async_pending(void);     /* sysmon: a G has one */
/* May a handler act on the G it interrupted at pc (program code, outside
 * the runtime)?  false until sysmon built the code ranges. */
bool preempt_pc_safe(uintptr_t pc);

/* netpoll.c: the poller.  netpoll_wait parks the current G until fd is
 * ready for events (POLLIN/POLLOUT), deadline (ns) passes (-ETIMEDOUT),
 * *intr is set (-EINTR), or a signal is directed at it (-EAGAIN); 0 when
 * ready; -ENOSYS when there is no poller (block in the kernel instead).
 * netpoll_rw: a regular-file read/write through io_uring, the G parked
 * until it completes: bytes or -errno, -ENOSYS without io_uring; the
 * syncs likewise (0 or -errno). */
struct iovec;
int netpoll_mode(void);
int netpoll_wait(int fd, uint32_t events, int64_t deadline, _Atomic uint32_t *intr);
ssize_t netpoll_rw(bool write, int fd, const struct iovec *iov, int cnt, int64_t off);
#define NETPOLL_MANY 64   /* descriptors of one netpoll_wait_many */
int netpoll_wait_many(const int *fd, const uint32_t *ev, int n, int64_t deadline,
                      _Atomic uint32_t *intr);
int netpoll_sync(int fd, bool datasync);          /* fsync / fdatasync */
int netpoll_sync_range(int fd, int64_t off, int64_t len, unsigned fl);
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
int rtfd_close_begin(int fd);         /* 0: ours, report success; else call */
void rtfd_close_end(int how);         /* how: rtfd_close_begin's answer */
long rtfd_close_range(unsigned lo, unsigned hi, unsigned flags);
long rtfd_dup3(int old, int new, long (*call)(int, int, int), int flags);
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

/* In the child of fork(): only the calling thread exists.  Reset the
 * scheduler around it (its M, its P, its G); everything owned by other
 * threads is forgotten, as POSIX says they do not exist in the child. */
void sched_fork_prepare(void);  /* pthread_atfork handlers, registered first */
void sched_fork_parent(void);
void sched_fork_child(void);

/* The process's robust futex list, in the kernel's format (struct
 * robust_list_head, with a prev slot before it as glibc lays out its
 * own per-thread heads).  Every M registers it with set_robust_list, so
 * that when the process dies the kernel marks the process-shared robust
 * mutexes G's hold there (shim/mutex.c keeps the list; core only
 * registers it, and empties it in a forked child, which owns none). */
struct rt_robust {
	void *prev;
	void *list;            /* kernel ABI from here */
	long futex_offset;
	void *pending;
};
extern struct rt_robust rt_robust;
void rt_robust_register(void);
void gfutex_fork_child(void);
void timer_fork_child(void);
void g_fork_child(void);

/* Per-g TLS: run glibc code that must see this kernel thread as itself
 * (fork, setuid & co.) with the M's own TCB loaded.  enter returns what
 * leave restores (NULL: nothing was changed: shared TLS, not an M, M0).
 * The G stays on this M in between and must not park. */
void *sched_own_tcb_enter(void);
void sched_own_tcb_leave(void *tp);

/* core/signal.c: start a runtime or M thread (os_thread_start), then make
 * sure glibc's SIGSETXID handler runs on the right TCB (see the essay). */
int rt_thread_start(void *(*fn)(void *), void *arg, size_t stack_size);

/* core/signal.c: process-directed signals (see its essay).  The
 * receiver takes the signals some G accepts and hands each to a G. */
void sig_note_mask(uint64_t mask);   /* a G runs with this mask now */
uint64_t sig_taken(void);            /* what the receiver waits for now */
void sig_receiver_start(void);
bool sig_receiver_on(void);
void sig_fork_child(g_t *self);
/* Signals a G may never block, and the mask of an idle M. */
#define SIGSETXID 33
/* si_errno of an eviction's SIGCANCEL (core/sched.c, m_evict); a sigwait
 * kick carries its wait round there instead. */
#define SIGCANCEL_EVICT_TAG 0x45564354
#define SIG_INTERNAL ((1ull << (SIGCANCEL - 1)) | (1ull << (SIGSETXID - 1)))

/* Direct signal sig at g (pthread_kill): raised at once on the caller's
 * M if g is the caller, else on g's M if g is running, else when g next
 * runs. */
void g_signal(g_t *g, int sig);

/* Set the current G's signal mask and apply it to its M. */
void g_setmask(g_t *g, uint64_t mask);

/* ---- g.c: allocation, registry, join ---------------------------------- */
g_t *g_alloc(size_t stacksize, size_t guard, const gstack_t *user, int *err);
g_t *g_alloc_main(void);               /* the main thread's G, once */
void g_free(g_t *g);                   /* drop to free list (refs hit 0) */
void g_unref(g_t *g);
bool g_valid(const void *maybe_g);     /* is it a G we handed out, alive? */
bool g_in_slab(const void *maybe_g);   /* inside gshim's G memory at all? */
/* Join g: 0 and *retval, ESRCH, EDEADLK, EINVAL, EBUSY (GJOIN_TRY),
 * ETIMEDOUT; ECANCELED when *intr (may be NULL) became non-zero during the
 * wait - g stays joinable, as glibc leaves it after a cancelled join.
 * GJOIN_ENDING: g is about to end (a cancellation request it will act
 * on), so g joining us is no deadlock (glibc's rule). */
enum { GJOIN_TRY = 1, GJOIN_ENDING = 2 };
int g_join(g_t *g, void **retval, int64_t deadline_ns, unsigned flags,
           _Atomic uint32_t *intr);
/* A handle whose G was freed after a join (not after a detached exit):
 * glibc answers ESRCH there, EINVAL for the detached one. */
bool g_stale_joined(const void *maybe_g);
int g_detach(g_t *g);
void g_stacks_executable(void);          /* execstack object loaded */
void g_mark_detached(g_t *g);            /* before the G first runs */
void g_exited_publish(g_t *g);         /* set exited, wake joiners */
uint64_t g_count_all(void);
void g_foreach(void (*fn)(g_t *, void *), void *arg);
void gfree_put(p_t *p, g_t *g);        /* owner P (or NULL: global) */
g_t *gfree_get(p_t *p, size_t size, size_t guard);

/* ---- gfutex.c: G-level futex ------------------------------------------
 * gfutex_wait parks the calling G (or blocks the calling OS thread if it is
 * not a G) while *addr == val, until gfutex_wake(addr) or the deadline
 * (CLOCK_MONOTONIC ns, < 0 = none).  Returns 0, -EAGAIN (value changed),
 * -ETIMEDOUT.  Spurious wake-ups are possible, as with futex(2). */
int gfutex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline_ns);
int gfutex_wake(_Atomic uint32_t *addr, int n);
/* Same, but returns -EINTR when *intr becomes non-zero: set *intr, then
 * call gfutex_interrupt(g) (pthread_cancel). */
int gfutex_wait_intr(_Atomic uint32_t *addr, uint32_t val, int64_t deadline_ns,
                     _Atomic uint32_t *intr);
void gfutex_interrupt(g_t *g);
/* Is any thread queued on addr right now? */
bool gfutex_queued(_Atomic uint32_t *addr);
/* gfutex_wake for a signal handler (sem_post): if the handler interrupted
 * runtime code on this thread, the wake is deferred until that code is
 * done (all waiters on addr are woken then). */
void gfutex_wake_async(_Atomic uint32_t *addr);

/* Runtime sections (see g->rtdepth).  Every core entry that takes locks or
 * touches P state is bracketed; nesting is fine. */
void rt_defer_drain(g_t *g);
uint32_t *rt_defer_pop(g_t *g);
void g_deliver_deferred(g_t *g);   /* sched.c: raise what sigdefer held back */
void g_call_abandon(void);         /* sched.c: unwinding out of a wrapped call */
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

/* ---- tls.c: a TCB per G (GSHIM_TLS=per-g) ------------------------------ */
bool tls_init(void);              /* false: unsupported here (warned) */
bool tls_per_g(void);
void *tls_new(g_t *g);            /* TCB for g (reused or fresh); NULL: ENOMEM */
void *tls_new_g0(g_t *g0);       /* NULL: out of memory */
void tls_free_g0(g_t *g0);
void tls_first_run(void);         /* on the new TCB */
void tls_exit(void);              /* on the G's TCB, at thread exit */
void tls_modules_changed(void);   /* after dlopen: TLS images into G TCBs */
void tls_modules_unloaded(void);  /* after dlclose: forget gone modules */
int tls_tid_enter(void);
void tls_tid_leave(int old);

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

/* The fake kernel tid of a G: unique among live G's, above the kernel's
 * pid range (<= 2^22), inside FUTEX_TID_MASK. */
static inline int g_fake_tid(const g_t *g)
{
	return (int)(0x20000000u | (uint32_t)(g->goid & 0x1fffffff));
}

/* The main G is the first one allocated (goid 1, sched_init checks). */
static inline int g_main_fake_tid(void)
{
	return (int)(0x20000000u | 1u);
}

/* ---- cancel.c: cancellation requests, signal interruption of waits ------ */

/* Cancellation enabled and not being acted on already. */
static inline bool cancel_enabled(const g_t *g)
{
	return __atomic_load_n(&g->cancelstate, __ATOMIC_RELAXED) == PTHREAD_CANCEL_ENABLE &&
	       !g->canceling;
}
/* A request is pending and may be acted on now. */
static inline bool cancel_pending(g_t *g)
{
	return __builtin_expect(atomic_load_explicit(&g->cancel_req, memory_order_acquire), 0) &&
	       cancel_enabled(g);
}
/* Asynchronous cancellation type and enabled (any instruction may be a
 * cancellation point). */
static inline bool cancel_async_enabled(const g_t *g)
{
	return __atomic_load_n(&g->canceltype, __ATOMIC_RELAXED) == PTHREAD_CANCEL_ASYNCHRONOUS &&
	       __atomic_load_n(&g->cancelstate, __ATOMIC_RELAXED) == PTHREAD_CANCEL_ENABLE;
}
/* The word a wait interruptible by cancellation watches (gfutex_wait_intr,
 * netpoll_wait, g_join): the request while enabled, else NULL. */
static inline _Atomic uint32_t *cancel_intr(g_t *g)
{
	return cancel_enabled(g) ? &g->cancel_req : NULL;
}

/* Start-up: the SIGCANCEL handler, libc's cancellation points. */
void cancel_init(void);
/* glibc's pthread_cancel installed its handler over ours: put ours back. */
void cancel_reclaim(void);
/* glibc's cancelhandling word in a TCB (NULL: tcb NULL or not known). */
_Atomic uint32_t *cancel_glibc_word(void *tcb);
/* Act on a pending request at a cancellation point (no-op if none, or
 * disabled); does not return if it acts. */
void cancel_point(g_t *g);
/* The calling G starts acting on a cancellation (canceling, disabled). */
void cancel_begin(g_t *g);
/* pthread_cancel of g, in three steps: post the request, interrupt its
 * wait or blocking call, act at once if g is asynchronous (core/cancel.c
 * essay; the shim keeps glibc's view between the first two). */
void cancel_request(g_t *g);
void cancel_interrupt(g_t *g);
void cancel_async(g_t *g);
/* Wait on a gfutex as a cancellation point: what gfutex_wait returns, or
 * -ECANCELED if a request arrived while enabled: the caller restores its
 * invariants (a condvar waiter re-takes the mutex) and then calls
 * cancel_point(g), which does not return. */
int cancel_gfutex_wait(g_t *g, _Atomic uint32_t *addr, uint32_t val, int64_t deadline);
/* A plain blocking system call pthread_cancel can interrupt: the raw
 * result (-errno, or ARCH_CP_CANCELED); then cancel_syscall_after(g, r) -
 * after leaving the syscall bracket - acts on the request if that is what
 * cut it short.  g NULL: the plain call. */
long cancel_syscall(g_t *g, long nr, long a, long b, long c, long d, long e, long f);
/* The same for a call that is no cancellation point while it blocks
 * (cancel false): only an eviction (core/sched.c, "Running out of M's")
 * or a sigwait kick cut it short. */
long cancel_syscall2(g_t *g, bool cancel, long nr, long a, long b, long c, long d, long e,
                     long f);
void cancel_syscall_after(g_t *g, long r);
/* Park g until deadline (CLOCK_MONOTONIC ns), a cancellation point.  A
 * signal handler that runs meanwhile ends the sleep: the time left (ns),
 * 0 when the sleep is done.  Never restarted, as the kernel's sleeps. */
int64_t cancel_sleep_until(g_t *g, int64_t deadline);
/* A wait of g was cut short so that a signal could be delivered to it
 * (core's g_signal interrupts parked G's): what would the kernel have
 * done to the call?  Handlers with SA_RESTART restart restartable calls;
 * other handlers make it fail with EINTR; ignored signals do nothing. */
enum { SIG_NONE = 0, SIG_RESTART, SIG_EINTR };
int g_sig_outcome(g_t *g, bool restartable);

/* ---- trace.c ---------------------------------------------------------- */
void trace_start(void);           /* schedtrace thread if configured */
void trace_line(void);

/* Random numbers for victim choice (xorshift), owner M. */
static inline uint32_t m_rand(m_t *m)
{
	uint64_t x = m->rand;
	x ^= x << 13; x ^= x >> 7; x ^= x << 17;
	m->rand = x;
	return (uint32_t)(x >> 32);
}

#endif
