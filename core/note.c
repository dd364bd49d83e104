/* core/note.c - one-shot sleep/wakeup of an M (Go's note, lock_futex.go).
 *
 * An idle M sleeps on its own note; whoever hands it a P (startm) wakes
 * it.  The key goes 0 -> 1 exactly once per note_clear, so a wakeup that
 * arrives before the sleep is never lost: note_sleep sees key == 1 and
 * returns without entering the kernel.  Only the owner M sleeps and clears.
 */
#include <errno.h>
#include "internal.h"

void note_clear(note_t *n)
{
	atomic_store_explicit(&n->key, 0, memory_order_relaxed);
}

void note_wakeup(note_t *n)
{
	/* Release: the waker's writes (m->nextp) are visible after the
	 * sleeper's acquire load of key. */
	uint32_t old = atomic_exchange_explicit(&n->key, 1, memory_order_release);
	if (old != 0)
		rt_fatal("notewakeup - double wakeup");
	os_futex_wake((uint32_t *)&n->key, 1);
}

void note_sleep(note_t *n)
{
	while (atomic_load_explicit(&n->key, memory_order_acquire) == 0)
		os_futex_wait((uint32_t *)&n->key, 0, -1);
}

bool note_sleep_ns(note_t *n, int64_t ns)
{
	int64_t deadline = os_nanotime() + ns;

	while (atomic_load_explicit(&n->key, memory_order_acquire) == 0) {
		int64_t left = deadline - os_nanotime();
		if (left <= 0)
			return false;
		os_futex_wait((uint32_t *)&n->key, 0, left);
	}
	return true;
}
