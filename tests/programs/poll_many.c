/* poll, ppoll, select and pselect on several descriptors.  Each answer is
 * what Linux gives natively (under gshim they park on the poller and ask
 * the kernel again after every wake-up):
 *
 *  1. three empty pipes, another thread writes into the 2nd after 50 ms:
 *     poll, ppoll (NULL mask), select and pselect return 1 with only that
 *     descriptor ready, after >= 40 ms.  ppoll's and pselect's timespec is
 *     left as it was; select writes the time left back into its timeval
 *     (2 s timeout, woken at ~50 ms: 1.8 s <= tv < 2 s).
 *  2. POLLOUT on a writable socketpair at once; POLLHUP when another thread
 *     closes the write end of the pipe polled; POLLNVAL for a closed
 *     descriptor among valid ones, at once; negative descriptors are
 *     ignored (revents 0), also when there is nothing else (a timeout).
 *  3. poll(NULL, 0, 100) and select(0, NULL, NULL, NULL, 100 ms) sleep
 *     100 ms and return 0.
 *  4. SIGUSR1 (handler installed WITH SA_RESTART) sent with pthread_kill
 *     to a thread blocked on an empty pipe: poll, ppoll, select and pselect
 *     return -1 EINTR at the signal (never restarted: data written 50 ms
 *     later is not waited for), the handler ran once, on that thread;
 *     select writes the time left back then too.
 *  5. pthread_cancel of a thread blocked in poll(-1) / select(NULL): the
 *     thread is cancelled (join: PTHREAD_CANCELED) promptly.
 *  6. 300 threads each poll two pipes of their own (infinite timeout)
 *     beside a thread that spins; the main thread writes one byte into one
 *     of each thread's pipes; each sees exactly that one ready and reads
 *     its byte.  Under gshim (with a poller, and GSHIM_IO=epoll takes the
 *     plain call for more than one descriptor) the process has < 50 kernel
 *     threads while the 300 wait.
 *  7. more than 64 descriptors (under gshim: the plain blocking call).
 *  8. bad arguments: poll with nfds > RLIMIT_NOFILE, select with nfds -1,
 *     ppoll with tv_nsec 1e9, select with a negative tv_sec, pselect with
 *     a negative tv_nsec: -1 EINVAL; select on a closed descriptor: -1
 *     EBADF; poll's array or select's set at an unmapped address: -1
 *     EFAULT (last: a wrapper that reads them itself crashes).
 * A thread waits in read() the whole time: under gshim a program with a
 * single thread makes the plain calls, so every call here has company. */
#include "prog.h"
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>

#define KICK_MS 50.0   /* the other thread acts this long after the call starts */
#define EARLY_MS 40.0  /* "after ~50 ms": at least this */
#define SLACK_MS 40.0  /* "at once": less than this */
#define WAITERS 300
#define MANY 100       /* > 64 descriptors */

static void mkpipe(int p[2])
{
	if (pipe(p)) {
		perror("poll_many: pipe");
		exit(2);
	}
}

/* ---- another thread acts a little later ------------------------------------- */
enum act { ACT_WRITE, ACT_CLOSE };

struct later {
	enum act act;
	int fd;
	double ms;
	pthread_t t;
};

static void *later_main(void *arg)
{
	struct later *l = arg;

	sleep_ms(l->ms);
	if (l->act == ACT_WRITE) {
		if (write(l->fd, "x", 1) != 1)
			perror("poll_many: write");
	} else {
		close(l->fd);
	}
	return NULL;
}

static void later_start(struct later *l, enum act act, int fd, double ms)
{
	l->act = act;
	l->fd = fd;
	l->ms = ms;
	pthread_create(&l->t, NULL, later_main, l);
}

static void later_join(struct later *l)
{
	pthread_join(l->t, NULL);
}

/* ---- 1: one of three pipes becomes readable ---------------------------------- */
enum call { C_POLL, C_PPOLL, C_SELECT, C_PSELECT };
static const char *const call_name[] = { "poll", "ppoll", "select", "pselect" };

