/* shim/thread.c - pthread_create, pthread_exit, pthread_self, pthread_equal.
 *
 * A pthread_t handed out by gshim is the address of the thread's G.  A
 * pthread_t that is not one (a thread libc created behind our back, e.g.
 * for SIGEV_THREAD timers) is passed to libc untouched, so mixed programs
 * keep working.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include "shim.h"


static void thread_entry(void *arg)
{
	g_t *g = arg;
	struct thread *t = thread_of(g);
	__pthread_unwind_buf_t base;
	void *ret, *jb = base.__cancel_jmp_buf;

	/* Where glibc's own cancellation unwinding ends (cancel.c).  The
	 * buffer has no signal-mask tail (as the cleanup macros' own): the
	 * size is hidden from the compiler's object-size checks. */
	__asm__("" : "+r"(jb));
	if (__sigsetjmp(jb, 0)) {
		cancel_glibc_landed(g);
		thread_exit(g, PTHREAD_CANCELED);
	}
	cancel_thread_start(g, &base);
	if (setjmp(t->exit_jb) == 0) {
		t->exit_jb_set = true;
		ret = t->start(t->arg);
	} else {
		ret = t->exit_value;   /* pthread_exit: frames unwound, landed */
	}
	t->exit_jb_set = false;
	thread_exit(g, ret);
}

/* ---- pthread_exit unwinding ---------------------------------------------
 * glibc's pthread_exit unwinds the thread's stack with
 * _Unwind_ForcedUnwind, so C++ destructors and the C++ form of
 * pthread_cleanup_push (a class whose destructor runs the handler) run;
 * its stop function longjmps back into start_thread at the end of the
 * stack.  Same here, landing in thread_entry.  libgcc_s is looked up at
 * run time, as glibc does; without it the thread exits without unwinding.
 * The C form of pthread_cleanup_push (no exceptions) keeps its own chain
 * of setjmp buffers (cancel.c): the stop function jumps into the
 * innermost one when the unwinding reaches the frame that pushed it, as
 * glibc's does, so C handlers, C++ destructors and libc's own cleanups
 * (stdio locks) run innermost first, interleaved as the frames are. */
typedef int (*unwind_fn)(void *, void *, void *);
static unwind_fn forced_unwind;
static uintptr_t (*get_cfa)(void *);
static _Atomic int forced_unwind_looked;

#define UA_END_OF_STACK 16   /* _UA_END_OF_STACK, unwind.h */

static int unwind_stop(int version, int actions, uint64_t cls, void *exc,
                       void *context, void *arg)
{
	struct thread *t = arg;
	uintptr_t cfa = context ? get_cfa(context) : 0;

	(void)version; (void)cls; (void)exc;
	/* Once initialisers left by this unwinding are reset as their frame
	 * is passed (glibc runs a cleanup there), before outer handlers. */
	if (t->onces && cfa)
		once_unwound(t, cfa);
	/* Old-style handlers of frames below this one (below the C buffer
	 * about to be jumped into, if that comes first). */
	cancel_old_cleanups(getcurg(), t->cleanup && (uintptr_t)t->cleanup < cfa ?
	                    (uintptr_t)t->cleanup : (actions & UA_END_OF_STACK) ? UINTPTR_MAX : cfa);
	/* A C cleanup buffer lives in the frame that pushed it: this frame
	 * is it (or beyond it) once the buffer lies below its CFA.  Its
	 * handler runs there; __pthread_unwind_next unwinds on. */
	if (t->cleanup && (!cfa || (uintptr_t)t->cleanup < cfa || (actions & UA_END_OF_STACK)))
		cleanup_jump(getcurg());
	if (actions & UA_END_OF_STACK) {
		if (t->exit_jb_set)
			longjmp(t->exit_jb, 1);
		/* The main thread: past main there is no frame of ours to
		 * land in; exit from here (nothing below is used again). */
		thread_exit(getcurg(), t->exit_value);
	}
	return 0;   /* _URC_NO_REASON: keep unwinding */
}

_Noreturn void thread_unwind_exit(g_t *g, void *retval)
{
	struct thread *t = thread_of(g);

	/* From a handler inside a wrapped call (cancelled there, or
	 * pthread_exit): that call will not return to close its bracket. */
	g_call_abandon();
	t->exit_value = retval;
	if (t->exit_jb_set || g->is_main) {
		int zero = 0;

		/* 0 not looked up, 1 being looked up, 2 done */
		if (atomic_compare_exchange_strong(&forced_unwind_looked, &zero, 1)) {
			void *h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NOLOAD);

			if (!h)
				h = dlopen("libgcc_s.so.1", RTLD_NOW);
			if (h) {
				get_cfa = (uintptr_t (*)(void *))dlsym(h, "_Unwind_GetCFA");
				forced_unwind = (unwind_fn)dlsym(h, "_Unwind_ForcedUnwind");
			}
			atomic_store(&forced_unwind_looked, 2);
		}
		while (atomic_load(&forced_unwind_looked) != 2)
			g_yield();
		if (forced_unwind && get_cfa) {
			memset(t->unwind_exc, 0, sizeof t->unwind_exc);
			/* exception_class: glibc's "GNUCSUSD" for thread exit */
			memcpy(t->unwind_exc, "DSUSCNUG", 8);
			forced_unwind(t->unwind_exc, (void *)unwind_stop, t);
			/* only returns if unwinding could not even start */
		}
	}
	if (t->cleanup)
		cleanup_jump(g);   /* no unwinder: the C buffers alone */
	thread_exit(g, retval);
}

