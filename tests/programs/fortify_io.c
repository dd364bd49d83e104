/* Blocking I/O in a program built with -D_FORTIFY_SOURCE=2 (as Debian
 * builds its packages): where the compiler knows the buffer's size but not
 * the length asked for, read, recv, recvfrom, poll, ppoll, pread and
 * pread64 become glibc's checking entry points __read_chk, __recv_chk,
 * __recvfrom_chk, __poll_chk, __ppoll_chk, __pread_chk and __pread64_chk
 * (the lengths here come from volatile variables for that reason; meson
 * builds this file with -D_FORTIFY_SOURCE=2):
 *
 *  1. 200 threads, each with a pipe and a socketpair of its own, block in
 *     turn in read() of its pipe, recv() and recvfrom() of its socket,
 *     poll() and ppoll() on a fixed array of both, and pread / pread64 a
 *     file; the main thread feeds every phase once all 200 wait in it.
 *     Every thread checks what it got.  Under gshim (with a poller; for
 *     poll/ppoll on two descriptors not with GSHIM_IO=epoll, which makes
 *     the plain call then) the process has < 50 kernel threads while the
 *     200 wait in __read_chk, __recv_chk and __poll_chk.
 *  2. the size checks still work: a child that asks read, recv, poll or
 *     pread for more than its buffer holds dies by SIGABRT with "buffer
 *     overflow detected". */
#include "prog.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define THREADS 200
#define MSG 32

/* lengths the compiler cannot know: the _chk entry points are called */
static volatile size_t msg_len = MSG;
static volatile nfds_t two_fds = 2;
static volatile size_t too_long = 4 * MSG;
static volatile nfds_t three_fds = 3;

enum phase { PH_READ, PH_RECV, PH_RECVFROM, PH_POLL, PH_PPOLL, PH_PREAD, NPHASES };
static const char *const phase_name[NPHASES] = {
	"read (__read_chk)", "recv (__recv_chk)", "recvfrom (__recvfrom_chk)",
	"poll (__poll_chk)", "ppoll (__ppoll_chk)", "pread/pread64 (__pread_chk, __pread64_chk)",
};

static _Atomic int entered[NPHASES];
static int file_fd;

struct worker {
	int id, pipe[2], sock[2];
	int ok[NPHASES];
	long ret[NPHASES];   /* the failing call's result, for the message */
	short revents[2];
};

/* the bytes the main thread sends thread id in phase ph */
static void message(int id, int ph, char out[MSG])
{
	for (int i = 0; i < MSG; i++)
		out[i] = (char)(id * 13 + ph * 71 + i * 5 + 1);
}

static void file_bytes(long off, char out[MSG])
{
	for (int i = 0; i < MSG; i++)
		out[i] = (char)((off + i) * 2654435761u >> 11);
}

/* poll/ppoll: the one of {pipe, socket} that thread id gets data on */
static int poll_side(int id, int ph)
{
	return (id + ph) & 1; /* 0: pipe, 1: socket */
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char buf[MSG], want[MSG];
	struct pollfd pf[2];
	long r;

	/* read -> __read_chk */
	atomic_fetch_add(&entered[PH_READ], 1);
	r = ERR(read(w->pipe[0], buf, msg_len));
	message(w->id, PH_READ, want);
	w->ret[PH_READ] = r;
	w->ok[PH_READ] = r == MSG && !memcmp(buf, want, MSG);

	/* recv -> __recv_chk */
	atomic_fetch_add(&entered[PH_RECV], 1);
	r = ERR(recv(w->sock[0], buf, msg_len, MSG_WAITALL));
	message(w->id, PH_RECV, want);
	w->ret[PH_RECV] = r;
	w->ok[PH_RECV] = r == MSG && !memcmp(buf, want, MSG);

	/* recvfrom -> __recvfrom_chk */
	atomic_fetch_add(&entered[PH_RECVFROM], 1);
	r = ERR(recvfrom(w->sock[0], buf, msg_len, MSG_WAITALL, NULL, NULL));
	message(w->id, PH_RECVFROM, want);
	w->ret[PH_RECVFROM] = r;
	w->ok[PH_RECVFROM] = r == MSG && !memcmp(buf, want, MSG);

	/* poll, ppoll on a fixed array -> __poll_chk, __ppoll_chk */
	for (int ph = PH_POLL; ph <= PH_PPOLL; ph++) {
		int side = poll_side(w->id, ph);

		pf[0] = (struct pollfd){ .fd = w->pipe[0], .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = w->sock[0], .events = POLLIN };
		atomic_fetch_add(&entered[ph], 1);
		r = ph == PH_POLL ? ERR(poll(pf, two_fds, -1)) : ERR(ppoll(pf, two_fds, NULL, NULL));
		w->ret[ph] = r;
		w->revents[0] = pf[0].revents;
		w->revents[1] = pf[1].revents;
		w->ok[ph] = r == 1 && pf[side].revents == POLLIN && pf[!side].revents == 0;
		/* the byte that woke it */
		if (ERR(read(side ? w->sock[0] : w->pipe[0], buf, 1)) != 1 || buf[0] != (char)ph)
			w->ok[ph] = 0;
	}

	/* pread, pread64 -> __pread_chk, __pread64_chk */
	atomic_fetch_add(&entered[PH_PREAD], 1);
	r = ERR(pread(file_fd, buf, msg_len, (off_t)w->id * MSG));
	file_bytes((long)w->id * MSG, want);
	w->ret[PH_PREAD] = r;
	w->ok[PH_PREAD] = r == MSG && !memcmp(buf, want, MSG);
	r = ERR(pread64(file_fd, buf, msg_len, (off64_t)(THREADS - 1 - w->id) * MSG));
	file_bytes((long)(THREADS - 1 - w->id) * MSG, want);
	if (!(r == MSG && !memcmp(buf, want, MSG))) {
		w->ret[PH_PREAD] = r;
		w->ok[PH_PREAD] = 0;
	}
	return NULL;
}

