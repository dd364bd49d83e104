/* core/sched.c - the scheduler: M's running G's on P's (Go's proc.go).
 *
 * Switching
 * ---------
 * A G gives up the CPU in switch_out.  While still on its own stack it
 * picks the next G from its own P (runnext, the ring, the global queue
 * every 61st tick or when the ring is empty) and, if there is one, switches
 * to it directly: one register switch, no detour through the M's g0.  Only
 * when its P has nothing does it switch to g0, which runs find_runnable
 * (stealing, dropping the P, sleeping the M).  TLS.md explains why the
 * direct switch matters: with a TCB per G every switch costs a thread
 * pointer write (3.4 us with arch_prctl here), so G -> g0 -> G would pay
 * twice.
 *
 * The G being left cannot publish its own new state (G_WAITING on a wait
 * queue, G_RUNNABLE on a run queue, G_DEAD on a free list) before its
 * registers are saved: another M could pick it up and run on its stack
 * while we are still using it.  So it describes what must happen in a
 * switch_req on its own stack, and whoever runs next on this M calls
 * switch_finish(req) as the first thing after the switch returns - the
 * finish_task_switch pattern of the Linux scheduler.  The req stays valid
 * until finish publishes the G, and finish copies what it needs first.
 *
 * Go gets the same guarantee by running park_m/goexit0 on g0 (mcall); we
 * get it without the second switch.
 *
 * Spinning M's (Go's "Worker thread parking/unparking")
 * -----------------------------------------------------
 * Goal: keep enough M's running to use the P's when there is work, but
 * park M's quickly when there is none, without a central lock on the
 * readying path.  An M is "spinning" when it is out of local work and is
 * looking in global queues and other P's.  At most about half the busy P's
 * spin.  When a G is readied (g_ready, g_spawn), wakep starts a new spinning
 * M only if there is an idle P and no M is spinning already: the spinner is
 * the one that will find it.  A spinning M that finds work stops spinning
 * and calls wakep, so a new spinner takes over the search (work may come in
 * bursts).  A spinning M that finds nothing puts its P on the idle list,
 * decrements nmspinning, and THEN looks at every run queue again.  A
 * readier stores its G in a queue and THEN reads nmspinning.  With both
 * orders sequentially consistent (the #StoreLoad pair), either the spinner
 * sees the new G, or the readier sees nmspinning == 0 and wakes an M.
 * Without it a G can sit runnable while every P sleeps.
 *
 * Rejected alternatives: waking an M for every readied G (thundering herd
 * of futex wakes on the hot path; Go 1.0 did this), and a central run
 * queue under one lock (Go 1.0 again: collapses beyond a few cores).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"
#include "arch/real.h"

__thread void *gshim_tls_g __attribute__((tls_model("initial-exec")));

struct sched sched = { .lock = LOCK_INIT(RANK_SCHED), .gflock = LOCK_INIT(RANK_GFREE) };
struct rt_cfg rt_cfg = { .gomaxprocs = 0 };

static m_t m0;
static lock_t init_lock = LOCK_INIT(RANK_LEAF);
static _Atomic int init_done;

/* ---- small helpers --------------------------------------------------- */

/* Make g the context whose TLS is current on m.  Shared TLS: rewrite the
 * runtime's slot in the M's TCB.  Per-G TLS: load g's thread pointer
 * (each TCB's slot names its own G), once per change of TCB.  Must run
 * before the register switch, after the last TLS access of the context
 * being left. */
static inline void enter_tls(m_t *m, g_t *g)
{
	if (rt_cfg.tls_mode == TLS_PER_G) {
		void *tp = g->tcb;

		if (tp != m->cur_tp) {
			arch_set_tp(tp);
			m->cur_tp = tp;
		}
	} else {
		setg(g);
	}
}

/* errno is reached through a pointer the compiler cannot treat as const:
 * after a switch the same code may be on another M (another TCB). */
static int *(*volatile errno_loc)(void) = __errno_location;

static inline void casgstatus(g_t *g, uint32_t from, uint32_t to)
{
	uint32_t old = from;

	if (!atomic_compare_exchange_strong_explicit(&g->status, &old, to,
	        memory_order_acq_rel, memory_order_acquire))
		rt_fatal_num("bad g status transition, goid ", g->goid);
}

bool sched_ready(void)
{
	return atomic_load_explicit(&init_done, memory_order_acquire) != 0;
}

int sched_gomaxprocs(void)
{
	return sched.nprocs;
}

/* ---- P ownership ------------------------------------------------------ */

/* Attach p to m.  p must be idle (taken off sched.pidle). */
static void acquirep(m_t *m, p_t *p)
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
static void p_owner_set(p_t *p, uint32_t to)
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

static p_t *releasep(m_t *m)
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
static void pidle_put(p_t *p)
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
static p_t *pidle_get(void)
{
	p_t *p = sched.pidle;

	if (p) {
		sched.pidle = p->link;
		atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst);
	}
	return p;
}

/* sched.lock must be held. */
static void midle_put(m_t *m)
{
	m->schedlink = sched.midle;
	sched.midle = m;
	sched.nmidle++;
}

/* sched.lock must be held. */
static m_t *midle_get(void)
{
	m_t *m = sched.midle;

	if (m) {
		sched.midle = m->schedlink;
		sched.nmidle--;
	}
	return m;
}

/* ---- M creation, parking ---------------------------------------------- */

static void schedule(m_t *m) __attribute__((noreturn));
static void m_install_altstack(m_t *m);
static inline void m_mask_idle(m_t *m);

/* offsetof(__lock) - offsetof(__list.__next) in glibc's pthread_mutex_t:
 * where the kernel finds a robust mutex's lock word from its list node. */
struct rt_robust rt_robust = { NULL, &rt_robust.list, -32, NULL };

/* Replaces the registration glibc made for this thread's own TCB: G's,
 * not M's, hold robust mutexes, and a G's TCB is unknown to the kernel. */
void rt_robust_register(void)
{
	arch_syscall(SYS_set_robust_list, (long)&rt_robust.list, 3 * sizeof(long), 0);
}

static void *m_main(void *arg)
{
	m_t *m = arg;

	m->tid = os_gettid();
	rt_robust_register();
	/* A new thread inherits its creator's name: an M started by sysmon
	 * would be called gshim-sysmon.  M's carry the program's name. */
	prctl(PR_SET_NAME, sched.comm, 0, 0, 0);
	m->g0.is_g0 = true;
	m->g0.m = m;
	m->g0.rtdepth = 1;   /* g0 is always inside the runtime */
	atomic_store_explicit(&m->g0.status, G_RUNNING, memory_order_relaxed);
	/* g0 runs on this thread's own TCB. */
	m->g0.tcb = m->cur_tp = m->os_tcb = arch_tp();
	arch_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&m->cur_mask, 8, 0, 0);
	setg(&m->g0);
	m_install_altstack(m);
	acquirep(m, m->nextp);
	m->nextp = NULL;
	schedule(m);
}

static void m_register(m_t *m)
{
	m->id = atomic_fetch_add_explicit(&sched.mid, 1, memory_order_relaxed);
	m->rand = 0x9e3779b97f4a7c15ull * (m->id + 1) ^ (uint64_t)os_nanotime();
	if (!m->rand)
		m->rand = 1;
	m_t *old = atomic_load_explicit(&sched.allm, memory_order_relaxed);
	do
		m->alllink = old;
	while (!atomic_compare_exchange_weak_explicit(&sched.allm, &old, m,
	        memory_order_release, memory_order_relaxed));
	atomic_fetch_add_explicit(&sched.mcount, 1, memory_order_relaxed);
}

/* Running out of M's: see "Running out of M's" below. */
#define MRETRY_MIN_NS  1000000      /* first retry of a failed clone: 1 ms */
#define MRETRY_MAX_NS  64000000     /* the backoff's cap: 64 ms */
#define MSHORT_NS      1000000000   /* twins stay in use 1 s after a failure */
static _Atomic int64_t mshort_until;   /* 0: no M creation failed lately */
static _Atomic int64_t mretry_at;      /* newm tries no clone before this */
static _Atomic int64_t mretry_ns = MRETRY_MIN_NS;
static m_t *_Atomic mspare;            /* registered, never started */

/* An attempt to create an M failed: M's are short for MSHORT_NS, and
 * the next attempt waits for the backoff. */
static void mshort_note(void)
{
	int64_t now = os_nanotime(), d = atomic_load_explicit(&mretry_ns, memory_order_relaxed);

	atomic_store_explicit(&mshort_until, now + MSHORT_NS, memory_order_relaxed);
	atomic_store_explicit(&mretry_at, now + d, memory_order_relaxed);
	atomic_store_explicit(&mretry_ns, d * 2 > MRETRY_MAX_NS ? MRETRY_MAX_NS : d * 2,
	                      memory_order_relaxed);
}

/* Start a new M that will run with p (Go's newm).  If spinning, the new M
 * is counted in nmspinning already.  Failure to create the OS thread is
 * not fatal: the P goes back to the idle list and the existing M's carry
 * on (as with a process out of threads), with a one-time warning; sysmon
 * retries (sched_mstarve).  While M's are short only a forced attempt
 * (sysmon's) or one after the backoff calls clone: every G readied
 * would otherwise try one.  true if the M was started. */
