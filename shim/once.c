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
 * says the once is as if never called: back to 0, waiters woken.  The
 * same when a C++ exception thrown by it leaves pthread_once (glibc's
 * tst-once5; std::call_once with a throwing callable): the node is a
 * variable with a cleanup, run by the unwinder (this file is built with
 * -fexceptions).  Unwinding by longjmp (C cleanup buffers of a cancelled
 * thread) skips that cleanup: cancel.c calls once_unwound as it passes
 * the frame, and thread exit resets whatever is left.
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

/* The initialiser of n will not complete: as if never called. */
static void once_reset(struct once_node *n)
{
	_Atomic uint32_t *st = n->st;

	n->st = NULL;
	atomic_store_explicit(st, ONCE_INIT, memory_order_release);
	gfutex_wake(st, INT32_MAX);
}

void once_unwound(struct thread *t, uintptr_t limit)
{
	struct once_node *n;

	/* Innermost first; stacks grow down, so inner frames are lower. */
	while ((n = t->onces) != NULL && (uintptr_t)n < limit) {
		t->onces = n->prev;
		once_reset(n);
	}
}

/* The cleanup of pthread_once's node: when the frame is left by an
 * exception or forced unwinding while the initialiser runs. */
static void once_leave(struct once_node *n)
{
	g_t *g;

	if (!n->st)
		return;   /* completed, or reset by once_unwound */
	g = getcurg();
	if (g && thread_of(g)->onces == n)
		thread_of(g)->onces = n->prev;
	once_reset(n);
}

void once_abandon(struct thread *t)
{
	once_unwound(t, UINTPTR_MAX);
}

SHIM_EXPORT int pthread_once(pthread_once_t *once, void (*fn)(void))
{
	_Atomic uint32_t *st = (_Atomic uint32_t *)once;
	struct once_node node __attribute__((cleanup(once_leave))) = { NULL, NULL };

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
			node.st = NULL;
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
		g_wait_note(getcurg(), WK_ONCE, (uintptr_t)st);
		gfutex_wait(st, ONCE_WAITERS, -1);
	}
}

SHIM_EXPORT void call_once(once_flag *flag, void (*fn)(void))
{
	pthread_once((pthread_once_t *)flag, fn);
}