static void test_second_of_three(enum call c)
{
	int p[3][2], maxfd = 0, only_it = 1;
	struct pollfd pf[3];
	struct timespec ts = { 2, 0 };
	struct timeval tv = { 2, 0 };
	struct later l;
	fd_set rd;
	double t0, took, left = 0;
	long r;
	char what[160];

	stage("1: the 2nd of three pipes becomes readable");
	for (int i = 0; i < 3; i++) {
		mkpipe(p[i]);
		pf[i] = (struct pollfd){ .fd = p[i][0], .events = POLLIN, .revents = 0 };
		if (p[i][0] > maxfd)
			maxfd = p[i][0];
	}
	FD_ZERO(&rd);
	for (int i = 0; i < 3; i++)
		FD_SET(p[i][0], &rd);
	later_start(&l, ACT_WRITE, p[1][1], KICK_MS);
	t0 = now_ms();
	switch (c) {
	case C_POLL: r = ERR(poll(pf, 3, 2000)); break;
	case C_PPOLL: r = ERR(ppoll(pf, 3, &ts, NULL)); break;
	case C_SELECT: r = ERR(select(maxfd + 1, &rd, NULL, NULL, &tv)); break;
	default: r = ERR(pselect(maxfd + 1, &rd, NULL, NULL, &ts, NULL)); break;
	}
	took = now_ms() - t0;
	later_join(&l);
	if (c == C_POLL || c == C_PPOLL) {
		only_it = pf[0].revents == 0 && pf[1].revents == POLLIN && pf[2].revents == 0;
	} else {
		for (int fd = 0; fd <= maxfd; fd++)
			if (FD_ISSET(fd, &rd) != (fd == p[1][0]))
				only_it = 0;
	}
	left = tv.tv_sec + tv.tv_usec / 1e6;
	note("%s, 2nd of 3 pipes written at %.0f ms: %ld (%s) after %.1f ms, revents 0x%x 0x%x 0x%x, timeval left %.6f s",
	     call_name[c], KICK_MS, r, errname(r), took, pf[0].revents, pf[1].revents, pf[2].revents, left);
	snprintf(what, sizeof what, "%s on 3 pipes, the 2nd written after 50 ms: 1, only that one ready%s",
		 call_name[c],
		 c == C_SELECT ? ", time left written back" :
		 c == C_POLL ? "" : ", timespec unchanged");
	if (c == C_SELECT)
		check(r == 1 && only_it && took >= EARLY_MS && left >= 1.8 && left < 2.0, what,
		      "returned %ld (%s) after %.1f ms, only the 2nd set: %d, timeval {%ld, %ld}", r,
		      errname(r), took, only_it, (long)tv.tv_sec, (long)tv.tv_usec);
	else
		check(r == 1 && only_it && took >= EARLY_MS && ts.tv_sec == 2 && ts.tv_nsec == 0, what,
		      "returned %ld (%s) after %.1f ms, only the 2nd ready: %d (revents 0x%x 0x%x 0x%x), timespec {%ld, %ld}",
		      r, errname(r), took, only_it, pf[0].revents, pf[1].revents, pf[2].revents,
		      (long)ts.tv_sec, ts.tv_nsec);
	for (int i = 0; i < 3; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}

/* ---- 2: POLLOUT, POLLHUP, POLLNVAL, negative descriptors ---------------------- */
static void test_events(void)
{
	struct pollfd pf[3];
	struct later l;
	double t0, took;
	long r;
	int s[2], p[2], q[2], closed;

	stage("2: POLLOUT on a socketpair");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		abort();
	mkpipe(p);
	pf[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = s[0], .events = POLLIN | POLLOUT };
	t0 = now_ms();
	r = ERR(poll(pf, 2, 5000));
	took = now_ms() - t0;
	note("POLLOUT: %ld after %.1f ms, revents 0x%x 0x%x", r, took, pf[0].revents, pf[1].revents);
	check(r == 1 && pf[0].revents == 0 && pf[1].revents == POLLOUT && took < SLACK_MS,
	      "poll(empty pipe, writable socketpair): 1, POLLOUT at once",
	      "returned %ld (%s) after %.1f ms, revents 0x%x 0x%x", r, errname(r), took,
	      pf[0].revents, pf[1].revents);

	stage("2: POLLHUP when another thread closes the write end");
	mkpipe(q);
	pf[0] = (struct pollfd){ .fd = q[0], .events = POLLIN };
	later_start(&l, ACT_CLOSE, q[1], KICK_MS);
	t0 = now_ms();
	r = ERR(poll(pf, 1, 5000));
	took = now_ms() - t0;
	later_join(&l);
	note("POLLHUP: %ld after %.1f ms, revents 0x%x", r, took, pf[0].revents);
	check(r == 1 && pf[0].revents == POLLHUP && took >= EARLY_MS,
	      "poll(pipe), write end closed by another thread after 50 ms: 1, POLLHUP",
	      "returned %ld (%s) after %.1f ms, revents 0x%x", r, errname(r), took, pf[0].revents);
	close(q[0]);

	mkpipe(q);
	pf[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = q[0], .events = POLLIN };
	later_start(&l, ACT_CLOSE, q[1], KICK_MS);
	t0 = now_ms();
	r = ERR(poll(pf, 2, 5000));
	took = now_ms() - t0;
	later_join(&l);
	note("POLLHUP of 2: %ld after %.1f ms, revents 0x%x 0x%x", r, took, pf[0].revents,
	     pf[1].revents);
	check(r == 1 && pf[0].revents == 0 && pf[1].revents == POLLHUP && took >= EARLY_MS,
	      "poll(2 pipes), one's write end closed by another thread after 50 ms: 1, POLLHUP",
	      "returned %ld (%s) after %.1f ms, revents 0x%x 0x%x", r, errname(r), took,
	      pf[0].revents, pf[1].revents);
	close(q[0]);

	stage("2: POLLNVAL for a closed descriptor");
	closed = dup(p[0]);
	close(closed);
	pf[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = closed, .events = POLLIN };
	pf[2] = (struct pollfd){ .fd = s[1], .events = POLLIN };
	t0 = now_ms();
	r = ERR(poll(pf, 3, 5000));
	took = now_ms() - t0;
	note("POLLNVAL: %ld after %.1f ms, revents 0x%x 0x%x 0x%x", r, took, pf[0].revents,
	     pf[1].revents, pf[2].revents);
	check(r == 1 && pf[0].revents == 0 && pf[1].revents == POLLNVAL && pf[2].revents == 0 &&
	      took < SLACK_MS,
	      "poll(empty pipe, closed fd, empty socket): 1, POLLNVAL at once",
	      "returned %ld (%s) after %.1f ms, revents 0x%x 0x%x 0x%x", r, errname(r), took,
	      pf[0].revents, pf[1].revents, pf[2].revents);

	stage("2: negative descriptors");
	if (write(p[1], "y", 1) != 1)
		abort();
	pf[0] = (struct pollfd){ .fd = -1, .events = POLLIN, .revents = 0x5555 };
	pf[1] = (struct pollfd){ .fd = p[0], .events = POLLIN, .revents = 0x5555 };
	pf[2] = (struct pollfd){ .fd = -7, .events = POLLOUT, .revents = 0x5555 };
	r = ERR(poll(pf, 3, 5000));
	check(r == 1 && pf[0].revents == 0 && pf[1].revents == POLLIN && pf[2].revents == 0,
	      "poll(-1, pipe with data, -7): 1, revents 0 for the negative fds",
	      "returned %ld (%s), revents 0x%x 0x%x 0x%x", r, errname(r), pf[0].revents,
	      pf[1].revents, pf[2].revents);
	pf[0] = (struct pollfd){ .fd = -1, .events = POLLIN, .revents = 0x5555 };
	pf[1] = (struct pollfd){ .fd = -3, .events = POLLIN, .revents = 0x5555 };
	t0 = now_ms();
	r = ERR(poll(pf, 2, 100));
	took = now_ms() - t0;
	note("only negative fds: %ld after %.1f ms", r, took);
	check(r == 0 && pf[0].revents == 0 && pf[1].revents == 0 && took >= 99 && took < 1000,
	      "poll(-1, -3, 100 ms): 0 after 100 ms, revents 0",
	      "returned %ld (%s) after %.1f ms, revents 0x%x 0x%x", r, errname(r), took,
	      pf[0].revents, pf[1].revents);
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
}

/* ---- 3: no descriptors: a sleep --------------------------------------------- */
static void test_no_fds(void)
{
	struct timeval tv = { 0, 100000 };
	double t0, took;
	long r;

	stage("3: poll(NULL, 0, 100)");
	t0 = now_ms();
	r = ERR(poll(NULL, 0, 100));
	took = now_ms() - t0;
	note("poll(NULL, 0, 100): %ld after %.1f ms", r, took);
	check(r == 0 && took >= 99 && took < 1000, "poll(NULL, 0, 100): 0 after 100 ms",
	      "returned %ld (%s) after %.1f ms", r, errname(r), took);

	stage("3: select(0, NULL, NULL, NULL, 100 ms)");
	t0 = now_ms();
	r = ERR(select(0, NULL, NULL, NULL, &tv));
	took = now_ms() - t0;
	note("select(0, ..., 100 ms): %ld after %.1f ms, timeval left {%ld, %ld}", r, took,
	     (long)tv.tv_sec, (long)tv.tv_usec);
	check(r == 0 && took >= 99 && took < 1000 && tv.tv_sec == 0 && tv.tv_usec == 0,
	      "select(0, NULL, NULL, NULL, 100 ms): 0 after 100 ms, timeval left 0",
	      "returned %ld (%s) after %.1f ms, timeval {%ld, %ld}", r, errname(r), took,
	      (long)tv.tv_sec, (long)tv.tv_usec);
}

/* ---- 4: a signal handler interrupts the wait ---------------------------------- */
static _Atomic int handled;
static _Atomic(pthread_t) handler_self;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&handler_self, pthread_self());
	atomic_fetch_add(&handled, 1);
}

