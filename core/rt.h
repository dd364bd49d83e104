/* core/rt.h - the runtime as the layers above see it (shim/, syscall_wrap/).
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
 *
 * Audiences: this header is what shim/ and syscall_wrap/ may use - the G
 * and M as they see them, thread creation, join, parking on gfutexes, the
 * syscall brackets, the poller's waits, cancellation (core/cancel.c),
 * signals.  core/internal.h adds what only core/ (and its unit tests)
 * uses: P's, run queues, the scheduler's globals, locks, timers, runtime
 * sections.  Nothing under core/ or arch/ includes shim/ or syscall_wrap/.
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
#include <time.h>

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

/* ---- timespecs: the one check and the conversions ----------------------- */

#define RT_NS_PER_S 1000000000LL

/* A timespec the POSIX calls accept (not NULL, tv_nsec in [0, 1e9));
 * EINVAL otherwise.  tv_sec's sign is each caller's business. */
static inline bool rt_ts_ok(const struct timespec *ts)
{
	return ts && ts->tv_nsec >= 0 && ts->tv_nsec < RT_NS_PER_S;
}

/* An accepted timespec with tv_sec >= 0 as ns; INT64_MAX / 2 ("never",
 * still safe to add to a clock reading) when it would overflow. */
static inline int64_t rt_ts_ns(const struct timespec *ts)
{
	if (ts->tv_sec > INT64_MAX / RT_NS_PER_S - 1)
		return INT64_MAX / 2;
	return (int64_t)ts->tv_sec * RT_NS_PER_S + ts->tv_nsec;
}

/* ns >= 0 as a timespec. */
static inline struct timespec rt_ns_ts(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / RT_NS_PER_S, .tv_nsec = ns % RT_NS_PER_S };
}

/* One-shot sleep/wakeup for M's (Go's note; core/note.c): the type is
 * here because an M holds one. */
typedef struct note {
	_Atomic uint32_t key;   /* 0 clear, 1 woken */
} note_t;

/* ---- G ---------------------------------------------------------------- */

enum gstatus {
	G_IDLE = 0,     /* just allocated, not yet initialised */
	G_RUNNABLE,
	G_RUNNING,
	G_SYSCALL,      /* reserved for entersyscall (syscall_wrap) */
	G_WAITING,
	G_DEAD,
};

/* Detach/join protocol, see core/g.c. */
enum { GJ_JOINABLE = 0, GJ_DETACHED = 1, GJ_EXITED = 2 };

struct g {
	arch_ctx_t ctx;               /* owner M; saved context when not running */
	_Atomic uint32_t status;      /* enum gstatus; transitions by CAS (g.c) */
	uint32_t waitreason;          /* set by the parking G before g_park */
	/* What the G waits for, for tracebacks (core/traceback.c): a kind
	 * (enum waitkind) and an object, stored by the caller of a wait
	 * before it (g_wait_note) and cleared by gfutex_wait on its way out.
	 * Owner writes, dumps read racily. */
	uint32_t waitkind;
	uintptr_t waitobj;
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
	_Atomic uint64_t sigdelivered; /* raised by deliver_pending (syscall_wrap/park.c's
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
	                                 (shim/signal.c, core/cancel.c) */
	_Atomic uint32_t sigwait_seq; /* which wait a kick is for (owner bumps) */
	_Atomic uint32_t sigstray;    /* a kick meant for another G interrupted
	                                 its call: not a handler (core/cancel.c) */

	/* The call that holds this G's M (core/syscall.c, "Running out of M's"):
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
	 * blocking calls park the G and hand the P on (core/signal.c,
	 * deliver_pending).  Owner G only. */
	_Atomic uint32_t sigdefer;
	/* Regions where a handler must not run even at rtdepth 0: the G has
	 * kernel-side state on its stack (a poll request or a file operation
	 * in flight, core/netpoll_wait.c) that unwinding out of the handler
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

/* What a G is about to wait for (g->waitkind/waitobj): only read by
 * tracebacks, so two plain stores on the wait's slow path and nothing
 * on the fast one.  gfutex_wait clears the kind when it returns. */
enum waitkind {
	WK_NONE = 0,
	WK_MUTEX,       /* obj: the pthread_mutex_t */
	WK_COND,        /* obj: the pthread_cond_t */
	WK_RWLOCK,      /* obj: the pthread_rwlock_t */
	WK_SEM,         /* obj: the sem_t */
	WK_BARRIER,     /* obj: the pthread_barrier_t */
	WK_ONCE,        /* obj: the pthread_once_t */
	WK_JOIN,        /* obj: the g_t joined */
	WK_SLEEP,       /* obj: unused */
	WK_IO_READ,     /* obj: the descriptor */
	WK_IO_WRITE,    /* obj: the descriptor */
	WK_POLL,        /* obj: number of descriptors */
	WK_MAX
};

static inline void g_wait_note(g_t *g, enum waitkind kind, uintptr_t obj)
{
	if (g) {
		g->waitobj = obj;
		g->waitkind = kind;
	}
}

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

/* The current user G (not a g0), or NULL. */
static inline g_t *getcurg(void)
{
	g_t *g = getg();
	return g && !g->is_g0 ? g : NULL;
}

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
	_Atomic uint64_t tpwrites;    /* per-g: thread pointer writes (owner
	                                 stores, schedtrace reads) */
	void *fork_tp;                /* per-g: the G's, across glibc's fork */
	void *os_tcb;                 /* glibc's TCB of this kernel thread: the
	                                 one in its thread lists (M0: the main
	                                 thread's, which the main G runs on) */
	uint64_t cur_mask;            /* signal mask of the kernel thread now */
	_Atomic uint32_t preempt;     /* sysmon asked for a yield (preempt.c) */
	uint32_t locks_held;          /* debug lock rank stack depth */
	uint8_t lock_ranks[16];
};

