/* core/timer.c - runtime timers (deadlines of timed waits and sleeps).
 *
 * One binary heap ordered by `when` (CLOCK_MONOTONIC ns) under one lock.
 * Expired timers are run by whoever gets there first (Go 1.14's rule that
 * timers are run by the scheduler, not by a thread of their own):
 *   - a G that yields or is preempted (g_yield -> timer_run_expired), so a
 *     sleeper whose deadline passed while CPU-bound G's hold every P is
 *     readied onto the yielding P's runnext and runs next, not 61 ticks
 *     later from the global queue;
 *   - find_runnable, before an M gives up its P;
 *   - the timer thread, which sleeps on a futex until the earliest
 *     deadline (or until an earlier timer arrives) and covers the case
 *     where every M is idle or in user code that never enters the runtime.
 * Callbacks run with no timer lock held; they ready a G (onto the running
 * P's runnext when run by a G or g0 with a P, else the global queue).
 *
 * timer_del must not return while the timer's callback runs: the timer
 * and its argument usually live on the stack of the G that cancels it.
 * Each timer is marked `running` while its callback runs, and `done` is
 * bumped after every callback; timer_del waits on that.
 *
 * Where runners may not run callbacks: inside switch_out (the G being
 * left may hold the gfutex bucket lock its own timeout callback needs,
 * until switch_finish commits the park); hence g_yield runs them before
 * it switches, never during.
 *
 * Rejected: a heap per P (Go's layout).  It removes the lock from timer
 * add/del, but our sleeps and timed waits are parked on gfutex words
 * that any M may wake, and a per-P heap needs timer migration when a P
 * is idle or retaken; the single heap measured 2.0 s for 100,000 x 5
 * sleeps of 10 ms, which is dominated by the sleeps.  POSIX timer_create
 * (signals interrupt the program's calls: EINTR it never asked for).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include "rt.h"

static struct {
	lock_t lock;
	rtimer_t **heap;         /* lock */
	int n, cap;              /* lock */
	_Atomic int64_t next;    /* earliest when, INT64_MAX when empty */
	int nrunning;            /* lock; callbacks in progress */
	_Atomic uint32_t seq;    /* bumped when the earliest deadline moves */
	_Atomic uint32_t done;   /* bumped after each callback */
	_Atomic int started;
	int64_t sleep_until;     /* lock; what the thread sleeps for */
} tm = { .lock = LOCK_INIT(RANK_TIMER), .next = INT64_MAX };

/* lock held */
static void next_update(void)
{
	atomic_store_explicit(&tm.next, tm.n > 0 ? tm.heap[0]->when : INT64_MAX,
	                      memory_order_release);
}

static void swap(int i, int j)
{
	rtimer_t *t = tm.heap[i];

	tm.heap[i] = tm.heap[j];
	tm.heap[j] = t;
	tm.heap[i]->idx = i;
	tm.heap[j]->idx = j;
}

static void sift_up(int i)
{
	while (i > 0) {
		int parent = (i - 1) / 2;
		if (tm.heap[parent]->when <= tm.heap[i]->when)
			break;
		swap(i, parent);
		i = parent;
	}
}

static void sift_down(int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < tm.n && tm.heap[l]->when < tm.heap[m]->when)
			m = l;
		if (r < tm.n && tm.heap[r]->when < tm.heap[m]->when)
			m = r;
		if (m == i)
			break;
		swap(i, m);
		i = m;
	}
}

/* lock held */
static void heap_remove(rtimer_t *t)
{
	int i = t->idx, last = tm.n - 1;

	if (i != last) {
		swap(i, last);
		tm.n--;
		sift_down(i);
		sift_up(i);
	} else {
		tm.n--;
	}
	t->idx = -1;
}