struct blocked {
	enum call call;
	int fd;
	_Atomic int entering, finished;
	long ret;
	double t0, took_ms; /* now_ms() before the call; how long it lasted */
	int handled_at_return, handler_was_me;
	struct timeval tv;  /* select's, after the call */
	struct timespec ts; /* ppoll's and pselect's, after the call */
	short revents;
};

/* the call on b->fd (POLLIN / read set); timeout: 5 s for select, ppoll
 * and pselect; poll: none, or 5 s if finite */
static long blocked_call(struct blocked *b, int finite)
{
	struct pollfd pf = { .fd = b->fd, .events = POLLIN };
	fd_set rd;
	long r;

	b->tv = (struct timeval){ 5, 0 };
	b->ts = (struct timespec){ 5, 0 };
	FD_ZERO(&rd);
	FD_SET(b->fd, &rd);
	switch (b->call) {
	case C_POLL: r = ERR(poll(&pf, 1, finite ? 5000 : -1)); break;
	case C_PPOLL: r = ERR(ppoll(&pf, 1, finite ? &b->ts : NULL, NULL)); break;
	case C_SELECT: r = ERR(select(b->fd + 1, &rd, NULL, NULL, finite ? &b->tv : NULL)); break;
	default: r = ERR(pselect(b->fd + 1, &rd, NULL, NULL, finite ? &b->ts : NULL, NULL)); break;
	}
	b->revents = pf.revents;
	return r;
}

