/* core/sysmon.c - the system monitor (Go's sysmon).
 *
 * A thread of its own, with no P, that never runs G's.  It wakes every
 * 20 us while there is something to watch, backing off to 10 ms when
 * several rounds in a row found nothing (Go's numbers: short enough that
 * a P stuck in a system call is handed off within a tick or two, long
 * enough that an idle process costs nothing measurable).
 *
 * retake: a P that has been in P_SYSCALL for a whole tick (its
 * syscalltick did not move) is handed to another M when work is waiting
 * for it (its run queue or the global one is not empty, or no M is
 * spinning and no P is idle, so nobody would pick new work up), or when
 * the call has lasted 10 ms: the M in the kernel keeps only its G.
 *
 * retake also covers calls gshim does not wrap (glibc's internal __read,
 * a stdio or dl lock held by a parked G, getaddrinfo ...): a P in
 * P_RUNNING whose schedtick has not moved for 10 ms, with work waiting,
 * whose M is asleep in the kernel (state S or D in
 * /proc/self/task/<tid>/stat) while running user code of its G (rtdepth
 * 0), is taken from it (p_retake_running: a Dekker pair with rt_check_p,
 * so an M that is entering the runtime keeps it).  Without this a
 * GOMAXPROCS=1 program would deadlock as soon as one thread waits in the
 * kernel for another.
 *
 * The same test finds G's that compute for 10 ms while others wait: the
 * M is running (state R), and it is asked to yield (core/preempt.c).
 *
 * Slices: a G that computes keeps its P for 10 ms while one other G waits
 * (Go), for 10 ms / (waiting + 1), at least 2 ms, while more wait; rounds
 * are then at most 1 ms apart.
 *
 * I/O events: when no idle M sleeps in the poller (every M is busy), the
 * M's reap events only when they run out of work; sysmon reaps on each
 * round (a look at shared memory with io_uring) and, while G's wait for
 * I/O with no M sleeping in the poller, rounds are at most NETPOLL_NS
 * apart (Go's sysmon polls once 10 ms
 * have passed; its G's then wait for the next 10 ms slice besides).
 * Each round also submits the POLL_ADDs that waits left queued in the
 * ring: before each sleep sysmon says whether it ends within NETPOLL_NS
 * (netpoll_sysmon_soon: false, then a look at the queue, which caps the
 * round, then the answer), and a wait defers only while it does - the
 * proof is in core/netpoll_wait.c.
 *
 * Running out of M's: while runnable G's wait beside an idle P and no M
 * can be created, every round (STARVE_NS apart) retries the clone when
 * its backoff allows, else evicts an M from a call that has a
 * non-blocking twin, and reports once if neither is possible
 * (sched_mstarve; the protocol is in core/syscall.c).
 *
 * Timers: when the timer thread could not be started (core/timer.c),
 * sysmon runs expired timers on each round and sleeps no longer than the
 * earliest deadline; timer_add kicks it for an earlier one.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/prctl.h>
#include "internal.h"

#define SYSMON_MIN_NS   20000          /* 20 us */
#define SYSMON_MAX_NS   10000000       /* 10 ms */
#define FORCE_RETAKE_NS 10000000       /* a call this long always loses its P */
#define BLOCKED_NS      10000000       /* unwrapped block: Go's forcePreemptNS */
#define RETRY_NS        1000000        /* preemption refused: ask again */
#define STARVE_NS       1000000        /* round while G's starve for an M */
#define URGENT_NS       1000000        /* slice when a woken sleeper waits */
#define NETPOLL_NS      1000000        /* round while G's wait for I/O */
#define SLICE_MIN_NS    2000000        /* shortest slice with a queue */
#define QUEUED_NS       1000000        /* round while G's queue behind one */

/* The time slice of a G that computes while others wait: Go's 10 ms, cut
 * to 10 ms / (waiting + 1) but not below SLICE_MIN_NS when several wait -
 * CFS's idea of a target latency: with four CPU-bound threads queued, the
 * fifth (just woken, or just created) would otherwise wait 40 ms for its
 * turn. */
/* G's queued for p: its ring and the global queue (racy). */
static int64_t queued(p_t *p)
{
	return runq_len(p) + atomic_load_explicit(&sched.runqsize, memory_order_relaxed);
}

