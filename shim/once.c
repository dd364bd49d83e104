/* shim/once.c - pthread_once (and C11 call_once on top of it).
 *
 * glibc's pthread_once waits on a kernel futex, which would block the M
 * (and at GOMAXPROCS=1 the whole program) while another G runs the
 * initialiser.  Same protocol here, with the wait on a gfutex.
 *
 * State word, compatible with PTHREAD_ONCE_INIT (0) and glibc's "done"
 * value (2), so objects initialised either way agree:
 *   0 not started, 1 running, 3 running with waiters, 2 done.
 * If the initialiser exits the thread (pthread_exit, cancellation), POSIX
 * says the once is as if never called: back to 0, waiters woken.
 */
#include <errno.h>
#include <threads.h>
#include "shim.h"

enum { ONCE_INIT = 0, ONCE_RUNNING = 1, ONCE_DONE = 2, ONCE_WAITERS = 3 };

/* Onces being initialised by a thread, innermost first: if the thread
 * exits inside an initialiser, thread_exit resets them (once_abandon). */
static void once_push(struct once_node *n, _Atomic uint32_t *st)
{
	g_t *g = getcurg();

	n->st = st;
	n->prev = g ? thread_of(g)->onces : NULL;
	if (g)
		thread_of(g)->onces = n;
}

static void once_pop(struct once_node *n)
{
	g_t *g = getcurg();

	if (g)
		thread_of(g)->onces = n->prev;
}

void once_unwound(struct thread *t, uintptr_t limit)
{
	struct once_node *n;

	/* Innermost first; stacks grow down, so inner frames are lower. */
	while ((n = t->onces) != NULL && (uintptr_t)n < limit) {
		t->onces = n->prev;
		atomic_store_explicit(n->st, ONCE_INIT, memory_order_release);
		gfutex_wake(n->st, INT32_MAX);
	}
}

void once_abandon(struct thread *t)
{
	once_unwound(t, UINTPTR_MAX);
}

SHIM_EXPORT int pthread_once(pthread_once_t *once, void (*fn)(void))
{
	_Atomic uint32_t *st = (_Atomic uint32_t *)once;
	struct once_node node;

	shim_self();
	for (;;) {
		uint32_t v = atomic_load_explicit(st, memory_order_acquire);

		if (v == ONCE_DONE)
			return 0;
		if (v == ONCE_INIT) {
			if (!atomic_compare_exchange_strong_explicit(st, &v, ONCE_RUNNING,
			        memory_order_acquire, memory_order_acquire))
				continue;
			once_push(&node, st);
			fn();
			once_pop(&node);
			/* Release: callers that see DONE see fn's effects. */
			if (atomic_exchange_explicit(st, ONCE_DONE, memory_order_release)
			    == ONCE_WAITERS)
				gfutex_wake(st, INT32_MAX);
			return 0;
		}
		if (v == ONCE_RUNNING &&
		    !atomic_compare_exchange_strong_explicit(st, &v, ONCE_WAITERS,
		        memory_order_relaxed, memory_order_relaxed))
			continue;
		gfutex_wait(st, ONCE_WAITERS, -1);
	}
}

SHIM_EXPORT void call_once(once_flag *flag, void (*fn)(void))
{
	pthread_once((pthread_once_t *)flag, fn);
}
