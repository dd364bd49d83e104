/* syscall_wrap/fortify.c - the _FORTIFY_SOURCE entries (__read_chk,
 * __pread_chk, __pread64_chk, __recv_chk, __recvfrom_chk, __poll_chk,
 * __ppoll_chk).
 *
 * The protocol: glibc's size check, then the wrapper the unchecked name
 * reaches (rw.c, socket.c, poll.c).  A wrapped call with a fortified
 * form needs its entry here as well, or fortified programs bypass it.
 */
#undef _FILE_OFFSET_BITS
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include "wrap.h"

/* ---- _FORTIFY_SOURCE entries ---------------------------------------------------- */

/* Programs built with _FORTIFY_SOURCE (Debian's default) call these
 * instead of read, recv, poll ... when the buffer size is known; glibc's
 * versions check the size and call its internal __read etc., past every
 * wrapper.  Same checks, then the wrappers. */
extern void __chk_fail(void) __attribute__((noreturn));

WRAP_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return read(fd, buf, n);
}

WRAP_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return pread64(fd, buf, n, off);
}

WRAP_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return pread64(fd, buf, n, off);
}

WRAP_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int fl)
{
	if (n > buflen)
		__chk_fail();
	return recv(fd, buf, n, fl);
}

WRAP_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int fl,
                                   struct sockaddr *a, socklen_t *al)
{
	if (n > buflen)
		__chk_fail();
	return recvfrom(fd, buf, n, fl, a, al);
}

WRAP_EXPORT int __poll_chk(struct pollfd *f, nfds_t n, int t, size_t flen)
{
	if (flen / sizeof *f < n)
		__chk_fail();
	return poll(f, n, t);
}

WRAP_EXPORT int __ppoll_chk(struct pollfd *f, nfds_t n, const struct timespec *ts,
                            const sigset_t *m, size_t flen)
{
	if (flen / sizeof *f < n)
		__chk_fail();
	return ppoll(f, n, ts, m);
}
