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
 * waiter's state word instead of parking.
 *
 * Rejected: one wait queue per object embedded in the object (pthread
 * objects have glibc's sizes, and memory the program zeroes or copies
 * must keep working), and a single global lock (every wake in the program
 * would serialise on it).
 */
#include <errno.h>
#include "rt.h"

#define NBUCKETS 512   /* power of two; Go uses 251 semaRoots */

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

int gfutex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline)
{
	g_t *g = getcurg();
	bucket_t *b = bucket_of(addr);
	gwaiter_t w = { .addr = (uintptr_t)addr, .g = g };
	struct gtimer gt;
	bool timed = deadline >= 0 && g;

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
		timer_add(&gt.t);
	}
	b_lock(b);
	/* Enqueue, then check the value: pairs with gfutex_wake's store of
	 * the value, fence, unlocked look at the bucket (Dekker).  Either the
	 * waker sees us queued or we see the new value. */
	enqueue(b, &w);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(addr, memory_order_relaxed) != val ||
	    atomic_load_explicit(&w.state, memory_order_acquire) == 2) {
		dequeue(b, &w);
		lock_release(&b->lock);
		if (timed)
			timer_del(&gt.t);
		return atomic_load(&w.state) == 2 ? -ETIMEDOUT : -EAGAIN;
	}
	if (!g) {
		lock_release(&b->lock);
		return wait_os(b, &w, deadline);
	}
	g_park(unlock_bucket, b, WAIT_GFUTEX);
	if (timed)
		timer_del(&gt.t);
	return atomic_load_explicit(&w.state, memory_order_acquire) == 2 ? -ETIMEDOUT : 0;
}

int gfutex_wake(_Atomic uint32_t *addr, int n)
{
	bucket_t *b = bucket_of(addr);
	gwaiter_t *w, *next;
	int woken = 0;

	/* Unlocked peek.  The caller changed the value before calling us; a
	 * waiter enqueues before it checks the value, with a fence between
	 * (see gfutex_wait), so an empty bucket here means any waiter still
	 * to come will see the new value. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!__atomic_load_n(&b->head, __ATOMIC_RELAXED))
		return 0;
	b_lock(b);
	for (w = b->head; w && woken < n; w = next) {
		uint32_t zero = 0;

		next = w->next;
		if (w->addr != (uintptr_t)addr)
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
	return woken;
}
