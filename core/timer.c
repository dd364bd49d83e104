/* core/timer.c - runtime timers (deadlines of timed waits).
 *
 * One binary heap ordered by `when` (CLOCK_MONOTONIC ns) under one lock,
 * served by a dedicated timer thread that sleeps on a futex until the
 * earliest deadline or until a new earliest timer arrives.  Callbacks run
 * on that thread with no lock held; they typically ready a G, which from a
 * thread without a P goes to the global run queue and wakes a P.
 *
 * timer_del must not return while the timer's callback runs: the timer
 * and its argument usually live on the stack of the G that cancels it.
 * The thread records the running timer and bumps `done` after each
 * callback; timer_del waits on that.
 *
 * This is the simple first shape.  Go keeps a heap per P and lets the
 * scheduler run expired timers itself (no thread switch on expiry); that
 * is the plan once sleeps and the poller arrive (syscall_wrap), when the
 * timer thread becomes sysmon's job.  Rejected for now: POSIX timer_create
 * (signals interrupt the program's syscalls: EINTR it never asked for).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include "rt.h"

static struct {
	lock_t lock;
	rtimer_t **heap;         /* lock */
	int n, cap;              /* lock */
	rtimer_t *running;       /* lock; callback in progress */
	_Atomic uint32_t seq;    /* bumped when the earliest deadline moves */
	_Atomic uint32_t done;   /* bumped after each callback */
	_Atomic int started;
	int64_t sleep_until;     /* lock; what the thread sleeps for */
} tm = { .lock = LOCK_INIT(RANK_TIMER) };

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

static void *timer_thread(void *arg)
{
	(void)arg;
	os_block_all_signals();
	prctl(PR_SET_NAME, "gshim-timer", 0, 0, 0);   /* visible in ps -L, top -H */
	for (;;) {
		int64_t now = os_nanotime(), wait;
		uint32_t seq;

		lock_acquire(&tm.lock);
		while (tm.n > 0 && tm.heap[0]->when <= now) {
			rtimer_t *t = tm.heap[0];
			heap_remove(t);
			tm.running = t;
			lock_release(&tm.lock);
			t->fn(t);
			lock_acquire(&tm.lock);
			tm.running = NULL;
			atomic_fetch_add_explicit(&tm.done, 1, memory_order_release);
			os_futex_wake((uint32_t *)&tm.done, 64);
			now = os_nanotime();
		}
		wait = tm.n > 0 ? tm.heap[0]->when - now : -1;
		seq = atomic_load_explicit(&tm.seq, memory_order_acquire);
		lock_release(&tm.lock);
		os_futex_wait((uint32_t *)&tm.seq, seq, wait);
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
	if (t->idx == 0) {
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
			lock_release(&tm.lock);
			return true;
		}
		if (tm.running != t) {
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
	n = tm.n + (tm.running != NULL);
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
	tm.running = NULL;
	atomic_store(&tm.started, 0);
}