static bool newm(p_t *p, bool spinning, bool force)
{
	static _Atomic int warned;
	/* Not malloc: newm runs on sysmon and poller threads too, and a
	 * program's own malloc may not be thread-safe (bash's is not: it
	 * assumes a single-threaded process and handed one M's memory to a
	 * second M in a forked child). */
	m_t *m = NULL;
	int err = ENOMEM;
	bool tried = false;

	if (!force && atomic_load_explicit(&mshort_until, memory_order_relaxed) &&
	    os_nanotime() < atomic_load_explicit(&mretry_at, memory_order_relaxed)) {
		err = EAGAIN;   /* sysmon retries */
	} else if (rt_cfg.maxm > 0 &&
	    atomic_load_explicit(&sched.mcount, memory_order_relaxed) >= rt_cfg.maxm) {
		/* The bound (GSHIM_MAXM, Go's 10000-thread limit): the P
		 * stays idle, the program carries on with the M's it has. */
		static _Atomic int said;

		if (!atomic_exchange(&said, 1))
			rt_warn("GSHIM_MAXM kernel threads for M's reached; running with those");
		atomic_store(&warned, 1);   /* one message is enough */
		tried = true;
	} else if ((m = atomic_exchange_explicit(&mspare, NULL, memory_order_acquire)) != NULL) {
		atomic_fetch_add_explicit(&sched.mcount, 1, memory_order_relaxed);
	} else {
		m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE,
		         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			m = NULL;
		else
			m_register(m);
		tried = true;
	}
	if (m) {
		m->nextp = p;
		m->spinning = spinning;
		err = rt_thread_start(m_main, m, 256 * 1024);
		tried = true;
		if (err == 0) {
			if (atomic_load_explicit(&mshort_until, memory_order_relaxed)) {
				atomic_store_explicit(&mshort_until, 0, memory_order_relaxed);
				atomic_store_explicit(&mretry_ns, MRETRY_MIN_NS, memory_order_relaxed);
			}
			return true;
		}
		/* Registered (on allm, which is never shrunk) but never run:
		 * kept for the next attempt, so retries cost no memory and do
		 * not count against GSHIM_MAXM. */
		m->nextp = NULL;
		m->spinning = false;
		atomic_fetch_sub_explicit(&sched.mcount, 1, memory_order_relaxed);
		m = atomic_exchange_explicit(&mspare, m, memory_order_release);
		/* (another failed attempt's spare, if any, is left unused) */
	}
	if (tried) {
		mshort_note();
		if (!atomic_exchange(&warned, 1))
			rt_warn("cannot create an OS thread for an M; running with fewer");
	}
	/* Nobody owns p now: its queued G's go to the global queue, where
	 * the M's that do run find them, and p goes idle. */
	lock_acquire(&sched.lock);
	for (g_t *g; (g = runq_get(p)) != NULL;)
		globrunq_put(g);
	pidle_put(p);
	lock_release(&sched.lock);
	if (spinning)
		atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
	return false;
}

/* Schedule some M to run p (or an idle P if p is NULL).  Go's startm. */
static void startm(p_t *p, bool spinning)
{
	m_t *nm;
	bool brk;

	lock_acquire(&sched.lock);
	if (!p) {
		p = pidle_get();
		if (!p) {
			lock_release(&sched.lock);
			if (spinning && atomic_fetch_sub_explicit(&sched.nmspinning, 1,
			        memory_order_seq_cst) <= 0)
				rt_fatal("startm: negative nmspinning");
			return;
		}
	}
	nm = midle_get();
	brk = nm && nm->in_netpoll;
	lock_release(&sched.lock);
	if (!nm) {
		newm(p, spinning, false);
		return;
	}
	if (nm->spinning || nm->nextp)
		rt_fatal("startm: m is spinning or has a P");
	nm->spinning = spinning;
	nm->nextp = p;
	note_wakeup(&nm->park);
	if (brk)
		netpoll_break();
}

/* Try to add one more spinning M because there may be work (Go's wakep).
 * Called after a G was put on a run queue. */
