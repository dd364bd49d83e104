/* core/timer.c - runtime timers (deadlines of timed waits and sleeps).
 *
 * Layout (Go 1.14): a binary heap ordered by `when` (CLOCK_MONOTONIC ns)
 * per P, each under its own lock, plus one heap for timers added where no
 * P is held (a thread that is not a G).  A timer goes on the heap of the
 * P its G runs on, so G's on different P's add and cancel their sleeps
 * and timeouts without sharing a lock or a cache line.  Each heap
 * publishes its earliest deadline (`next`, atomic) so that "is anything
 * due?" is a few loads without locks.
 *
 * Expired timers are run by whoever gets there first (Go's rule that
 * timers are run by the scheduler, not by a thread of their own), on any
 * heap - its own P's first:
 *   - a G that yields or is preempted (g_yield -> timer_run_expired), so a
 *     sleeper whose deadline passed while CPU-bound G's hold every P is
 *     readied onto the yielding P's runnext and runs next;
 *   - find_runnable, before an M gives up its P (Go's checkTimers, own P
 *     and, as its stealing does, the others');
 *   - the timer thread, which sleeps on a futex until the earliest
 *     deadline of all heaps (or until an earlier timer arrives) and covers
 *     the case where every M is idle or in user code that never enters
 *     the runtime - the job Go gives to sysmon and to the M blocked in
 *     netpoll with a timeout.
 *
 * Without the timer thread.  Memory or threads may run out (RLIMIT_AS,
 * RLIMIT_NPROC) before the first timer is added, and the thread is then
 * only a convenience: while it is not running (timer_unserved) its job
 * falls to Go's choice of threads - sysmon runs expired timers every
 * round and sleeps no longer than the earliest deadline (timer_add kicks
 * it when an earlier one arrives), and an idle M in stopm sleeps on its
 * note only until that deadline, then runs them (core/m.c).  A new
 * earliest timer also wakes an idle P (sched_wake_idle), so an M that
 * went idle before it arrived is not the only one watching.  The start
 * is retried at most once a second.
 *
 * Heap storage is the runtime's own pages (os_grow), not malloc: a
 * program's malloc need not be thread-safe, and glibc's would make the
 * first timer of each thread a 64 MiB arena.  When a heap cannot grow,
 * timer_add says so and the caller waits in the kernel instead
 * (core/gfutex.c): never a lost deadline, never an abort.
 * Callbacks run with no timer lock held; they ready a G (onto the running
 * P's runnext when run by a G or g0 with a P, else the global queue).
 *
 * Invariants.  A queued timer is on exactly one heap, t->h, which does
 * not change until it leaves it (timers never migrate: P's are never
 * destroyed, and an idle P's timers are run by the others and by the
 * timer thread).  t->idx and t->running are guarded by t->h's lock.
 * timer_del must not return while the timer's callback runs: the timer
 * and its argument usually live on the stack of the G that cancels it.
 * Each timer is marked `running` while its callback runs, and tm.done is
 * bumped after every callback; timer_del waits on that.
 *
 * Where runners may not run callbacks: inside switch_out (the G being
 * left may hold the gfutex bucket lock its own timeout callback needs,
 * until switch_finish commits the park); hence g_yield runs them before
 * it switches, never during.
 *
 * Rejected: one heap for all (built first: every sleep and timed wait of
 * every P took the same lock); POSIX timer_create (signals interrupt the
 * program's calls: EINTR it never asked for).
 */
#include <errno.h>
#include <sys/prctl.h>
#include "internal.h"

/* tm.started */
enum { TM_NONE, TM_STARTING, TM_RUNNING, TM_FAILED };

static struct {
	theap_t nop;             /* timers added without a P */
	_Atomic uint32_t seq;    /* bumped when an earlier deadline arrives */
	_Atomic uint32_t done;   /* bumped after each callback */
	_Atomic int started;     /* TM_*: the timer thread */
	_Atomic bool down;       /* its start failed; it is not running */
	_Atomic int64_t retry_at;     /* TM_FAILED: next start attempt */
	_Atomic int64_t sleep_until;  /* the timer thread's target */
} tm = {
	.nop = { .lock = LOCK_INIT(RANK_TIMER), .next = INT64_MAX },
	.sleep_until = INT64_MAX,
};

