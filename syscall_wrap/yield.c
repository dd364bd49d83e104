/* syscall_wrap/yield.c - sched_yield.
 *
 * On a G, yielding means letting the other runnable G's of this P run
 * (g_yield), not asking the kernel to run another OS thread: the kernel
 * thread is the M, and the G's that want the CPU are ours to schedule.
 * Elsewhere (a thread that is not a G) it is the real system call
 * (rt_sched_yield).
 */
#include <sched.h>
#include "wrap.h"

WRAP_EXPORT int sched_yield(void)
{
	rt_sched_yield();
	return 0;
}

/* glibc's pthread.h redirects pthread_yield to sched_yield with an asm
 * label, so the definition needs its own label to get the old name. */
WRAP_EXPORT int gshim_pthread_yield(void) __asm__("pthread_yield");
int gshim_pthread_yield(void)
{
	return sched_yield();
}