static void wakep(void)
{
	int zero = 0;

	/* #StoreLoad with the spinning M's decrement + recheck (see essay):
	 * our run queue store must be visible before we read nmspinning. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&sched.npidle, memory_order_seq_cst) == 0)
		return;
	if (atomic_load_explicit(&sched.nmspinning, memory_order_seq_cst) != 0 ||
	    !atomic_compare_exchange_strong_explicit(&sched.nmspinning, &zero, 1,
	        memory_order_seq_cst, memory_order_seq_cst))
		return;
	startm(NULL, true);
}

void sched_wake_idle(void)
{
	if (sched_ready())
		wakep();
}

/* GSHIM_DEBUG=deadlock=1: called by an M about to sleep.  If every P is
 * idle, nothing is queued, no timer is pending and no G is in a blocking
 * call, no G can ever be woken by the runtime again: say so, list the
 * G's, and exit with status 2 (Go's "all goroutines are asleep").  A G
 * that only a signal handler, another process or a thread created behind
 * gshim's back would wake is reported too: hence opt-in. */
struct dl_count { int waiting, blocked; };

static void dl_count_g(g_t *g, void *arg)
{
	struct dl_count *c = arg;
	uint32_t st = atomic_load(&g->status);

	if (st == G_WAITING)
		c->waiting++;
	else if (st == G_SYSCALL || st == G_RUNNING || st == G_RUNNABLE)
		c->blocked++;
}

static void dl_print_g(g_t *g, void *arg)
{
	static const char *const reasons[WAIT_MAX] = {
		[WAIT_NONE] = "", [WAIT_GFUTEX] = "sync",
	};
	char buf[160];
	size_t len = 0;
	uint32_t st = atomic_load(&g->status);
	uintptr_t addr = (uintptr_t)atomic_load(&g->waitaddr);
	int i;

	(void)arg;
	if (st != G_WAITING)
		return;
	memcpy(buf, "  thread ", 9);
	len = 9;
	len += os_fmt_u64(buf + len, g->goid);
	memcpy(buf + len, g->is_main ? " (main) [" : " [", g->is_main ? 9 : 2);
	len += g->is_main ? 9 : 2;
	if (g->waitreason < WAIT_MAX) {
		size_t l = strlen(reasons[g->waitreason]);
		memcpy(buf + len, reasons[g->waitreason], l);
		len += l;
	}
	memcpy(buf + len, "] on 0x", 7);
	len += 7;
	for (i = 60; i >= 0; i -= 4)
		buf[len++] = "0123456789abcdef"[(addr >> i) & 15];
	buf[len++] = '\n';
	os_write_all(2, buf, len);
}

static void deadlock_check(void)
{
	struct dl_count c = { 0, 0 };
	static const char msg[] = "gshim: fatal: all threads are asleep - deadlock!\n";

	if (atomic_load(&sched.npidle) != sched.nprocs ||
	    atomic_load(&sched.runqsize) != 0 || timer_count() != 0 || netpoll_waiting())
		return;
	g_foreach(dl_count_g, &c);
	if (c.blocked || !c.waiting)
		return;
	os_write_all(2, msg, sizeof msg - 1);
	g_foreach(dl_print_g, NULL);
	_exit(2);
}

/* ---- running out of M's -------------------------------------------------
 *
 * Every G in a call that holds an M (entersyscall: flock, a lock wait,
 * waitpid, a read with GSHIM_IO=syscall ...) is a kernel thread, as it
 * would be natively.  When the kernel refuses another (RLIMIT_NPROC,
 * cgroup pids.max, threads-max) or GSHIM_MAXM is reached, newm fails and
 * the P it was for goes idle.  Go stops there ("thread exhaustion", fatal)
 * and otherwise lets runnable G's wait for an M to come back from its
 * call.  Here that wait can be forever where natively it is not: the
 * native program's pthread_create fails instead, it copes (lets go of a
 * lock, retries), and the threads it did create each have a kernel
 * thread - including the one that holds the lock or will write to the
 * pipe the others read.  Under gshim creation succeeds, every M is taken
 * by a G blocked on something that only a runnable G with no M would
 * end: a deadlock the program did not write.
 *
 * What gshim does instead:
 *   - newm records the failure (mshort_until, MSHORT_NS ahead) and backs
 *     off: no clone until mretry_at (1 ms doubling to 64 ms), so a
 *     program that readies G's quickly does not call clone for each.
 *   - While M's are short, calls that have a non-blocking twin (flock ->
 *     LOCK_NB, F_SETLKW -> F_SETLK, a read of a pipe or socket with
 *     GSHIM_IO=syscall -> poll without waiting, then the read) make the
 *     twin and park the G on a timer between tries (100 us doubling to
 *     10 ms: syscall_wrap, sc_call_twin) instead of holding an M.
 *   - sysmon (sched_mstarve) watches for starvation: G's on the global
 *     queue, an idle P, no idle or spinning M, M's short.  It retries the
 *     clone when the backoff allows; failing that it evicts one M per
 *     round from a call with a twin that has lasted EVICT_AFTER_NS: sets
 *     g->evict and sends SIGCANCEL, whose handler (core/cancel.c) moves
 *     the PC out of the call as for a cancellation; the wrapper sees the
 *     eviction and goes on with the twin, and the M, back in the
 *     scheduler, runs the starved G's.
 *   - Starved for REPORT_NS with nothing to evict (every M is in a call
 *     without a twin: waitpid, sigwait, a process-shared wait ...):
 *     progress depends on those calls returning, which may be never.
 *     sysmon says so once, naming each blocked thread and its call
 *     (Go's thread-exhaustion report, without the exit: the calls may
 *     still return, another process may release the lock); with
 *     GSHIM_DEBUG=deadlock=1 the report is fatal (exit 2).
 *
 * Rejected: always using the twins (a polled lock is not queued in the
 * kernel - a waiter may lose to later ones - and wakes up to 10 ms late;
 * natively and while M's are plentiful the plain call is exact and
 * free); making pthread_create fail with EAGAIN when no M can be had (a
 * G needs no M until it runs, and G's blocked in parkable waits need
 * none at all: the 100,000-thread programs would fail); a reserve M
 * kept idle for emergencies (one reserve is taken by the next blocking
 * call like any other M).
 *
 * The eviction signal races with the call's return: sysmon picks a G in
 * its call and signals that G's M; if the G left the call meanwhile, the
 * handler finds evict unset (or evictable clear) on what runs now and
 * does nothing, and the M's current call, if any, restarts (SA_RESTART)
 * - except calls the kernel never restarts (poll, select, epoll_wait,
 * sigsuspend): the signal names g, so the handler marks it stray for the
 * G it interrupts, and the plain-call wrapper makes that call again
 * instead of returning EINTR (syscall_wrap/wrap.h).  Calls younger than
 * EVICT_AFTER_NS are never picked, which makes the window small. */
#define EVICT_AFTER_NS 1000000      /* in its call this long: may be evicted */
#define REPORT_NS      1000000000   /* starved this long, nothing to evict */

bool sched_mshort(void)
{
	int64_t u = atomic_load_explicit(&mshort_until, memory_order_relaxed);

	return u != 0 && os_nanotime() < u;
}

/* Names of the calls gshim makes while holding an M, for the report. */
static const char *sc_name(long nr)
{
	switch (nr) {
	case SCNR_WAIT: return "a kernel wait (process-shared object or sigwait)";
	case SYS_flock: return "flock";
	case SYS_fcntl: return "fcntl lock wait";
	case SYS_preadv2: case SYS_read: case SYS_readv: case SYS_pread64: return "read";
	case SYS_pwritev2: case SYS_write: case SYS_writev: case SYS_pwrite64: return "write";
	case SYS_recvmsg: case SYS_recvfrom: case SYS_recvmmsg: return "recv";
	case SYS_sendmsg: case SYS_sendto: case SYS_sendmmsg: return "send";
	case SYS_accept4: case SYS_accept: return "accept";
	case SYS_connect: return "connect";
	case SYS_wait4: case SYS_waitid: return "wait";
	case SYS_ppoll: case SYS_poll: return "poll";
	case SYS_pselect6: case SYS_select: return "select";
	case SYS_epoll_pwait: case SYS_epoll_pwait2: case SYS_epoll_wait: return "epoll_wait";
	case SYS_msgrcv: return "msgrcv";
	case SYS_msgsnd: return "msgsnd";
	case SYS_semop: case SYS_semtimedop: return "semop";
	case SYS_rt_sigsuspend: return "sigsuspend";
	case SYS_openat: case SYS_open: return "open";
	case SYS_fsync: case SYS_fdatasync: case SYS_sync_file_range: return "fsync";
	case SYS_futex: return "futex";
	case SYS_splice: case SYS_tee: case SYS_sendfile: case SYS_copy_file_range:
		return "splice";
	default: return NULL;
	}
}

struct starve_count { int runnable, blocked; };

static void starve_count_g(g_t *g, void *arg)
{
	struct starve_count *c = arg;
	uint32_t st = atomic_load(&g->status);

	c->runnable += st == G_RUNNABLE;
	c->blocked += st == G_SYSCALL;
}

static size_t fmt_str(char *buf, size_t len, const char *s)
{
	size_t l = strlen(s);

	memcpy(buf + len, s, l);
	return len + l;
}

static void starve_print_g(g_t *g, void *arg)
{
	char buf[200];
	size_t len;
	long nr = __atomic_load_n(&g->scnr, __ATOMIC_RELAXED);
	const char *name = sc_name(nr);

	(void)arg;
	if (atomic_load(&g->status) != G_SYSCALL)
		return;
	len = fmt_str(buf, 0, "  thread ");
	len += os_fmt_u64(buf + len, g->goid);
	len = fmt_str(buf, len, g->is_main ? " (main) blocked in " : " blocked in ");
	if (name) {
		len = fmt_str(buf, len, name);
		if (nr != SCNR_WAIT) {
			long a0 = __atomic_load_n(&g->sca0, __ATOMIC_RELAXED);

			len = fmt_str(buf, len, nr == SYS_wait4 || nr == SYS_waitid ? " (" : " (fd ");
			if (a0 < 0) {
				buf[len++] = '-';
				a0 = -a0;
			}
			len += os_fmt_u64(buf + len, (unsigned long long)a0);
			buf[len++] = ')';
		}
	} else if (nr > 0) {
		len = fmt_str(buf, len, "system call ");
		len += os_fmt_u64(buf + len, (unsigned long long)nr);
	} else {
		len = fmt_str(buf, len, "a call gshim does not name");
	}
	buf[len++] = '\n';
	os_write_all(2, buf, len);
}

/* Once: what waits, and on what. */
static void starve_report(void)
{
	struct starve_count c = { 0, 0 };
	char buf[256];
	size_t len;

	g_foreach(starve_count_g, &c);
	len = fmt_str(buf, 0, rt_cfg.deadlock ? "gshim: fatal: thread exhaustion - " :
	                                        "gshim: thread exhaustion - ");
	len = fmt_str(buf, len, "no OS thread can be created for an M and every M is "
	                        "blocked in a call: ");
	len += os_fmt_u64(buf + len, (unsigned long long)c.runnable);
	len = fmt_str(buf, len, " runnable thread(s) wait until one of these returns:\n");
	os_write_all(2, buf, len);
	g_foreach(starve_print_g, NULL);
	if (rt_cfg.deadlock)
		_exit(2);
}

/* Evict one M from a call with a twin (see the essay).  sysmon. */
static bool m_evict(int64_t now)
{
	pid_t pid = (pid_t)arch_syscall(SYS_getpid, 0, 0, 0);

	for (m_t *m = atomic_load_explicit(&sched.allm, memory_order_acquire); m;
	     m = m->alllink) {
		g_t *g = __atomic_load_n(&m->curg, __ATOMIC_ACQUIRE);

		if (!g || !m->tid || atomic_load_explicit(&g->status, memory_order_acquire) != G_SYSCALL ||
		    !atomic_load_explicit(&g->evictable, memory_order_acquire) ||
		    now - __atomic_load_n(&g->scsince, __ATOMIC_RELAXED) < EVICT_AFTER_NS)
			continue;
		/* Before the signal: the handler looks at it (a G already
		 * evicted but still in its call is signalled again: the
		 * first signal may have come before the call). */
		atomic_store_explicit(&g->evict, 1, memory_order_seq_cst);
		/* Named for g: if g left its call meanwhile, the call the
		 * signal interrupts is another G's, which takes it as stray
		 * and makes its call again (core/cancel.c, sigstray) instead
		 * of returning EINTR from a poll or select. */
		siginfo_t si;

		memset(&si, 0, sizeof si);
		si.si_signo = SIGCANCEL;
		si.si_code = SI_QUEUE;
		si.si_pid = pid;
		si.si_value.sival_ptr = g;
		si.si_errno = SIGCANCEL_EVICT_TAG;
		arch_syscall6(SYS_rt_tgsigqueueinfo, pid, m->tid, SIGCANCEL, (long)&si, 0, 0);
		return true;
	}
	return false;
}

bool sched_mstarve(int64_t now)
{
	static int64_t since;     /* sysmon only: starved since then */
	static bool reported;

	if (!atomic_load_explicit(&mshort_until, memory_order_relaxed) ||
	    atomic_load_explicit(&sched.runqsize, memory_order_relaxed) == 0 ||
	    atomic_load_explicit(&sched.npidle, memory_order_relaxed) == 0 ||
	    atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) != 0 ||
	    __atomic_load_n(&sched.nmidle, __ATOMIC_RELAXED) != 0) {
		since = 0;
		return false;
	}
	if (!since) {
		since = now;   /* maybe a moment between wakep and startm */
		return true;
	}
	if (now >= atomic_load_explicit(&mretry_at, memory_order_relaxed)) {
		p_t *p;

		lock_acquire(&sched.lock);
		p = pidle_get();
		lock_release(&sched.lock);
		if (p && newm(p, false, true)) {
			since = 0;
			return false;
		}
	}
	if (m_evict(now))
		return true;
	if (!reported && now - since >= REPORT_NS) {
		reported = true;
		starve_report();
	}
	return true;
}

/* sched.lock must be held.  Take m off the idle list; false if startm
 * took it first (it will hand m a P). */
static bool midle_remove(m_t *m)
{
	for (m_t **pp = &sched.midle; *pp; pp = &(*pp)->schedlink)
		if (*pp == m) {
			*pp = m->schedlink;
			m->schedlink = NULL;
			sched.nmidle--;
			return true;
		}
	return false;
}

/* The idle M as the poller's blocker (core/netpoll.c): sleep in the
 * kernel for I/O events instead of on the futex.  Returns true with a P
 * when woken by events and a P was free (the woken G's are on it), false
 * when the M must go on as an ordinary idle M: taken by startm (m->nextp
 * is or will be set), or every P is busy - then it gives the role up and
 * leaves the events to the busy M's (find_runnable) and sysmon: waking
 * for events it cannot run would make every event a double wake-up and
 * every woken G an urgent one. */
static bool stopm_netpoll(m_t *m, bool *taken)
{
	p_t *p = NULL;

	netpoll_block();
	atomic_store_explicit(&m->idle_sleeping, 0, memory_order_seq_cst);
	lock_acquire(&sched.lock);
	m->in_netpoll = false;
	*taken = !midle_remove(m);
	if (!*taken)
		p = pidle_get();
	lock_release(&sched.lock);
	if (p) {
		acquirep(m, p);
		netpoll_block_done();
		return true;
	}
	if (!*taken)
		netpoll_block_abandon();   /* every P busy: their M's reap */
	return false;   /* taken: done after the P arrives, below */
}

/* Sleep on m's note until startm hands m a P.  While the timer thread
 * is not running (core/timer.c: it could not be started), an idle M does
 * its job, as Go's M's do: it sleeps only until the earliest deadline,
 * then runs the expired timers - their G's go to the global queue and
 * wakep hands a P to an idle M, maybe this one (the note is then set).
 * Such an M does not block in the poller (stopm), so while G's wait for
 * I/O it also looks for events every NETPOLL_IDLE_NS.  idle_sleeping is
 * cleared meanwhile: timers and events take locks, so a signal handler's
 * wake-ups must be deferred as on any running g0. */
