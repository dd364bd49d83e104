/* core/gfutex.c - a futex for G's (Go's semaRoot / sudog tables).
 *
 * Every G-level wait in gshim (join, once, and the synchronisation
 * objects built on top) reduces to "sleep while *addr == val" and "wake n
 * sleepers on addr", exactly the contract of futex(2), so the code above
 * can be written the way glibc and musl write theirs.  The difference is
 * that a waiting G parks (its M runs other G's) instead of blocking its OS
 * thread.
 *
 * Waiters are kept in a hash table of address-keyed buckets, each with its
 * own runtime lock.  A waiter node lives on the waiter's stack.  The value
 * check and the enqueue happen under the bucket lock, and a waker must
 * take the same lock to find the waiter, so a wake between the check and
 * the park cannot be lost.  The bucket lock is released by g_park's unlock
 * function, after the G's context is saved: a waker can only see a G that
 * is fully parked (see core/sched.c).
 *
 * Deadlines: a timer (core/timer.c) removes the waiter and readies the G.
 * Wake and timeout race through the waiter's state word (0 queued, 1
 * woken, 2 timed out), changed only under the bucket lock; the waiter
 * cancels the timer with timer_del, which waits for a running callback,
 * before its stack frame goes away.
 *
 * Threads that are not G's (threads created behind gshim's back, the
 * runtime's own helpers) may wait too: they block in the kernel on the
 * waiter's state word instead of parking.  So does a G whose deadline
 * cannot be queued (timer_add out of memory), after handing its P off
 * (g_block_enter): late never, wrong never, only an M held.
 *
 * Rejected: one wait queue per object embedded in the object (pthread
 * objects have glibc's sizes, and memory the program zeroes or copies
 * must keep working), and a single global lock (every wake in the program
 * would serialise on it).
 */
#include <errno.h>
#include "internal.h"

/* Power of two.  A wake walks its bucket's chain, and the waiters are on
 * their G's stacks (a cache and often a TLB miss each): with 100,000
 * threads each joining the previous one, 512 buckets (chains of ~200)
 * spent 29% of the run in wake_in.  8192 keep chains short at that scale
 * for 512 KiB of zeroed BSS, of which a program touches only the pages
 * its addresses hash to.  (Go keeps 251 semaRoots, each a treap.) */
#define NBUCKETS 8192

typedef struct bucket {
	lock_t lock;
	gwaiter_t *head, *tail;
} __attribute__((aligned(64))) bucket_t;

static bucket_t buckets[NBUCKETS];

static bucket_t *bucket_of(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;

	a ^= a >> 17;
	a *= 0x9e3779b97f4a7c15ull;
	return &buckets[(a >> 40) & (NBUCKETS - 1)];
}

static void b_lock(bucket_t *b)
{
	if (!b->lock.rank)
		b->lock.rank = RANK_GFUTEX;
	lock_acquire(&b->lock);
}

/* bucket lock held */
static void enqueue(bucket_t *b, gwaiter_t *w)
{
	w->next = NULL;
	w->prev = b->tail;
	if (b->tail)
		b->tail->next = w;
	else
		__atomic_store_n(&b->head, w, __ATOMIC_RELAXED);
	b->tail = w;
	w->bucket = b;
}

/* bucket lock held */
static void dequeue(bucket_t *b, gwaiter_t *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		b->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		b->tail = w->prev;
	w->next = w->prev = NULL;
	w->bucket = NULL;
}

struct gtimer {
	rtimer_t t;
	gwaiter_t *w;
	bucket_t *b;
};

static void gfutex_timeout(rtimer_t *t)
{
	struct gtimer *gt = (struct gtimer *)t;
	gwaiter_t *w = gt->w;
	bucket_t *b = gt->b;
	uint32_t zero = 0;

	b_lock(b);
	if (atomic_compare_exchange_strong_explicit(&w->state, &zero, 2,
	        memory_order_acq_rel, memory_order_acquire) && w->bucket) {
		dequeue(b, w);
		g_ready(w->g);
	}
	lock_release(&b->lock);
}

static bool unlock_bucket(g_t *g, void *arg)
{
	(void)g;
	lock_release(&((bucket_t *)arg)->lock);
	return true;
}

static int wait_os(bucket_t *b, gwaiter_t *w, int64_t deadline)
{
	for (;;) {
		uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
		int64_t left = -1;

		if (s != 0)
			return 0;
		if (deadline >= 0) {
			left = deadline - os_nanotime();
			if (left <= 0) {
				uint32_t zero = 0;
				b_lock(b);
				if (atomic_compare_exchange_strong_explicit(&w->state,
				        &zero, 2, memory_order_acq_rel, memory_order_acquire))
					dequeue(b, w);
				lock_release(&b->lock);
				return atomic_load(&w->state) == 2 ? -ETIMEDOUT : 0;
			}
		}
		os_futex_wait((uint32_t *)&w->state, 0, left);
	}
}

