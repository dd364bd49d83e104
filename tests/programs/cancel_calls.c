/* pthread_cancel of a thread inside each cancellation point glibc has
 * (tst-cancel4's list, plus system() and pthread_join), two ways:
 *   blocked  the thread is blocked in the call when the request comes
 *            (pipe/socket reads and full writes, accept, connect to a
 *            full listen queue, pause, the sigwaits, sleeps, select/poll,
 *            the waits for a child, system, msgrcv/msgsnd, a FIFO open,
 *            join of a thread that never ends)
 *   entry    the request is pending (sent while cancellation was
 *            disabled; enabling it in deferred mode does not act) and the
 *            call must act on it at entry, also when it would not block
 *            (fsync, fdatasync, a write to a file, ...)
 * Each time: the thread's cleanup handler runs exactly once, the call
 * does not return, join gives PTHREAD_CANCELED, well within a second.
 * Under gshim the parked calls, the plain ones (SIGCANCEL) and those
 * gshim reimplements (system) are all covered; run with GSHIM_IO=epoll
 * and syscall too (different paths for the same calls). */
#include "prog.h"
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

static int fds[2], lsock, udp, ep, tmpfd, msq, nfill, fill[64];
static pid_t child;
static char fifo[64];
static pthread_t forever;
static _Atomic int cleaned, returned;
static pthread_barrier_t bar;

static void cl(void *a)
{
	(void)a;
	cleaned++;
}

static char big[1 << 16];

/* ---- the calls ------------------------------------------------------- */
static void c_read(void) { char b[8]; read(fds[0], b, sizeof b); }
static void c_readv(void)
{
	char b[8];
	struct iovec v = { b, sizeof b };
	readv(fds[0], &v, 1);
}
static void c_write(void) { write(fds[1], big, sizeof big); }
static void c_writev(void)
{
	struct iovec v = { big, sizeof big };
	writev(fds[1], &v, 1);
}
static void c_recv(void) { char b[8]; recv(fds[0], b, sizeof b, 0); }
static void c_recvfrom(void)
{
	char b[8];
	struct sockaddr_in sa;
	socklen_t l = sizeof sa;
	recvfrom(udp, b, sizeof b, 0, (struct sockaddr *)&sa, &l);
}
static void c_recvmsg(void)
{
	char b[8];
	struct iovec v = { b, sizeof b };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	recvmsg(fds[0], &m, 0);
}
static void c_send(void) { send(fds[1], big, sizeof big, 0); }
static void c_sendto(void) { sendto(fds[1], big, sizeof big, 0, NULL, 0); }
static void c_sendmsg(void)
{
	struct iovec v = { big, sizeof big };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	sendmsg(fds[1], &m, 0);
}
static void c_accept(void) { accept(lsock, NULL, NULL); }
static void c_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t l;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "gshim-cc-%d", (int)getpid());
	l = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sa.sun_path + 1));
	fds[0] = s;   /* closed by the next case's set-up */
	connect(s, (struct sockaddr *)&sa, l);
}
static void c_pause(void) { pause(); }
static void sigset_usr2(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGUSR2);
}
static void c_sigwait(void) { sigset_t s; int sig; sigset_usr2(&s); sigwait(&s, &sig); }
static void c_sigwaitinfo(void) { sigset_t s; sigset_usr2(&s); sigwaitinfo(&s, NULL); }
static void c_sigtimedwait(void)
{
	sigset_t s;
	struct timespec t = { 30, 0 };
	sigset_usr2(&s);
	sigtimedwait(&s, NULL, &t);
}
static void c_sigsuspend(void)
{
	sigset_t s;
	pthread_sigmask(SIG_BLOCK, NULL, &s);
	sigsuspend(&s);
}
static void c_sleep(void) { sleep(30); }
static void c_usleep(void) { usleep(30000000); }
static void c_nanosleep(void) { struct timespec t = { 30, 0 }; nanosleep(&t, NULL); }
static void c_clock_nanosleep(void)
{
	struct timespec t = { 30, 0 };
	clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL);
}
static void c_select(void)
{
	fd_set s;
	FD_ZERO(&s);
	FD_SET(fds[0], &s);
	select(fds[0] + 1, &s, NULL, NULL, NULL);
}
static void c_pselect(void)
{
	fd_set s;
	FD_ZERO(&s);
	FD_SET(fds[0], &s);
	pselect(fds[0] + 1, &s, NULL, NULL, NULL, NULL);
}
static void c_poll(void) { struct pollfd p = { fds[0], POLLIN, 0 }; poll(&p, 1, -1); }
static void c_poll_timeout(void) { struct pollfd p = { fds[0], POLLIN, 0 }; poll(&p, 1, 30000); }
static void c_ppoll(void) { struct pollfd p = { fds[0], POLLIN, 0 }; ppoll(&p, 1, NULL, NULL); }
static void c_epoll_wait(void) { struct epoll_event e; epoll_wait(ep, &e, 1, -1); }
static void c_waitpid(void) { int st; waitpid(child, &st, 0); }
static void c_wait(void) { int st; wait(&st); }
static void c_waitid(void) { siginfo_t si; waitid(P_PID, (id_t)child, &si, WEXITED); }
static void c_system(void) { system("sleep 20"); }
static void c_msgrcv(void) { struct { long t; char b[8]; } m; msgrcv(msq, &m, sizeof m.b, 0, 0); }
static void c_msgsnd(void)
{
	struct { long t; char b[1024]; } m = { 1, { 0 } };
	msgsnd(msq, &m, sizeof m.b, 0);
}
static void c_open_fifo(void) { fds[0] = open(fifo, O_RDONLY); }
static void c_join(void) { pthread_join(forever, NULL); }
static void c_fsync(void) { fsync(tmpfd); }
static void c_fdatasync(void) { fdatasync(tmpfd); }
static void c_write_file(void) { write(tmpfd, "x", 1); }
static void c_read_file(void) { char b[8]; pread(tmpfd, b, sizeof b, 0); }
static void c_close(void) { close(dup(tmpfd)); }
/* libc's own cancellation points: stdio reads and writes call the kernel
 * inside libc (its internal read/write), not through the interposed
 * functions: blocked there, and entered with the request pending (glibc
 * then acts itself, on the state gshim keeps in the thread's TCB).  gshim
 * sees those only with a TCB per thread (per-g TLS): under
 * GSHIM_TLS=shared the case is skipped (docs/compat.md). */