static void *eintr_main(void *arg)
{
	struct blocked *b = arg;

	b->t0 = now_ms();
	atomic_store(&b->entering, 1);
	b->ret = blocked_call(b, b->call != C_POLL);
	b->took_ms = now_ms() - b->t0;
	b->handled_at_return = atomic_load(&handled);
	b->handler_was_me = pthread_equal(atomic_load(&handler_self), pthread_self());
	return NULL;
}

static void test_eintr(enum call c)
{
	struct sigaction sa;
	struct blocked b = { .call = c };
	pthread_t t;
	double left, kill_at, write_at;
	int p[2], ok;
	char what[160];

	stage("4: a signal handler (SA_RESTART) interrupts the wait");
	mkpipe(p);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	atomic_store(&handled, 0);
	atomic_store(&handler_self, (pthread_t)0);
	b.fd = p[0];
	pthread_create(&t, NULL, eintr_main, &b);
	while (!atomic_load(&b.entering))
		sleep_ms(1);
	sleep_ms(KICK_MS);
	kill_at = now_ms() - b.t0;
	pthread_kill(t, SIGUSR1);
	/* data after the signal: a call restarted by mistake returns it
	 * (and fails the check) instead of hanging */
	sleep_ms(KICK_MS);
	write_at = now_ms() - b.t0;
	if (write(p[1], "z", 1) != 1)
		abort();
	pthread_join(t, NULL);
	left = b.tv.tv_sec + b.tv.tv_usec / 1e6;
	note("%s interrupted: %ld (%s) after %.1f ms (signal sent at %.1f ms, data at %.1f ms), handler ran %d time(s), timeval left %.6f s, timespec {%ld, %ld}",
	     call_name[c], b.ret, errname(b.ret), b.took_ms, kill_at, write_at,
	     atomic_load(&handled), left, (long)b.ts.tv_sec, b.ts.tv_nsec);
	/* returns at the signal, not later (at the data) */
	ok = b.ret == -EINTR && b.took_ms >= kill_at && b.took_ms < kill_at + SLACK_MS &&
	     b.handled_at_return == 1 && b.handler_was_me && atomic_load(&handled) == 1;
	if (c == C_SELECT)
		ok = ok && left > 4.8 && left < 5.0;
	if (c == C_PPOLL || c == C_PSELECT)
		ok = ok && b.ts.tv_sec == 5 && b.ts.tv_nsec == 0;
	snprintf(what, sizeof what,
		 "%s(empty pipe), SIGUSR1 with SA_RESTART at 50 ms: -1 EINTR, handler once on the caller%s",
		 call_name[c],
		 c == C_SELECT ? ", time left written back" :
		 c == C_POLL ? "" : ", timespec unchanged");
	check(ok, what,
	      "returned %ld (%s) after %.1f ms, signal sent at %.1f ms, data at %.1f ms; handler seen %d time(s) at return, %d in all, on the caller: %d; timeval {%ld, %ld}, timespec {%ld, %ld}",
	      b.ret, errname(b.ret), b.took_ms, kill_at, write_at, b.handled_at_return,
	      atomic_load(&handled),
	      b.handler_was_me, (long)b.tv.tv_sec, (long)b.tv.tv_usec, (long)b.ts.tv_sec,
	      b.ts.tv_nsec);
	close(p[0]);
	close(p[1]);
}

