/* shim/sched.c - scheduling policy and priority of threads.
 *
 * A kernel scheduling policy belongs to a kernel thread, and a G has none
 * of its own: applying SCHED_FIFO to the M that happens to run the G
 * would hand that priority to every G the M runs afterwards, and leave the
 * G without it once it migrates.  So gshim never passes a thread's policy
 * to the kernel.  What it does instead:
 *
 *  - checks a request the way the kernel would have checked it for that
 *    thread, so a program gets the same answers as natively: EINVAL for an
 *    unknown policy or a priority outside sched_get_priority_min/max of the
 *    policy (so also for an attr whose priority was set under another
 *    policy), EPERM when the caller may not (sched_perm below: the
 *    kernel's rules, CAP_SYS_NICE or RLIMIT_RTPRIO / RLIMIT_NICE);
 *  - remembers the policy and priority per thread (struct thread) and
 *    reports them back: pthread_getschedparam, pthread_getattr_np, and
 *    sched_getscheduler/sched_getparam of the calling thread;
 *  - a new thread inherits its creator's settings, or takes the attr's
 *    with PTHREAD_EXPLICIT_SCHED (thread.c, shim_sched_explicit).
 *
 * The order in which G's run does not follow priorities: every G is
 * queued FIFO on its P, as SCHED_OTHER threads of equal weight would be.
 * Giving real-time G's a queue of their own per P was considered and left
 * out: a priority that only orders G's inside one P (and not across the
 * P's, nor against the kernel's other threads) would promise what it
 * cannot keep, and the programs that depend on SCHED_FIFO ordering are
 * the ones that pin themselves to one CPU and expect strict preemption by
 * a higher priority, which a cooperative switch cannot give anyway.
 *
 * sched_setscheduler, sched_setparam, sched_getscheduler and
 * sched_getparam name a kernel thread id.  0 and the calling M's tid mean
 * the calling thread (the program asked for its own), getpid() the main
 * thread (whose tid it is natively); any other id is another process or a
 * thread gshim does not run, and goes to the kernel.
 */
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "shim.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif

static bool rt_policy(int policy)
{
	return policy == SCHED_FIFO || policy == SCHED_RR;
}

/* EINVAL rules of sched_setscheduler(2): a known policy (SCHED_DEADLINE
 * needs sched_setattr and is refused here too) and a priority in the
 * policy's range: 1..99 for FIFO/RR, 0 for the others. */
int shim_sched_check(int policy, const struct sched_param *param)
{
	int lo, hi;

	if (!param)
		return EINVAL;
	switch (policy & ~SCHED_RESET_ON_FORK) {
	case SCHED_OTHER: case SCHED_BATCH: case SCHED_IDLE:
	case SCHED_FIFO: case SCHED_RR:
		break;
	default:
		return EINVAL;
	}
	lo = sched_get_priority_min(policy & ~SCHED_RESET_ON_FORK);
	hi = sched_get_priority_max(policy & ~SCHED_RESET_ON_FORK);
	if (param->sched_priority < lo || param->sched_priority > hi)
		return EINVAL;
	return 0;
}

/* Does the calling kernel thread have CAP_SYS_NICE in its effective set?
 * (Capabilities are per kernel thread; gshim's M's all start from the
 * main thread's, and a program that changes its own moves them all
 * through glibc's setxid broadcast only for setuid & co.  Close enough:
 * a program that drops CAP_SYS_NICE with capset in one thread is rare.) */
static bool cap_sys_nice(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (arch_syscall(SYS_capget, &h, d, 0) != 0)
		return false;
	return (d[CAP_SYS_NICE / 32].effective >> (CAP_SYS_NICE % 32)) & 1;
}

static unsigned long rlim_cur(int res)
{
	struct rlimit rl;

	if (arch_syscall(SYS_getrlimit, res, &rl, 0) != 0)
		return 0;
	return rl.rlim_cur;
}

/* The kernel's permission rules for changing a thread from (cur_policy,
 * cur_prio) to (policy, prio) without CAP_SYS_NICE: a real-time policy
 * only with a non-zero RLIMIT_RTPRIO, a priority raised only up to it;
 * leaving SCHED_IDLE only if RLIMIT_NICE would allow nice 0 (20 - nice
 * <= the limit); SCHED_DEADLINE never.  Lowering is always allowed. */
int shim_sched_perm(int cur_policy, int cur_prio, int policy, int prio)
{
	policy &= ~SCHED_RESET_ON_FORK;
	cur_policy &= ~SCHED_RESET_ON_FORK;
	if (cap_sys_nice())
		return 0;
	if (rt_policy(policy)) {
		unsigned long lim = rlim_cur(RLIMIT_RTPRIO);

		if (policy != cur_policy && lim == 0)
			return EPERM;
		if (prio > (rt_policy(cur_policy) ? cur_prio : 0) &&
		    (unsigned long)prio > lim)
			return EPERM;
	}
	if (policy == SCHED_DEADLINE)
		return EPERM;
	if (cur_policy == SCHED_IDLE && policy != SCHED_IDLE &&
	    rlim_cur(RLIMIT_NICE) < 20)
		return EPERM;
	return 0;
}