static int wait_common(_Atomic uint32_t *addr, uint32_t val, int64_t deadline,
                       _Atomic uint32_t *intr)
{
	g_t *g = getcurg();

	/* A signal handler that interrupted this G inside a system call or
	 * inside the runtime (rtdepth counts our own rt_enter: 1) must not
	 * park it: the G's state belongs to the code below the handler.  It
	 * waits like a thread that is not a G (blocking its M briefly). */
	if (g && (atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING ||
	          g->rtdepth > 1))
		g = NULL;
	bucket_t *b = bucket_of(addr);
	gwaiter_t w = { .addr = (uintptr_t)addr, .g = g };
	struct gtimer gt;
	bool timed = deadline >= 0 && g, inkernel = false;

	if (deadline >= 0 && deadline <= os_nanotime())
		return atomic_load_explicit(addr, memory_order_acquire) == val
		       ? -ETIMEDOUT : -EAGAIN;
	if (timed) {
		/* Armed before taking the bucket lock (timer ranks above the
		 * bucket); an early firing just marks the state. */
		gt.t.when = deadline;
		gt.t.fn = gfutex_timeout;
		gt.w = &w;
		gt.b = b;
		if (!timer_add(&gt.t)) {
			/* No memory for the timer: wait in the kernel, with
			 * the deadline, as a thread that is not a G does -
			 * after giving the P away (g_block_enter), so the
			 * G's that will wake us can run. */
			timed = false;
			inkernel = true;
			w.g = NULL;
		}
	}
	if (g && !intr)
		atomic_store_explicit(&g->waitaddr, (uint32_t *)addr, memory_order_relaxed);
	b_lock(b);
	/* Enqueue, then check the value: pairs with gfutex_wake's store of
	 * the value, fence, unlocked look at the bucket (Dekker).  Either the
	 * waker sees us queued or we see the new value. */
	enqueue(b, &w);
	atomic_thread_fence(memory_order_seq_cst);
	if (intr && atomic_load_explicit(intr, memory_order_seq_cst)) {
		/* Interrupted before sleeping: gfutex_interrupt may have
		 * looked at the bucket before we were in it. */
		dequeue(b, &w);
		lock_release(&b->lock);
		if (timed)
			timer_del(&gt.t);
		return -EINTR;
	}
	if (atomic_load_explicit(addr, memory_order_relaxed) != val ||
	    atomic_load_explicit(&w.state, memory_order_acquire) == 2) {
		dequeue(b, &w);
		lock_release(&b->lock);
		if (timed)
			timer_del(&gt.t);
		return atomic_load(&w.state) == 2 ? -ETIMEDOUT : -EAGAIN;
	}
	if (!w.g) {
		int r;

		lock_release(&b->lock);
		if (!inkernel)
			return wait_os(b, &w, deadline);
		g_block_enter();
		r = wait_os(b, &w, deadline);
		g_block_exit();
		return r;
	}
	g_park(unlock_bucket, b, WAIT_GFUTEX);
	if (timed)
		timer_del(&gt.t);
	return atomic_load_explicit(&w.state, memory_order_acquire) == 2 ? -ETIMEDOUT : 0;
}

int gfutex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline)
{
	g_t *g = rt_enter();
	int r = wait_common(addr, val, deadline, NULL);

	if (g)
		g->waitkind = WK_NONE;   /* tracebacks: the wait is over */
	rt_exit(g);
	return r;
}

int gfutex_wait_intr(_Atomic uint32_t *addr, uint32_t val, int64_t deadline,
                     _Atomic uint32_t *intr)
{
	g_t *g = rt_enter(), *cur = getcurg();
	int r;

	/* Published before the enqueue in wait_common; gfutex_interrupt
	 * stores *intr first and reads this second (Dekker, seq_cst). */
	if (cur)
		atomic_store_explicit(&cur->waitaddr, (uint32_t *)addr, memory_order_seq_cst);
	r = wait_common(addr, val, deadline, intr);
	if (cur) {
		atomic_store_explicit(&cur->waitaddr, NULL, memory_order_relaxed);
		cur->waitkind = WK_NONE;   /* tracebacks: the wait is over */
	}
	if (r != -EINTR && intr && atomic_load_explicit(intr, memory_order_acquire))
		r = -EINTR;
	rt_exit(g);
	return r;
}

void gfutex_interrupt(g_t *g)
{
	uint32_t *addr;

	atomic_thread_fence(memory_order_seq_cst);
	addr = atomic_load_explicit(&g->waitaddr, memory_order_seq_cst);
	/* Everyone waiting there wakes; the others see a spurious wake-up,
	 * which every gfutex user tolerates. */
	if (addr)
		gfutex_wake((_Atomic uint32_t *)addr, INT32_MAX);
}

/* Wakes from signal handlers.  sem_post must be async-signal-safe, but
 * waking a G takes a bucket lock and touches the P's run queue: if the
 * handler interrupted runtime code on this same thread holding that lock
 * or half-way through a run queue update, doing it now would deadlock or
 * corrupt.  rtdepth tells: inside a runtime section the wake is recorded
 * on the interrupted G (or g0) and done when the section ends. */
#define WAKE_EVERYONE ((uint32_t *)1)   /* a deferred wake of all waiters */

static void wake_everyone(void);

