/* core/m.c - M's: starting them, parking idle ones, and the runtime's
 * start-up (Go's newm/mstart, stopm, schedinit).
 *
 * Purpose.  An M is a kernel thread that runs G's while it holds a P.  M's
 * are created on demand (newm, from startm in core/sched.c) when a P has
 * work and no idle M can take it, and never destroyed: an M with nothing
 * to do parks on its note on the idle list (stopm) until startm hands it
 * a P (m->nextp) and wakes it.  sched_init makes the calling thread M0,
 * the calling context the main G, and creates the P's.
 *
 * Invariants.  An M on sched.midle holds no P and is not spinning; startm
 * takes it off under sched.lock and only then sets nextp, so a woken M
 * always finds its P.  M structures are mmap'ed, never malloc'ed (newm
 * runs on sysmon and the poller's threads, and the program's malloc may
 * not be thread-safe or may take pthread locks) and stay on sched.allm
 * for good: sysmon and the signal code walk allm without locks.
 *
 * Protocol with the poller.  One idle M at a time may sleep in the poller
 * instead of on its note (stopm_netpoll, "the blocker": core/netpoll.c's
 * essay).  It takes that role before it shows itself on the idle list, so
 * startm, choosing it, knows to break its wait (in_netpoll).
 *
 * Failure to create a kernel thread is not fatal: see "Running out of
 * M's" in core/syscall.c for the backoff recorded here (mshort_until,
 * mretry_at) and sysmon's answer to it.
 *
 * Rejected: a pool of pre-started M's (a program that never blocks in a
 * call needs GOMAXPROCS of them, and an M costs a kernel thread with its
 * stack); freeing idle M's (Go does not either: an exiting M must still
 * be reachable by everything that walks allm).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "internal.h"
#include "arch/real.h"
#include "sched_int.h"

m_t m0;
lock_t init_lock = LOCK_INIT(RANK_LEAF);
static _Atomic int init_done;

bool sched_ready(void)
{
	return atomic_load_explicit(&init_done, memory_order_acquire) != 0;
}

/* ---- M creation, parking ---------------------------------------------- */

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

/* Running out of M's: see "Running out of M's" in core/syscall.c.  The
 * MRETRY_* bounds are in sched_int.h (fork resets the backoff). */
_Atomic int64_t mshort_until;   /* 0: no M creation failed lately */
_Atomic int64_t mretry_at;      /* newm tries no clone before this */
_Atomic int64_t mretry_ns = MRETRY_MIN_NS;
m_t *_Atomic mspare;            /* registered, never started */

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
bool newm(p_t *p, bool spinning, bool force)
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
void stopm(m_t *m)
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
	if (rt_tls_per_g() && !tls_new_g0(&m0.g0))
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
	if (rt_tls_per_g() && !tls_init())
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