/* wait until all threads are in phase ph, and a little longer */
static void wait_entered(int ph)
{
	double deadline = now_ms() + 10000;

	while (atomic_load(&entered[ph]) < THREADS && now_ms() < deadline)
		sleep_ms(1);
	sleep_ms(100);
}

static void count_threads(int ph, int nfds)
{
	int n = kernel_threads();
	char what[160];

	note("%d threads blocked in %s: %d kernel threads", atomic_load(&entered[ph]),
	     phase_name[ph], n);
	snprintf(what, sizeof what, "200 threads blocked in %s park without a kernel thread each",
		 phase_name[ph]);
	check(!parks_without_thread(nfds) || (n > 0 && n < 50), what,
	      "%d kernel threads while %d threads wait", n, atomic_load(&entered[ph]));
}

static void test_threads(void)
{
	static struct worker w[THREADS];
	static pthread_t t[THREADS];
	char path[] = "/tmp/gshim-fortify_io.XXXXXX", msg[MSG];
	double t0 = now_ms();

	stage("1: setting up 200 threads");
	file_fd = mkstemp(path);
	if (file_fd < 0) {
		perror("fortify_io: mkstemp");
		exit(2);
	}
	unlink(path);
	for (long off = 0; off < (long)THREADS * MSG; off += MSG) {
		file_bytes(off, msg);
		if (write(file_fd, msg, MSG) != MSG)
			abort();
	}
	for (int i = 0; i < THREADS; i++) {
		w[i].id = i;
		if (pipe(w[i].pipe) || socketpair(AF_UNIX, SOCK_STREAM, 0, w[i].sock)) {
			perror("fortify_io: pipe/socketpair");
			exit(2);
		}
	}
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker_main, &w[i]);

	stage("1: 200 threads in read() (__read_chk)");
	wait_entered(PH_READ);
	count_threads(PH_READ, 1);
	for (int i = 0; i < THREADS; i++) {
		message(i, PH_READ, msg);
		if (write(w[i].pipe[1], msg, MSG) != MSG)
			abort();
	}
	for (int ph = PH_RECV; ph <= PH_RECVFROM; ph++) {
		stage(ph == PH_RECV ? "1: 200 threads in recv() (__recv_chk)"
				    : "1: 200 threads in recvfrom() (__recvfrom_chk)");
		wait_entered(ph);
		if (ph == PH_RECV)
			count_threads(ph, 1);
		for (int i = 0; i < THREADS; i++) {
			message(i, ph, msg);
			if (send(w[i].sock[1], msg, MSG, 0) != MSG)
				abort();
		}
	}
	for (int ph = PH_POLL; ph <= PH_PPOLL; ph++) {
		stage(ph == PH_POLL ? "1: 200 threads in poll() (__poll_chk)"
				    : "1: 200 threads in ppoll() (__ppoll_chk)");
		wait_entered(ph);
		if (ph == PH_POLL)
			count_threads(ph, 2);
		for (int i = 0; i < THREADS; i++) {
			char c = (char)ph;

			if (write(poll_side(i, ph) ? w[i].sock[1] : w[i].pipe[1], &c, 1) != 1)
				abort();
		}
	}
	stage("1: joining 200 threads");
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	note("200 threads through all phases in %.0f ms", now_ms() - t0);
	for (int ph = 0; ph < NPHASES; ph++) {
		int good = 0, bad = -1;
		char what[160];

		for (int i = 0; i < THREADS; i++)
			if (w[i].ok[ph])
				good++;
			else if (bad < 0)
				bad = i;
		snprintf(what, sizeof what, "200 threads: %s, every one got its data", phase_name[ph]);
		check(good == THREADS, what,
		      "%d of %d right; first wrong: #%d, returned %ld (%s), revents 0x%x 0x%x", good,
		      THREADS, bad, bad >= 0 ? w[bad].ret[ph] : 0,
		      errname(bad >= 0 ? w[bad].ret[ph] : 0), bad >= 0 ? w[bad].revents[0] : 0,
		      bad >= 0 ? w[bad].revents[1] : 0);
	}
	for (int i = 0; i < THREADS; i++) {
		close(w[i].pipe[0]);
		close(w[i].pipe[1]);
		close(w[i].sock[0]);
		close(w[i].sock[1]);
	}
	close(file_fd);
}