#define NETPOLL_IDLE_NS 1000000   /* sysmon's NETPOLL_NS */

static void stopm_sleep(m_t *m)
{
	for (;;) {
		int64_t next = timer_next_unserved(), left;
		bool io = timer_unserved() && netpoll_waiting();

		if (__builtin_expect(next == INT64_MAX && !io, 1)) {
			note_sleep(&m->park);
			return;
		}
		left = next == INT64_MAX ? INT64_MAX : next - os_nanotime();
		if (io && left > NETPOLL_IDLE_NS)
			left = NETPOLL_IDLE_NS;
		if (left > 0 && note_sleep_ns(&m->park, left))
			return;
		if (atomic_load_explicit(&m->park.key, memory_order_acquire))
			return;
		atomic_store_explicit(&m->idle_sleeping, 0, memory_order_seq_cst);
		timer_run_expired();
		if (io)
			netpoll_poll(false);
		atomic_store_explicit(&m->idle_sleeping, 1, memory_order_seq_cst);
		rt_defer_drain(&m->g0);
	}
}

/* Park the M until startm hands it a P.  m has no P.  Go's stopm. */
static void stopm(m_t *m)
{
	bool poll, taken, nopoll = false;

	if (m->p)
		rt_fatal("stopm: holding p");
	if (m->spinning)
		rt_fatal("stopm: spinning");
	sig_receiver_start();
	m_mask_idle(m);
again:
	taken = false;
	/* The blocker role first, then the idle list: startm can only see
	 * in_netpoll (and break the wait) once the role is ours. */
	poll = !nopoll && !timer_unserved() && netpoll_block_begin();
	lock_acquire(&sched.lock);
	m->in_netpoll = poll;
	midle_put(m);
	lock_release(&sched.lock);
	/* No lock held and no P from here until woken: a signal handler may
	 * wake G's directly (gfutex_wake_async), and wakes it deferred on g0
	 * earlier must be done now, or they would wait for this M's next
	 * wake-up. */
	atomic_store_explicit(&m->idle_sleeping, 1, memory_order_seq_cst);
	rt_defer_drain(&m->g0);
	if (poll) {
		if (stopm_netpoll(m, &taken))
			return;
		if (!taken) {
			nopoll = true;
			goto again;
		}
	} else if (rt_cfg.deadlock) {
		deadlock_check();
	}
	stopm_sleep(m);
	atomic_store_explicit(&m->idle_sleeping, 0, memory_order_relaxed);
	note_clear(&m->park);
	acquirep(m, m->nextp);
	m->nextp = NULL;
	if (poll)
		netpoll_block_done();   /* events that came with the break */
}

/* A spinning M found work: stop spinning and let another M take over
 * the search (Go's resetspinning). */
static void reset_spinning(m_t *m)
{
	m->spinning = false;
	if (atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst) <= 0)
		rt_fatal("reset_spinning: negative nmspinning");
	wakep();
}

/* ---- finding work ------------------------------------------------------ */

/* Non-blocking search of the M's own P and the global queue.  Safe on a
 * G's stack: it only takes short locks.  Owner of p. */
static g_t *pick_local(p_t *p)
{
	g_t *g;

	/* Every 61st tick look at the global queue first, so that a pair of
	 * G's readying each other through runnext cannot starve it - past
	 * the urgent G's at its head first (below), so that a flood of I/O
	 * events cannot starve preempted or yielded G's either.  61 is Go's
	 * choice: prime, so it does not fall into step with periodic program
	 * behaviour. */
	if (p->schedtick % 61 == 0) {
		if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
			lock_acquire(&sched.lock);
			g = globrunq_get_plain();
			if (!g)
				g = globrunq_get(p, 1);
			lock_release(&sched.lock);
			if (g)
				return g;
		}
		/* Likewise the ring: Go relies on sysmon preempting a pair
		 * that hands the P back and forth through runnext; without
		 * preemption, a G at the ring head would wait forever. */
		g = runq_get_ring(p);
		if (g)
			return g;
	}
	/* G's readied from outside the scheduler (a sleep's timer expiry, a
	 * descriptor turning ready) run next, as Go's timers run by the P
	 * and its netpoll results do - except every 4th tick, so a flood of
	 * events cannot starve the local ring. */
	if (__builtin_expect(atomic_load_explicit(&sched.nurgent, memory_order_relaxed) > 0, 0) &&
	    (p->schedtick & 3) != 0) {
		lock_acquire(&sched.lock);
		g = globrunq_get(p, 1);
		lock_release(&sched.lock);
		if (g)
			return g;
	}
	g = runq_get(p);
	if (g)
		return g;
	if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
		/* The ring is empty here, so globrunq_get may fill it. */
		lock_acquire(&sched.lock);
		g = globrunq_get(p, 0);
		lock_release(&sched.lock);
	}
	return g;
}

/* Work appeared after we gave up our P: take an idle P back and spin
 * again.  false if every P is busy (their M's will find the work). */
static bool take_idle_p_spinning(m_t *m)
{
	p_t *p;

	lock_acquire(&sched.lock);
	p = pidle_get();
	lock_release(&sched.lock);
	if (!p)
		return false;
	acquirep(m, p);
	m->spinning = true;
	atomic_fetch_add_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
	return true;
}

/* Find a runnable G, stealing or sleeping as needed (Go's findrunnable).
 * Runs on g0.  Returns with m->p set. */
static g_t *find_runnable(m_t *m)
{
	g_t *g;
	p_t *p;
	int i, k, procs;

top:
	p = m->p;
	g = pick_local(p);
	if (g)
		return g;
	if (timer_due() && timer_run_expired() > 0 && (g = pick_local(p)) != NULL)
		return g;
	/* I/O events that arrived while we were busy: their G's on our P. */
	if (netpoll_poll(false) > 0 && (g = pick_local(p)) != NULL)
		return g;

	/* Steal.  Limit spinners to half the busy P's: beyond that they burn
	 * CPU without finding more. */
	procs = sched.nprocs;
	if (m->spinning || 2 * atomic_load(&sched.nmspinning) <
	        procs - atomic_load(&sched.npidle)) {
		if (!m->spinning) {
			m->spinning = true;
			atomic_fetch_add_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
		}
		for (i = 0; i < 4; i++) {
			uint32_t off = m_rand(m);
			for (k = 0; k < procs; k++) {
				p_t *v = &sched.allp[(off + (uint32_t)k) % (uint32_t)procs];
				if (v == p)
					continue;
				/* runnext only in the last round: its owner is
				 * probably about to run it. */
				g = runq_steal(p, v, i == 3);
				if (g)
					return g;
			}
		}
	}

	/* Nothing: give up the P. */
	lock_acquire(&sched.lock);
	if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
		g = globrunq_get(p, 0);
		lock_release(&sched.lock);
		return g;
	}
	releasep(m);
	pidle_put(p);
	lock_release(&sched.lock);

	/* The delicate dance: stop spinning, then look again (see essay). */
	if (m->spinning) {
		m->spinning = false;
		if (atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst) <= 0)
			rt_fatal("find_runnable: negative nmspinning");
		bool work = atomic_load_explicit(&sched.runqsize, memory_order_seq_cst) > 0;

		for (k = 0; k < procs && !work; k++)
			work = !runq_empty(&sched.allp[k]);
		if (work && take_idle_p_spinning(m))
			goto top;
	}
	stopm(m);
	goto top;
}

/* ---- switching --------------------------------------------------------- */

enum switch_kind { SW_NONE, SW_PARK, SW_YIELD, SW_EXIT, SW_TOGLOBAL, SW_PREEMPT };

struct switch_req {
	g_t *prev;
	enum switch_kind kind;
	bool (*unlockf)(g_t *, void *);
	void *arg;
};

/* Carry out what the G we just left asked for.  Runs on the new context
 * of the same M, first thing after the switch.  See the essay. */
static void switch_finish(struct switch_req *req)
{
	g_t *prev = req->prev;
	enum switch_kind kind = req->kind;
	bool (*unlockf)(g_t *, void *) = req->unlockf;
	void *arg = req->arg;
	m_t *m;

	/* Wakes a signal handler deferred onto prev (it interrupted prev's
	 * runtime section) would otherwise wait for prev to run again -
	 * forever if prev is parking on the very thing they wake.  prev is off
	 * the CPU, so no handler adds to its list now: move them here (we are
	 * inside the runtime too, so they are deferred again and done when
	 * this context's section ends). */
	if (__builtin_expect(atomic_load_explicit(&prev->ndefer, memory_order_acquire) !=
	                     atomic_load_explicit(&prev->dhead, memory_order_relaxed), 0)) {
		uint32_t *addr;

		while ((addr = rt_defer_pop(prev)) != NULL)
			gfutex_wake_async((_Atomic uint32_t *)addr);
	}
	/* req lives on prev's stack: from here on only the copies. */
	switch (kind) {
	case SW_NONE:
		break;
	case SW_PARK:
		casgstatus(prev, G_RUNNING, G_WAITING);
		if (unlockf && !unlockf(prev, arg)) {
			casgstatus(prev, G_WAITING, G_RUNNABLE);
			m = getm();
			runq_put(m->p, prev, true);
			break;
		}
		/* A signal made pending on prev while it was still running
		 * (g_signal saw G_RUNNING and kicked its M, but the kick found
		 * it inside the runtime, or found it gone) must not sleep
		 * with it: interrupt the wait, as g_signal does for a G it
		 * sees waiting.  Dekker with g_signal: it sets sigpending,
		 * then reads the status; we set the status, then read
		 * sigpending (seq_cst both). */
		atomic_thread_fence(memory_order_seq_cst);
		if (__builtin_expect(atomic_load_explicit(&prev->sigpending, memory_order_seq_cst) &
		                     ~prev->sigmask, 0) && !prev->sighold_nointr)
			gfutex_interrupt(prev);
		break;
	case SW_YIELD:
		casgstatus(prev, G_RUNNING, G_RUNNABLE);
		m = getm();
		runq_put(m->p, prev, false);
		break;
	case SW_EXIT:
		casgstatus(prev, G_RUNNING, G_DEAD);
		g_exited_publish(prev);   /* off its CPU and stack now (g_exit) */
		g_unref(prev);
		break;
	case SW_PREEMPT:
		/* Preempted (Go's gopreempt_m): the global queue's tail, so
		 * CPU-bound G's rotate over every P, not just their own. */
		casgstatus(prev, G_RUNNING, G_RUNNABLE);
		lock_acquire(&sched.lock);
		globrunq_put(prev);
		lock_release(&sched.lock);
		break;
	case SW_TOGLOBAL:
		/* g_block_exit found no P: the G waits for one on the global
		 * queue, and this M (on g0, P-less) goes to sleep. */
		casgstatus(prev, G_SYSCALL, G_RUNNABLE);
		lock_acquire(&sched.lock);
		globrunq_put(prev);
		lock_release(&sched.lock);
		wakep();
		break;
	}
}