static void close_file(void *f) { fclose(f); }
static void c_fgets(void)
{
	char b[8];
	FILE *f = fdopen(dup(fds[0]), "r");

	if (f) {
		pthread_cleanup_push(close_file, f);
		fgets(b, sizeof b, f);
		pthread_cleanup_pop(1);
	}
}

/* ---- set-ups: fresh objects for each case ---------------------------- */
enum su { PIPE, PIPE_FULL, SOCK, SOCK_FULL, UDP, LISTEN, LISTEN_FULL, SIGS, EPOLL, CHILD,
          MSGQ, MSGQ_FULL, FIFO, JOIN, FILE_, NOTHING };

static void *never_ends(void *a)
{
	(void)a;
	for (;;)
		pause();
	return NULL;
}

static int fill_nb(int fd)
{
	int n = 0;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (write(fd, big, sizeof big) > 0 && n < 10000)
		n++;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return n;
}

static void unix_addr(struct sockaddr_un *sa, socklen_t *l)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "gshim-cc-%d", (int)getpid());
	*l = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sa->sun_path + 1));
}

static int setup(enum su s)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_un un;
	socklen_t l;

	fds[0] = fds[1] = lsock = udp = ep = msq = -1;
	nfill = 0;
	switch (s) {
	case PIPE:
	case PIPE_FULL:
	case SIGS:
		if (pipe(fds))
			return -1;
		if (s == PIPE_FULL)
			fill_nb(fds[1]);
		return 0;
	case SOCK:
	case SOCK_FULL:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds))
			return -1;
		if (s == SOCK_FULL)
			fill_nb(fds[1]);
		return 0;
	case EPOLL: {
		struct epoll_event e = { .events = EPOLLIN };
		if (pipe(fds) || (ep = epoll_create1(0)) < 0)
			return -1;
		e.data.fd = fds[0];
		return epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &e);
	}
	case UDP:
		udp = socket(AF_INET, SOCK_DGRAM, 0);
		return udp < 0 ? -1 : bind(udp, (struct sockaddr *)&in, sizeof in);
	case LISTEN:
		lsock = socket(AF_INET, SOCK_STREAM, 0);
		if (lsock < 0 || bind(lsock, (struct sockaddr *)&in, sizeof in))
			return -1;
		return listen(lsock, 4);
	case LISTEN_FULL:
		/* AF_UNIX connect blocks while the listener's queue is full */
		unix_addr(&un, &l);
		lsock = socket(AF_UNIX, SOCK_STREAM, 0);
		if (lsock < 0 || bind(lsock, (struct sockaddr *)&un, l) || listen(lsock, 0))
			return -1;
		while (nfill < 64) {
			int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
			if (connect(c, (struct sockaddr *)&un, l) != 0) {
				close(c);
				break;
			}
			fill[nfill++] = c;
		}
		return 0;
	case CHILD:
		return 0;   /* made once, in main */
	case MSGQ:
	case MSGQ_FULL:
		msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
		if (msq < 0)
			return -1;
		if (s == MSGQ_FULL) {
			struct { long t; char b[1024]; } m = { 1, { 0 } };
			int n = 0;
			while (msgsnd(msq, &m, sizeof m.b, IPC_NOWAIT) == 0 && n++ < 100000)
				;
		}
		return 0;
	case FIFO:
		snprintf(fifo, sizeof fifo, "/tmp/gshim-cc-fifo-%d", (int)getpid());
		unlink(fifo);
		return mkfifo(fifo, 0600);
	case JOIN:
		return pthread_create(&forever, NULL, never_ends, NULL);
	case FILE_: {
		char name[] = "/tmp/gshim-cc-XXXXXX";
		tmpfd = mkstemp(name);
		if (tmpfd < 0)
			return -1;
		unlink(name);
		return 0;
	}
	case NOTHING:
		return 0;
	}
	return -1;
}