/* ---- sched ------------------------------------------------------------ */

enum { TLS_SHARED = 0, TLS_PER_G = 1 };
enum { IO_URING = 0, IO_EPOLL = 1, IO_SYSCALL = 2 };

struct rt_cfg {
	int gomaxprocs;               /* >= 1 */
	size_t g_ext_size;            /* shim area after each G */
	int schedtrace_ms;            /* 0 = off */
	int scheddetail;
	int deadlock;                 /* GSHIM_DEBUG=deadlock=1: report and exit */
	int tls_mode;                 /* TLS_SHARED or TLS_PER_G (GSHIM_TLS): read it
	                                 through rt_tls_per_g() */
	int nofsgsbase;               /* GSHIM_DEBUG=nofsgsbase=1 */
	int preempt;                  /* GSHIM_PREEMPT: async preemption on */
	int io_mode;                  /* GSHIM_IO: IO_URING, IO_EPOLL, IO_SYSCALL */
	int maxm;                     /* GSHIM_MAXM: most M's (0: no limit) */
	/* Tracebacks (core/traceback.c): GSHIM_TRACEBACK (TB_UNSET: each
	 * trigger's default), GSHIM_DEBUG=dumpsignal=<sig> (0 none), and
	 * GSHIM_DUMP=json:<path> ("" for text on stderr). */
	int traceback;
	int dumpsig;
	char dump_json[256];
	/* The name pthread_setname_np gave g ("" or NULL: none); no locks,
	 * no allocation (a dump may call it from a signal handler). */
	const char *(*g_name)(g_t *g);
	/* Act on a cancellation of the calling G (core/cancel.c decided it
	 * is one, its flags say so): the shim runs the cleanup handlers and
	 * ends the thread.  Does not return. */
	void (*cancel_exit)(g_t *g) __attribute__((noreturn));
};
extern struct rt_cfg rt_cfg;

/* The TLS mode in effect: per-G TCBs (GSHIM_TLS=per-g, and the TCB layout
 * checks passed at start-up; else sched_init fell back to shared).  The
 * one accessor: nothing else reads rt_cfg.tls_mode. */
static inline bool rt_tls_per_g(void)
{
	return rt_cfg.tls_mode == TLS_PER_G;
}

/* ---- traceback.c: a report of every G (Go's GOTRACEBACK) --------------- */
enum { TB_UNSET = -1, TB_NONE = 0, TB_SINGLE, TB_ALL, TB_CRASH };
/* Start-up, after config: the SIGQUIT handler (when SIGQUIT is at its
 * default action) and the dump signal's (when it is). */
void traceback_init(void);

/* ---- sched.c ---------------------------------------------------------- */

/* Make the calling (main) thread M0 with the main G (goid 1) on P0.
 * Idempotent.  false when the memory for that cannot be had (a tiny
 * RLIMIT_AS): nothing was changed, and sched_disabled() says so from
 * then on. */
bool sched_init(void);
bool sched_disabled(void);
bool sched_ready(void);

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

/* Running out of M's (core/syscall.c).  sched_mshort: an M could not be
 * created lately, so calls with a non-blocking twin should use it
 * instead of holding an M (one load while M's are plentiful).
 * sched_mstarve (sysmon): runnable G's wait beside an idle P with no M
 * for it; retry the clone, evict an M from a call with a twin, or
 * report once.  true while starved. */
bool sched_mshort(void);

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
 * (core/cancel.c), and keeps it unblocked in M's. */
#define SIGCANCEL 32

/* preempt.c: signals kept unblocked in M's; asynchronous signals of a G
 * (core/internal.h) end with it. */
uint64_t preempt_kmask_clear(void);
void preempt_async_clear(g_t *g);