/* Make g the running G of m.  g came off a run queue (G_RUNNABLE). */
static inline void execute_prep(m_t *m, g_t *g)
{
	casgstatus(g, G_RUNNABLE, G_RUNNING);
	g->m = m;
	m->curg = g;
	m->p->schedtick++;
	enter_tls(m, g);
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
		uint64_t k = g->sigmask & ~preempt_kmask_clear();

		arch_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&k, 0, 8, 0, 0);
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
		uint64_t k = ~SIG_INTERNAL;

		arch_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&k, 0, 8, 0, 0);
		m->cur_mask = ~0ull;
	}
}

static void deliver_pending(g_t *g);

void g_setmask(g_t *g, uint64_t mask)
{
	g->sigmask = mask;
	sigmask_apply(g);
	sig_note_mask(mask);
	if (atomic_load_explicit(&g->sigpending, memory_order_relaxed) & ~mask)
		deliver_pending(g);
}

static void raise_on_m(m_t *m, int sig)
{
	arch_syscall(SYS_tgkill, arch_syscall(SYS_getpid, 0, 0, 0), m->tid, sig);
}

/* Raise g's pending signals on its M now that it runs.  The handlers run
 * when the tgkill returns, on this G: what pthread_kill promised.
 *
 * Not inside a runtime section (rtdepth > 0): a G that resumes from a
 * park in one (a read parked in the poller, interrupted for the signal)
 * would run the handler with the runtime's depth raised, so a blocking
 * call in the handler could not park - it would wait in the kernel with
 * the P held, and at GOMAXPROCS=1 nobody could ever wake it (glibc
 * tst-cancel20: the handler reads a pipe, the main thread must run to
 * cancel it).  Such signals wait in sigdefer until rt_exit brings the
 * depth to 0 with the G running: the handler then runs after the
 * interrupted wait has returned EINTR to its wrapper and before the
 * wrapper decides between EINTR and a restart, which is the order the
 * kernel gives (the action is recorded at raise time, below).  Also
 * held back inside a g_sighold region (rt.h), for the same reason one
 * level up: unwinding out of the handler must not skip the poller's
 * clean-up of a request still in flight.  A G
 * inside a system call's bracket (G_SYSCALL) gets them at once: the
 * signal must interrupt the call, as it would natively.  A G that parks
 * with them deferred is woken again at once (switch_finish). */
static void deliver_pending(g_t *g)
{
	if ((g->rtdepth != 0 &&
	     atomic_load_explicit(&g->status, memory_order_relaxed) == G_RUNNING) ||
	    g->sighold != 0) {
		atomic_store_explicit(&g->sigdefer, 1, memory_order_relaxed);
		return;
	}
	/* Only what the G does not block: the rest stays pending on the G
	 * (sigpending() reports it; unblocking delivers it). */
	uint64_t set = atomic_fetch_and_explicit(&g->sigpending, g->sigmask,
	                                         memory_order_acq_rel) & ~g->sigmask;
	int sig;

	uint64_t s;

	/* The action as the kernel will take it, kept for the wait this
	 * interrupts: the handler may change it (SIG_DFL) before that wait
	 * decides between EINTR and a restart (g_sig_outcome). */
	for (sig = 1, s = set; s; sig++, s >>= 1) {
		struct os_ksigaction ka;
		uint64_t bit = 1ull << (sig - 1);

		if (!(s & 1) || !os_sigaction_get(sig, &ka) ||
		    ka.handler == (void *)SIG_IGN || ka.handler == (void *)SIG_DFL)
			continue;
		atomic_fetch_or_explicit(&g->sigdeliv_handled, bit, memory_order_relaxed);
		if (!(ka.flags & SA_RESTART))
			atomic_fetch_or_explicit(&g->sigdeliv_norestart, bit, memory_order_relaxed);
	}
	atomic_fetch_or_explicit(&g->sigdelivered, set, memory_order_relaxed);
	for (sig = 1; set; sig++, set >>= 1)
		if (set & 1)
			raise_on_m(g->m, sig);
}

void g_deliver_deferred(g_t *g)
{
	if (g->is_g0 || g->rtdepth != 0 || g->sighold != 0 ||
	    atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING)
		return;   /* the next rt_exit to depth 0 tries again */
	atomic_store_explicit(&g->sigdefer, 0, memory_order_relaxed);
	if (atomic_load_explicit(&g->sigpending, memory_order_relaxed) & ~g->sigmask)
		deliver_pending(g);
}

/* The thread leaves by unwinding (cancellation, pthread_exit), maybe from
 * a signal handler that runs inside a wrapped call: the call's bracket
 * (g_syscall_enter's, or g_block_enter's) never closes; close it, so the
 * G goes on and exits as a running G with a P and no runtime depth. */
void g_call_abandon(void)
{
	g_t *g = getcurg();
	uint64_t k;

	if (!g)
		return;
	if (atomic_load_explicit(&g->status, memory_order_relaxed) == G_SYSCALL) {
		if (g->rtdepth > 0)
			g_syscall_exit();
		else
			g_block_exit();
	}
	/* Leaving a handler without sigreturn leaves the kernel mask of
	 * this M as the handler had it (its signal and sa_mask blocked).
	 * Natively that mask dies with the thread; here the M goes on to
	 * run other G's, which would never get those signals (m->cur_mask
	 * would not even know).  Load the G's own mask again. */
	k = g->sigmask & ~preempt_kmask_clear();
	arch_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&k, 0, 8, 0, 0);
	g->m->cur_mask = g->sigmask;
}

void g_signal(g_t *g, int sig)
{
	uint64_t bit = 1ull << (sig - 1);
	m_t *m;

	if (g == getcurg() && !(g->sigmask & bit)) {
		raise_on_m(g->m, sig);
		return;
	}
	atomic_fetch_or_explicit(&g->sigpending, bit, memory_order_seq_cst);
	if (__atomic_load_n(&g->sigmask, __ATOMIC_RELAXED) & bit) {
		/* Blocked: pending on the G until it unblocks it or sigwaits
		 * for it.  If it waits for it in the kernel right now, end that
		 * wait (shim/signal.c takes it from sigpending then).  Dekker
		 * with the waiter: it publishes sigwait_set, then looks at
		 * sigpending; we stored sigpending, then look at sigwait_set. */
		if (atomic_load_explicit(&g->sigwait_set, memory_order_seq_cst) & bit) {
			atomic_store_explicit(&g->sigwake, 1, memory_order_seq_cst);
			m = __atomic_load_n(&g->m, __ATOMIC_ACQUIRE);
			if (m && atomic_load_explicit(&g->status, memory_order_acquire) == G_SYSCALL) {
				/* Named for g and its wait: if g left that
				 * wait meanwhile, the call the kick interrupts
				 * knows it was not meant for it (core/cancel.c:
				 * sigstray). */
				siginfo_t si;

				memset(&si, 0, sizeof si);
				si.si_signo = SIGCANCEL;
				si.si_code = SI_QUEUE;
				si.si_pid = (pid_t)arch_syscall(SYS_getpid, 0, 0, 0);
				si.si_value.sival_ptr = g;
				/* G's are reused, and wait again: the round */
				si.si_errno = (int)atomic_load_explicit(&g->sigwait_seq,
				                                        memory_order_relaxed);
				arch_syscall6(SYS_rt_tgsigqueueinfo, si.si_pid, m->tid, SIGCANCEL,
				              (long)&si, 0, 0);
			}
		}
		return;
	}
	/* Running right now (and maybe for long, without switching): kick its
	 * M.  A G that parks before the kick lands is woken again at once by
	 * switch_finish, which reads sigpending after publishing G_WAITING
	 * (Dekker with the status read below); one that yields runs the
	 * signal when it resumes. */
	m = g->m;
	/* seq_cst: Dekker with a G about to park (switch_finish, SW_PARK) */
	uint32_t st = atomic_load_explicit(&g->status, memory_order_seq_cst);
	/* Blocked in the kernel (sigwait, a pshared wait, a wrapped call): the
	 * signal itself must reach it there, and interrupt the call as it
	 * would natively. */
	if (m && st == G_SYSCALL &&
	    (atomic_fetch_and_explicit(&g->sigpending, ~bit, memory_order_acq_rel) & bit)) {
		raise_on_m(m, sig);
		return;
	}
	/* Running on another M: kick that M with SIGURG.  Its handler
	 * (sig_kick) raises the pending signals of whatever G it finds
	 * running, i.e. only if it is still this one; if the G switched out
	 * in between, the signals wait on it for its next resume.  Sending
	 * the program's signal itself could land on the M's next G. */
	/* Parked in an interruptible wait (poller, sleep, condvar): wake it
	 * so the handler runs now, as it would in a blocked native thread;
	 * the wait decides between EINTR and going on. */
	if (st == G_WAITING) {
		gfutex_interrupt(g);
		return;
	}
	if (m && st == G_RUNNING && preempt_sig_ours())
		arch_syscall(SYS_tgkill, arch_syscall(SYS_getpid, 0, 0, 0), m->tid, SIGURG);
}