static void teardown(enum su s)
{
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (lsock >= 0)
		close(lsock);
	if (udp >= 0)
		close(udp);
	if (ep >= 0)
		close(ep);
	if (msq >= 0)
		msgctl(msq, IPC_RMID, NULL);
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	if (s == FIFO)
		unlink(fifo);
	if (s == FILE_)
		close(tmpfd);
	if (s == JOIN) {
		pthread_cancel(forever);
		pthread_join(forever, NULL);
	}
}

/* ---- the thread -------------------------------------------------------- */
struct kase {
	const char *name;
	void (*fn)(void);
	enum su su;
	int blocks;   /* also tested while blocked */
};
static const struct kase *cur;
static int entry_mode;

static void *body(void *a)
{
	(void)a;
	if (entry_mode) {
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		pthread_barrier_wait(&bar);   /* main cancels */
		pthread_barrier_wait(&bar);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);   /* deferred: no act */
	} else {
		pthread_barrier_wait(&bar);
	}
	pthread_cleanup_push(cl, NULL);
	cur->fn();
	returned++;
	pthread_testcancel();
	pthread_cleanup_pop(0);
	return NULL;
}

static const struct kase cases[] = {
	{ "read pipe", c_read, PIPE, 1 },
	{ "readv pipe", c_readv, PIPE, 1 },
	{ "write full pipe", c_write, PIPE_FULL, 1 },
	{ "writev full pipe", c_writev, PIPE_FULL, 1 },
	{ "recv socket", c_recv, SOCK, 1 },
	{ "read socket", c_read, SOCK, 1 },
	{ "recvfrom udp", c_recvfrom, UDP, 1 },
	{ "recvmsg socket", c_recvmsg, SOCK, 1 },
	{ "send full socket", c_send, SOCK_FULL, 1 },
	{ "sendto full socket", c_sendto, SOCK_FULL, 1 },
	{ "sendmsg full socket", c_sendmsg, SOCK_FULL, 1 },
	{ "write full socket", c_write, SOCK_FULL, 1 },
	{ "accept", c_accept, LISTEN, 1 },
	{ "connect", c_connect, LISTEN_FULL, 1 },
	{ "pause", c_pause, NOTHING, 1 },
	{ "sigwait", c_sigwait, NOTHING, 1 },
	{ "sigwaitinfo", c_sigwaitinfo, NOTHING, 1 },
	{ "sigtimedwait", c_sigtimedwait, NOTHING, 1 },
	{ "sigsuspend", c_sigsuspend, NOTHING, 1 },
	{ "sleep", c_sleep, NOTHING, 1 },
	{ "usleep", c_usleep, NOTHING, 1 },
	{ "nanosleep", c_nanosleep, NOTHING, 1 },
	{ "clock_nanosleep", c_clock_nanosleep, NOTHING, 1 },
	{ "select", c_select, PIPE, 1 },
	{ "pselect", c_pselect, PIPE, 1 },
	{ "poll", c_poll, PIPE, 1 },
	{ "poll with timeout", c_poll_timeout, PIPE, 1 },
	{ "ppoll", c_ppoll, PIPE, 1 },
	{ "epoll_wait", c_epoll_wait, EPOLL, 1 },
	{ "waitpid", c_waitpid, CHILD, 1 },
	{ "wait", c_wait, CHILD, 1 },
	{ "waitid", c_waitid, CHILD, 1 },
	{ "system", c_system, NOTHING, 1 },
	{ "msgrcv", c_msgrcv, MSGQ, 1 },
	{ "msgsnd full queue", c_msgsnd, MSGQ_FULL, 1 },
	{ "open fifo", c_open_fifo, FIFO, 1 },
	{ "pthread_join", c_join, JOIN, 1 },
	{ "fgets pipe", c_fgets, PIPE, 1 },
	{ "fsync", c_fsync, FILE_, 0 },
	{ "fdatasync", c_fdatasync, FILE_, 0 },
	{ "write file", c_write_file, FILE_, 0 },
	{ "pread file", c_read_file, FILE_, 0 },
	{ "close", c_close, FILE_, 0 },
};