/* Run every expired timer; lock not held on entry or exit. */
static int run_expired(int64_t now)
{
	int ran = 0;

	lock_acquire(&tm.lock);
	while (tm.n > 0 && tm.heap[0]->when <= now) {
		rtimer_t *t = tm.heap[0];

		heap_remove(t);
		next_update();
		t->running = true;
		tm.nrunning++;
		lock_release(&tm.lock);
		t->fn(t);
		lock_acquire(&tm.lock);
		t->running = false;
		tm.nrunning--;
		atomic_fetch_add_explicit(&tm.done, 1, memory_order_release);
		os_futex_wake((uint32_t *)&tm.done, INT32_MAX);
		ran++;
		if ((ran & 15) == 0)
			now = os_nanotime();
	}
	lock_release(&tm.lock);
	return ran;
}

bool timer_due(void)
{
	int64_t next = atomic_load_explicit(&tm.next, memory_order_relaxed);

	return __builtin_expect(next != INT64_MAX, 0) && next <= os_nanotime();
}

int timer_run_expired(void)
{
	int64_t next = atomic_load_explicit(&tm.next, memory_order_acquire), now;

	if (__builtin_expect(next == INT64_MAX, 1))
		return 0;
	now = os_nanotime();
	return next > now ? 0 : run_expired(now);
}

static void *timer_thread(void *arg)
{
	(void)arg;
	os_block_all_signals();
	prctl(PR_SET_NAME, "gshim-timer", 0, 0, 0);   /* visible in ps -L, top -H */
	for (;;) {
		int64_t now, wait;
		uint32_t seq;

		run_expired(os_nanotime());
		lock_acquire(&tm.lock);
		now = os_nanotime();
		wait = tm.n > 0 ? tm.heap[0]->when - now : -1;
		if (tm.n > 0 && wait <= 0)
			wait = 0;   /* expired meanwhile */
		seq = atomic_load_explicit(&tm.seq, memory_order_acquire);
		lock_release(&tm.lock);
		if (wait != 0)
			os_futex_wait((uint32_t *)&tm.seq, seq, wait);   /* -1: none queued */
	}
	return NULL;
}

static void timer_start_thread(void)
{
	int zero = 0;

	if (atomic_load_explicit(&tm.started, memory_order_acquire) ||
	    !atomic_compare_exchange_strong(&tm.started, &zero, 1))
		return;
	if (os_thread_start(timer_thread, NULL, 128 * 1024) != 0)
		rt_fatal("cannot start the timer thread");
}

void timer_add(rtimer_t *t)
{
	timer_start_thread();
	lock_acquire(&tm.lock);
	if (tm.n == tm.cap) {
		int cap = tm.cap ? tm.cap * 2 : 64;
		rtimer_t **h = realloc(tm.heap, sizeof *h * (size_t)cap);
		if (!h)
			rt_fatal("out of memory for timers");
		tm.heap = h;
		tm.cap = cap;
	}
	t->idx = tm.n;
	tm.heap[tm.n++] = t;
	sift_up(t->idx);
	t->running = false;
	if (t->idx == 0) {
		next_update();
		atomic_fetch_add_explicit(&tm.seq, 1, memory_order_release);
		os_futex_wake((uint32_t *)&tm.seq, 1);
	}
	lock_release(&tm.lock);
}

bool timer_del(rtimer_t *t)
{
	for (;;) {
		uint32_t done;

		lock_acquire(&tm.lock);
		if (t->idx >= 0) {
			heap_remove(t);
			next_update();
			lock_release(&tm.lock);
			return true;
		}
		if (!t->running) {
			lock_release(&tm.lock);
			return false;
		}
		done = atomic_load_explicit(&tm.done, memory_order_acquire);
		lock_release(&tm.lock);
		os_futex_wait((uint32_t *)&tm.done, done, -1);
	}
}

int timer_count(void)
{
	int n;

	lock_acquire(&tm.lock);
	n = tm.n + tm.nrunning;
	lock_release(&tm.lock);
	return n;
}

void timer_fork_child(void)
{
	/* The timer thread did not survive; timers of other threads' waits
	 * die with those threads.  The caller of fork is running, so it has
	 * none pending. */
	lock_init(&tm.lock, RANK_TIMER);
	tm.n = 0;
	tm.nrunning = 0;
	atomic_store(&tm.next, INT64_MAX);
	atomic_store(&tm.started, 0);
}