_Noreturn void thread_exit(g_t *g, void *retval)
{
	struct thread *t = thread_of(g);

	preempt_async_clear(g);
	if (t->onces)
		once_abandon(t);
	if (t->keys_used)
		key_run_destructors(t);
	if (t->robust)
		mutex_robust_exit(t);
	mutex_pshared_exit(t);
	/* C++ thread_local destructors and the thread's locale live in its
	 * own TLS: only per-G TLS has them per thread.  Not for main: glibc
	 * runs no thread_local destructors when the main thread calls
	 * pthread_exit (nor later at exit(), which runs the exiting
	 * thread's), and main's TCB is glibc's own, never reused. */
	if (rt_tls_per_g() && !g->is_main)
		tls_exit();
	g_exit(retval);
}

/* pthread_create with PTHREAD_EXPLICIT_SCHED: the attr's policy and
 * priority (the creator's for the one not set), checked as the kernel
 * checks glibc's sched_setscheduler on the new thread. */
static int create_sched(struct thread *t, const struct thread *parent,
                        const pthread_attr_t *attr)
{
	const struct glibc_attr_head *h = (const void *)attr;
	struct sched_param param;
	int policy, flags = GATTR_SCHED_SET | GATTR_POLICY_SET;

	if (pthread_attr_getschedpolicy(attr, &policy) != 0 ||
	    pthread_attr_getschedparam(attr, &param) != 0)
		return EINVAL;
	if ((h->flags & GATTR_NOTINHERITSCHED) && h->schedpolicy == policy &&
	    h->schedparam.sched_priority == param.sched_priority)
		flags = h->flags;
	if (!(flags & GATTR_POLICY_SET))
		policy = parent->policy;
	if (!(flags & GATTR_SCHED_SET))
		param = parent->param;
	return shim_sched_explicit(t, parent, policy, &param);
}

/* pthread_attr_setaffinity_np: glibc applies the set to the new thread
 * (sched_setaffinity) and fails the creation with the kernel's EINVAL if
 * the set holds no CPU the thread may use.  G's are not pinned (see
 * pthread_setaffinity_np in misc.c), but the answer is the same. */
static int create_affinity(const pthread_attr_t *attr)
{
	static unsigned char set[1024], allowed[1024];
	static _Atomic uint32_t lock;
	size_t i;
	int err = 0;
	bool all = true, any = false;

	/* Rare (an attr with an affinity is the only user): a spin lock
	 * keeps the 2 KiB off the G's stack. */
	while (atomic_exchange_explicit(&lock, 1, memory_order_acquire))
		os_sched_yield();
	if (pthread_attr_getaffinity_np(attr, sizeof set, (cpu_set_t *)set) != 0) {
		err = EINVAL;
		goto out;
	}
	for (i = 0; i < sizeof set && all; i++)
		all = set[i] == 0xff;
	if (all)
		goto out;   /* no affinity in the attr (glibc reports all ones) */
	memset(allowed, 0, sizeof allowed);
	if (arch_syscall(SYS_sched_getaffinity, 0, sizeof allowed, allowed) < 0) {
		err = EINVAL;
		goto out;
	}
	for (i = 0; i < sizeof set && !any; i++)
		any = (set[i] & allowed[i]) != 0;
	if (!any)
		err = EINVAL;
out:
	atomic_store_explicit(&lock, 0, memory_order_release);
	return err;
}