static inline int nheaps(void)
{
	return sched.nprocs + 1;
}

static inline theap_t *heap_at(int i)
{
	return i < sched.nprocs ? &sched.allp[i].timers : &tm.nop;
}

void theap_init(theap_t *h)
{
	lock_init(&h->lock, RANK_TIMER);
	h->v = NULL;
	h->n = h->cap = h->nrunning = 0;
	atomic_store_explicit(&h->next, INT64_MAX, memory_order_relaxed);
}

/* lock held */
static void next_update(theap_t *h)
{
	atomic_store_explicit(&h->next, h->n > 0 ? h->v[0]->when : INT64_MAX,
	                      memory_order_release);
}

static void swap(theap_t *h, int i, int j)
{
	rtimer_t *t = h->v[i];

	h->v[i] = h->v[j];
	h->v[j] = t;
	h->v[i]->idx = i;
	h->v[j]->idx = j;
}

static void sift_up(theap_t *h, int i)
{
	while (i > 0) {
		int parent = (i - 1) / 2;
		if (h->v[parent]->when <= h->v[i]->when)
			break;
		swap(h, i, parent);
		i = parent;
	}
}

static void sift_down(theap_t *h, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && h->v[l]->when < h->v[m]->when)
			m = l;
		if (r < h->n && h->v[r]->when < h->v[m]->when)
			m = r;
		if (m == i)
			break;
		swap(h, i, m);
		i = m;
	}
}

/* lock held */
static void heap_remove(theap_t *h, rtimer_t *t)
{
	int i = t->idx, last = h->n - 1;

	if (i != last) {
		swap(h, i, last);
		h->n--;
		sift_down(h, i);
		sift_up(h, i);
	} else {
		h->n--;
	}
	t->idx = -1;
}

/* Run every expired timer of h; lock not held on entry or exit. */
static int run_expired(theap_t *h, int64_t now)
{
	int ran = 0;

	lock_acquire(&h->lock);
	while (h->n > 0 && h->v[0]->when <= now) {
		rtimer_t *t = h->v[0];

		heap_remove(h, t);
		next_update(h);
		t->running = true;
		h->nrunning++;
		lock_release(&h->lock);
		t->fn(t);
		lock_acquire(&h->lock);
		t->running = false;
		h->nrunning--;
		atomic_fetch_add_explicit(&tm.done, 1, memory_order_release);
		os_futex_wake((uint32_t *)&tm.done, INT32_MAX);
		ran++;
		if ((ran & 15) == 0)
			now = os_nanotime();
	}
	lock_release(&h->lock);
	return ran;
}

static inline int64_t heap_next(theap_t *h)
{
	return atomic_load_explicit(&h->next, memory_order_acquire);
}

/* The earliest deadline of all heaps. */
static int64_t next_all(void)
{
	int64_t next = INT64_MAX;

	for (int i = 0; i < nheaps(); i++) {
		int64_t w = heap_next(heap_at(i));

		if (w < next)
			next = w;
	}
	return next;
}

bool timer_due(void)
{
	int64_t next = next_all();

	return __builtin_expect(next != INT64_MAX, 0) && next <= os_nanotime();
}

/* Run expired timers of every heap, the caller's P's first. */
int timer_run_expired(void)
{
	m_t *m = getm();
	int own = m && m->p ? (int)m->p->id : -1, ran = 0;
	int64_t next = next_all(), now;

	if (__builtin_expect(next == INT64_MAX, 1))
		return 0;
	now = os_nanotime();
	if (next > now)
		return 0;
	if (own >= 0 && heap_next(heap_at(own)) <= now)
		ran += run_expired(heap_at(own), now);
	for (int i = 0; i < nheaps(); i++)
		if (i != own && heap_next(heap_at(i)) <= now)
			ran += run_expired(heap_at(i), now);
	return ran;
}