static int64_t slice_ns(p_t *p)
{
	int64_t n = queued(p);
	int64_t s = n > 0 ? BLOCKED_NS / (n + 1) : BLOCKED_NS;

	return s < SLICE_MIN_NS ? SLICE_MIN_NS : s;
}

/* A P whose G has not left it for its slice while work waits: its M is
 * blocked in a call gshim does not wrap (take the P, after BLOCKED_NS),
 * or the G computes (preempt it, core/preempt.c). */
static bool retake_blocked(p_t *p, int64_t now)
{
	uint32_t tick = __atomic_load_n(&p->schedtick, __ATOMIC_RELAXED);
	bool urgent = atomic_load_explicit(&sched.nurgent, memory_order_relaxed) > 0;
	int64_t ran, slice;
	m_t *m;
	g_t *g;
	char state;

	if (tick != p->sm_schedtick) {
		p->sm_schedtick = tick;
		p->sm_run_when = now;
		return false;
	}
	ran = now - p->sm_run_when;
	slice = urgent ? URGENT_NS : slice_ns(p);
	if (ran < slice || !sched_work_waiting(p))
		return false;
	m = __atomic_load_n(&p->m, __ATOMIC_ACQUIRE);
	g = m ? __atomic_load_n(&m->curg, __ATOMIC_ACQUIRE) : NULL;
	if (!g)
		return false;
	state = rtfd_thread_state(m->tid);
	if (state == 'R') {
		/* Ask again in RETRY_NS if it was not at a safe point. */
		if (preempt_request(p, m, g, tick))
			p->sm_run_when = now - slice + RETRY_NS;
		return false;
	}
	if ((state != 'S' && state != 'D') || ran < BLOCKED_NS ||
	    __atomic_load_n(&g->rtdepth, __ATOMIC_RELAXED) != 0)
		return false;
	if (!p_retake_running(p, m, g, tick))
		return false;
	p->sm_run_when = now;
	return true;
}

static bool retake(int64_t now)
{
	bool took = false;
	int i;

	/* One G: nothing could run on a P taken from it.  Taking it would
	 * only make this thread create an M - with pthread_create, which
	 * calls the program's malloc, and a single-threaded program's malloc
	 * need not be thread-safe (bash's is not). */
	if (atomic_load_explicit(&sched.ngs, memory_order_relaxed) <= 1)
		return false;

	for (i = 0; i < sched.nprocs; i++) {
		p_t *p = &sched.allp[i];
		uint32_t st = atomic_load_explicit(&p->status, memory_order_acquire);
		uint32_t tick;

		if (st == P_RUNNING) {
			if (retake_blocked(p, now))
				took = true;
			continue;
		}
		if (st != P_SYSCALL)
			continue;
		tick = __atomic_load_n(&p->syscalltick, __ATOMIC_RELAXED);
		if (tick != p->sm_syscalltick) {
			p->sm_syscalltick = tick;
			p->sm_when = now;
			continue;
		}
		if (runq_empty(p) &&
		    atomic_load_explicit(&sched.runqsize, memory_order_relaxed) == 0 &&
		    atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) > 0 &&
		    now - p->sm_when < FORCE_RETAKE_NS)
			continue;
		if (p_retake_syscall(p))
			took = true;
	}
	return took;
}

static _Atomic uint32_t kick;

/* A G readied from outside the scheduler waits while every P is busy:
 * look now, and preempt a G that has had URGENT_NS (CFS's wake-up
 * preemption; Go waits for the 10 ms slice to end). */
void sysmon_kick(void)
{
	atomic_fetch_add_explicit(&kick, 1, memory_order_release);
	os_futex_wake((uint32_t *)&kick, 1);
}

/* How long the next round may wait: delay, but at most NETPOLL_NS while
 * G's wait for I/O that no M watches, and QUEUED_NS while G's queue
 * behind a running one (their slices are shorter than 10 ms). */
static int64_t round_ns(int64_t delay)
{
	if (delay > NETPOLL_NS && (netpoll_unwatched() || preempt_async_pending() ||
	                           netpoll_sq_pending()))
		delay = NETPOLL_NS;
	if (delay > QUEUED_NS)
		for (int i = 0; i < sched.nprocs; i++) {
			p_t *p = &sched.allp[i];

			if (atomic_load_explicit(&p->status, memory_order_relaxed) == P_RUNNING &&
			    queued(p) > 1)
				return QUEUED_NS;
		}
	return delay;
}

