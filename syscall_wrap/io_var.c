/* syscall_wrap/io_var.c - the variadic blocking calls: fcntl (only its
 * lock-waiting commands block), open/openat/creat (a FIFO open blocks
 * until the other end opens: a cancellation point while it blocks), and the generic syscall() entry for the
 * numbers that block (programs and runtimes such as Rust's std issue
 * futex waits through it).  Same contract as io.c.  open & co. and
 * fcntl F_DUPFD(_CLOEXEC) reset fd_hint for the number they return, and
 * setsockopt through syscall() for its socket (park.h). */
#undef _FILE_OFFSET_BITS   /* define open and open64 both (see io.c) */
#include <fcntl.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <errno.h>
#include <unistd.h>
#include "park.h"

static bool fcntl_blocks(int cmd)
{
	return cmd == F_SETLKW || cmd == F_OFD_SETLKW;
}

/* The lock waits are cancellation points while they block: the plain
 * call through the cancellable path (on x86_64 fcntl64 is fcntl and
 * struct flock is the kernel's). */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	/* The lock waits' twins (twin.c), for when M's run short: the
	 * same request without waiting, EAGAIN or EACCES on a conflict. */
	struct sc_twin c = {
		.nr = SYS_fcntl, .a = { fd, cmd, (long)arg },
		.tnr = SYS_fcntl, .ta = { fd, cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK, (long)arg },
		.again2 = EACCES, .cancel = true, .restart = true,
	};

	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
		int r = real(fd, cmd, arg);

		pio_fd_new(r);   /* a new number: fd_hint (park.h) */
		return r;
	}
	if (!fcntl_blocks(cmd) || !getcurg())
		return real(fd, cmd, arg);
	return (int)set_err(sc_call_twin(&c));
}

/* lockf as POSIX describes it on top of fcntl locks (whole-process
 * write locks from the current offset for len bytes): F_LOCK waits
 * (cancellable, above), F_TEST reports EACCES for another process's
 * lock. */
static int lockf_common(int fd, int cmd, off_t len)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = 0, .l_len = len };

	switch (cmd) {
	case F_TEST:
		fl.l_type = F_RDLCK;
		if (fcntl_common(REAL(fcntl), fd, F_GETLK, &fl) < 0)
			return -1;
		if (fl.l_type == F_UNLCK || fl.l_pid == getpid())
			return 0;
		errno = EACCES;
		return -1;
	case F_ULOCK:
		fl.l_type = F_UNLCK;
		return fcntl_common(REAL(fcntl), fd, F_SETLK, &fl);
	case F_LOCK:
		return fcntl_common(REAL(fcntl), fd, F_SETLKW, &fl);
	case F_TLOCK:
		return fcntl_common(REAL(fcntl), fd, F_SETLK, &fl);
	}
	errno = EINVAL;
	return -1;
}

WRAP_EXPORT int lockf(int fd, int cmd, off_t len)
{
	return lockf_common(fd, cmd, len);
}

WRAP_EXPORT int lockf64(int fd, int cmd, off64_t len)
{
	return lockf_common(fd, cmd, len);
}

/* glibc reads the third argument as a pointer whatever the command. */
#define FCNTL_ARG(last) ({ va_list ap_; void *a_; \
	va_start(ap_, last); a_ = va_arg(ap_, void *); va_end(ap_); a_; })

WRAP_EXPORT int fcntl(int fd, int cmd, ...)
{
	return fcntl_common(REAL(fcntl), fd, cmd, FCNTL_ARG(cmd));
}

WRAP_EXPORT int fcntl64(int fd, int cmd, ...)
{
	return fcntl_common(REAL(fcntl64), fd, cmd, FCNTL_ARG(cmd));
}

/* The mode argument exists only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags) ({ va_list ap_; mode_t m_ = 0; \
	va_start(ap_, flags); \
	if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) \
		m_ = va_arg(ap_, mode_t); \
	va_end(ap_); m_; })

/* open/openat/creat: a cancellation point also while a FIFO open
 * blocks (the plain call, through sc_call_cp).  On x86_64 the kernel
 * adds O_LARGEFILE itself; the mode is passed as given. */
