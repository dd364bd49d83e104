/* syscall_wrap/socket.c - recv, recvfrom, recvmsg, send, sendto,
 * sendmsg, accept, accept4, parked on the poller (park.h: the shape
 * every family follows).
 *
 * The protocol: the call once with MSG_DONTWAIT (accept, which has no
 * such flag, asks poll with a zero timeout); if it would wait and the
 * program did not ask for O_NONBLOCK or MSG_DONTWAIT, park until the
 * socket is ready or SO_RCVTIMEO/SO_SNDTIMEO passes (EAGAIN), then
 * again.  MSG_WAITALL and stream sends go on until done, as natively.
 * Not a socket (ENOTSOCK): the plain call.  The timeouts come from
 * fd_hint when it has "no timeout" noted (park.h).  socket, socketpair
 * and setsockopt are here too, as pass-throughs that keep fd_hint true.
 */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "park.h"

/* ---- sockets ------------------------------------------------------------------ */

static int64_t sock_deadline(int fd, int opt)
{
	int64_t deadline;
	bool cached;

	sock_timeout_noted(fd, opt, &deadline, &cached);
	return deadline;
}

static ssize_t sys_recvmsg(int fd, struct msghdr *m, int fl)
{
	return arch_syscall(SYS_recvmsg, fd, (long)m, fl);
}

static ssize_t sys_sendmsg(int fd, const struct msghdr *m, int fl)
{
	return arch_syscall(SYS_sendmsg, fd, (long)m, fl);
}

static ssize_t plain_msg(bool send, int fd, struct msghdr *m, int fl)
{
	ssize_t r = sc_call_cp(send ? SYS_sendmsg : SYS_recvmsg, fd, (long)m, fl, 0, 0, 0);

	return set_err(r);
}

/* recv, recvfrom, recvmsg: MSG_DONTWAIT first; MSG_WAITALL gathers. */
static ssize_t do_recvmsg(int fd, struct msghdr *m, int fl)
{
	g_t *g = getcurg();
	struct iovec vbuf[64], *orig = m->msg_iov;
	size_t origcnt = m->msg_iovlen;
	ssize_t total = 0, want, r;
	int64_t deadline = -2;

	if (poller_off(g) || (fl & MSG_DONTWAIT) || m->msg_iovlen > 64)
		return plain_msg(false, fd, m, fl);
	cancel_point(g);
	want = iov_len(m->msg_iov, (int)m->msg_iovlen);
	for (;;) {
		int w;

		r = sys_recvmsg(fd, m, fl | MSG_DONTWAIT);
		if (r == -ENOTSOCK)
			return plain_msg(false, fd, m, fl);
		if (r >= 0) {
			total += r;
			if (!(fl & MSG_WAITALL) || r == 0 || total >= want || (fl & MSG_PEEK))
				break;
			/* MSG_WAITALL: the rest, into a private iovec copy. */
			if (m->msg_iov == orig) {
				memcpy(vbuf, orig, sizeof *vbuf * origcnt);
				m->msg_iov = vbuf;
			}
			m->msg_iovlen = (size_t)iov_advance(m->msg_iov, (int)m->msg_iovlen, (size_t)r);
		} else if (r != -EAGAIN) {
			if (!total) {
				m->msg_iov = orig;
				m->msg_iovlen = origcnt;
				return set_err(r);
			}
			break;
		}
		if (fd_nonblock(fd)) {
			if (total)
				break;
			m->msg_iov = orig;
			m->msg_iovlen = origcnt;
			return set_err(-EAGAIN);
		}
		if (deadline == -2)
			deadline = sock_deadline(fd, SO_RCVTIMEO);
		w = wait_ready(g, fd, POLLIN, deadline, deadline < 0);
		if (w == -ENOSYS) {
			r = plain_msg(false, fd, m, fl);
			if (r < 0 && !total) {
				m->msg_iov = orig;
				m->msg_iovlen = origcnt;
				return -1;
			}
			total += r > 0 ? r : 0;
			break;
		}
		if (w < 0) {
			if (total)
				break;
			m->msg_iov = orig;
			m->msg_iovlen = origcnt;
			return set_err(w);
		}
	}
	m->msg_iov = orig;
	m->msg_iovlen = origcnt;
	return total;
}

/* send, sendto, sendmsg: MSG_DONTWAIT first; a stream socket's rest is
 * sent after each wait, as a blocking send does. */
