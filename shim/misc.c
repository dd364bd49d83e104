/* shim/misc.c - calls that take a pthread_t and would otherwise reach
 * glibc with a G's address where it expects its struct pthread (reading a
 * "tid" from the wrong memory and signalling some random thread).  Every
 * pthread_t-taking function of glibc is interposed here or in thread.c /
 * join.c / attr.c, with the semantics docs/compat.md states.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "shim.h"

/* ---- names ------------------------------------------------------------ */

/* For tracebacks (rt_cfg.g_name): the name, or NULL.  Racy, no locks. */
const char *shim_g_name(g_t *g)
{
	struct thread *th = thread_of(g);

	return __atomic_load_n(&th->named, __ATOMIC_RELAXED) ? th->name : NULL;
}

SHIM_EXPORT int pthread_setname_np(pthread_t t, const char *name)
{
	struct thread *th;
	size_t len;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_setname_np)(t, name);
	if (shim_g_ended(t))
		return ENOENT;   /* glibc writes /proc/self/task/<tid>/comm */
	len = strlen(name);
	if (len >= sizeof th->name)
		return ERANGE;
	th = thread_of((g_t *)t);
	memcpy(th->name, name, len + 1);
	th->named = true;
	/* A thread naming itself also names the kernel thread it runs on,
	 * so /proc/self/task/<gettid()>/comm (what glibc's getname reads
	 * and tools show) says it while it runs there.  The M keeps the
	 * name of the last G that named itself on it. */
	if ((g_t *)t == getcurg())
		prctl(PR_SET_NAME, th->name, 0, 0, 0);
	return 0;
}

SHIM_EXPORT int pthread_getname_np(pthread_t t, char *buf, size_t len)
{
	struct thread *th;
	const char *name;
	size_t n;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_getname_np)(t, buf, len);
	if (shim_g_ended(t) && (g_t *)t != getcurg())
		return ENOENT;   /* glibc reads /proc/self/task/<tid>/comm */
	th = thread_of((g_t *)t);
	name = th->named ? th->name : shim_default_name;
	n = strnlen(name, 15);
	/* glibc refuses any buffer shorter than the kernel's TASK_COMM_LEN,
	 * whatever the name's length. */
	if (len < 16)
		return ERANGE;
	memcpy(buf, name, n);
	buf[n] = 0;
	return 0;
}

/* ---- signals ------------------------------------------------------------
 * A signal for a G goes to the kernel thread (M) that runs it, so its
 * handler runs on that G.  If the G is not running, it is delivered when
 * the G next runs (core checks sigpending on every resume). */

SHIM_EXPORT int pthread_kill(pthread_t t, int sig)
{
	g_t *g;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_kill)(t, sig);
	if (sig < 0 || sig >= NSIG || sig == SIGCANCEL || sig == SIGSETXID)
		return EINVAL;
	g = (g_t *)t;
	/* Exited but not joined (or detached and not yet freed): glibc
	 * says 0 and sends nothing; ESRCH only once the handle is gone
	 * (joined: shim_is_stale_g above). */
	if (atomic_load(&g->status) == G_DEAD || sig == 0)
		return 0;
	g_signal(g, sig);
	return 0;
}

SHIM_EXPORT int pthread_sigqueue(pthread_t t, int sig, const union sigval val)
{
	siginfo_t si;
	pid_t pid = getpid(), tid;
	g_t *g;
	m_t *m;
	long r;

	if (!shim_is_g(t))
		return ESRCH;
	if (sig < 0 || sig >= NSIG)
		return EINVAL;
	g = (g_t *)t;
	if (atomic_load(&g->status) == G_DEAD)
		return ESRCH;
	if (sig == 0)
		return 0;
	memset(&si, 0, sizeof si);
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = pid;
	si.si_uid = getuid();
	si.si_value = val;
	/* The payload cannot wait until the G runs: queue it on the M that
	 * runs it now (the caller's own M for itself), else on the process. */
	m = g->m;
	tid = m ? m->tid : 0;
	if (tid && arch_syscall6(SYS_rt_tgsigqueueinfo, pid, tid, sig, (long)&si, 0, 0) == 0)
		return 0;
	r = arch_syscall(SYS_rt_sigqueueinfo, pid, sig, &si);
	return r < 0 ? (int)-r : 0;
}

/* ---- affinity ------------------------------------------------------------
 * A G runs on whichever M has a P; pinning a G to CPUs is not supported.
 * The set is validated like the kernel does (EINVAL if it holds no CPU the
 * process may use) and otherwise ignored; get reports the process mask. */

SHIM_EXPORT int pthread_getaffinity_np(pthread_t t, size_t size, cpu_set_t *set)
{
	long r;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_getaffinity_np)(t, size, set);
	r = arch_syscall(SYS_sched_getaffinity, 0, size, set);
	if (r < 0)
		return (int)-r;
	if ((size_t)r < size)
		memset((char *)set + r, 0, size - (size_t)r);
	return 0;
}

SHIM_EXPORT int pthread_setaffinity_np(pthread_t t, size_t size,
                                       const cpu_set_t *set)
{
	cpu_set_t allowed;
	size_t i, n;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_setaffinity_np)(t, size, set);
	memset(&allowed, 0, sizeof allowed);
	if (arch_syscall(SYS_sched_getaffinity, 0, sizeof allowed, &allowed) < 0)
		return EINVAL;
	n = size < sizeof allowed ? size : sizeof allowed;
	for (i = 0; i < n; i++)
		if (((const unsigned char *)set)[i] & ((unsigned char *)&allowed)[i])
			return 0;
	return EINVAL;
}

/* ---- CPU clock -------------------------------------------------------------
 * gshim does not account CPU time per G.  The caller's own clock is its
 * M's (exact while it runs alone on that M); another G's is the process
 * clock.  Documented in docs/compat.md. */
SHIM_EXPORT int pthread_getcpuclockid(pthread_t t, clockid_t *clk)
{
	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? ESRCH : REAL(pthread_getcpuclockid)(t, clk);
	if (shim_g_ended(t) && (g_t *)t != getcurg())
		return ESRCH;
	if ((g_t *)t == getcurg()) {
		*clk = CLOCK_THREAD_CPUTIME_ID;
		return 0;
	}
	*clk = CLOCK_PROCESS_CPUTIME_ID;
	return 0;
}
