/* core/lock.c - runtime locks.
 *
 * The runtime cannot use the program's pthread mutexes (they are ours, and
 * they park G's), so it has its own: Drepper's three-state futex mutex
 * ("Futexes are tricky", mutex3).  0 = free, 1 = held, 2 = held and maybe
 * contended.  A short spin first, because critical sections are a few
 * dozen instructions and the holder is usually running on the other core.
 *
 * Invariant: a runtime lock is never held across a G switch except the
 * gfutex bucket lock, which g_park's unlock function releases on the next
 * context (see sched.c) - the M never blocks in the kernel while holding
 * any of them (note_sleep and futex waits happen with no lock held).
 *
 * Rejected: a plain spinlock.  An M preempted by the kernel while holding
 * it would make every other M burn its time slice; the futex lets them
 * sleep instead.
 *
 * Debug builds (-Ddebug_locks=true) keep a per-M stack of held ranks and
 * abort on an out-of-order acquisition.
 */
#include "internal.h"

#define SPIN_TRIES 100

void lock_init(lock_t *l, enum lock_rank rank)
{
	atomic_store_explicit(&l->key, 0, memory_order_relaxed);
	l->rank = (uint8_t)rank;
}

#ifdef GSHIM_DEBUG_LOCKS
static void rank_push(lock_t *l)
{
	m_t *m = getm();

	if (!m || l->rank == RANK_LEAF)
		return;
	if (m->locks_held && m->lock_ranks[m->locks_held - 1] > l->rank)
		rt_fatal("lock order violation");
	if (m->locks_held < sizeof m->lock_ranks)
		m->lock_ranks[m->locks_held] = l->rank;
	m->locks_held++;
}

static void rank_pop(lock_t *l)
{
	m_t *m = getm();

	if (!m || l->rank == RANK_LEAF || m->locks_held == 0)
		return;
	m->locks_held--;
}
#else
static inline void rank_push(lock_t *l) { (void)l; }
static inline void rank_pop(lock_t *l) { (void)l; }
#endif

bool lock_try(lock_t *l)
{
	uint32_t c = 0;

	if (atomic_compare_exchange_strong_explicit(&l->key, &c, 1,
	        memory_order_acquire, memory_order_relaxed)) {
		rank_push(l);
		return true;
	}
	return false;
}

void lock_acquire(lock_t *l)
{
	uint32_t c = 0;
	int i;

	/* Fast path: uncontended. */
	if (atomic_compare_exchange_strong_explicit(&l->key, &c, 1,
	        memory_order_acquire, memory_order_relaxed))
		goto out;
	/* Slow path: spin while the holder is likely running. */
	for (i = 0; i < SPIN_TRIES; i++) {
		arch_relax();
		c = 0;
		if (atomic_load_explicit(&l->key, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(&l->key, &c, 1,
		        memory_order_acquire, memory_order_relaxed))
			goto out;
	}
	/* Slowest path: mark contended and sleep in the kernel. */
	c = atomic_exchange_explicit(&l->key, 2, memory_order_acquire);
	while (c != 0) {
		os_futex_wait((uint32_t *)&l->key, 2, -1);
		c = atomic_exchange_explicit(&l->key, 2, memory_order_acquire);
	}
out:
	rank_push(l);
}

void lock_release(lock_t *l)
{
	rank_pop(l);
	/* Release pairs with the acquire in lock_acquire/lock_try. */
	if (atomic_exchange_explicit(&l->key, 0, memory_order_release) == 2)
		os_futex_wake((uint32_t *)&l->key, 1);
}