/* ---- 5: pthread_cancel while blocked ------------------------------------------ */
static void cancel_cleanup(void *arg)
{
	atomic_store(&((struct blocked *)arg)->finished, 1);
}

static void *cancel_main(void *arg)
{
	struct blocked *b = arg;

	pthread_cleanup_push(cancel_cleanup, b);
	atomic_store(&b->entering, 1);
	b->ret = blocked_call(b, 0); /* no timeout */
	atomic_store(&b->finished, 2);
	pthread_cleanup_pop(0);
	return (void *)(intptr_t)1;
}

static void test_cancel(enum call c)
{
	struct blocked b = { .call = c };
	pthread_t t;
	void *res = NULL;
	double t0, took;
	int p[2], released = 0;
	char what[160];

	stage("5: pthread_cancel of a blocked thread");
	mkpipe(p);
	b.fd = p[0];
	pthread_create(&t, NULL, cancel_main, &b);
	while (!atomic_load(&b.entering))
		sleep_ms(1);
	sleep_ms(KICK_MS);
	t0 = now_ms();
	pthread_cancel(t);
	while (!atomic_load(&b.finished) && now_ms() - t0 < 2000)
		sleep_ms(1);
	took = now_ms() - t0;
	if (!atomic_load(&b.finished)) { /* not cancelled: let it return */
		released = 1;
		if (write(p[1], "w", 1) != 1)
			abort();
	}
	pthread_join(t, &res);
	note("cancel in %s: %s after %.1f ms", call_name[c],
	     res == PTHREAD_CANCELED ? "cancelled" : "returned", took);
	snprintf(what, sizeof what, "pthread_cancel of a thread in %s(empty pipe, no timeout): cancelled at once",
		 call_name[c]);
	check(res == PTHREAD_CANCELED && atomic_load(&b.finished) == 1 && !released &&
	      took < 1000, what,
	      "join: %s, finished %d after %.1f ms%s; the call returned %ld (%s)",
	      res == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled",
	      atomic_load(&b.finished), took, released ? " (released by writing)" : "",
	      b.ret, errname(b.ret));
	close(p[0]);
	close(p[1]);
}