void gfutex_wake_async(_Atomic uint32_t *addr)
{
	g_t *g = getg();
	uint32_t head, tail, i;

	if (!g || (!g->is_g0 && g->rtdepth == 0) ||
	    (g->is_g0 && atomic_load_explicit(&g0_m(g)->idle_sleeping, memory_order_seq_cst))) {
		if ((uint32_t *)addr == WAKE_EVERYONE)   /* moved by switch_finish */
			wake_everyone();
		else
			gfutex_wake(addr, INT32_MAX);
		return;
	}
	/* A ring: the owner drains [dhead, ndefer), advancing dhead before
	 * each wake, so a handler that runs during a drain only dedupes
	 * against wakes not done yet. */
	head = atomic_load_explicit(&g->dhead, memory_order_relaxed);
	tail = atomic_load_explicit(&g->ndefer, memory_order_relaxed);
	for (i = head; i != tail; i++) {
		uint32_t *d = atomic_load_explicit(&g->defer[i % 8], memory_order_relaxed);

		if (d == (uint32_t *)addr || d == WAKE_EVERYONE)
			return;
	}
	if (tail - head == 8) {
		/* Full (more than eight objects posted from handlers inside
		 * one runtime section): the newest entry becomes "wake every
		 * waiter", a storm of spurious wake-ups that every gfutex
		 * waiter tolerates, instead of a lost one.  The drain reads
		 * only the oldest entry while we run, never this one. */
		atomic_store_explicit(&g->defer[(tail - 1) % 8], WAKE_EVERYONE,
		                      memory_order_relaxed);
		return;
	}
	atomic_store_explicit(&g->defer[tail % 8], (uint32_t *)addr, memory_order_relaxed);
	atomic_store_explicit(&g->ndefer, tail + 1, memory_order_release);
}

/* Take the next deferred wake of g, or NULL.  Owner of g. */
uint32_t *rt_defer_pop(g_t *g)
{
	uint32_t head = atomic_load_explicit(&g->dhead, memory_order_relaxed);
	uint32_t *addr;

	if (head == atomic_load_explicit(&g->ndefer, memory_order_acquire))
		return NULL;
	addr = atomic_load_explicit(&g->defer[head % 8], memory_order_relaxed);
	atomic_store_explicit(&g->dhead, head + 1, memory_order_release);
	return addr;
}

void rt_defer_drain(g_t *g)
{
	uint32_t *addr;

	g->rtdepth++;   /* our own wakes must not recurse into draining */
	while ((addr = rt_defer_pop(g)) != NULL) {
		if (addr == WAKE_EVERYONE)
			wake_everyone();
		else
			gfutex_wake((_Atomic uint32_t *)addr, INT32_MAX);
	}
	g->rtdepth--;
	if (atomic_load_explicit(&g->sigdefer, memory_order_relaxed))
		g_deliver_deferred(g);
}

/* Wake up to n waiters of b on addr (0: on any address). */
static int wake_in(bucket_t *b, uintptr_t addr, int n)
{
	gwaiter_t *w, *next;
	int woken = 0;
	g_t *g = rt_enter();

	b_lock(b);
	for (w = b->head; w && woken < n; w = next) {
		uint32_t zero = 0;

		next = w->next;
		if (addr && w->addr != addr)
			continue;
		if (!atomic_compare_exchange_strong_explicit(&w->state, &zero, 1,
		        memory_order_acq_rel, memory_order_acquire))
			continue;
		dequeue(b, w);
		if (w->g)
			g_ready(w->g);
		else
			os_futex_wake((uint32_t *)&w->state, 1);
		woken++;
	}
	lock_release(&b->lock);
	rt_exit(g);
	return woken;
}

static void wake_everyone(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	for (int i = 0; i < NBUCKETS; i++)
		if (__atomic_load_n(&buckets[i].head, __ATOMIC_RELAXED))
			wake_in(&buckets[i], 0, INT32_MAX);
}

int gfutex_wake(_Atomic uint32_t *addr, int n)
{
	bucket_t *b = bucket_of(addr);

	/* Unlocked peek.  The caller changed the value before calling us; a
	 * waiter enqueues before it checks the value, with a fence between
	 * (see gfutex_wait), so an empty bucket here means any waiter still
	 * to come will see the new value. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!__atomic_load_n(&b->head, __ATOMIC_RELAXED))
		return 0;
	return wake_in(b, (uintptr_t)addr, n);
}

void gfutex_fork_child(void)
{
	int i;

	/* Every queued waiter belongs to a thread that is gone. */
	for (i = 0; i < NBUCKETS; i++) {
		lock_init(&buckets[i].lock, RANK_GFUTEX);
		buckets[i].head = buckets[i].tail = NULL;
	}
}

bool gfutex_queued(_Atomic uint32_t *addr)
{
	bucket_t *b = bucket_of(addr);
	gwaiter_t *w;
	bool found = false;
	g_t *g = rt_enter();

	b_lock(b);
	for (w = b->head; w && !found; w = w->next)
		found = w->addr == (uintptr_t)addr;
	lock_release(&b->lock);
	rt_exit(g);
	return found;
}
