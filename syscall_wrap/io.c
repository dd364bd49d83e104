/* syscall_wrap/io.c - blocking calls: entersyscall / exitsyscall.
 *
 * Generated list (one wrapper shape): each call runs between
 * g_syscall_enter and g_syscall_exit, so the G keeps its P for a short
 * call and sysmon hands the P to another M if it lasts (core/sysmon.c);
 * the program sees exactly what libc returns, errno included.  They are
 * cancellation points, as in glibc (acted on at entry).  Threads that are
 * not G's call libc directly.
 *
 * Planned (issue 5): parking G's on a poller (io_uring / epoll) for
 * descriptors that can be polled and on io_uring completions for regular
 * files, instead of holding an M for the duration of the call.
 */
/* meson builds with _FILE_OFFSET_BITS=64, which turns pread into an asm
 * alias of pread64 (and so on); here both names must be defined. */
#undef _FILE_OFFSET_BITS
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "shim/shim.h"

#include <dlfcn.h>

/* libc's originals, resolved once by syscall_wrap_init (called by the
 * constructor), or on first use if a library constructor that runs before
 * ours blocks already. */
static void *real_get(void **slot, const char *name)
{
	void *f = __atomic_load_n(slot, __ATOMIC_RELAXED);

	if (__builtin_expect(f == NULL, 0)) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, f, __ATOMIC_RELAXED);
	}
	return f;
}

#define REAL(name) ((__typeof__(name) *)real_get((void **)&real_##name, #name))

static inline g_t *sc_enter(void)
{
	g_t *g = getcurg();

	if (!g)
		return NULL;
	cancel_point(g);
	return g_syscall_enter() ? g : NULL;
}

static inline void sc_exit(g_t *g)
{
	if (g)
		g_syscall_exit();
}

static __typeof__(read) *real_read;
static __typeof__(write) *real_write;
static __typeof__(readv) *real_readv;
static __typeof__(writev) *real_writev;
static __typeof__(pread) *real_pread;
static __typeof__(pread64) *real_pread64;
static __typeof__(pwrite) *real_pwrite;
static __typeof__(pwrite64) *real_pwrite64;
static __typeof__(preadv) *real_preadv;
static __typeof__(preadv64) *real_preadv64;
static __typeof__(pwritev) *real_pwritev;
static __typeof__(pwritev64) *real_pwritev64;
static __typeof__(preadv2) *real_preadv2;
static __typeof__(pwritev2) *real_pwritev2;
static __typeof__(recv) *real_recv;
static __typeof__(recvfrom) *real_recvfrom;
static __typeof__(recvmsg) *real_recvmsg;
static __typeof__(recvmmsg) *real_recvmmsg;
static __typeof__(send) *real_send;
static __typeof__(sendto) *real_sendto;
static __typeof__(sendmsg) *real_sendmsg;
static __typeof__(sendmmsg) *real_sendmmsg;
static __typeof__(accept) *real_accept;
static __typeof__(accept4) *real_accept4;
static __typeof__(connect) *real_connect;
static __typeof__(close) *real_close;
static __typeof__(fsync) *real_fsync;
static __typeof__(fdatasync) *real_fdatasync;
static __typeof__(sync_file_range) *real_sync_file_range;
static __typeof__(poll) *real_poll;
static __typeof__(ppoll) *real_ppoll;
static __typeof__(select) *real_select;
static __typeof__(pselect) *real_pselect;
static __typeof__(epoll_wait) *real_epoll_wait;
static __typeof__(epoll_pwait) *real_epoll_pwait;
static __typeof__(waitpid) *real_waitpid;
static __typeof__(wait) *real_wait;
static __typeof__(wait3) *real_wait3;
static __typeof__(wait4) *real_wait4;
static __typeof__(waitid) *real_waitid;
static __typeof__(flock) *real_flock;
static __typeof__(lockf) *real_lockf;
static __typeof__(lockf64) *real_lockf64;
static __typeof__(pause) *real_pause;
static __typeof__(sigsuspend) *real_sigsuspend;
static __typeof__(msgrcv) *real_msgrcv;
static __typeof__(msgsnd) *real_msgsnd;
static __typeof__(semop) *real_semop;
static __typeof__(semtimedop) *real_semtimedop;
static __typeof__(splice) *real_splice;
static __typeof__(tee) *real_tee;
static __typeof__(sendfile) *real_sendfile;
static __typeof__(sendfile64) *real_sendfile64;
static __typeof__(copy_file_range) *real_copy_file_range;