/* Leave the current G as req says; returns when the G runs again. */
static void switch_out(g_t *cur, struct switch_req *req)
{
	m_t *m = cur->m;
	struct switch_req *back;
	g_t *next;

	if (!stack_canary_ok(&cur->stack))
		rt_fatal_num("stack overflow in thread ", cur->goid);
	cur->saved_errno = *errno_loc();
	/* An M waits in g_block_exit for a P (its G must stay on it): give it
	 * ours when we yield or are preempted, and every 61st tick, so it
	 * cannot starve behind G's that keep this P busy (Go gets this from
	 * the global queue). */
	if (m->p && __atomic_load_n(&sched.pwait, __ATOMIC_RELAXED) &&
	    (req->kind == SW_YIELD || req->kind == SW_PREEMPT || m->p->schedtick % 61 == 0))
		m->handoff = true;
	next = m->p && !m->handoff ? pick_local(m->p) : NULL;
	cur->m = NULL;
	if (next) {
		/* From cur's kernel mask straight to next's: what next blocks
		 * and cur does not must be blocked before the switch, or a
		 * signal could land in between and run its handler on next
		 * (glibc tst-signal3 saw one on a thread that blocks it).
		 * next narrows it to its own once it runs (sigmask_apply). */
		if (__builtin_expect(next->sigmask & ~m->cur_mask, 0)) {
			uint64_t both = m->cur_mask | next->sigmask;
			uint64_t k = both & ~preempt_kmask_clear();

			arch_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&k, 0, 8, 0, 0);
			m->cur_mask = both;
		}
		execute_prep(m, next);
		back = arch_switch(&cur->ctx, &next->ctx, req);
	} else {
		/* Before g0 runs: a signal for a G must not land there. */
		m_mask_idle(m);
		m->curg = NULL;
		enter_tls(m, &m->g0);
		back = arch_switch(&cur->ctx, &m->g0.ctx, req);
	}
	/* Running again, possibly on another M. */
	switch_finish(back);
	sigmask_apply(cur);
	if (__builtin_expect(atomic_load_explicit(&cur->sigpending,
	        memory_order_relaxed) != 0, 0))
		deliver_pending(cur);
	*errno_loc() = cur->saved_errno;
}

/* Give m's P, run queue and all, to an M waiting in g_block_exit. */
static void p_to_waiter(m_t *m)
{
	m_t *w;

	lock_acquire(&sched.lock);
	w = sched.pwait;
	if (w) {
		sched.pwait = w->schedlink;
		w->schedlink = NULL;
		w->nextp = releasep(m);
		note_wakeup(&w->park);
	}
	lock_release(&sched.lock);
}

/* The scheduler loop on g0: never returns.  Go's schedule(). */
static void schedule(m_t *m)
{
	for (;;) {
		struct switch_req req = { .prev = &m->g0, .kind = SW_NONE };
		struct switch_req *back;
		g_t *g;

		rt_defer_drain(&m->g0);
		m_mask_idle(m);
		if (!m->p) {
			p_t *p;

			lock_acquire(&sched.lock);
			p = pidle_get();
			lock_release(&sched.lock);
			if (p)
				acquirep(m, p);
			else
				stopm(m);
		}
		g = find_runnable(m);

		if (m->spinning)
			reset_spinning(m);
		execute_prep(m, g);
		back = arch_switch(&m->g0.ctx, &g->ctx, &req);
		if (rt_cfg.tls_mode != TLS_PER_G)
			setg(&m->g0);   /* per-g: whoever switched to us loaded our TCB */
		switch_finish(back);
		if (m->handoff) {
			m->handoff = false;
			p_to_waiter(m);
		}
	}
}

/* First code on a fresh G's stack. */
static void g_start(void *from_switch, void *data)
{
	g_t *g = data;

	switch_finish(from_switch);
	rt_exit(g);   /* g_start_new entered it for us: finish touched the P */
	sigmask_apply(g);
	if (rt_cfg.tls_mode == TLS_PER_G)
		tls_first_run();
	*errno_loc() = 0;
	if (atomic_load_explicit(&g->sigpending, memory_order_relaxed))
		deliver_pending(g);
	g->fn(g->fnarg);
	g_exit(NULL);
}

/* First code on M0's g0 (M0's g0 needs a stack of its own, since the
 * main thread's stack belongs to the main G). */
static void g0_start(void *from_switch, void *data)
{
	m_t *m = data;

	if (rt_cfg.tls_mode == TLS_PER_G)
		tls_first_run();   /* a fresh TCB, see sched_init */
	else
		setg(&m->g0);
	switch_finish(from_switch);
	schedule(m);
}

/* ---- public operations ------------------------------------------------- */

void g_ready(g_t *g)
{
	m_t *m = getm();

	casgstatus(g, G_WAITING, G_RUNNABLE);
	if (m && m->p) {
		runq_put(m->p, g, true);
	} else {
		/* From the timer thread, sysmon's reaping of I/O events, an
		 * idle M's or a foreign thread: an event from outside the
		 * scheduler runs next, as an expiry run by a P's own scheduler
		 * would (runnext in Go). */
		lock_acquire(&sched.lock);
		globrunq_put_head(g);
		lock_release(&sched.lock);
		if (atomic_load(&sched.npidle) == 0)
			sysmon_kick();
	}
	wakep();
}

void g_park(bool (*unlockf)(g_t *, void *), void *arg, enum waitreason why)
{
	g_t *g = getcurg();
	struct switch_req req = { .kind = SW_PARK, .unlockf = unlockf, .arg = arg };

	if (!g)
		rt_fatal("g_park: not on a G");
	req.prev = g;
	g->waitreason = why;
	switch_out(g, &req);
	g->waitreason = WAIT_NONE;
}

/* Leave the P to other runnable G's, if there are any, as kind says
 * (SW_YIELD: this P's ring; SW_PREEMPT: the global queue).  Expired
 * timers are run first: their sleepers run next (core/timer.c). */
static void yield_as(g_t *g, enum switch_kind kind)
{
	struct switch_req req = { .prev = g, .kind = kind };

	rt_enter();
	timer_run_expired();
	/* Nothing else to run here or globally: like sched_yield on an idle
	 * CPU, return at once.  Other P's queues are their own M's business. */
	if (sched_work_waiting(g->m->p))
		switch_out(g, &req);
	rt_exit(g);
}

void g_yield(void)
{
	g_t *g = getcurg();

	/* The common idle case without entering the runtime. */
	if (g && (timer_due() || sched_work_waiting(g->m->p)))
		yield_as(g, SW_YIELD);
}

_Noreturn void g_exit(void *retval)
{
	g_t *g = getcurg();
	struct switch_req req = { .kind = SW_EXIT };

	if (!g)
		rt_fatal("g_exit: not on a G");
	rt_enter();   /* never left: the G ends inside the runtime */
	g->retval = retval;
	/* glibc's rule: the last thread to exit ends the process with
	 * exit(0), running atexit handlers. */
	if (atomic_fetch_sub_explicit(&sched.ngs, 1, memory_order_acq_rel) == 1) {
		exit(0);
	}
	/* Joiners hear of the exit only once we are off this CPU (the exit
	 * is published in switch_finish): a handler of a process-directed
	 * signal landing on this M meanwhile must not run as a thread whose
	 * join has returned (glibc tst-tls3 saw it), and the program may
	 * free a stack it supplied the moment join returns.  Waking the
	 * joiner now puts it on our run queue, so the switch below goes
	 * straight to it; if another M runs it first it finds `exited` still
	 * 0 and waits again for the wake in switch_finish. */
	gfutex_wake(&g->exited, 1);
	req.prev = g;
	switch_out(g, &req);
	rt_fatal("g_exit: dead G resumed");
}

void g_preempt_yield(void)
{
	yield_as(getcurg(), SW_PREEMPT);
}

/* Make g (fresh from g_alloc, stack set) runnable.  Go's newproc1 tail. */
void g_start_new(g_t *g, void (*fn)(void *), void *arg)
{
	g_t *self = rt_enter();
	m_t *m = getm();

	sysmon_start();   /* a program with threads gets its monitor */
	sig_receiver_start();   /* ... and its signal thread */
	timer_start();   /* ... and its timer thread, before M's use up a
	                    thread limit (core/timer.c) */
	sig_note_mask(g->sigmask);

	g->fn = fn;
	g->fnarg = arg;
	g->rtdepth = 1;   /* g_start runs switch_finish before leaving it */
	arch_ctx_make(&g->ctx, g->stack.hi, g_start, g);
	stack_canary_set(&g->stack);
	atomic_fetch_add_explicit(&sched.ngs, 1, memory_order_relaxed);
	atomic_store_explicit(&g->status, G_RUNNABLE, memory_order_release);
	if (m && m->p) {
		runq_put(m->p, g, true);
	} else {
		lock_acquire(&sched.lock);
		globrunq_put(g);
		lock_release(&sched.lock);
	}
	wakep();
	rt_exit(self);
}

/* ---- blocking calls that cannot park ----------------------------------- */

/* Give p away because its M is about to block (Go's handoffp). */
static void handoffp(p_t *p)
{
	int zero = 0;

	/* Local or global work: an M must run it now. */
	if (!runq_empty(p) || atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
		startm(p, false);
		return;
	}
	/* Nobody spinning and no idle P: somebody must look for work that
	 * may appear, so this P becomes a spinning M's. */
	if (atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) == 0 &&
	    atomic_compare_exchange_strong(&sched.nmspinning, &zero, 1)) {
		startm(p, true);
		return;
	}
	lock_acquire(&sched.lock);
	/* Recheck under the lock: a G readied onto the global queue since
	 * the look above would otherwise wait beside an idle P. */
	if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
		lock_release(&sched.lock);
		startm(p, false);
		return;
	}
	pidle_put(p);
	lock_release(&sched.lock);
}