/* ---- 6: many waiters ---------------------------------------------------------- */
struct waiter {
	int id, a[2], b[2];
	long ret, rd;
	short ra, rb;
	int got;
};

static _Atomic int waiting;
static _Atomic int spin_stop;
static _Atomic long spins;

static void *spinner(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
		atomic_fetch_add_explicit(&spins, 1, memory_order_relaxed);
	return NULL;
}

static uint8_t waiter_byte(int id)
{
	return (uint8_t)(id * 7 + 1);
}

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct pollfd pf[2] = { { .fd = w->a[0], .events = POLLIN },
				{ .fd = w->b[0], .events = POLLIN } };
	uint8_t c = 0;

	atomic_fetch_add(&waiting, 1);
	w->ret = ERR(poll(pf, 2, -1));
	w->ra = pf[0].revents;
	w->rb = pf[1].revents;
	w->rd = ERR(read(w->id & 1 ? w->b[0] : w->a[0], &c, 1));
	w->got = c;
	return NULL;
}

static void test_many_waiters(void)
{
	static struct waiter w[WAITERS];
	static pthread_t t[WAITERS];
	pthread_t spin;
	double t0, took, deadline;
	int nthreads, good = 0, first_bad = -1;

	stage("6: 300 threads poll two pipes each, beside a spinning thread");
	pthread_create(&spin, NULL, spinner, NULL);
	for (int i = 0; i < WAITERS; i++) {
		w[i].id = i;
		mkpipe(w[i].a);
		mkpipe(w[i].b);
	}
	for (int i = 0; i < WAITERS; i++)
		pthread_create(&t[i], NULL, waiter_main, &w[i]);
	deadline = now_ms() + 10000;
	while (atomic_load(&waiting) < WAITERS && now_ms() < deadline)
		sleep_ms(1);
	note("300 pollers started and inside poll after %.1f ms", now_ms() - (deadline - 10000));
	sleep_ms(100); /* all inside poll by now */
	nthreads = kernel_threads();
	note("300 pollers blocked (%d entered): %d kernel threads", atomic_load(&waiting), nthreads);
	check(!parks_without_thread(2) || (nthreads > 0 && nthreads < 50),
	      "300 pollers park without a kernel thread each",
	      "%d kernel threads while %d threads wait in poll", nthreads, atomic_load(&waiting));

	stage("6: writing into one pipe of each of 300 pollers");
	t0 = now_ms();
	for (int i = 0; i < WAITERS; i++) {
		uint8_t c = waiter_byte(i);

		if (write(i & 1 ? w[i].b[1] : w[i].a[1], &c, 1) != 1)
			abort();
	}
	for (int i = 0; i < WAITERS; i++)
		pthread_join(t[i], NULL);
	took = now_ms() - t0;
	atomic_store(&spin_stop, 1);
	pthread_join(spin, NULL);
	for (int i = 0; i < WAITERS; i++) {
		int odd = i & 1;

		if (w[i].ret == 1 && w[i].ra == (odd ? 0 : POLLIN) && w[i].rb == (odd ? POLLIN : 0) &&
		    w[i].rd == 1 && w[i].got == waiter_byte(i))
			good++;
		else if (first_bad < 0)
			first_bad = i;
	}
	note("300 pollers: %d right, all woken and joined %.1f ms after the first write; spinner: %ld increments",
	     good, took, atomic_load(&spins));
	check(good == WAITERS && took < 5000,
	      "300 pollers beside a spinning thread: each sees its one ready pipe and reads its byte",
	      "%d of %d right (first wrong: #%d returned %ld (%s), revents 0x%x 0x%x, read %ld, byte %d) in %.1f ms",
	      good, WAITERS, first_bad, first_bad >= 0 ? w[first_bad].ret : 0,
	      errname(first_bad >= 0 ? w[first_bad].ret : 0), first_bad >= 0 ? w[first_bad].ra : 0,
	      first_bad >= 0 ? w[first_bad].rb : 0, first_bad >= 0 ? w[first_bad].rd : 0,
	      first_bad >= 0 ? w[first_bad].got : 0, took);
	for (int i = 0; i < WAITERS; i++) {
		close(w[i].a[0]);
		close(w[i].a[1]);
		close(w[i].b[0]);
		close(w[i].b[1]);
	}
}