void syscall_wrap_init(void)
{
	real_read = (__typeof__(read) *)dlsym(RTLD_NEXT, "read");
	real_write = (__typeof__(write) *)dlsym(RTLD_NEXT, "write");
	real_readv = (__typeof__(readv) *)dlsym(RTLD_NEXT, "readv");
	real_writev = (__typeof__(writev) *)dlsym(RTLD_NEXT, "writev");
	real_pread = (__typeof__(pread) *)dlsym(RTLD_NEXT, "pread");
	real_pread64 = (__typeof__(pread64) *)dlsym(RTLD_NEXT, "pread64");
	real_pwrite = (__typeof__(pwrite) *)dlsym(RTLD_NEXT, "pwrite");
	real_pwrite64 = (__typeof__(pwrite64) *)dlsym(RTLD_NEXT, "pwrite64");
	real_preadv = (__typeof__(preadv) *)dlsym(RTLD_NEXT, "preadv");
	real_preadv64 = (__typeof__(preadv64) *)dlsym(RTLD_NEXT, "preadv64");
	real_pwritev = (__typeof__(pwritev) *)dlsym(RTLD_NEXT, "pwritev");
	real_pwritev64 = (__typeof__(pwritev64) *)dlsym(RTLD_NEXT, "pwritev64");
	real_preadv2 = (__typeof__(preadv2) *)dlsym(RTLD_NEXT, "preadv2");
	real_pwritev2 = (__typeof__(pwritev2) *)dlsym(RTLD_NEXT, "pwritev2");
	real_recv = (__typeof__(recv) *)dlsym(RTLD_NEXT, "recv");
	real_recvfrom = (__typeof__(recvfrom) *)dlsym(RTLD_NEXT, "recvfrom");
	real_recvmsg = (__typeof__(recvmsg) *)dlsym(RTLD_NEXT, "recvmsg");
	real_recvmmsg = (__typeof__(recvmmsg) *)dlsym(RTLD_NEXT, "recvmmsg");
	real_send = (__typeof__(send) *)dlsym(RTLD_NEXT, "send");
	real_sendto = (__typeof__(sendto) *)dlsym(RTLD_NEXT, "sendto");
	real_sendmsg = (__typeof__(sendmsg) *)dlsym(RTLD_NEXT, "sendmsg");
	real_sendmmsg = (__typeof__(sendmmsg) *)dlsym(RTLD_NEXT, "sendmmsg");
	real_accept = (__typeof__(accept) *)dlsym(RTLD_NEXT, "accept");
	real_accept4 = (__typeof__(accept4) *)dlsym(RTLD_NEXT, "accept4");
	real_connect = (__typeof__(connect) *)dlsym(RTLD_NEXT, "connect");
	real_close = (__typeof__(close) *)dlsym(RTLD_NEXT, "close");
	real_fsync = (__typeof__(fsync) *)dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = (__typeof__(fdatasync) *)dlsym(RTLD_NEXT, "fdatasync");
	real_sync_file_range = (__typeof__(sync_file_range) *)dlsym(RTLD_NEXT, "sync_file_range");
	real_poll = (__typeof__(poll) *)dlsym(RTLD_NEXT, "poll");
	real_ppoll = (__typeof__(ppoll) *)dlsym(RTLD_NEXT, "ppoll");
	real_select = (__typeof__(select) *)dlsym(RTLD_NEXT, "select");
	real_pselect = (__typeof__(pselect) *)dlsym(RTLD_NEXT, "pselect");
	real_epoll_wait = (__typeof__(epoll_wait) *)dlsym(RTLD_NEXT, "epoll_wait");
	real_epoll_pwait = (__typeof__(epoll_pwait) *)dlsym(RTLD_NEXT, "epoll_pwait");
	real_waitpid = (__typeof__(waitpid) *)dlsym(RTLD_NEXT, "waitpid");
	real_wait = (__typeof__(wait) *)dlsym(RTLD_NEXT, "wait");
	real_wait3 = (__typeof__(wait3) *)dlsym(RTLD_NEXT, "wait3");
	real_wait4 = (__typeof__(wait4) *)dlsym(RTLD_NEXT, "wait4");
	real_waitid = (__typeof__(waitid) *)dlsym(RTLD_NEXT, "waitid");
	real_flock = (__typeof__(flock) *)dlsym(RTLD_NEXT, "flock");
	real_lockf = (__typeof__(lockf) *)dlsym(RTLD_NEXT, "lockf");
	real_lockf64 = (__typeof__(lockf64) *)dlsym(RTLD_NEXT, "lockf64");
	real_pause = (__typeof__(pause) *)dlsym(RTLD_NEXT, "pause");
	real_sigsuspend = (__typeof__(sigsuspend) *)dlsym(RTLD_NEXT, "sigsuspend");
	real_msgrcv = (__typeof__(msgrcv) *)dlsym(RTLD_NEXT, "msgrcv");
	real_msgsnd = (__typeof__(msgsnd) *)dlsym(RTLD_NEXT, "msgsnd");
	real_semop = (__typeof__(semop) *)dlsym(RTLD_NEXT, "semop");
	real_semtimedop = (__typeof__(semtimedop) *)dlsym(RTLD_NEXT, "semtimedop");
	real_splice = (__typeof__(splice) *)dlsym(RTLD_NEXT, "splice");
	real_tee = (__typeof__(tee) *)dlsym(RTLD_NEXT, "tee");
	real_sendfile = (__typeof__(sendfile) *)dlsym(RTLD_NEXT, "sendfile");
	real_sendfile64 = (__typeof__(sendfile64) *)dlsym(RTLD_NEXT, "sendfile64");
	real_copy_file_range = (__typeof__(copy_file_range) *)dlsym(RTLD_NEXT, "copy_file_range");
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(read)(fd, buf, n);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(write)(fd, buf, n);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(readv)(fd, iov, cnt);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(writev)(fd, iov, cnt);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(pread)(fd, buf, n, off);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(pread64)(fd, buf, n, off);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(pwrite)(fd, buf, n, off);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(pwrite64)(fd, buf, n, off);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(preadv)(fd, iov, cnt, off);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(preadv64)(fd, iov, cnt, off);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(pwritev)(fd, iov, cnt, off);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(pwritev64)(fd, iov, cnt, off);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(preadv2)(fd, iov, cnt, off, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(pwritev2)(fd, iov, cnt, off, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(recv)(fd, buf, n, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int fl, struct sockaddr *a, socklen_t *al)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(recvfrom)(fd, buf, n, fl, a, al);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(recvmsg)(fd, msg, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int fl, struct timespec *t)
{
	g_t *g = sc_enter();
	int r = REAL(recvmmsg)(fd, v, n, fl, t);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(send)(fd, buf, n, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int fl, const struct sockaddr *a, socklen_t al)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(sendto)(fd, buf, n, fl, a, al);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(sendmsg)(fd, msg, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int fl)
{
	g_t *g = sc_enter();
	int r = REAL(sendmmsg)(fd, v, n, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int accept(int fd, struct sockaddr *a, socklen_t *al)
{
	g_t *g = sc_enter();
	int r = REAL(accept)(fd, a, al);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *a, socklen_t *al, int fl)
{
	g_t *g = sc_enter();
	int r = REAL(accept4)(fd, a, al, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *a, socklen_t al)
{
	g_t *g = sc_enter();
	int r = REAL(connect)(fd, a, al);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int close(int fd)
{
	g_t *g = sc_enter();
	int r = REAL(close)(fd);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int fsync(int fd)
{
	g_t *g = sc_enter();
	int r = REAL(fsync)(fd);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int fdatasync(int fd)
{
	g_t *g = sc_enter();
	int r = REAL(fdatasync)(fd);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int sync_file_range(int fd, off64_t off, off64_t n, unsigned int fl)
{
	g_t *g = sc_enter();
	int r = REAL(sync_file_range)(fd, off, n, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int t)
{
	g_t *g = sc_enter();
	int r = REAL(poll)(fds, n, t);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *m)
{
	g_t *g = sc_enter();
	int r = REAL(ppoll)(fds, n, t, m);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int select(int n, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *t)
{
	g_t *g = sc_enter();
	int r = REAL(select)(n, rd, wr, ex, t);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int pselect(int n, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *t, const sigset_t *m)
{
	g_t *g = sc_enter();
	int r = REAL(pselect)(n, rd, wr, ex, t, m);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int n, int t)
{
	g_t *g = sc_enter();
	int r = REAL(epoll_wait)(ep, ev, n, t);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int n, int t, const sigset_t *m)
{
	g_t *g = sc_enter();
	int r = REAL(epoll_pwait)(ep, ev, n, t, m);

	sc_exit(g);
	return r;
}

SHIM_EXPORT pid_t waitpid(pid_t pid, int *st, int opt)
{
	g_t *g = sc_enter();
	pid_t r = REAL(waitpid)(pid, st, opt);

	sc_exit(g);
	return r;
}

SHIM_EXPORT pid_t wait(int *st)
{
	g_t *g = sc_enter();
	pid_t r = REAL(wait)(st);

	sc_exit(g);
	return r;
}

SHIM_EXPORT pid_t wait3(int *st, int opt, struct rusage *ru)
{
	g_t *g = sc_enter();
	pid_t r = REAL(wait3)(st, opt, ru);

	sc_exit(g);
	return r;
}

SHIM_EXPORT pid_t wait4(pid_t pid, int *st, int opt, struct rusage *ru)
{
	g_t *g = sc_enter();
	pid_t r = REAL(wait4)(pid, st, opt, ru);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int waitid(idtype_t t, id_t id, siginfo_t *si, int opt)
{
	g_t *g = sc_enter();
	int r = REAL(waitid)(t, id, si, opt);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int flock(int fd, int op)
{
	g_t *g = sc_enter();
	int r = REAL(flock)(fd, op);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int lockf(int fd, int cmd, off_t len)
{
	g_t *g = sc_enter();
	int r = REAL(lockf)(fd, cmd, len);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int lockf64(int fd, int cmd, off64_t len)
{
	g_t *g = sc_enter();
	int r = REAL(lockf64)(fd, cmd, len);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int pause(void)
{
	g_t *g = sc_enter();
	int r = REAL(pause)();

	sc_exit(g);
	return r;
}

SHIM_EXPORT int sigsuspend(const sigset_t *m)
{
	g_t *g = sc_enter();
	int r = REAL(sigsuspend)(m);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t msgrcv(int id, void *p, size_t sz, long typ, int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(msgrcv)(id, p, sz, typ, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int msgsnd(int id, const void *p, size_t sz, int fl)
{
	g_t *g = sc_enter();
	int r = REAL(msgsnd)(id, p, sz, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int semop(int id, struct sembuf *ops, size_t n)
{
	g_t *g = sc_enter();
	int r = REAL(semop)(id, ops, n);

	sc_exit(g);
	return r;
}

SHIM_EXPORT int semtimedop(int id, struct sembuf *ops, size_t n, const struct timespec *t)
{
	g_t *g = sc_enter();
	int r = REAL(semtimedop)(id, ops, n, t);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t splice(int fi, off64_t *oi, int fo, off64_t *oo, size_t n, unsigned int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(splice)(fi, oi, fo, oo, n, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t tee(int fi, int fo, size_t n, unsigned int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(tee)(fi, fo, n, fl);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t sendfile(int o, int i, off_t *off, size_t n)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(sendfile)(o, i, off, n);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t sendfile64(int o, int i, off64_t *off, size_t n)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(sendfile64)(o, i, off, n);

	sc_exit(g);
	return r;
}

SHIM_EXPORT ssize_t copy_file_range(int fi, off64_t *oi, int fo, off64_t *oo, size_t n, unsigned int fl)
{
	g_t *g = sc_enter();
	ssize_t r = REAL(copy_file_range)(fi, oi, fo, oo, n, fl);

	sc_exit(g);
	return r;
}