void g_block_enter(void)
{
	g_t *g = getcurg();
	m_t *m;

	if (!g)
		return;
	/* A signal handler that interrupted this G inside a blocking call
	 * or in the middle of a switch (g->m already cleared): the outer
	 * state stays; the matching g_block_exit does nothing either. */
	if (!g->m || atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING) {
		g->block_skip++;
		return;
	}
	if (__builtin_expect(atomic_load_explicit(&g->m->preempt, memory_order_relaxed), 0))
		preempt_drain(g->m);
	rt_enter();
	m = g->m;
	g->scnr = SCNR_WAIT;
	casgstatus(g, G_RUNNING, G_SYSCALL);
	/* Dekker with preempt_request, as in g_syscall_enter. */
	atomic_thread_fence(memory_order_seq_cst);
	if (__builtin_expect(atomic_load_explicit(&m->preempt, memory_order_relaxed), 0))
		preempt_drain(m);
	handoffp(releasep(m));
	rt_exit(g);
}

void g_block_exit(void)
{
	g_t *g = getcurg();
	struct switch_req req = { .kind = SW_TOGLOBAL };
	m_t *m;
	p_t *p;

	if (!g)
		return;
	if (g->block_skip) {
		g->block_skip--;
		return;
	}
	rt_enter();
	m = g->m;
	/* Fast path: an idle P (often the one we gave away). */
	lock_acquire(&sched.lock);
	p = pidle_get();
	lock_release(&sched.lock);
	if (p) {
		acquirep(m, p);
		casgstatus(g, G_SYSCALL, G_RUNNING);
		rt_exit(g);
		return;
	}
	/* Slow path.  Go queues the G and parks the M; we keep the G on this
	 * M and let the M wait for the next P that frees up.  Process-shared
	 * objects in glibc identify their owner by kernel thread id, so a G
	 * that holds one must not change M here (and no wake-up of the G is
	 * needed when a P frees up: the M simply carries on). */
	(void)req;
	lock_acquire(&sched.lock);
	p = pidle_get();
	if (!p) {
		m->schedlink = sched.pwait;
		sched.pwait = m;
	}
	lock_release(&sched.lock);
	if (!p) {
		note_sleep(&m->park);
		note_clear(&m->park);
		p = m->nextp;
		m->nextp = NULL;
	}
	acquirep(m, p);
	casgstatus(g, G_SYSCALL, G_RUNNING);
	rt_exit(g);
}

/* ---- system calls (Go's entersyscall / exitsyscall) ---------------------
 * The P stays with the M, marked P_SYSCALL, so a short call costs two
 * stores and a CAS.  If the call lasts, sysmon takes the P (CAS
 * P_SYSCALL -> P_IDLE, exactly one of sysmon and exitsyscall wins) and
 * hands it to another M; exitsyscall then finds its P gone and gets
 * another the way g_block_exit does.  The G counts as inside the runtime
 * meanwhile (rtdepth), so a signal handler's wake-ups wait for the call
 * to return instead of touching a P that sysmon may be handing away. */
bool g_syscall_enter(void)
{
	g_t *g = getcurg();
	p_t *p;

	/* Already in a call (we are a signal handler inside it), or between
	 * P's in g_block_exit: the outer call does the accounting. */
	if (!g || atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING ||
	    !g->m || !g->m->p || g->rtdepth != 0)
		return false;
	if (__builtin_expect(atomic_load_explicit(&g->m->preempt, memory_order_relaxed), 0))
		preempt_drain(g->m);
	sysmon_start();
	g->rtdepth++;
	rt_check_p(g);   /* may have been taken during an unwrapped call */
	p = g->m->p;
	p->syscalltick++;
	g->scnr = 0;   /* the wrapper names its call after this */
	casgstatus(g, G_RUNNING, G_SYSCALL);
	/* Release: sysmon's acquire of the status sees the syscalltick. */
	p_owner_set(p, P_SYSCALL);
	/* Dekker with preempt_request, which stores m->preempt and then
	 * reads the G's and the P's status: a request made before it saw
	 * ours is seen here, and its signal lands before the call sleeps
	 * (a ppoll cut short by SIGURG would return EINTR to the program;
	 * the look above, before the stores, leaves that window open). */
	atomic_thread_fence(memory_order_seq_cst);
	if (__builtin_expect(atomic_load_explicit(&g->m->preempt, memory_order_relaxed), 0))
		preempt_drain(g->m);
	return true;
}

void g_syscall_exit(void)
{
	g_t *g = getcurg();
	m_t *m;
	p_t *p;
	uint32_t st = P_SYSCALL;
	int saved;

	m = g->m;
	p = m->p;
	/* Fast path: our P is still in a call.  As in Go, a P in P_SYSCALL
	 * is free for the taking: sysmon may have handed it to another M that
	 * is itself in a call with it now; then we take it over, and that M
	 * finds it gone when its call returns. */
	if (atomic_compare_exchange_strong_explicit(&p->status, &st, P_RUNNING,
	        memory_order_acq_rel, memory_order_acquire)) {
		__atomic_store_n(&p->m, m, __ATOMIC_RELEASE);
		casgstatus(g, G_SYSCALL, G_RUNNING);
		rt_exit(g);
		return;
	}
	/* sysmon gave it away: we hold no P. */
	saved = *errno_loc();
	m->p = NULL;
	g_block_exit();
	*errno_loc() = saved;
	rt_exit(g);
}

/* The G's M lost its P to sysmon (rt_check_p): wait until sysmon has
 * decided, and if the P is gone get one back like a returning call. */
void m_reacquire_p(g_t *g)
{
	m_t *m = g->m;
	p_t *p = m->p;

	while (atomic_load_explicit(&p->status, memory_order_acquire) == P_RETAKING)
		arch_relax();
	if (atomic_load_explicit(&p->status, memory_order_acquire) == P_RUNNING &&
	    __atomic_load_n(&p->m, __ATOMIC_ACQUIRE) == m)
		return;   /* sysmon changed its mind */
	m->p = NULL;
	casgstatus(g, G_RUNNING, G_SYSCALL);
	g_block_exit();
}

/* sysmon: take p from its M, which runs g and looks blocked in the kernel
 * in a call gshim does not wrap.  The claim (P_RETAKING) and g's rtdepth
 * form a Dekker pair with rt_check_p: if g is inside the runtime (or
 * about to be), it keeps its P. */
bool p_retake_running(p_t *p, m_t *m, g_t *g, uint32_t tick)
{
	uint32_t st = P_RUNNING;

	if (!atomic_compare_exchange_strong_explicit(&p->status, &st, P_RETAKING,
	        memory_order_seq_cst, memory_order_relaxed))
		return false;
	atomic_thread_fence(memory_order_seq_cst);
	if (__atomic_load_n(&g->rtdepth, __ATOMIC_RELAXED) != 0 ||
	    __atomic_load_n(&m->curg, __ATOMIC_RELAXED) != g ||
	    __atomic_load_n(&p->m, __ATOMIC_RELAXED) != m ||
	    __atomic_load_n(&p->schedtick, __ATOMIC_RELAXED) != tick ||
	    atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING) {
		atomic_store_explicit(&p->status, P_RUNNING, memory_order_release);
		return false;
	}
	__atomic_store_n(&p->m, NULL, __ATOMIC_RELAXED);
	atomic_store_explicit(&p->status, P_IDLE, memory_order_release);
	handoffp(p);
	return true;
}

bool p_retake_syscall(p_t *p)
{
	uint32_t st = P_SYSCALL;

	if (!atomic_compare_exchange_strong_explicit(&p->status, &st, P_IDLE,
	        memory_order_acq_rel, memory_order_acquire))
		return false;
	p->m = NULL;
	handoffp(p);
	return true;
}

/* ---- stack overflow reports -------------------------------------------- */

static struct sigaction old_segv, old_bus;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	g_t *g = getg();
	uintptr_t addr = (uintptr_t)si->si_addr;
	struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;

	if (g && stack_in_guard(&g->stack, addr))
		rt_fatal_num("stack overflow in thread ", g->goid);
	if (g && g->is_g0 && stack_in_guard(&g->stack, addr))
		rt_fatal("stack overflow on a scheduler stack");
	/* Not ours: behave as if we were never installed.  With the default
	 * action, re-executing the faulting instruction kills the process
	 * with the right signal. */
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction) {
			old->sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	sigaction(sig, old, NULL);
}

static void m_install_altstack(m_t *m)
{
	enum { ALT = 64 * 1024 };
	stack_t ss;
	void *mem = mmap(NULL, ALT, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (mem == MAP_FAILED)
		return;
	ss.ss_sp = mem;
	ss.ss_size = ALT;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) == 0)
		m->altstack = mem;
	else
		munmap(mem, ALT);
}

/* SIGURG from g_signal: deliver the running G's pending signals. */
static void sig_kick(int sig, siginfo_t *si, void *uc)
{
	g_t *g = getcurg();
	int saved = *errno_loc();

	(void)sig; (void)si;
	if (g && g->m && (atomic_load_explicit(&g->sigpending, memory_order_relaxed) & ~g->sigmask))
		deliver_pending(g);
	if (g)
		preempt_handle(uc);
	*errno_loc() = saved;
}

static void install_overflow_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	/* gshim's kick and preemption signal, as Go's: SIGURG, which
	 * programs rarely use; restartable calls restart after it.  On the
	 * G's stack with the G's mask (no SA_ONSTACK, SA_NODEFER): the
	 * handler may switch away (core/preempt.c). */
	sa.sa_sigaction = sig_kick;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
	preempt_set_handler(sig_kick);
	sigaction(SIGURG, &sa, NULL);
}

