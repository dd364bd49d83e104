/* shim/signal.c - per-thread signal masks and waiting for signals.
 *
 * The kernel keeps one signal mask per kernel thread, i.e. per M.  Each G
 * keeps its own (g->sigmask); the scheduler loads a G's mask into its M
 * when they differ (core/sched_int.h, sigmask_apply), so a process-directed
 * signal the kernel gives to an M running a G is one that G accepts, and
 * a G that blocks a signal does not get it while it runs.  What a G
 * accepts while it has no M (parked, or runnable) is taken by the
 * runtime's signal thread and handed to it (core/signal.c).  Programs that
 * never touch masks pay nothing.
 *
 * sigwait and friends block in the kernel (rt_sigtimedwait) on the G's
 * M, after handing the P to another M (g_block_enter), so other G's keep
 * running.  A signal made pending for the G meanwhile - pthread_kill, or
 * a process-directed one the signal thread picked this waiter for - ends
 * that wait through g->sigwake (the flag the cancellation-point syscall
 * checks, set before a SIGCANCEL kick) and is taken from sigpending.  The
 * kernel wait leaves out the signals the signal thread takes (sig_taken),
 * so the two never wait for the same one.
 *
 * raise() is pthread_kill(pthread_self()): pending on the G, not on its M,
 * when the G blocks it.
 *
 * glibc never lets a program block its two internal signals (SIGCANCEL
 * and SIGSETXID: 32 and 33); neither do we.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "shim.h"

#define INTERNAL_SIGS SIG_INTERNAL

static uint64_t to_mask(const sigset_t *set)
{
	uint64_t m;

	memcpy(&m, set, sizeof m);
	return m;
}

static void from_mask(sigset_t *set, uint64_t m)
{
	sigemptyset(set);
	memcpy(set, &m, sizeof m);
}

static int set_mask(g_t *g, int how, const sigset_t *set, sigset_t *old)
{
	uint64_t cur = g->sigmask, m;

	if (old)
		from_mask(old, cur);
	if (!set)
		return 0;
	m = to_mask(set);
	switch (how) {
	case SIG_BLOCK: cur |= m; break;
	case SIG_UNBLOCK: cur &= ~m; break;
	case SIG_SETMASK: cur = m; break;
	default: return EINVAL;
	}
	g_setmask(g, cur & ~INTERNAL_SIGS);
	return 0;
}

SHIM_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	g_t *g = shim_self();
	long r;

	if (!g) {
		r = arch_syscall6(SYS_rt_sigprocmask, how, (long)set, (long)old, 8, 0, 0);
		return r < 0 ? (int)-r : 0;
	}
	return set_mask(g, how, set, old);
}

SHIM_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	int err = pthread_sigmask(how, set, old);

	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* A signal in set already sent to this G with pthread_kill and not yet
 * raised: take it.  0 if none. */
static int take_pending(g_t *g, uint64_t set)
{
	uint64_t p = atomic_load(&g->sigpending) & set;
	int sig;

	if (!p)
		return 0;
	sig = __builtin_ctzll(p) + 1;
	atomic_fetch_and(&g->sigpending, ~(1ull << (sig - 1)));
	return sig;
}

/* rt_sigtimedwait on this M with the P handed off.  Returns the signal
 * number or -errno.  A signal made pending for this G while it waits
 * (pthread_kill, or a process-directed one the receiver hands it,
 * core/signal.c) ends the kernel wait through sigwake (g_signal), and is
 * taken from sigpending on the next round; the kernel's own delivery to
 * this M ends it directly. */