static int open_cp(int dfd, const char *path, int flags, mode_t mode)
{
	long r = sc_call_cp(SYS_openat, dfd, (long)path, flags, mode, 0, 0);

	pio_fd_new((int)r);   /* a new number: fd_hint (park.h) */
	return (int)set_err(r);
}

WRAP_EXPORT int open(const char *path, int flags, ...)
{
	return open_cp(AT_FDCWD, path, flags, OPEN_MODE(flags));
}

WRAP_EXPORT int open64(const char *path, int flags, ...)
{
	return open_cp(AT_FDCWD, path, flags, OPEN_MODE(flags));
}

WRAP_EXPORT int openat(int dfd, const char *path, int flags, ...)
{
	return open_cp(dfd, path, flags, OPEN_MODE(flags));
}

WRAP_EXPORT int openat64(int dfd, const char *path, int flags, ...)
{
	return open_cp(dfd, path, flags, OPEN_MODE(flags));
}

WRAP_EXPORT int creat(const char *path, mode_t mode)
{
	return open_cp(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

WRAP_EXPORT int creat64(const char *path, mode_t mode)
{
	return open_cp(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* System call numbers that may block for long. */
static bool syscall_blocks(long n, long a1)
{
	switch (n) {
	case SYS_futex: {
		int op = (int)a1 & FUTEX_CMD_MASK;
		return op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET || op == FUTEX_LOCK_PI ||
		       op == FUTEX_WAIT_REQUEUE_PI || op == FUTEX_LOCK_PI2;
	}
	case SYS_read: case SYS_write: case SYS_readv: case SYS_writev:
	case SYS_pread64: case SYS_pwrite64: case SYS_recvfrom: case SYS_recvmsg:
	case SYS_recvmmsg: case SYS_sendto: case SYS_sendmsg: case SYS_sendmmsg:
	case SYS_accept: case SYS_accept4: case SYS_connect: case SYS_poll:
	case SYS_ppoll: case SYS_select: case SYS_pselect6: case SYS_epoll_wait:
	case SYS_epoll_pwait: case SYS_wait4: case SYS_waitid: case SYS_flock:
	case SYS_nanosleep: case SYS_clock_nanosleep: case SYS_pause:
	case SYS_rt_sigsuspend: case SYS_rt_sigtimedwait: case SYS_msgrcv:
	case SYS_msgsnd: case SYS_semop: case SYS_semtimedop: case SYS_fsync:
	case SYS_fdatasync: case SYS_openat: case SYS_open:
		return true;
	default:
		return false;
	}
}

WRAP_EXPORT long syscall(long n, ...)
{
	va_list ap;
	long a1, a2, a3, a4, a5, a6, r;
	g_t *g;

	va_start(ap, n);
	a1 = va_arg(ap, long);
	a2 = va_arg(ap, long);
	a3 = va_arg(ap, long);
	a4 = va_arg(ap, long);
	a5 = va_arg(ap, long);
	a6 = va_arg(ap, long);
	va_end(ap);
	/* Numbers that close or replace descriptors: core/rtfd.c's rules. */
	switch (n) {
	case SYS_close: return set_err(pio_close((int)a1, false));
	case SYS_close_range: return set_err(pio_close_range((unsigned)a1, (unsigned)a2, (unsigned)a3));
	case SYS_dup2: return set_err(pio_dup3((int)a1, (int)a2, 0, true));
	case SYS_dup3: return set_err(pio_dup3((int)a1, (int)a2, (int)a3, false));
	case SYS_setsockopt:   /* fd_hint (park.h): after the kernel has it */
		r = REAL(syscall)(n, a1, a2, a3, a4, a5, a6);
		pio_fd_new((int)a1);
		return r;
	}
	if (!syscall_blocks(n, n == SYS_futex ? a2 : 0))
		return REAL(syscall)(n, a1, a2, a3, a4, a5, a6);
	/* Not a cancellation point (glibc's syscall() is not), but with
	 * asynchronous cancellation anything is: then the cancellable form. */
	if ((g = getcurg()) != NULL && cancel_async_enabled(g))
		return set_err(sc_call_cp(n, a1, a2, a3, a4, a5, a6));
	g = sc_enter_nr(false, n, a1);
	r = REAL(syscall)(n, a1, a2, a3, a4, a5, a6);
	sc_exit(g);
	return r;
}