/* ---- 7: more than 64 descriptors ---------------------------------------------- */
static void test_over_64(void)
{
	static int p[MANY][2];
	static struct pollfd pf[MANY];
	struct later l;
	fd_set rd;
	double t0, took;
	long r;
	int maxfd = 0, only_it = 1, target = MANY * 3 / 5;

	stage("7: poll and select on 100 pipes");
	for (int i = 0; i < MANY; i++) {
		mkpipe(p[i]);
		pf[i] = (struct pollfd){ .fd = p[i][0], .events = POLLIN };
		if (p[i][0] > maxfd)
			maxfd = p[i][0];
	}
	later_start(&l, ACT_WRITE, p[target][1], KICK_MS);
	t0 = now_ms();
	r = ERR(poll(pf, MANY, 5000));
	took = now_ms() - t0;
	later_join(&l);
	for (int i = 0; i < MANY; i++)
		if (pf[i].revents != (i == target ? POLLIN : 0))
			only_it = 0;
	note("poll on %d pipes: %ld after %.1f ms", MANY, r, took);
	check(r == 1 && only_it && took >= EARLY_MS,
	      "poll on 100 pipes, one written after 50 ms: 1, only that one ready",
	      "returned %ld (%s) after %.1f ms, only that one: %d", r, errname(r), took, only_it);

	/* the byte is still there: select sees it at once; then a second one */
	if (read(p[target][0], &(char){ 0 }, 1) != 1)
		abort();
	FD_ZERO(&rd);
	for (int i = 0; i < MANY; i++)
		FD_SET(p[i][0], &rd);
	target = MANY / 3;
	later_start(&l, ACT_WRITE, p[target][1], KICK_MS);
	t0 = now_ms();
	r = ERR(select(maxfd + 1, &rd, NULL, NULL, NULL));
	took = now_ms() - t0;
	later_join(&l);
	only_it = 1;
	for (int fd = 0; fd <= maxfd; fd++)
		if (FD_ISSET(fd, &rd) != (fd == p[target][0]))
			only_it = 0;
	note("select on %d pipes: %ld after %.1f ms", MANY, r, took);
	check(r == 1 && only_it && took >= EARLY_MS,
	      "select on 100 pipes, one written after 50 ms: 1, only that one set",
	      "returned %ld (%s) after %.1f ms, only that one: %d", r, errname(r), took, only_it);
	for (int i = 0; i < MANY; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}

/* ---- 8: bad arguments ------------------------------------------------------- */
static volatile uintptr_t unmapped = 8; /* the compiler does not see it */

static void test_bad_args(void)
{
	struct rlimit rl;
	struct pollfd *big, pf;
	struct timeval tv;
	struct timespec ts;
	fd_set rd;
	nfds_t n;
	long r;
	int p[2], closed;

	stage("8: bad arguments");
	if (getrlimit(RLIMIT_NOFILE, &rl))
		abort();
	n = (nfds_t)rl.rlim_cur + 1;
	big = calloc(n, sizeof *big);
	if (!big)
		abort();
	for (nfds_t i = 0; i < n; i++)
		big[i].fd = -1;
	r = ERR(poll(big, n, 100));
	check(r == -EINVAL, "poll with nfds > RLIMIT_NOFILE: -1 EINVAL", "returned %ld (%s)", r,
	      errname(r));
	free(big);

	tv = (struct timeval){ 0, 100000 };
	r = ERR(select(-1, NULL, NULL, NULL, &tv));
	check(r == -EINVAL, "select with nfds -1: -1 EINVAL", "returned %ld (%s)", r, errname(r));

	mkpipe(p);
	pf = (struct pollfd){ .fd = p[0], .events = POLLIN };
	ts = (struct timespec){ 0, 1000000000 };
	r = ERR(ppoll(&pf, 1, &ts, NULL));
	check(r == -EINVAL, "ppoll with tv_nsec 1e9: -1 EINVAL", "returned %ld (%s)", r, errname(r));

	FD_ZERO(&rd);
	FD_SET(p[0], &rd);
	tv = (struct timeval){ -1, 0 };
	r = ERR(select(p[0] + 1, &rd, NULL, NULL, &tv));
	check(r == -EINVAL, "select with tv_sec -1: -1 EINVAL", "returned %ld (%s)", r, errname(r));

	FD_ZERO(&rd);
	FD_SET(p[0], &rd);
	ts = (struct timespec){ 0, -1 };
	r = ERR(pselect(p[0] + 1, &rd, NULL, NULL, &ts, NULL));
	check(r == -EINVAL, "pselect with tv_nsec -1: -1 EINVAL", "returned %ld (%s)", r, errname(r));

	closed = dup(p[0]);
	close(closed);
	FD_ZERO(&rd);
	FD_SET(p[0], &rd);
	FD_SET(closed, &rd);
	tv = (struct timeval){ 1, 0 };
	r = ERR(select((closed > p[0] ? closed : p[0]) + 1, &rd, NULL, NULL, &tv));
	check(r == -EBADF, "select with a closed fd in the set: -1 EBADF", "returned %ld (%s)", r,
	      errname(r));
	close(p[0]);
	close(p[1]);

	/* last: a wrapper that reads the array itself crashes here */
	stage("8: poll / select with an unmapped array");
	r = ERR(poll((struct pollfd *)unmapped, 1, 100));
	check(r == -EFAULT, "poll with the pollfd array at an unmapped address: -1 EFAULT",
	      "returned %ld (%s)", r, errname(r));
	tv = (struct timeval){ 0, 100000 };
	r = ERR(select(8, (fd_set *)unmapped, NULL, NULL, &tv));
	check(r == -EFAULT, "select with the read set at an unmapped address: -1 EFAULT",
	      "returned %ld (%s)", r, errname(r));
}

/* A thread that waits the whole time: under gshim a program with one
 * thread makes the plain calls, so every call here is made beside it. */
static int bystander_pipe[2];

static void *bystander(void *arg)
{
	char c;

	(void)arg;
	return (void *)(intptr_t)read(bystander_pipe[0], &c, 1);
}

int main(void)
{
	pthread_t by;

	watchdog(25);
	mkpipe(bystander_pipe);
	pthread_create(&by, NULL, bystander, NULL);
	for (enum call c = C_POLL; c <= C_PSELECT; c++)
		test_second_of_three(c);
	test_events();
	test_no_fds();
	for (enum call c = C_POLL; c <= C_PSELECT; c++)
		test_eintr(c);
	test_cancel(C_POLL);
	test_cancel(C_SELECT);
	test_many_waiters();
	test_over_64();
	test_bad_args();
	close(bystander_pipe[1]);
	pthread_join(by, NULL);
	return failures ? 1 : 0;
}
