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
	g_t *g;
	int err;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : real_pthread_getattr_np(t, attr);
	g = (g_t *)t;
	err = pthread_attr_init(attr);
	if (err)
		return err;
	/* Like glibc: the usable stack (guard excluded), its top as
	 * stackaddr, the guard size, the detach state, the scheduling
	 * settings. */
	if (g->stack.hi > g->stack.lo)
		err = pthread_attr_setstack(attr, (void *)g->stack.lo,
		                            g->stack.hi - g->stack.lo);
	if (!err)
		err = pthread_attr_setguardsize(attr, g->stack.guard);
	if (!err && atomic_load(&g->joinstate) == GJ_DETACHED)
		err = pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
	if (!err) {
		struct thread *th = thread_of(g);
		pthread_attr_setschedpolicy(attr, th->policy);
		pthread_attr_setschedparam(attr, &th->param);
	}
	if (err) {
		pthread_attr_destroy(attr);
		return err;
	}
	return 0;
}

/* The default attribute's signal mask (pthread_attr_setsigmask_np on
 * the attr given to pthread_setattr_default_np): threads created without
 * an attribute start with it (thread.c). */
bool shim_default_has_mask;
uint64_t shim_default_mask;

SHIM_EXPORT int pthread_setattr_default_np(const pthread_attr_t *attr)
{
	sigset_t dm;

	size_t stacksize, guard, ssize;
	void *lo;
	int err;

	/* glibc: a default attr cannot carry a stack. */
	if (pthread_attr_getstack(attr, &lo, &ssize) == 0 && (uintptr_t)lo + ssize != 0)
		return EINVAL;
	/* glibc validates (EINVAL on bad values) and keeps its own copy, which
	 * pthread_getattr_default_np reports; we mirror the sizes we use. */
	real_init();
	err = real_pthread_setattr_default_np(attr);
	if (err)
		return err;
	if (pthread_attr_getstacksize(attr, &stacksize) == 0 &&
	    pthread_attr_getguardsize(attr, &guard) == 0)
		config_set_default_attr(stacksize, guard);
	shim_default_has_mask = pthread_attr_getsigmask_np(attr, &dm) == 0;
	if (shim_default_has_mask)
		memcpy(&shim_default_mask, &dm, sizeof shim_default_mask);
	return 0;
}
