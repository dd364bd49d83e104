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
 *  7. more than 64 descriptors (under gshim: the plain blocking call).
 *  8. bad arguments: poll with nfds > RLIMIT_NOFILE, select with nfds -1,
 *     ppoll with tv_nsec 1e9, select with a negative tv_sec, pselect with
 *     a negative tv_nsec: -1 EINVAL; select on a closed descriptor: -1
 *     EBADF; poll's array or select's set at an unmapped address: -1
 *     EFAULT (last: a wrapper that reads them itself crashes).
 * A thread waits in read() the whole time: under gshim a program with a
 * single thread makes the plain calls, so every call here has company.
 *
 * Parts 4 to 6 (a signal handler, pthread_cancel and 300 waiters, all
 * threads blocked in the calls) are the program poll_many_blocked.c;
 * helpers shared with it in poll_many.h. */
#include "poll_many.h"

/* ---- 1: one of three pipes becomes readable ---------------------------------- */

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

int main(void)
{
	pthread_t by;

	watchdog(25);
	by = bystander_start();
	for (enum call c = C_POLL; c <= C_PSELECT; c++)
		test_second_of_three(c);
	test_events();
	test_no_fds();
	test_over_64();
	test_bad_args();
	bystander_stop(by);
	return failures ? 1 : 0;
}