static ssize_t do_sendmsg(int fd, const struct msghdr *m0, int fl)
{
	g_t *g = getcurg();
	struct msghdr m;
	struct iovec vbuf[64];
	ssize_t total = 0, want, r;
	int64_t deadline = -2;

	if (poller_off(g) || (fl & MSG_DONTWAIT) || m0->msg_iovlen > 64)
		return plain_msg(true, fd, (struct msghdr *)m0, fl);
	cancel_point(g);
	m = *m0;
	memcpy(vbuf, m0->msg_iov, sizeof *vbuf * m0->msg_iovlen);
	m.msg_iov = vbuf;
	want = iov_len(vbuf, (int)m.msg_iovlen);
	for (;;) {
		int w;

		r = sys_sendmsg(fd, &m, fl | MSG_DONTWAIT);
		if (r == -ENOTSOCK)
			return plain_msg(true, fd, &m, fl);
		if (r >= 0) {
			total += r;
			if (total >= want)
				return total;
			m.msg_iovlen = (size_t)iov_advance(vbuf, (int)m.msg_iovlen, (size_t)r);
			m.msg_control = NULL;   /* ancillary data went with the first part */
			m.msg_controllen = 0;
		} else if (r != -EAGAIN) {
			return total ? total : set_err(r);
		}
		if (fd_nonblock(fd))
			return total ? total : set_err(-EAGAIN);
		if (deadline == -2)
			deadline = sock_deadline(fd, SO_SNDTIMEO);
		w = wait_ready(g, fd, POLLOUT, deadline, deadline < 0);
		if (w == -ENOSYS) {
			r = plain_msg(true, fd, &m, fl);
			return r < 0 ? (total ? total : -1) : total + r;
		}
		if (w < 0)
			return total ? total : set_err(w);
	}
}

WRAP_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int fl)
{
	return do_recvmsg(fd, msg, fl);
}

WRAP_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int fl, struct sockaddr *a, socklen_t *al)
{
	struct iovec v = { buf, n };
	struct msghdr m = { .msg_name = a, .msg_namelen = a && al ? *al : 0,
	                    .msg_iov = &v, .msg_iovlen = 1 };
	ssize_t r = do_recvmsg(fd, &m, fl);

	if (r >= 0 && a && al)
		*al = m.msg_namelen;
	return r;
}

WRAP_EXPORT ssize_t recv(int fd, void *buf, size_t n, int fl)
{
	return recvfrom(fd, buf, n, fl, NULL, NULL);
}

WRAP_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int fl)
{
	return do_sendmsg(fd, msg, fl);
}

WRAP_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int fl,
                           const struct sockaddr *a, socklen_t al)
{
	struct iovec v = { (void *)buf, n };
	struct msghdr m = { .msg_name = (void *)a, .msg_namelen = al,
	                    .msg_iov = &v, .msg_iovlen = 1 };

	return do_sendmsg(fd, &m, fl);
}

WRAP_EXPORT ssize_t send(int fd, const void *buf, size_t n, int fl)
{
	return sendto(fd, buf, n, fl, NULL, 0);
}

static int plain_accept(int fd, struct sockaddr *a, socklen_t *al, int fl)
{
	long r = sc_call_cp(SYS_accept4, fd, (long)a, (long)al, fl, 0, 0);

	if (r >= 0)
		pio_fd_new((int)r);
	return (int)set_err(r);
}

/* accept has no per-call "don't wait": ask poll first (a listening socket
 * is rarely hot enough for the extra call to matter). */
WRAP_EXPORT int accept4(int fd, struct sockaddr *a, socklen_t *al, int fl)
{
	g_t *g = getcurg();

	if (poller_off(g))
		return plain_accept(fd, a, al, fl);
	cancel_point(g);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long n = probe6(SYS_poll, (long)&p, 1, 0, 0, 0, 0);
		int64_t deadline;
		int w;

		if (n != 0 || fd_nonblock(fd))
			return plain_accept(fd, a, al, fl);
		deadline = sock_deadline(fd, SO_RCVTIMEO);
		w = wait_ready(g, fd, POLLIN, deadline, deadline < 0);
		if (w == -ENOSYS)
			return plain_accept(fd, a, al, fl);
		if (w < 0)
			return (int)set_err(w);
	}
}

WRAP_EXPORT int accept(int fd, struct sockaddr *a, socklen_t *al)
{
	return accept4(fd, a, al, 0);
}

/* ---- numbers that change meaning ----------------------------------------------
 *
 * Thin pass-throughs, for fd_hint (rw.c) only: a new socket's number
 * forgets what was noted about it, and so does a socket whose
 * SO_RCVTIMEO or SO_SNDTIMEO is set (after the kernel has it, so that a
 * probe racing the change cannot note the old value: park.h). */

WRAP_EXPORT int socket(int dom, int type, int proto)
{
	long r = arch_syscall(SYS_socket, dom, type, proto);

	if (r >= 0)
		pio_fd_new((int)r);
	return (int)set_err(r);
}

WRAP_EXPORT int socketpair(int dom, int type, int proto, int sv[2])
{
	long r = arch_syscall6(SYS_socketpair, dom, type, proto, (long)sv, 0, 0);

	if (r == 0) {
		pio_fd_new(sv[0]);
		pio_fd_new(sv[1]);
	}
	return (int)set_err(r);
}

WRAP_EXPORT int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	long r = arch_syscall6(SYS_setsockopt, fd, level, opt, (long)val, len, 0);

	if (level == SOL_SOCKET)
		pio_fd_new(fd);
	return (int)set_err(r);
}