int main(void)
{
	sigset_t s;
	char what[128];

	watchdog(20);
	/* SIGUSR2 blocked for the sigwaits (inherited by the threads) */
	sigset_usr2(&s);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	child = fork();
	if (child == 0) {
		sleep(25);
		_exit(0);
	}
	for (entry_mode = 0; entry_mode < 2; entry_mode++) {
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			pthread_t t;
			void *r = NULL;
			double t0;
			int c0 = cleaned, r0 = returned, err;

			cur = &cases[i];
			if (!entry_mode && !cur->blocks)
				continue;
			snprintf(what, sizeof what, "%s (%s)", cur->name, entry_mode ? "pending at entry" : "blocked");
			stage(what);
			if (cur->fn == c_fgets && getenv("GSHIM_TLS") && !strcmp(getenv("GSHIM_TLS"), "shared") &&
			    getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "libgshim")) {
				note("%s: skipped under GSHIM_TLS=shared", what);
				check(1, what, "-");
				continue;
			}
			if (setup(cur->su)) {
				check(0, what, "set-up failed: %s", strerror(errno));
				continue;
			}
			pthread_barrier_init(&bar, NULL, 2);
			pthread_create(&t, NULL, body, NULL);
			pthread_barrier_wait(&bar);
			if (entry_mode) {
				pthread_cancel(t);
				pthread_barrier_wait(&bar);
			} else {
				sleep_ms(10);   /* into the call */
			}
			t0 = now_ms();
			err = entry_mode ? 0 : pthread_cancel(t);
			pthread_join(t, &r);
			note("%s: joined %.1f ms after pthread_cancel", what, now_ms() - t0);
			check(err == 0 && r == PTHREAD_CANCELED && cleaned == c0 + 1 && returned == r0 &&
			      now_ms() - t0 < 1500, what,
			      "cancel %d, result %p, cleanup ran %d times, call returned %d times, %.0f ms",
			      err, r, cleaned - c0, returned - r0, now_ms() - t0);
			pthread_barrier_destroy(&bar);
			teardown(cur->su);
		}
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return failures != 0;
}
