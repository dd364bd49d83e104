/* shim/init.c - bringing the runtime up.
 *
 * The constructor turns the main thread into M0 + the main G.  Other
 * libraries' constructors may run before ours (ELF init order puts a
 * preloaded library's initialiser after its own dependencies, not first)
 * and may call pthread functions.
 *
 * Only two things bring the runtime up: our constructor, and a
 * pthread_create that comes before it.  Every other entry point called
 * before then serves the main thread as a thread that is not (yet) a G:
 * mutexes owned by the id the main G will have, waits on plain futexes
 * (nothing else runs yet), keys in a boot table that becomes the main G's.
 * Why not initialise lazily from any entry, as the obvious design would:
 * initialisation calls the program's malloc (glibc's TLS allocator does),
 * and a replacement malloc (jemalloc, tcmalloc, mimalloc, the program's
 * own) calls pthread_mutex_lock, pthread_once and pthread_getspecific
 * from inside its own locks.  Initialising there re-enters that malloc
 * under its lock (tcmalloc: a self-deadlock on its spin lock) or our own
 * init lock (jemalloc).  For the same reason the runtime's own start-up
 * allocations are mmap'd, and init_tid turns a re-entry that still
 * happens into "not a G" instead of a deadlock.
 *
 * Only the main thread may bring the runtime up: a thread created behind
 * our back (glibc internals create some) is served by libc instead.
 *
 * If the runtime cannot get its start-up memory (the process starts
 * under a tiny RLIMIT_AS), sched_init changes nothing and every thread is
 * a native one for good: pthread_create is libc's, and every other entry
 * point serves threads as it serves those created behind our back - the
 * way it already must - except keys, which go to libc's (key.c), since
 * threads behind our back share one table of ours.
 */
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "shim.h"

char shim_default_name[16];
g_t *shim_main_g;
pthread_t shim_main_desc;

static _Atomic pid_t init_tid;

bool shim_init(void)
{
	pid_t tid;

	if (sched_ready())
		return true;
	if (sched_disabled())
		return false;   /* start-up failed: native threads (below) */
	tid = os_gettid();
	if (tid != getpid())
		return false;
	if (atomic_load_explicit(&init_tid, memory_order_relaxed) == tid)
		return false;   /* re-entered from below: see the essay */
	atomic_store_explicit(&init_tid, tid, memory_order_relaxed);
	real_init();
	config_load();
	rt_cfg.g_ext_size = sizeof(struct thread);
	rt_cfg.cancel_exit = shim_cancel_exit;
	rt_cfg.g_name = shim_g_name;
	/* A new thread's name is its creator's comm at creation time; take
	 * the process name as the default. */
	prctl(PR_GET_NAME, shim_default_name, 0, 0, 0);
	if (!sched_init()) {
		/* Out of memory before main (a tiny RLIMIT_AS): nothing was
		 * changed, so the program can run as it would without gshim -
		 * every thread a native one, served by libc like threads
		 * created behind our back (keys go to libc's, key.c). */
		rt_warn("out of memory at start-up (RLIMIT_AS?); threads run natively, "
		        "not on gshim's scheduler");
		atomic_store_explicit(&init_tid, 0, memory_order_relaxed);
		return false;
	}
	shim_main_g = getcurg();
	shim_sched_init_main(thread_of(shim_main_g));
	key_adopt_boot(thread_of(shim_main_g));
	atomic_store_explicit(&init_tid, 0, memory_order_relaxed);
	cancel_init();
	shim_cancel_init();
	traceback_init();
	shim_execstack_check();   /* the program or a dependency asked for it */
	/* First child handler registered: the scheduler is reset before any
	 * handler of the program runs (and may create threads). */
	pthread_atfork(sched_fork_prepare, sched_fork_parent, sched_fork_child);
	pthread_atfork(NULL, NULL, mutex_fork_child);
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

	if (!g || !g->is_main || !REAL(pthread_getattr_np))
		return;
	shim_main_desc = REAL(pthread_self)();   /* the main G's TCB: glibc's own */
	if (REAL(pthread_getattr_np)(shim_main_desc, &a) != 0)
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
