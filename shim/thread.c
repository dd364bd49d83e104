/* shim/thread.c - pthread_create, pthread_exit, pthread_self, pthread_equal.
 *
 * A pthread_t handed out by gshim is the address of the thread's G.  A
 * pthread_t that is not one (a thread libc created behind our back, e.g.
 * for SIGEV_THREAD timers) is passed to libc untouched, so mixed programs
 * keep working.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include "shim.h"


static void thread_entry(void *arg)
{
	g_t *g = arg;
	struct thread *t = thread_of(g);

	thread_exit(g, t->start(t->arg));
}

_Noreturn void thread_exit(g_t *g, void *retval)
{
	struct thread *t = thread_of(g);

	if (t->onces)
		once_abandon(t);
	if (t->keys_used)
		key_run_destructors(t);
	if (t->robust)
		mutex_robust_exit(t);
	/* C++ thread_local destructors and the thread's locale live in its
	 * own TLS: only per-G TLS has them per thread. */
	if (rt_cfg.tls_mode == TLS_PER_G)
		tls_exit();
	g_exit(retval);
}

int thread_create(pthread_t *th, const pthread_attr_t *attr,
                  void *(*fn)(void *), void *arg)
{
	size_t stacksize = config_default_stack();
	size_t guard = config_default_guard();
	int detach = PTHREAD_CREATE_JOINABLE, err = 0;
	gstack_t user, *userp = NULL;
	struct thread *t, *parent;
	g_t *g, *self = getcurg();

	if (attr) {
		void *lo;
		size_t ssize;

		/* attr was validated by glibc's setters; read it back the
		 * documented way.  stackaddr is NULL unless setstack ran. */
		if (pthread_attr_getstacksize(attr, &stacksize) != 0 ||
		    pthread_attr_getguardsize(attr, &guard) != 0 ||
		    pthread_attr_getdetachstate(attr, &detach) != 0 ||
		    pthread_attr_getstack(attr, &lo, &ssize) != 0)
			return EINVAL;
		/* getstack reports stackaddr - stacksize; stackaddr is NULL
		 * unless setstack/setstackaddr ran, so lo + size == 0. */
		if ((uintptr_t)lo + ssize != 0) {
			stack_user(&user, lo, ssize);
			userp = &user;
		}
	}
	g = g_alloc(stacksize, guard, userp, &err);
	if (!g)
		return err ? err : EAGAIN;
	if (rt_cfg.tls_mode == TLS_PER_G && !tls_new(g)) {
		g_free(g);
		return EAGAIN;
	}
	t = thread_of(g);
	t->start = fn;
	t->arg = arg;
	/* A new thread inherits its creator's scheduling settings and
	 * signal mask. */
	if (self) {
		parent = thread_of(self);
		t->policy = parent->policy;
		t->param = parent->param;
		g->sigmask = self->sigmask;
	} else {
		arch_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&g->sigmask, 8, 0, 0);
	}
	if (detach == PTHREAD_CREATE_DETACHED)
		g_mark_detached(g);
	/* The new thread may run (on another M) before we return, and may
	 * read *th through a shared variable: store it first. */
	*th = (pthread_t)g;
	g_start_new(g, thread_entry, g);
	return 0;
}

SHIM_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr,
                               void *(*fn)(void *), void *arg)
{
	if (!shim_self() && !sched_ready())
		return real_pthread_create(th, attr, fn, arg);
	return thread_create(th, attr, fn, arg);
}

SHIM_EXPORT void pthread_exit(void *retval)
{
	g_t *g = shim_self();

	if (!g)
		real_pthread_exit(retval);
	thread_exit(g, retval);
}

SHIM_EXPORT pthread_t pthread_self(void)
{
	g_t *g = shim_self();

	return g ? (pthread_t)g : real_pthread_self();
}

SHIM_EXPORT int pthread_equal(pthread_t a, pthread_t b)
{
	return a == b;
}