static int create_attr(pthread_t *th, const pthread_attr_t *attr,
                       void *(*fn)(void *), void *arg)
{
	size_t stacksize = config_default_stack();
	size_t guard = config_default_guard();
	int detach = PTHREAD_CREATE_JOINABLE, inherit = PTHREAD_INHERIT_SCHED;
	int err = 0, sigset_err = PTHREAD_ATTR_NO_SIGMASK_NP;
	gstack_t user, *userp = NULL;
	sigset_t attr_mask;
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
		    pthread_attr_getinheritsched(attr, &inherit) != 0 ||
		    pthread_attr_getstack(attr, &lo, &ssize) != 0)
			return EINVAL;
		/* A size of 0 in the attr (fresh from pthread_attr_init)
		 * means "the default", which getstacksize reports as glibc's
		 * copy; ours is the one that counts (GSHIM_STACK_SIZE, kept
		 * in step with glibc's by config.c and attr.c). */
		if (((const struct glibc_attr_head *)attr)->stacksize == 0)
			stacksize = config_default_stack();
		/* getstack reports stackaddr - stacksize; stackaddr is NULL
		 * unless setstack/setstackaddr ran, so lo + size == 0. */
		if ((uintptr_t)lo + ssize != 0) {
			stack_user(&user, lo, ssize);
			userp = &user;
		}
		/* A signal mask or a CPU set lives in glibc's attr extension;
		 * most attrs have none, and then neither needs reading (when
		 * the layout reads back what the API said: else read both). */
		const struct glibc_attr_head *h = (const void *)attr;
		if (h->extension || h->guardsize != guard ||
		    (h->stacksize != stacksize && h->stacksize != 0)) {
			sigset_err = pthread_attr_getsigmask_np(attr, &attr_mask);
			err = create_affinity(attr);
			if (err)
				return err;
		}
	}
	g = g_alloc(stacksize, guard, userp, &err);
	if (!g) {
		err = err ? err : EAGAIN;
		/* Out of memory for a stack (RLIMIT_AS, overcommit): often only
		 * until threads that are runnable now end and leave theirs.
		 * Natively the kernel runs them while the caller retries; here
		 * they wait for this P, so give it to them before returning
		 * (a creator looping on EAGAIN would otherwise never let them
		 * run at GOMAXPROCS=1: tst-create-detached). */
		if (err == EAGAIN && self)
			g_yield();
		return err;
	}
	if (rt_tls_per_g() && !tls_new(g)) {
		g_free(g);
		return EAGAIN;
	}
	t = thread_of(g);
	t->start = fn;
	t->arg = arg;
	/* glibc reports the sizes asked for (the stack size aligned down to
	 * 64 bytes, the guard rounded up to pages), not gshim's mapping,
	 * whose size is page-rounded and whose guard may have been dropped
	 * (past the guard budget, arch/stack.c). */
	t->req_stacksize = userp ? 0 : (stacksize & ~(size_t)63);
	t->req_guard = userp ? 0 : (guard + stack_page_size() - 1) & ~(stack_page_size() - 1);
	/* A new thread inherits its creator's scheduling settings and
	 * signal mask, unless the attr says otherwise. */
	if (self) {
		parent = thread_of(self);
		t->policy = parent->policy;
		t->param = parent->param;
		g->sigmask = self->sigmask;
		if (inherit == PTHREAD_EXPLICIT_SCHED) {
			t->explicit_sched = true;
			err = create_sched(t, parent, attr);
			if (err) {
				g_free(g);   /* its TCB stays with it, as above */
				return err;
			}
		}
	} else {
		arch_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&g->sigmask, 8, 0, 0);
	}
	if (sigset_err == 0) {
		uint64_t m;

		/* As the kernel: SIGKILL and SIGSTOP cannot be blocked. */
		memcpy(&m, &attr_mask, sizeof m);
		g->sigmask = m & ~SIG_INTERNAL &
		             ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
	}
	if (detach == PTHREAD_CREATE_DETACHED)
		g_mark_detached(g);
	/* The new thread may run (on another M) before we return, and may
	 * read *th through a shared variable: store it first. */
	*th = (pthread_t)g;
	g_start_new(g, thread_entry, g);
	return 0;
}

int thread_create(pthread_t *th, const pthread_attr_t *attr,
                  void *(*fn)(void *), void *arg)
{
	pthread_attr_t dflt;
	int err;

	/* No attr: glibc's default attributes, which the program may have
	 * changed (detach state, CPU set, scheduling: attr.c). */
	if (!attr && shim_default_attr(&dflt)) {
		err = create_attr(th, &dflt, fn, arg);
		pthread_attr_destroy(&dflt);
		return err;
	}
	return create_attr(th, attr, fn, arg);
}

SHIM_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr,
                               void *(*fn)(void *), void *arg)
{
	/* Creating a thread is what brings the runtime up if our constructor
	 * has not run yet (another library's constructor creating one). */
	if (!shim_self() && !shim_init())
		return REAL(pthread_create)(th, attr, fn, arg);
	return thread_create(th, attr, fn, arg);
}

/* The C cleanup handlers run first (cancel.c), then C++ frames unwind. */
SHIM_EXPORT void pthread_exit(void *retval)
{
	g_t *g = shim_self();

	if (!g)
		REAL(pthread_exit)(retval);
	thread_of(g)->exit_value = retval;
	cleanup_unwind(g);
}

SHIM_EXPORT pthread_t pthread_self(void)
{
	g_t *g = shim_self();

	return g ? (pthread_t)g : REAL(pthread_self)();
}

SHIM_EXPORT int pthread_equal(pthread_t a, pthread_t b)
{
	return a == b;
}