static void *timer_thread(void *arg)
{
	(void)arg;
	os_block_all_signals();
	prctl(PR_SET_NAME, "gshim-timer", 0, 0, 0);   /* visible in ps -L, top -H */
	for (;;) {
		int64_t now = os_nanotime(), next;
		uint32_t seq = atomic_load_explicit(&tm.seq, memory_order_acquire);

		for (int i = 0; i < nheaps(); i++)
			if (heap_next(heap_at(i)) <= now)
				run_expired(heap_at(i), now);
		/* seq read before the heaps: an add after this look bumps it,
		 * and the futex wait below returns at once. */
		next = next_all();
		atomic_store_explicit(&tm.sleep_until, next, memory_order_seq_cst);
		now = os_nanotime();
		if (next <= now)
			continue;   /* expired meanwhile */
		os_futex_wait((uint32_t *)&tm.seq, seq, next == INT64_MAX ? -1 : next - now);
	}
	return NULL;
}

#define TM_RETRY_NS 1000000000   /* a failed start is retried after 1 s */

/* Start the timer thread if it is not running; any thread, no locks.
 * Failure is not fatal: sysmon and idle M's serve the timers meanwhile
 * (tm.down, see the essay), and a later timer_add tries again. */
static void timer_start_thread(void)
{
	static _Atomic int warned;
	int st = atomic_load_explicit(&tm.started, memory_order_acquire);

	if (__builtin_expect(st == TM_RUNNING, 1))
		return;
	if (st == TM_FAILED &&
	    os_nanotime() < atomic_load_explicit(&tm.retry_at, memory_order_relaxed))
		return;
	if (st == TM_STARTING || !atomic_compare_exchange_strong(&tm.started, &st, TM_STARTING))
		return;   /* another thread is starting it */
	if (rt_thread_start(timer_thread, NULL, 128 * 1024) == 0) {
		atomic_store_explicit(&tm.down, false, memory_order_release);
		atomic_store_explicit(&tm.started, TM_RUNNING, memory_order_release);
		return;
	}
	atomic_store_explicit(&tm.retry_at, os_nanotime() + TM_RETRY_NS, memory_order_relaxed);
	atomic_store_explicit(&tm.down, true, memory_order_seq_cst);
	atomic_store_explicit(&tm.started, TM_FAILED, memory_order_release);
	if (!atomic_exchange(&warned, 1))
		rt_warn("cannot start the timer thread (out of memory or threads); "
		        "timers are run by sysmon and idle M's");
	/* Timers queued meanwhile were left to the thread: wake the others. */
	sysmon_kick();
	sched_wake_idle();
}

/* Started with the program's first thread (g_start_new), while the main
 * thread runs: before M's use up a thread limit, and on the main
 * thread's TCB (a G's would give glibc's pthread_create a malloc arena
 * of its own).  Later tries come from timer_add. */
void timer_start(void)
{
	timer_start_thread();
}

bool timer_unserved(void)
{
	return atomic_load_explicit(&tm.down, memory_order_acquire);
}

int64_t timer_next_unserved(void)
{
	if (__builtin_expect(!timer_unserved(), 1))
		return INT64_MAX;
	return next_all();
}

/* Capacity of all heaps together (sum of cap; each change under its
 * heap's lock).  A G has at most one timer queued (its one timed wait),
 * so while this is at least the number of live G's a timer always finds
 * room on some heap: thread creation reserves it (timer_reserve). */
static _Atomic int64_t cap_total;

/* Double h's array.  Lock held.  The array is the runtime's own pages
 * (see the essay); false if it cannot grow. */
static bool heap_grow(theap_t *h)
{
	size_t len;
	rtimer_t **v;

	v = os_grow(h->v, sizeof *v * (size_t)h->cap,
	            sizeof *v * (size_t)(h->cap ? 2 * h->cap : 512), &len);
	if (!v || len / sizeof *v > INT32_MAX)
		return false;
	atomic_fetch_add_explicit(&cap_total, (int64_t)(len / sizeof *v) - h->cap,
	                          memory_order_relaxed);
	h->v = v;
	h->cap = (int)(len / sizeof *v);
	return true;
}