/* Give thread t policy and param as sched_setscheduler would on a thread
 * that has from's settings: EINVAL, EPERM, or done. */
static int sched_apply(struct thread *t, const struct thread *from, int policy,
                       const struct sched_param *param)
{
	int err = shim_sched_check(policy, param);

	if (!err)
		err = shim_sched_perm(from->policy, from->param.sched_priority,
		                      policy, param->sched_priority);
	if (err)
		return err;
	t->policy = policy & ~SCHED_RESET_ON_FORK;
	t->param = *param;
	return 0;
}

/* Change thread t as sched_setscheduler would. */
static int sched_set(struct thread *t, int policy, const struct sched_param *param)
{
	return sched_apply(t, t, policy, param);
}

/* The main thread's settings when the runtime comes up: what the kernel
 * has for it (chrt, an inherited policy). */
void shim_sched_init_main(struct thread *t)
{
	long pol = arch_syscall(SYS_sched_getscheduler, 0, 0, 0);

	if (pol >= 0)
		t->policy = (int)pol & ~SCHED_RESET_ON_FORK;
	if (arch_syscall(SYS_sched_getparam, 0, &t->param, 0) != 0)
		t->param.sched_priority = 0;
}

/* The attr of pthread_create with PTHREAD_EXPLICIT_SCHED: the policy and
 * priority the new thread gets, checked as glibc's pthread_create checks
 * them (it calls sched_setscheduler on the new thread, which still has
 * its creator's settings).  The setters validated each value on its own,
 * but not the pair: a priority set under SCHED_FIFO stays in the attr
 * when the policy becomes SCHED_OTHER (EINVAL here, as natively). */
int shim_sched_explicit(struct thread *t, const struct thread *parent,
                        int policy, const struct sched_param *param)
{
	return sched_apply(t, parent, policy, param);
}

SHIM_EXPORT int pthread_getschedparam(pthread_t t, int *policy,
                                      struct sched_param *param)
{
	struct thread *th;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_getschedparam)(t, policy, param);
	if (shim_g_ended(t) && (g_t *)t != getcurg())
		return ESRCH;   /* glibc: the kernel cleared the tid */
	th = thread_of((g_t *)t);
	*policy = th->policy;
	*param = th->param;
	return 0;
}

SHIM_EXPORT int pthread_setschedparam(pthread_t t, int policy,
                                      const struct sched_param *param)
{
	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_setschedparam)(t, policy, param);
	if (shim_g_ended(t) && (g_t *)t != getcurg())
		return ESRCH;
	return sched_set(thread_of((g_t *)t), policy, param);
}

SHIM_EXPORT int pthread_setschedprio(pthread_t t, int prio)
{
	struct thread *th;
	struct sched_param sp = { .sched_priority = prio };

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_setschedprio)(t, prio);
	if (shim_g_ended(t) && (g_t *)t != getcurg())
		return ESRCH;
	th = thread_of((g_t *)t);
	return sched_set(th, th->policy, &sp);
}

/* ---- the sched_* calls on a thread id ------------------------------------ */

/* The G a kernel id names, or NULL for the kernel's business. */
static g_t *sched_target(pid_t pid)
{
	g_t *self = shim_self();

	if (!self)
		return NULL;
	if (pid == 0 || (self->m && pid == self->m->tid))
		return self;
	if (pid == getpid())
		return shim_main_g;
	return NULL;
}

static int sched_ret(int err)
{
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

SHIM_EXPORT int sched_setscheduler(pid_t pid, int policy,
                                   const struct sched_param *param)
{
	g_t *g;
	long r;

	if (pid < 0 || !param)
		return sched_ret(EINVAL);
	g = sched_target(pid);
	if (g)
		return sched_ret(sched_set(thread_of(g), policy, param));
	r = arch_syscall(SYS_sched_setscheduler, pid, policy, param);
	return sched_ret(r < 0 ? (int)-r : 0);
}

SHIM_EXPORT int sched_setparam(pid_t pid, const struct sched_param *param)
{
	g_t *g;
	long r;

	if (pid < 0 || !param)
		return sched_ret(EINVAL);
	g = sched_target(pid);
	if (g)
		return sched_ret(sched_set(thread_of(g), thread_of(g)->policy, param));
	r = arch_syscall(SYS_sched_setparam, pid, param, 0);
	return sched_ret(r < 0 ? (int)-r : 0);
}

SHIM_EXPORT int sched_getscheduler(pid_t pid)
{
	g_t *g;
	long r;

	if (pid < 0)
		return sched_ret(EINVAL);
	g = sched_target(pid);
	if (g)
		return thread_of(g)->policy;
	r = arch_syscall(SYS_sched_getscheduler, pid, 0, 0);
	return r < 0 ? sched_ret((int)-r) : (int)r;
}

SHIM_EXPORT int sched_getparam(pid_t pid, struct sched_param *param)
{
	g_t *g;
	long r;

	if (pid < 0 || !param)
		return sched_ret(EINVAL);
	g = sched_target(pid);
	if (g) {
		*param = thread_of(g)->param;
		return 0;
	}
	r = arch_syscall(SYS_sched_getparam, pid, param, 0);
	return sched_ret(r < 0 ? (int)-r : 0);
}
