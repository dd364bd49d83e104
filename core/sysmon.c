/* core/sysmon.c - the system monitor (Go's sysmon).
 *
 * A thread of its own, with no P, that never runs G's.  It wakes every
 * 20 us while there is something to watch, backing off to 10 ms when
 * several rounds in a row found nothing (Go's numbers: short enough that
 * a P stuck in a system call is handed off within a tick or two, long
 * enough that an idle process costs nothing measurable).
 *
 * retake: a P that has been in P_SYSCALL for a whole tick (its
 * syscalltick did not move) is handed to another M when work is waiting
 * for it (its run queue or the global one is not empty, or no M is
 * spinning and no P is idle, so nobody would pick new work up), or when
 * the call has lasted 10 ms: the M in the kernel keeps only its G.
 *
 * Planned here (issue 5): retaking P's from M's blocked in calls gshim
 * does not wrap, and preemption of G's that run for more than 10 ms.
 */
#include <time.h>
#include <sys/prctl.h>
#include "rt.h"

#define SYSMON_MIN_NS   20000          /* 20 us */
#define SYSMON_MAX_NS   10000000       /* 10 ms */
#define FORCE_RETAKE_NS 10000000       /* a call this long always loses its P */

static bool retake(int64_t now)
{
	bool took = false;
	int i;

	for (i = 0; i < sched.nprocs; i++) {
		p_t *p = &sched.allp[i];
		uint32_t st = atomic_load_explicit(&p->status, memory_order_acquire);
		uint32_t tick;

		if (st != P_SYSCALL)
			continue;
		tick = __atomic_load_n(&p->syscalltick, __ATOMIC_RELAXED);
		if (tick != p->sm_syscalltick) {
			p->sm_syscalltick = tick;
			p->sm_when = now;
			continue;
		}
		if (runq_empty(p) &&
		    atomic_load_explicit(&sched.runqsize, memory_order_relaxed) == 0 &&
		    atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) > 0 &&
		    now - p->sm_when < FORCE_RETAKE_NS)
			continue;
		if (p_retake_syscall(p))
			took = true;
	}
	return took;
}

static void *sysmon(void *arg)
{
	int64_t delay = SYSMON_MIN_NS;
	int idle = 0;
	uint32_t never = 0;

	(void)arg;
	os_block_all_signals();
	prctl(PR_SET_NAME, "gshim-sysmon", 0, 0, 0);   /* visible in ps -L, top -H */
	for (;;) {
		os_futex_wait(&never, 0, delay);
		if (retake(os_nanotime())) {
			idle = 0;
			delay = SYSMON_MIN_NS;
			continue;
		}
		if (++idle > 50 && delay < SYSMON_MAX_NS)
			delay *= 2;
		if (delay > SYSMON_MAX_NS)
			delay = SYSMON_MAX_NS;
		/* Anything in a syscall keeps us looking closely. */
		for (int i = 0; i < sched.nprocs; i++)
			if (atomic_load_explicit(&sched.allp[i].status, memory_order_relaxed) == P_SYSCALL) {
				delay = SYSMON_MIN_NS;
				idle = 0;
				break;
			}
	}
	return NULL;
}

static _Atomic int started;

/* Started by the first blocking call, not at start-up: a short-lived
 * program that never blocks (ls, true) never pays for the thread. */
void sysmon_start(void)
{
	int zero = 0;

	if (__builtin_expect(atomic_load_explicit(&started, memory_order_relaxed), 1) ||
	    !atomic_compare_exchange_strong(&started, &zero, 1))
		return;
	if (os_thread_start(sysmon, NULL, 64 * 1024) != 0)
		rt_warn("cannot start sysmon: blocking calls may hold their P");
}

void sysmon_fork_child(void)
{
	atomic_store(&started, 0);   /* the thread did not survive fork */
}