static inline theap_t *own_heap(void)
{
	m_t *m = getm();

	return m && m->p ? &m->p->timers : &tm.nop;
}

bool timer_reserve(int64_t ntimers)
{
	theap_t *h;
	bool ok;

	if (__builtin_expect(atomic_load_explicit(&cap_total, memory_order_relaxed) >= ntimers, 1))
		return true;
	h = own_heap();
	lock_acquire(&h->lock);
	ok = atomic_load_explicit(&cap_total, memory_order_relaxed) >= ntimers || heap_grow(h);
	lock_release(&h->lock);
	return ok;
}

/* Lock h if it has room for one more timer (growing it if allowed).
 * false, unlocked, if not. */
static bool heap_lock_room(theap_t *h, bool grow)
{
	lock_acquire(&h->lock);
	if (h->n < h->cap || (grow && heap_grow(h)))
		return true;
	lock_release(&h->lock);
	return false;
}

bool timer_add(rtimer_t *t)
{
	theap_t *h = own_heap();
	bool first;

	timer_start_thread();
	/* Its own P's heap; if that cannot grow, any heap with room (expired
	 * timers are run from every heap alike); failing that, the caller
	 * waits another way. */
	if (!heap_lock_room(h, true)) {
		int i;

		for (i = 0; i < nheaps(); i++)
			if (heap_at(i) != h && heap_lock_room(heap_at(i), false))
				break;
		if (i == nheaps()) {
			t->h = NULL;
			t->idx = -1;
			return false;
		}
		h = heap_at(i);
	}
	t->h = h;
	t->idx = h->n;
	h->v[h->n++] = t;
	sift_up(h, t->idx);
	t->running = false;
	first = t->idx == 0;
	if (first)
		next_update(h);
	lock_release(&h->lock);
	if (__builtin_expect(timer_unserved(), 0)) {
		/* Nobody sleeps until this deadline yet (see the essay). */
		if (first) {
			sysmon_kick();
			sched_wake_idle();
		}
		return true;
	}
	/* Earlier than the timer thread's wake-up: wake it to sleep less. */
	if (t->when < atomic_load_explicit(&tm.sleep_until, memory_order_seq_cst)) {
		atomic_store_explicit(&tm.sleep_until, t->when, memory_order_relaxed);
		atomic_fetch_add_explicit(&tm.seq, 1, memory_order_release);
		os_futex_wake((uint32_t *)&tm.seq, 1);
	}
	return true;
}

bool timer_del(rtimer_t *t)
{
	theap_t *h = t->h;

	if (!h)
		return false;   /* never added */
	for (;;) {
		uint32_t done;

		lock_acquire(&h->lock);
		if (t->idx >= 0) {
			heap_remove(h, t);
			next_update(h);
			lock_release(&h->lock);
			return true;
		}
		if (!t->running) {
			lock_release(&h->lock);
			return false;
		}
		done = atomic_load_explicit(&tm.done, memory_order_acquire);
		lock_release(&h->lock);
		os_futex_wait((uint32_t *)&tm.done, done, -1);
	}
}

int timer_count(void)
{
	int n = 0;

	for (int i = 0; i < nheaps(); i++) {
		theap_t *h = heap_at(i);

		lock_acquire(&h->lock);
		n += h->n + h->nrunning;
		lock_release(&h->lock);
	}
	return n;
}

void timer_fork_child(void)
{
	/* The timer thread did not survive; timers of other threads' waits
	 * die with those threads.  The caller of fork is running, so it has
	 * none pending.  (The heaps' arrays are kept for reuse.) */
	for (int i = 0; i < nheaps(); i++) {
		theap_t *h = heap_at(i);

		lock_init(&h->lock, RANK_TIMER);
		h->n = 0;
		h->nrunning = 0;
		atomic_store(&h->next, INT64_MAX);
	}
	atomic_store(&tm.sleep_until, INT64_MAX);
	atomic_store(&tm.started, TM_NONE);
	atomic_store(&tm.down, false);
}
