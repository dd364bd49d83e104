/* shim/attr.c - the attribute calls that need a thread: pthread_getattr_np
 * and the process-wide defaults.  The pthread_attr_* setters and getters
 * themselves are glibc's: they only touch the attribute object, and
 * thread_create reads it back through them. */
#include <errno.h>
#include <string.h>
#include <signal.h>
#include "shim.h"

SHIM_EXPORT int pthread_getattr_np(pthread_t t, pthread_attr_t *attr)
{
	struct thread *th;
	g_t *g;
	int err;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_getattr_np)(t, attr);
	g = (g_t *)t;
	th = thread_of(g);
	/* The main thread's stack is glibc's: it works the bounds out at
	 * each call from the mapping and the current RLIMIT_STACK (a program
	 * that lowered the limit must not be told of stack it cannot grow
	 * into), and so does it here; the scheduling settings are ours. */
	if (g->is_main && shim_main_desc) {
		err = REAL(pthread_getattr_np)(shim_main_desc, attr);
		if (err)
			return err;
		pthread_attr_setschedpolicy(attr, th->policy);
		pthread_attr_setschedparam(attr, &th->param);
		return 0;
	}
	err = pthread_attr_init(attr);
	if (err)
		return err;
	/* Like glibc: the usable stack (guard excluded) with its top as
	 * stackaddr, the guard size, the detach state, the scheduling
	 * settings, the CPU set.  The sizes are the ones pthread_create was
	 * asked for (glibc: the stack size aligned down to 64, the guard as
	 * given), although gshim's mapping is rounded up to pages. */
	if (g->stack.hi > g->stack.lo) {
		size_t size = g->stack.hi - g->stack.lo;

		if (th->req_stacksize && th->req_stacksize <= size)
			size = th->req_stacksize;
		err = pthread_attr_setstack(attr, (void *)(g->stack.hi - size), size);
	}
	if (!err)
		err = pthread_attr_setguardsize(attr, th->req_stacksize ? th->req_guard
		                                                         : g->stack.guard);
	if (!err && atomic_load(&g->joinstate) == GJ_DETACHED)
		err = pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
	if (!err) {
		pthread_attr_setschedpolicy(attr, th->policy);
		pthread_attr_setschedparam(attr, &th->param);
		if (th->explicit_sched)
			pthread_attr_setinheritsched(attr, PTHREAD_EXPLICIT_SCHED);
	}
	if (!err) {
		cpu_set_t set;

		err = pthread_getaffinity_np(t, sizeof set, &set);
		if (!err)
			err = pthread_attr_setaffinity_np(attr, sizeof set, &set);
	}
	if (err) {
		pthread_attr_destroy(attr);
		return err;
	}
	return 0;
}

/* Set once the program changed the defaults: until then a thread
 * created without an attr needs nothing from glibc's copy. */
static _Atomic bool default_changed;

bool shim_default_attr(pthread_attr_t *attr)
{
	if (!atomic_load_explicit(&default_changed, memory_order_acquire))
		return false;
	return REAL(pthread_getattr_default_np)(attr) == 0;
}

SHIM_EXPORT int pthread_setattr_default_np(const pthread_attr_t *attr)
{
	size_t stacksize, guard, ssize;
	void *lo;
	int err;

	/* glibc: a default attr cannot carry a stack. */
	if (pthread_attr_getstack(attr, &lo, &ssize) == 0 && (uintptr_t)lo + ssize != 0)
		return EINVAL;
	/* glibc validates (EINVAL on bad values) and keeps its own copy, which
	 * pthread_getattr_default_np reports; we mirror the sizes we use. */
	err = REAL(pthread_setattr_default_np)(attr);
	if (err)
		return err;
	/* A size of 0 leaves the default size as it was (glibc's rule):
	 * getstacksize would report glibc's copy of it, not ours. */
	if (((const struct glibc_attr_head *)attr)->stacksize == 0)
		stacksize = config_default_stack();
	else if (pthread_attr_getstacksize(attr, &stacksize) != 0)
		stacksize = config_default_stack();
	if (pthread_attr_getguardsize(attr, &guard) == 0)
		config_set_default_attr(stacksize, guard);
	atomic_store_explicit(&default_changed, true, memory_order_release);
	return 0;
}