/* netpoll.c: the poller.  netpoll_wait parks the current G until fd is
 * ready for events (POLLIN/POLLOUT), deadline (ns) passes (-ETIMEDOUT),
 * *intr is set (-EINTR), or a signal is directed at it (-EAGAIN); 0 when
 * ready; -ENOSYS when there is no poller (block in the kernel instead).
 * netpoll_rw: a regular-file read/write through io_uring, the G parked
 * until it completes: bytes or -errno, -ENOSYS without io_uring; the
 * syncs likewise (0 or -errno). */
struct iovec;
/* The I/O mode in effect (IO_URING, IO_EPOLL, IO_SYSCALL): GSHIM_IO as
 * far as the host allowed it, IO_SYSCALL once the poller is lost.  The
 * one answer to "which mode": nothing outside netpoll.c reads
 * rt_cfg.io_mode.  netpoll_mode sets the poller up on first use;
 * netpoll_mode_peek does not (before that it answers what was asked
 * for), so a program with one thread never starts it. */
int netpoll_mode(void);
int netpoll_mode_peek(void);
int netpoll_wait(int fd, uint32_t events, int64_t deadline, _Atomic uint32_t *intr);
ssize_t netpoll_rw(bool write, int fd, const struct iovec *iov, int cnt, int64_t off);
#define NETPOLL_MANY 64   /* descriptors of one netpoll_wait_many */
int netpoll_wait_many(const int *fd, const uint32_t *ev, int n, int64_t deadline,
                      _Atomic uint32_t *intr);
int netpoll_sync(int fd, bool datasync);          /* fsync / fdatasync */
int netpoll_sync_range(int fd, int64_t off, int64_t len, unsigned fl);

/* rtfd.c: the program's calls that close or replace descriptor numbers
 * (close, close_range, closefrom, dup2, dup3) keep the runtime's own
 * descriptors (essay there). */
int rtfd_close_begin(int fd);         /* 0: ours, report success; else call */
void rtfd_close_end(int how);         /* how: rtfd_close_begin's answer */
long rtfd_close_range(unsigned lo, unsigned hi, unsigned flags);
long rtfd_dup3(int old, int new, long (*call)(int, int, int), int flags);

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

/* Per-g TLS: run glibc code that must see this kernel thread as itself
 * (fork, setuid & co.) with the M's own TCB loaded.  enter returns what
 * leave restores (NULL: nothing was changed: shared TLS, not an M, M0).
 * The G stays on this M in between and must not park. */
void *sched_own_tcb_enter(void);
void sched_own_tcb_leave(void *tp);

/* core/signal.c: what the receiver of process-directed signals waits
 * for now (a sigwait leaves those to it). */
uint64_t sig_taken(void);
/* Signals a G may never block: glibc's two internal ones. */
#define SIGSETXID 33
#define SIG_INTERNAL ((1ull << (SIGCANCEL - 1)) | (1ull << (SIGSETXID - 1)))

/* Direct signal sig at g (pthread_kill): raised at once on the caller's
 * M if g is the caller, else on g's M if g is running, else when g next
 * runs. */
void g_signal(g_t *g, int sig);

/* Set the current G's signal mask and apply it to its M. */
void g_setmask(g_t *g, uint64_t mask);

/* ---- g.c: allocation, registry, join ---------------------------------- */
g_t *g_alloc(size_t stacksize, size_t guard, const gstack_t *user, int *err);
void g_free(g_t *g);                   /* drop to free list (refs hit 0) */
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
long g_live_count(void);                /* live user G's, racy */

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

/* signal.c: unwinding out of a wrapped call (cancellation, pthread_exit
 * from a handler inside it). */
void g_call_abandon(void);

/* ---- tls.c: a TCB per G (GSHIM_TLS=per-g) ------------------------------ */
void *tls_new(g_t *g);            /* TCB for g (reused or fresh); NULL: ENOMEM */
void tls_exit(void);              /* on the G's TCB, at thread exit */
void tls_modules_changed(void);   /* after dlopen: TLS images into G TCBs */
void tls_modules_unloaded(void);  /* after dlclose: forget gone modules */
int tls_tid_enter(void);
void tls_tid_leave(int old);

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

/* The program's cancelability state says ENABLE (the one place that
 * compares it; the owner writes it, others read it racily). */
static inline bool cancel_state_enabled(const g_t *g)
{
	return __atomic_load_n(&g->cancelstate, __ATOMIC_RELAXED) == PTHREAD_CANCEL_ENABLE;
}
/* Cancellation enabled and not being acted on already. */
static inline bool cancel_enabled(const g_t *g)
{
	return cancel_state_enabled(g) && !g->canceling;
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
	       cancel_state_enabled(g);
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
 * (cancel false): only an eviction (core/syscall.c, "Running out of M's")
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

#endif
