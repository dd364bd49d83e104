/* shim/init.c - bringing the runtime up.
 *
 * The constructor turns the main thread into M0 + the main G.  Other
 * libraries' constructors may run before ours (ELF init order puts a
 * preloaded library's initialiser after its own dependencies, not first)
 * and may call pthread functions; every interposed entry therefore calls
 * shim_init lazily.  Only the main thread may bring the runtime up: a
 * thread created behind our back (glibc internals create some) is served
 * by libc instead.
 */
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "shim.h"

char shim_default_name[16];

bool shim_init(void)
{
	if (sched_ready())
		return true;
	if (os_gettid() != getpid())
		return false;
	real_init();
	syscall_wrap_init();
	syscall_wrap_init_var();
	config_load();
	rt_cfg.g_ext_size = sizeof(struct thread);
	/* A new thread's name is its creator's comm at creation time; take
	 * the process name as the default. */
	prctl(PR_GET_NAME, shim_default_name, 0, 0, 0);
	sched_init();
	cancel_init();
	/* First child handler registered: the scheduler is reset before any
	 * handler of the program runs (and may create threads). */
	pthread_atfork(sched_fork_prepare, sched_fork_parent, sched_fork_child);
	return true;
}

/* Main G extras once it exists: its stack bounds as glibc reports them
 * (runtimes read them with pthread_getattr_np). */
static void main_stack_bounds(void)
{
	g_t *g = getcurg();
	pthread_attr_t a;
	void *addr;
	size_t size;

	if (!g || !g->is_main || !real_pthread_getattr_np)
		return;
	if (real_pthread_getattr_np(real_pthread_self(), &a) != 0)
		return;
	if (pthread_attr_getstack(&a, &addr, &size) == 0) {
		g->stack.lo = (uintptr_t)addr;
		g->stack.hi = (uintptr_t)addr + size;
		g->stack.guard = 0;
		g->stack.flags = 0;
	}
	pthread_attr_destroy(&a);
}

__attribute__((constructor(101)))
static void gshim_ctor(void)
{
	if (shim_init())
		main_stack_bounds();
}