static int wait_sig(const sigset_t *set, siginfo_t *info, const struct timespec *ts)
{
	g_t *g = shim_self();
	uint64_t want = to_mask(set) & ~INTERNAL_SIGS, kset;
	int64_t deadline = ts ? os_nanotime() + (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec : -1;
	long r;
	int sig;

	if (!g)
		return (int)arch_syscall6(SYS_rt_sigtimedwait, (long)&want, (long)info, (long)ts, 8, 0, 0);
	cancel_point(g);   /* sigwait & co. are cancellation points */
	for (;;) {
		struct timespec left, *lp = NULL;

		atomic_store_explicit(&g->sigwake, 0, memory_order_relaxed);
		atomic_store_explicit(&g->sigstray, 0, memory_order_relaxed);
		atomic_fetch_add_explicit(&g->sigwait_seq, 1, memory_order_relaxed);
		/* Published before looking at sigpending and the cancel
		 * request: Dekker with g_signal and pthread_cancel. */
		atomic_store_explicit(&g->sigwait_set, want ? want : 1ull << (SIGCANCEL - 1),
		                      memory_order_seq_cst);
		cancel_point(g);
		if ((sig = take_pending(g, want)) != 0) {
			atomic_store_explicit(&g->sigwait_set, 0, memory_order_relaxed);
			if (info) {
				memset(info, 0, sizeof *info);
				info->si_signo = sig;
				info->si_code = SI_TKILL;
				info->si_pid = getpid();
				info->si_uid = getuid();
			}
			return sig;
		}
		if (deadline >= 0) {
			int64_t ns = deadline - os_nanotime();

			if (ns < 0)
				ns = 0;
			left.tv_sec = ns / 1000000000;
			left.tv_nsec = ns % 1000000000;
			lp = &left;
		}
		/* The signals the receiver takes come through sigpending
		 * (g_signal picks sigwaiters first); the kernel wait is for
		 * the rest, so that the two never wait for the same one. */
		kset = want & ~sig_taken();
		g_block_enter();
		r = cancel_syscall(g, SYS_rt_sigtimedwait, (long)&kset, (long)info, (long)lp, 8, 0, 0);
		g_block_exit();
		atomic_store_explicit(&g->sigwait_set, 0, memory_order_relaxed);
		if (r != ARCH_CP_CANCELED && r != -EINTR)
			return (int)r;
		cancel_syscall_after(g, r);   /* acts on a cancellation request */
		/* Woken for a signal made pending for us, or by a kick meant
		 * for another G: wait again.  Otherwise a handler ran: EINTR,
		 * as natively. */
		if (!atomic_load_explicit(&g->sigwake, memory_order_relaxed) &&
		    !(atomic_load(&g->sigpending) & want) &&
		    !atomic_exchange_explicit(&g->sigstray, 0, memory_order_relaxed))
			return -EINTR;
	}
}

SHIM_EXPORT int sigwait(const sigset_t *set, int *sig)
{
	int r;

	do
		r = wait_sig(set, NULL, NULL);
	while (r == -EINTR);
	if (r < 0)
		return -r;
	*sig = r;
	return 0;
}

SHIM_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	int r = wait_sig(set, info, NULL);

	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

SHIM_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info,
                             const struct timespec *ts)
{
	int r;

	if (ts && (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)) {
		errno = EINVAL;
		return -1;
	}
	r = wait_sig(set, info, ts);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

/* Pending signals of the thread: the kernel's for its M plus those sent
 * to the G with pthread_kill that it blocks. */
SHIM_EXPORT int sigpending(sigset_t *set)
{
	g_t *g = shim_self();
	uint64_t m = 0;
	long r;

	r = arch_syscall(SYS_rt_sigpending, &m, 8, 0);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	if (g)
		m |= atomic_load(&g->sigpending);
	from_mask(set, m);
	return 0;
}

/* raise() is pthread_kill(pthread_self()): glibc's sends the signal to
 * the kernel thread (tgkill of gettid), i.e. to the M, where a signal the
 * G blocks would stay pending for whichever G runs there next.  Here it
 * is the G's: handled before raise returns if not blocked, else pending on
 * the G (sigpending) until it unblocks it or sigwaits for it. */
SHIM_EXPORT int raise(int sig)
{
	g_t *g = shim_self();
	int err;

	if (!g) {
		long r = arch_syscall(SYS_tgkill, getpid(), arch_syscall(SYS_gettid, 0, 0, 0), sig);

		if (r < 0) {
			errno = (int)-r;
			return -1;
		}
		return 0;
	}
	err = pthread_kill((pthread_t)g, sig);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