/* While the timer thread is not running (core/timer.c), sysmon runs the
 * expired timers: wake no later than the earliest deadline. */
static int64_t timers_ns(int64_t wait)
{
	int64_t next = timer_next_unserved(), left;

	if (__builtin_expect(next == INT64_MAX, 1))
		return wait;
	left = next - os_nanotime();
	return left < 0 ? 0 : left < wait ? left : wait;
}

static void *sysmon(void *arg)
{
	int64_t delay = SYSMON_MIN_NS;
	int idle = 0;

	(void)arg;
	os_block_all_signals();
	prctl(PR_SET_NAME, "gshim-sysmon", 0, 0, 0);   /* visible in ps -L, top -H */
	for (;;) {
		uint32_t k = atomic_load_explicit(&kick, memory_order_acquire);
		int64_t wait;

		/* Urgent G's wait: look often enough to give one the CPU about
		 * URGENT_NS after it was readied (sysmon_kick wakes us for the
		 * first one), not every 20 us. */
		if (atomic_load_explicit(&sched.nurgent, memory_order_relaxed) > 0 &&
		    delay > URGENT_NS / 10) {
			delay = URGENT_NS / 10;
			idle = 0;
		}
		/* Deferred POLL_ADDs (core/netpoll_wait.c): queued while
		 * sysmon_soon says this sleep ends within NETPOLL_NS, else
		 * submitted at once; round_ns looks at them after the false. */
		netpoll_sysmon_soon(false);
		wait = timers_ns(round_ns(delay));
		netpoll_sysmon_soon(wait <= NETPOLL_NS);
		os_futex_wait((uint32_t *)&kick, k, wait);
		if (__builtin_expect(timer_unserved(), 0))
			timer_run_expired();
		netpoll_poll(true);
		preempt_async_kicks();
		if (retake(os_nanotime())) {
			idle = 0;
			delay = SYSMON_MIN_NS;
			continue;
		}
		/* Runnable G's and no M to be had: retry, evict, report
		 * (core/syscall.c, "Running out of M's"), every STARVE_NS. */
		if (sched_mstarve(os_nanotime())) {
			idle = 0;
			delay = STARVE_NS;
			continue;
		}
		if (++idle > 50 && delay < SYSMON_MAX_NS)
			delay *= 2;
		if (delay > SYSMON_MAX_NS)
			delay = SYSMON_MAX_NS;
		/* Anything in a syscall keeps us looking closely. */
		for (int i = 0; i < sched.nprocs; i++)
			if (atomic_load_explicit(&sched.allp[i].status, memory_order_relaxed) == P_SYSCALL) {
				delay = SYSMON_MIN_NS;
				idle = 0;
				break;
			}
	}
	return NULL;
}

static _Atomic int started;            /* 0 no, 1 running, 2 start failed */
static _Atomic int64_t retry_at;       /* started == 2: next attempt */

/* Started by the first thread creation or blocking call, not at
 * start-up: a single-threaded program (ls, true) never pays for it.  A
 * start that fails (out of memory or threads) is retried at most once a
 * second, from the next call that wants it. */
void sysmon_start(void)
{
	static _Atomic int warned;
	int st = atomic_load_explicit(&started, memory_order_relaxed);

	if (__builtin_expect(st == 1, 1))
		return;
	if (st == 2 && os_nanotime() < atomic_load_explicit(&retry_at, memory_order_relaxed))
		return;
	if (!atomic_compare_exchange_strong(&started, &st, 1))
		return;
	if (rt_thread_start(sysmon, NULL, 64 * 1024) == 0)
		return;
	atomic_store_explicit(&retry_at, os_nanotime() + 1000000000, memory_order_relaxed);
	atomic_store_explicit(&started, 2, memory_order_release);
	if (!atomic_exchange(&warned, 1))
		rt_warn("cannot start sysmon (out of memory or threads): blocking calls "
		        "may hold their P until it can be started");
}

void sysmon_fork_child(void)
{
	atomic_store(&started, 0);   /* the thread did not survive fork */
}