/* ---- 2: the size checks ------------------------------------------------------ */
enum over { O_READ, O_RECV, O_POLL, O_PREAD };
static const char *const over_name[] = { "read", "recv", "poll", "pread" };

/* in the child: ask for more than the buffer holds (ready descriptors, so
 * a call that is let through returns instead of blocking) */
static void overflow(enum over o)
{
	char buf[MSG];
	struct pollfd pf[2];
	int p[2], s[2];
	long r = 0;

	if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		_exit(4);
	memset(buf, 'o', sizeof buf);
	if (write(p[1], buf, MSG) != MSG || write(p[1], buf, MSG) != MSG ||
	    send(s[1], buf, MSG, 0) != MSG || send(s[1], buf, MSG, 0) != MSG)
		_exit(4);
	switch (o) {
	case O_READ: r = read(p[0], buf, too_long); break;
	case O_RECV: r = recv(s[0], buf, too_long, 0); break;
	case O_POLL:
		pf[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = s[0], .events = POLLIN };
		r = poll(pf, three_fds, 0);
		break;
	case O_PREAD: r = pread(file_fd, buf, too_long, 0); break;
	}
	(void)r;
	_exit(0); /* not reached if the check works */
}

static void test_overflow(enum over o)
{
	char err[512] = "", what[160];
	size_t got = 0;
	int ep[2], st = 0;
	long r;
	pid_t pid;

	stage("2: fortify size checks in a child");
	if (pipe(ep))
		abort();
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("fortify_io: fork");
		exit(2);
	}
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };

		setrlimit(RLIMIT_CORE, &no_core);
		close(ep[0]);
		dup2(ep[1], 2);
		overflow(o);
	}
	close(ep[1]);
	while (got < sizeof err - 1 && (r = read(ep[0], err + got, sizeof err - 1 - got)) > 0)
		got += (size_t)r;
	while (got > 0 && err[got - 1] == '\n')
		got--;
	err[got] = '\0';
	close(ep[0]);
	waitpid(pid, &st, 0);
	note("%s past the buffer: child %s %d, stderr: %s", over_name[o],
	     WIFSIGNALED(st) ? "killed by signal" : "exited with", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
	     err);
	snprintf(what, sizeof what,
		 "%s() of more than the buffer holds: \"buffer overflow detected\", SIGABRT",
		 over_name[o]);
	check(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(err, "buffer overflow detected"),
	      what, "child %s %d, stderr \"%s\"", WIFSIGNALED(st) ? "killed by signal" : "exited with",
	      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), err);
}

int main(void)
{
	char path[] = "/tmp/gshim-fortify_io.XXXXXX";

	watchdog(25);
	file_fd = mkstemp(path);
	if (file_fd < 0 || unlink(path) || write(file_fd, path, sizeof path) != sizeof path) {
		perror("fortify_io: mkstemp");
		exit(2);
	}
	for (enum over o = O_READ; o <= O_PREAD; o++)
		test_overflow(o);
	close(file_fd);
	test_threads();
	return failures ? 1 : 0;
}
