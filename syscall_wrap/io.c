/* syscall_wrap/io.c - blocking calls: entersyscall / exitsyscall.
 *
 * One wrapper shape (WRAP below) for every call: each runs between
 * g_syscall_enter and g_syscall_exit, so the G keeps its P for a short
 * call and sysmon hands the P to another M if it lasts (core/sysmon.c);
 * the program sees exactly what libc returns, errno included.  They are
 * cancellation points, as in glibc (acted on at entry).  Threads that are
 * not G's call libc directly.
 *
 * Reads, writes, socket transfers, accept and epoll_wait park the G on
 * the poller instead (park.h); what is left here holds the M for the call
 * - except that flock (here) and the record-lock waits (io_var.c) give it
 * back when no M can be created for runnable G's (twin.c).
 */
/* meson builds with _FILE_OFFSET_BITS=64, which turns pread into an asm
 * alias of pread64 (and so on); here both names must be defined. */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "wrap.h"

/* One wrapper shape for every call: libc's original (REAL, arch/real.h)
 * between sc_enter and sc_exit; nr and the first argument name the call
 * in the thread-exhaustion report (core/deadlock.c). */
#define WRAP_A0(a0, ...) ((long)(a0))
#define WRAP(ret, name, nr, params, args)                                \
	WRAP_EXPORT ret name params                                      \
	{                                                                \
		g_t *g = sc_enter_nr(true, (nr), WRAP_A0 args);          \
		ret r;                                                   \
                                                                         \
		r = REAL(name) args;                                     \
		sc_exit(g);                                              \
		return r;                                                \
	}

WRAP(int, recvmmsg, SYS_recvmmsg, (int fd, struct mmsghdr *v, unsigned int n, int fl, struct timespec *t), (fd, v, n, fl, t))
WRAP(int, sendmmsg, SYS_sendmmsg, (int fd, struct mmsghdr *v, unsigned int n, int fl), (fd, v, n, fl))
WRAP(int, semop, SYS_semop, (int id, struct sembuf *ops, size_t n), (id, ops, n))
WRAP(int, semtimedop, SYS_semtimedop, (int id, struct sembuf *ops, size_t n, const struct timespec *t), (id, ops, n, t))
WRAP(ssize_t, splice, SYS_splice, (int fi, off64_t *oi, int fo, off64_t *oo, size_t n, unsigned int fl), (fi, oi, fo, oo, n, fl))
WRAP(ssize_t, tee, SYS_tee, (int fi, int fo, size_t n, unsigned int fl), (fi, fo, n, fl))
WRAP(ssize_t, sendfile, SYS_sendfile, (int o, int i, off_t *off, size_t n), (o, i, off, n))
WRAP(ssize_t, sendfile64, SYS_sendfile, (int o, int i, off64_t *off, size_t n), (o, i, off, n))
WRAP(ssize_t, copy_file_range, SYS_copy_file_range, (int fi, off64_t *oi, int fo, off64_t *oo, size_t n, unsigned int fl), (fi, oi, fo, oo, n, fl))

/* flock waits in the kernel holding the M; when M's run short it polls
 * with LOCK_NB between parks instead (twin.c).  A cancellation point at
 * entry only: glibc's flock is none while it waits. */
WRAP_EXPORT int flock(int fd, int op)
{
	g_t *g = getcurg();
	struct sc_twin c = {
		.nr = SYS_flock, .a = { fd, op },
		.tnr = SYS_flock, .ta = { fd, op | LOCK_NB },
		.restart = true,
	};

	if (!g || (op & (LOCK_NB | LOCK_UN)))
		return (int)set_err(arch_syscall(SYS_flock, fd, op, 0));
	cancel_point(g);
	return (int)set_err(sc_call_twin(&c));
}

/* Calls that are cancellation points while they block (core/cancel.c):
 * made as raw system calls through sc_call_cp, with libc's mapping. */
WRAP_EXPORT int connect(int fd, const struct sockaddr *a, socklen_t al)
{
	return (int)set_err(sc_call_cp(SYS_connect, fd, (long)a, al, 0, 0, 0));
}

WRAP_EXPORT pid_t wait4(pid_t pid, int *st, int opt, struct rusage *ru)
{
	return (pid_t)set_err(sc_call_cp(SYS_wait4, pid, (long)st, opt, (long)ru, 0, 0));
}

WRAP_EXPORT pid_t waitpid(pid_t pid, int *st, int opt)
{
	return wait4(pid, st, opt, NULL);
}

WRAP_EXPORT pid_t wait(int *st)
{
	return wait4(-1, st, 0, NULL);
}

WRAP_EXPORT pid_t wait3(int *st, int opt, struct rusage *ru)
{
	return wait4(-1, st, opt, ru);
}

WRAP_EXPORT int waitid(idtype_t t, id_t id, siginfo_t *si, int opt)
{
	return (int)set_err(sc_call_cp(SYS_waitid, t, id, (long)si, opt, 0, 0));
}

WRAP_EXPORT ssize_t msgrcv(int id, void *p, size_t sz, long typ, int fl)
{
	return set_err(sc_call_cp(SYS_msgrcv, id, (long)p, (long)sz, typ, fl, 0));
}

WRAP_EXPORT int msgsnd(int id, const void *p, size_t sz, int fl)
{
	return (int)set_err(sc_call_cp(SYS_msgsnd, id, (long)p, (long)sz, fl, 0, 0));
}

/* The kernel mask of an M keeps the runtime's signals (preemption,
 * cancellation, glibc's SIGSETXID) unblocked whatever the thread asks. */
static uint64_t kmask(uint64_t m)
{
	return m & ~preempt_kmask_clear() & ~(1ull << (SIGCANCEL - 1)) & ~(1ull << (33 - 1));
}

WRAP_EXPORT int sigsuspend(const sigset_t *set)
{
	uint64_t m;

	if (!getcurg())
		return REAL(sigsuspend)(set);
	memcpy(&m, set, sizeof m);
	m = kmask(m);
	return (int)set_err(sc_call_cp(SYS_rt_sigsuspend, (long)&m, 8, 0, 0, 0, 0));
}

/* sigpause: glibc's header maps it to __xpg_sigpause (take sig out of the
 * thread's mask) or, for BSD code, __sigpause with a mask. */
WRAP_EXPORT int __sigpause(int sig_or_mask, int is_sig)
{
	sigset_t set;

	if (is_sig) {
		pthread_sigmask(SIG_BLOCK, NULL, &set);
		if (sigdelset(&set, sig_or_mask) < 0)
			return -1;
	} else {
		uint64_t m = (uint32_t)sig_or_mask;

		sigemptyset(&set);
		memcpy(&set, &m, sizeof m);
	}
	return sigsuspend(&set);
}

WRAP_EXPORT int __xpg_sigpause(int sig)
{
	return __sigpause(sig, 1);
}

/* pause() as glibc builds it where there is no pause system call: a
 * ppoll on nothing, forever; EINTR after a handler. */
WRAP_EXPORT int pause(void)
{
	g_t *g = getcurg();
	long r;

	/* Only a handler ends it: not a sigwait kick meant for another G
	 * (core's g_signal), which can land here in a narrow window. */
	do {
		if (g)
			atomic_store_explicit(&g->sigstray, 0, memory_order_relaxed);
		r = sc_call_cp(SYS_ppoll, 0, 0, 0, 0, 8, 0);
	} while (r == -EINTR && g && atomic_exchange_explicit(&g->sigstray, 0, memory_order_relaxed));
	return (int)set_err(r);
}