/* ---- initialisation ---------------------------------------------------- */

/* Start-up memory the runtime cannot run without: P's, M0's g0 stack and
 * TCB, the main G.  Taken before anything else changes, so that when one
 * cannot be had (the process starts under a tiny RLIMIT_AS) everything is
 * given back and the program runs on native threads (sched_init). */
static bool init_alloc(int n, gstack_t *g0s, g_t **mg)
{
	sched.allp = mmap(NULL, sizeof(p_t) * (size_t)n, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sched.allp == MAP_FAILED) {
		sched.allp = NULL;
		return false;
	}
	if (stack_alloc(g0s, 256 * 1024, stack_page_size()) != 0)
		goto no_stack;
	m0.g0.is_g0 = true;
	m0.g0.stack = *g0s;   /* tls_new_g0 reads its bounds */
	if (rt_cfg.tls_mode == TLS_PER_G && !tls_new_g0(&m0.g0))
		goto no_tcb;
	*mg = g_alloc_main();
	if (*mg)
		return true;
	if (m0.g0.tcb)
		tls_free_g0(&m0.g0);
no_tcb:
	memset(&m0.g0.stack, 0, sizeof m0.g0.stack);
	stack_free(g0s);
no_stack:
	munmap(sched.allp, sizeof(p_t) * (size_t)n);
	sched.allp = NULL;
	return false;
}

static _Atomic bool init_failed;

bool sched_disabled(void)
{
	return atomic_load_explicit(&init_failed, memory_order_acquire);
}

bool sched_init(void)
{
	int n, i;
	g_t *mg;
	gstack_t g0s;

	if (sched_ready())
		return true;
	lock_acquire(&init_lock);
	if (sched_ready() || sched_disabled()) {
		lock_release(&init_lock);
		return sched_ready();
	}
	real_init();
	stack_sys_init();
	prctl(PR_GET_NAME, sched.comm, 0, 0, 0);
	if (rt_cfg.tls_mode == TLS_PER_G && !tls_init())
		rt_cfg.tls_mode = TLS_SHARED;
	n = rt_cfg.gomaxprocs > 0 ? rt_cfg.gomaxprocs : os_ncpu();
	/* mmap, not malloc: the program's malloc may be a replacement that
	 * takes pthread locks (jemalloc, tcmalloc), which would re-enter the
	 * shim half-way through its own initialisation.  Zeroed pages. */
	if (!init_alloc(n, &g0s, &mg)) {
		atomic_store_explicit(&init_failed, true, memory_order_release);
		lock_release(&init_lock);
		return false;
	}
	sched.nprocs = n;
	for (i = n - 1; i >= 0; i--) {
		sched.allp[i].id = (uint32_t)i;
		sched.allp[i].status = P_IDLE;
		theap_init(&sched.allp[i].timers);
		lock_acquire(&sched.lock);
		pidle_put(&sched.allp[i]);
		lock_release(&sched.lock);
	}

	/* M0 is the calling thread.  Its g0 needs a stack of its own. */
	m_register(&m0);
	m0.tid = os_gettid();
	rt_robust_register();
	m0.g0.is_g0 = true;
	m0.g0.m = &m0;
	m0.g0.rtdepth = 1;
	atomic_store_explicit(&m0.g0.status, G_RUNNING, memory_order_relaxed);
	m0.g0.stack = g0s;
	arch_ctx_make(&m0.g0.ctx, g0s.hi, g0_start, &m0);
	/* The main thread's TCB stays with the main G; M0's g0 has one of
	 * its own (per-g, init_alloc), so an idle M0 never writes into the
	 * main G's TLS. */
	m0.cur_tp = m0.os_tcb = arch_tp();

	/* The calling context becomes the main G. */
	if (g_fake_tid(mg) != g_main_fake_tid())
		rt_fatal("the main G is not the first G");
	mg->tcb = m0.cur_tp;
	mg->tls_nmods = -1;   /* glibc set up the main thread's TLS itself */
	arch_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&m0.cur_mask, 8, 0, 0);
	mg->sigmask = m0.cur_mask;
	sig_note_mask(mg->sigmask);
	mg->m = &m0;
	m0.curg = mg;
	atomic_store_explicit(&mg->status, G_RUNNING, memory_order_relaxed);
	atomic_store_explicit(&sched.ngs, 1, memory_order_relaxed);
	lock_acquire(&sched.lock);
	acquirep(&m0, pidle_get());
	lock_release(&sched.lock);
	setg(mg);

	install_overflow_handler();
	m_install_altstack(&m0);
	sched.inited = true;
	atomic_store_explicit(&init_done, 1, memory_order_release);
	lock_release(&init_lock);
	trace_start();
	return true;
}

/* Per-g TLS and glibc's own view of threads.  glibc knows the kernel
 * threads it created (the M's, the runtime's helpers) and the main
 * thread, each by its TCB; a G's TCB is in none of its lists.  Code that
 * walks those lists and skips "self" (the TCB the thread pointer names)
 * must run with this M's own TCB loaded:
 *   fork  - the child reclaims the stacks of every listed thread but
 *           self: with a G's TCB loaded, the M's own stack (the g0 stack
 *           this M keeps running on in the child) would be cached as free
 *           and handed to the child's next M: two threads on one stack.
 *   setxid - setuid & co. signal every listed thread but self and wait
 *           for each to change its credentials (core/signal.c).
 * M0's g0 TCB is one of ours; M0's glibc TCB is the main thread's, which
 * belongs to the main G: if the main G runs here it is loaded already, and
 * another G on M0 keeps its own (fork: the main thread's stack is never
 * reclaimed; setxid: glibc signals M0 as the main thread, its own kernel
 * thread, and the relay handles that).  Contract: a G, which does not
 * park until sched_own_tcb_leave. */
void *sched_own_tcb_enter(void)
{
	g_t *g = getcurg();
	m_t *m = g ? g->m : NULL;
	void *tp;

	if (rt_cfg.tls_mode != TLS_PER_G || !m || m == &m0 || m->cur_tp == m->g0.tcb)
		return NULL;
	tp = m->cur_tp;
	arch_set_tp(m->g0.tcb);
	m->cur_tp = m->g0.tcb;
	return tp;
}

void sched_own_tcb_leave(void *tp)
{
	m_t *m = getm();

	if (m && tp) {
		arch_set_tp(tp);
		m->cur_tp = tp;
	}
}

void sched_fork_prepare(void)
{
	m_t *m = getm();
	void *tp = sched_own_tcb_enter();

	if (tp)
		m->fork_tp = tp;
	rtfd_fork_prepare();
}

static void fork_restore_tp(void)
{
	m_t *m = getm();

	if (m && m->fork_tp) {
		sched_own_tcb_leave(m->fork_tp);
		m->fork_tp = NULL;
	}
}

void sched_fork_parent(void)
{
	rtfd_fork_parent();
	fork_restore_tp();
}

void sched_fork_child(void)
{
	g_t *self;
	m_t *m;
	int i;

	fork_restore_tp();
	self = getg();
	m = getm();
	rtfd_fork_child();

	if (!sched_ready() || !m)
		return;   /* forked from a thread that is not an M: nothing runs */
	lock_init(&sched.lock, RANK_SCHED);
	lock_init(&init_lock, RANK_LEAF);
	stack_fork_child();
	g_fork_child();
	gfutex_fork_child();
	timer_fork_child();
	netpoll_fork_child();

	m->tid = os_gettid();
	/* The parent's G's hold the mutexes on the list, not this process. */
	rt_robust.list = &rt_robust.list;
	rt_robust.pending = NULL;
	rt_robust_register();
	m->alllink = NULL;
	m->schedlink = NULL;
	m->spinning = false;
	m->nextp = NULL;
	note_clear(&m->park);
	atomic_store(&sched.allm, m);
	atomic_store(&sched.mcount, 1);
	/* The spare M is on the parent's allm only; the child has made no
	 * attempt to create an M yet. */
	atomic_store(&mspare, NULL);
	atomic_store(&mshort_until, 0);
	atomic_store(&mretry_at, 0);
	atomic_store(&mretry_ns, MRETRY_MIN_NS);
	sched.midle = NULL;
	sched.nmidle = 0;
	sched.pwait = NULL;
	atomic_store(&sched.nmspinning, 0);

	/* Every P but ours is idle and empty: the G's queued there belonged
	 * to other threads. */
	sched.pidle = NULL;
	atomic_store(&sched.npidle, 0);
	for (i = sched.nprocs - 1; i >= 0; i--) {
		p_t *p = &sched.allp[i];

		if (p == m->p)
			continue;
		atomic_store(&p->runqhead, 0);
		atomic_store(&p->runqtail, 0);
		atomic_store(&p->runnext, NULL);
		p->m = NULL;
		atomic_store(&p->status, P_IDLE);
		pidle_put(p);
	}
	if (m->p) {
		atomic_store(&m->p->runqhead, 0);
		atomic_store(&m->p->runqtail, 0);
		atomic_store(&m->p->runnext, NULL);
	}
	sched.runqhead = sched.runqtail = NULL;
	sched.urgtail = NULL;
	atomic_store(&sched.nurgent, 0);
	atomic_store(&sched.runqsize, 0);
	atomic_store(&sched.ngs, self && !self->is_g0 ? 1 : 0);
	sig_fork_child(self);
	trace_start();
	sysmon_fork_child();
}

/* For schedtrace and tests. */
void sched_snapshot(int *idleprocs, int *threads, int *spinning, int *idlem,
                    int *globq)
{
	*idleprocs = atomic_load(&sched.npidle);
	*threads = atomic_load(&sched.mcount);
	*spinning = atomic_load(&sched.nmspinning);
	lock_acquire(&sched.lock);
	*idlem = sched.nmidle;
	lock_release(&sched.lock);
	*globq = atomic_load(&sched.runqsize);
}
