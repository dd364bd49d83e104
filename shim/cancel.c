/* shim/cancel.c - deferred cancellation and cleanup handlers.
 *
 * glibc keeps the cancellation state and the pthread_cleanup_push chain in
 * its struct pthread, which is the M's, not the G's; and its
 * pthread_cancel would read a kernel tid out of a G.  So all of it is
 * ours: state per G, the cleanup chain per G.
 *
 * C code's pthread_cleanup_push expands to a sigsetjmp into a buffer on
 * the stack plus __pthread_register_cancel(buf).  Acting on a cancellation
 * longjmps into the innermost buffer; the macro's code then runs the
 * handler and calls __pthread_unwind_next(buf), which longjmps to the next
 * one, and after the last the thread exits with PTHREAD_CANCELED (key
 * destructors run as for pthread_exit).  This is what glibc does when it
 * has no unwinder to use.
 *
 * Cancellation points that gshim owns today: pthread_testcancel, and
 * pthread_join and its variants at entry and after the wait.  Blocking
 * calls become cancellation points as the issues that wrap them land.
 * Asynchronous cancellation is treated as deferred (acted on at the next
 * cancellation point or when enabled), since a G is never interrupted in
 * the middle of its code yet.  C++ frames are not unwound (destructors do
 * not run) when a thread is cancelled: documented in docs/compat.md.
 */
#include <errno.h>
#include <setjmp.h>
#include "shim.h"

/* glibc's private layout of __pthread_unwind_buf_t's pad: prev first. */
#define BUF_PREV(b) (*(__pthread_unwind_buf_t **)&(b)->__pad[0])

/* The buffer holds a jmp_buf without the signal-mask tail (the macro's
 * sigsetjmp was told not to save it, so longjmp will not read it); hide
 * the size from the compiler's object-size checks. */
_Noreturn static void jump_to(__pthread_unwind_buf_t *b)
{
	void *p = b->__cancel_jmp_buf;

	__asm__("" : "+r"(p));
	longjmp(p, 1);
}

_Noreturn static void cancel_act(g_t *g)
{
	struct thread *t = thread_of(g);
	__pthread_unwind_buf_t *buf = t->cleanup;

	t->canceling = true;
	t->cancelstate = PTHREAD_CANCEL_DISABLE;
	if (buf)
		jump_to(buf);
	thread_unwind_exit(g, PTHREAD_CANCELED);
}

void cancel_point(g_t *g)
{
	struct thread *t = thread_of(g);

	if (__builtin_expect(atomic_load_explicit(&t->cancel_req, memory_order_acquire), 0) &&
	    t->cancelstate == PTHREAD_CANCEL_ENABLE && !t->canceling)
		cancel_act(g);
}

int shim_wait_cancellable(g_t *g, _Atomic uint32_t *addr, uint32_t val,
                          int64_t deadline)
{
	struct thread *t;
	int r;

	if (!g)
		return gfutex_wait(addr, val, deadline);
	t = thread_of(g);
	if (t->cancelstate != PTHREAD_CANCEL_ENABLE || t->canceling)
		return gfutex_wait(addr, val, deadline);
	r = gfutex_wait_intr(addr, val, deadline, &t->cancel_req);
	return r == -EINTR ? -ECANCELED : r;
}

SHIM_EXPORT int pthread_cancel(pthread_t th)
{
	g_t *g;

	if (!shim_is_g(th))
		return shim_is_stale_g(th) ? ESRCH : real_pthread_cancel(th);
	g = (g_t *)th;
	if (atomic_load(&g->status) == G_DEAD)
		return ESRCH;
	atomic_store_explicit(&thread_of(g)->cancel_req, 1, memory_order_seq_cst);
	/* Wake it if it sleeps in a cancellable wait (shim_wait_cancellable). */
	gfutex_interrupt(g);
	if (g == getcurg() && thread_of(g)->canceltype == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
	return 0;
}

SHIM_EXPORT void pthread_testcancel(void)
{
	g_t *g = shim_self();

	if (!g) {
		real_pthread_testcancel();
		return;
	}
	cancel_point(g);
}

SHIM_EXPORT int pthread_setcancelstate(int state, int *old)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g)
		return real_pthread_setcancelstate(state, old);
	if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE)
		return EINVAL;
	t = thread_of(g);
	if (old)
		*old = t->cancelstate;
	t->cancelstate = state;
	if (t->canceltype == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
	return 0;
}

SHIM_EXPORT int pthread_setcanceltype(int type, int *old)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g)
		return real_pthread_setcanceltype(type, old);
	if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS)
		return EINVAL;
	t = thread_of(g);
	if (old)
		*old = t->canceltype;
	t->canceltype = type;
	if (type == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
	return 0;
}

SHIM_EXPORT void __pthread_register_cancel(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g) {
		real___pthread_register_cancel(buf);
		return;
	}
	t = thread_of(g);
	BUF_PREV(buf) = t->cleanup;
	t->cleanup = buf;
}

SHIM_EXPORT void __pthread_unregister_cancel(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();

	if (!g) {
		real___pthread_unregister_cancel(buf);
		return;
	}
	thread_of(g)->cleanup = BUF_PREV(buf);
}

/* pthread_cleanup_push_defer_np: also switch to deferred for the region;
 * the old type is kept in the pad (glibc keeps it in the same buffer). */
SHIM_EXPORT void __pthread_register_cancel_defer(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g) {
		real___pthread_register_cancel_defer(buf);
		return;
	}
	t = thread_of(g);
	buf->__pad[2] = (void *)(intptr_t)t->canceltype;
	t->canceltype = PTHREAD_CANCEL_DEFERRED;
	BUF_PREV(buf) = t->cleanup;
	t->cleanup = buf;
}

SHIM_EXPORT void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g) {
		real___pthread_unregister_cancel_restore(buf);
		return;
	}
	t = thread_of(g);
	t->cleanup = BUF_PREV(buf);
	t->canceltype = (int)(intptr_t)buf->__pad[2];
	if (t->canceltype == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
}

SHIM_EXPORT _Noreturn void __pthread_unwind_next(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;
	__pthread_unwind_buf_t *next;

	if (!g)
		real___pthread_unwind_next(buf);
	t = thread_of(g);
	next = BUF_PREV(buf);
	t->cleanup = next;
	if (next)
		jump_to(next);
	thread_unwind_exit(g, PTHREAD_CANCELED);
}
