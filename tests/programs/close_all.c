/* close_all: a program that closes every descriptor it did not open, as
 * daemons and shells do, while its threads do blocking I/O (issue 11
 * item 2).  Under gshim the poller's descriptors (io_uring ring, epoll
 * set, eventfd, the epoll waits' dups) sit among the numbers it closes
 * and dup2's onto: gshim must keep its own, never touch the program's,
 * and go on parking the I/O.
 *
 * The descriptor limit is lowered to NOFILE first, so that gshim's numbers
 * (64 below the limit) are within reach of the program's pipe() calls.
 *
 * Each round, while worker pairs exchange checksummed messages over
 * pipes and socketpairs kept below FLOOR:
 *   - close everything at and above FLOOR: close_range, closefrom,
 *     syscall(SYS_close_range), and a /proc/self/fd loop closing each
 *     number (one of them per round);
 *   - pipe() until the table is full, which hands out the numbers just
 *     freed (gshim's old ones among them), and check each pipe;
 *   - dup2/dup3 a pipe and an eventfd onto every number in
 *     [FLOOR, FLOOR + 48) and onto every number /proc/self/fd listed
 *     before the closing or still lists (under gshim: its own), check
 *     each with fstat and by writing known bytes through it and reading
 *     them back;
 *   - run a ping-pong between two threads over a socketpair dup2'd onto
 *     two of those numbers.
 * Between rounds: a thread blocked reading fd 0 (a socketpair end) while
 * close_range(3, ~0U) closes its peer must see end of file, then the same
 * closing and reuse from 3.  Last, dup2 onto every number up to the
 * descriptor limit (the table full: gshim has no number left to move to)
 * and I/O again.  Also: a fork() while threads wait for I/O leaves the
 * child the program's descriptors only; and, in a child, close_range made
 * without libc (gshim cannot see it: it must notice, and neither abort
 * nor hang nor touch the program's descriptors). */
#include "prog.h"
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define FLOOR 64
#define ROUNDS 8
#define PAIRS 3
#define MSGS 400
#define REUSE 48
#define NOFILE 512

static int read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
	size_t put = 0;

	while (put < n) {
		ssize_t r = write(fd, (const char *)buf + put, n - put);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		put += (size_t)r;
	}
	return 0;
}

/* ---- workers: a client sends messages, an echo thread sends them back -- */

struct side {
	int rd, wr, nmsg, salt;
	long bad;
};

static void *echo_main(void *arg)
{
	struct side *s = arg;
	char buf[8192];
	uint32_t len;

	for (;;) {
		if (read_full(s->rd, &len, 4) != 0) {
			s->bad++;
			break;
		}
		if (len == 0)
			break;
		if (len > sizeof buf || read_full(s->rd, buf, len) != 0 ||
		    write_full(s->wr, &len, 4) != 0 || write_full(s->wr, buf, len) != 0) {
			s->bad++;
			break;
		}
	}
	return NULL;
}

static void *client_main(void *arg)
{
	struct side *s = arg;
	char out[8192], in[8192];
	uint32_t len, back;

	for (int i = 0; i < s->nmsg; i++) {
		len = 1 + (uint32_t)((i * 2654435761u + (unsigned)s->salt) % 6000);
		for (uint32_t k = 0; k < len; k++)
			out[k] = (char)(k * 31 + (unsigned)i + (unsigned)s->salt);
		if (write_full(s->wr, &len, 4) != 0 || write_full(s->wr, out, len) != 0 ||
		    read_full(s->rd, &back, 4) != 0 || back != len ||
		    read_full(s->rd, in, len) != 0 || memcmp(in, out, len) != 0) {
			s->bad++;
			return NULL;
		}
	}
	len = 0;
	if (write_full(s->wr, &len, 4) != 0)
		s->bad++;
	return NULL;
}

struct pair {
	struct side c, e;
	pthread_t tc, te;
	int fds[4];
};

/* A pipe pair (kind 0) or a socketpair (kind 1) between a client and an
 * echo thread. */
static int pair_start(struct pair *p, int kind, int nmsg, int salt)
{
	memset(p, 0, sizeof *p);
	if (kind == 0) {
		int a[2], b[2];

		if (pipe(a) || pipe(b))
			return -1;
		p->c = (struct side){ .rd = b[0], .wr = a[1] };
		p->e = (struct side){ .rd = a[0], .wr = b[1] };
		memcpy(p->fds, (int[]){ a[0], a[1], b[0], b[1] }, sizeof p->fds);
	} else {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			return -1;
		p->c = (struct side){ .rd = sv[0], .wr = sv[0] };
		p->e = (struct side){ .rd = sv[1], .wr = sv[1] };
		memcpy(p->fds, (int[]){ sv[0], sv[1], -1, -1 }, sizeof p->fds);
	}
	p->c.nmsg = nmsg;
	p->c.salt = salt;
	if (pthread_create(&p->te, NULL, echo_main, &p->e) ||
	    pthread_create(&p->tc, NULL, client_main, &p->c))
		return -1;
	return 0;
}

static long pair_join(struct pair *p)
{
	pthread_join(p->tc, NULL);
	pthread_join(p->te, NULL);
	return p->c.bad + p->e.bad;
}

static void pair_close(struct pair *p)
{
	for (int i = 0; i < 4; i++)
		if (p->fds[i] >= 0)
			close(p->fds[i]);
}

/* ---- closing everything ------------------------------------------------ */

/* Numbers /proc/self/fd lists at or above lo (not the listing's own). */
static int listed(int lo, int *out, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd < lo || fd == dirfd(d))
			continue;
		if (n < max)
			out[n++] = fd;
	}
	closedir(d);
	return n;
}

static void close_everything(int lo, int how)
{
	switch (how % 4) {
	case 0:
		close_range((unsigned)lo, ~0U, 0);
		break;
	case 1:
		closefrom(lo);
		break;
	case 2:
		syscall(SYS_close_range, lo, ~0U, 0);
		break;
	default: {
		int v[4096], n = listed(lo, v, 4096);

		for (int i = 0; i < n; i++)
			close(v[i]);
	}
	}
}

/* True if fd is open on the same file as ref. */
static int same_file(int fd, int ref)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && fstat(ref, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* dup2/dup3 a pipe's ends and an eventfd onto every number in
 * [lo, lo + REUSE) and onto every number still listed at or above lo,
 * then check them all.  Leaves them open. */
static int reuse_numbers(int lo, const int *before, int nbefore, int *targets, int *ntargets)
{
	int p[2], ev, v[4096], n, bad = 0, k = 0;
	uint64_t one = 1, got;
	char msg[16], back[16];

	if (pipe(p) || (ev = eventfd(0, 0)) < 0)
		return 1;
	n = listed(lo, v, 4096);
	for (int fd = lo; fd < lo + REUSE; fd++)
		if (fd != p[0] && fd != p[1] && fd != ev)
			targets[k++] = fd;
	for (int i = 0; i < n + nbefore && k < 4096; i++) {
		int fd = i < n ? v[i] : before[i - n], dup = 0;

		for (int j = 0; j < k; j++)
			dup |= targets[j] == fd;
		if (!dup && fd >= lo + REUSE && fd != p[0] && fd != p[1] && fd != ev)
			targets[k++] = fd;
	}
	*ntargets = k;
	for (int i = 0; i < k; i++) {
		int src = i % 3 == 0 ? p[0] : i % 3 == 1 ? p[1] : ev;
		int r = i % 2 ? dup2(src, targets[i]) : dup3(src, targets[i], O_CLOEXEC);

		if (r != targets[i])
			bad++;
	}
	for (int i = 0; i < k; i++) {
		int src = i % 3 == 0 ? p[0] : i % 3 == 1 ? p[1] : ev;

		if (!same_file(targets[i], src))
			bad++;
	}
	/* Bytes written through each write-end number come out of the read
	 * end in order; the eventfd numbers count. */
	for (int i = 1; i < k; i += 3) {
		snprintf(msg, sizeof msg, "n%06d", targets[i]);
		if (write_full(targets[i], msg, 8) != 0)
			bad++;
		if (read_full(targets[i - 1], back, 8) != 0 || memcmp(msg, back, 8) != 0)
			bad++;
	}
	for (int i = 2; i < k; i += 3)
		if (write(targets[i], &one, 8) != 8)
			bad++;
	if (read(ev, &got, 8) != 8 || got != (uint64_t)((k + 0) / 3))
		bad++;
	close(p[0]);
	close(p[1]);
	close(ev);
	return bad;
}

/* pipe() until the table is full (or 250 pipes): the numbers the closing
 * freed come back in order, gshim's old ones among them.  Each pipe
 * must carry 8 bytes. */
static int reopen_numbers(void)
{
	int p[250][2], n = 0, bad = 0;
	char msg[8] = "reopen", back[8];

	while (n < 250 && pipe(p[n]) == 0)
		n++;
	for (int i = 0; i < n; i++) {
		if (write_full(p[i][1], msg, 8) != 0 || read_full(p[i][0], back, 8) != 0 ||
		    memcmp(msg, back, 8) != 0)
			bad++;
		close(p[i][0]);
		close(p[i][1]);
	}
	return bad;
}

/* A ping-pong over a socketpair moved onto numbers a and b. */
static long pingpong_on(int a, int b, int salt)
{
	struct pair p;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || dup2(sv[0], a) != a || dup2(sv[1], b) != b)
		return 1;
	close(sv[0]);
	close(sv[1]);
	memset(&p, 0, sizeof p);
	p.c = (struct side){ .rd = a, .wr = a, .nmsg = 100, .salt = salt };
	p.e = (struct side){ .rd = b, .wr = b };
	if (pthread_create(&p.te, NULL, echo_main, &p.e) ||
	    pthread_create(&p.tc, NULL, client_main, &p.c))
		return 1;
	return pair_join(&p) + !same_file(a, a);
}

/* ---- a reader blocked on fd 0 while its peer is closed ------------------ */

static void *stdin_reader(void *arg)
{
	char c;
	ssize_t r;

	do
		r = read(0, &c, 1);
	while (r < 0 && errno == EINTR);
	*(long *)arg = r;
	return NULL;
}

static int blocked_reader_start(pthread_t *t, long *res)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || dup2(sv[0], 0) != 0)
		return -1;
	close(sv[0]);
	*res = -2;
	pthread_create(t, NULL, stdin_reader, res);
	sleep_ms(20);   /* let it block: the poller waits for it */
	return sv[1];
}

/* ---- the program --------------------------------------------------------- */

static long closing_round(int r)
{
	struct pair p[PAIRS];
	int targets[4096], nt = 0;
	long bad = 0;

	for (int i = 0; i < PAIRS; i++)
		if (pair_start(&p[i], i % 2, MSGS, r * 10 + i) != 0)
			return 1000;
	for (int k = 0; k < 3; k++) {
		int before[4096], nb = listed(FLOOR, before, 4096);

		close_everything(FLOOR, r + k);
		if (k == 1)
			bad += reopen_numbers();
		bad += reuse_numbers(FLOOR, before, nb, targets, &nt);
		bad += pingpong_on(targets[nt - 1], targets[nt / 2], r + k);
		close_everything(FLOOR, r + k + 1);
	}
	for (int i = 0; i < PAIRS; i++) {
		bad += pair_join(&p[i]);
		pair_close(&p[i]);
	}
	return bad;
}

static long closing_from_3(int r)
{
	pthread_t t;
	long res, bad = 0;
	int targets[4096], nt = 0, before[4096], nb, peer = blocked_reader_start(&t, &res);

	if (peer < 0)
		return 1;
	nb = listed(3, before, 4096);
	/* close_range(3, ~0U) closes the peer: the blocked read sees EOF. */
	close_everything(3, r);
	pthread_join(t, NULL);
	if (res != 0)
		bad++;
	bad += reopen_numbers();
	bad += reuse_numbers(3, before, nb, targets, &nt);
	bad += pingpong_on(targets[nt - 1], targets[1], r);
	close_everything(3, r + 1);
	return bad;
}

/* dup2 onto every number below the limit: no number is left for gshim
 * to move to.  Then close everything and do I/O again. */
static long table_full(void)
{
	struct rlimit rl;
	struct pair p[PAIRS];
	pthread_t t;
	long res, bad = 0;
	int src[2], peer, lim;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1;
	lim = (int)rl.rlim_cur;
	peer = blocked_reader_start(&t, &res);
	if (peer < 0 || pipe(src) != 0)
		return 1;
	for (int fd = 3; fd < lim; fd++)
		if (fd != src[0] && fd != src[1] && fd != peer &&
		    dup2(fd % 2 ? src[0] : src[1], fd) != fd)
			bad++;
	for (int fd = 3; fd < lim; fd += 97)
		if (fd != src[0] && fd != src[1] && fd != peer &&
		    !same_file(fd, fd % 2 ? src[0] : src[1]))
			bad++;
	close_everything(3, 0);   /* the peer too: EOF */
	pthread_join(t, NULL);
	if (res != 0)
		bad++;
	for (int i = 0; i < PAIRS; i++)
		if (pair_start(&p[i], i % 2, MSGS / 4, 77 + i) != 0)
			return bad + 1000;
	for (int i = 0; i < PAIRS; i++) {
		bad += pair_join(&p[i]);
		pair_close(&p[i]);
	}
	return bad;
}

/* fork() while the workers wait for I/O: the child must hold the
 * program's descriptors and nothing else (gshim's ring, epoll set and
 * the epoll waits' dups are closed there). */
static long fork_during_io(void)
{
	struct pair p[PAIRS];
	int mine = 0, st;
	long bad = 0;
	pid_t pid;

	for (int i = 0; i < PAIRS; i++) {
		if (pair_start(&p[i], i % 2, MSGS, 99 + i) != 0)
			return 1000;
		for (int k = 0; k < 4; k++)
			mine += p[i].fds[k] >= 0;
	}
	sleep_ms(5);
	pid = fork();
	if (pid == 0) {
		int v[4096];

		_exit(listed(3, v, 4096) == mine ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		bad++;
	for (int i = 0; i < PAIRS; i++) {
		bad += pair_join(&p[i]);
		pair_close(&p[i]);
	}
	return bad;
}

/* close_range without libc, as a program with its own system call
 * stubs (or a static runtime inside it) would: gshim cannot see it, and
 * must notice when its descriptors fail, without aborting, hanging or
 * touching the program's.  In a child, so the rest of the run keeps its
 * poller. */
static long raw_close_range(unsigned lo, unsigned hi)
{
	long r;

	__asm__ volatile ("syscall" : "=a"(r)
	                  : "0"((long)SYS_close_range), "D"((long)lo), "S"((long)hi), "d"(0L)
	                  : "rcx", "r11", "memory");
	return r;
}

static int raw_child(void)
{
	struct pair p[PAIRS];
	pthread_t t;
	long res, bad = 0;
	int peer = blocked_reader_start(&t, &res);

	if (peer < 0)
		return 1;
	for (int i = 0; i < PAIRS; i++)
		if (pair_start(&p[i], i % 2, MSGS, 55 + i) != 0)
			return 1;
	sleep_ms(5);
	if (raw_close_range(FLOOR, ~0U) != 0)
		bad++;
	bad += reopen_numbers();
	for (int i = 0; i < PAIRS; i++)
		bad += pair_join(&p[i]);
	if (raw_close_range(3, ~0U) != 0)   /* the peer too: EOF */
		bad++;
	pthread_join(t, NULL);
	if (res != 0)
		bad++;
	for (int i = 0; i < PAIRS; i++)
		if (pair_start(&p[i], i % 2, MSGS / 4, 66 + i) != 0)
			return 1;
	for (int i = 0; i < PAIRS; i++)
		bad += pair_join(&p[i]);
	bad += reopen_numbers();
	return bad != 0;
}

static long raw_closing(void)
{
	int st;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(raw_child());
	return pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

int main(void)
{
	char what[64];
	struct rlimit rl;

	watchdog(25);
	/* A small table, as under many service managers (1024, or less):
	 * gshim keeps its descriptors 64 below the limit, where the
	 * program's pipe() calls reach them (reopen_numbers). */
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < NOFILE) {
		printf("SKIP: RLIMIT_NOFILE below %d\n", NOFILE);
		return 77;
	}
	rl.rlim_cur = NOFILE;
	setrlimit(RLIMIT_NOFILE, &rl);
	for (int r = 0; r < ROUNDS; r++) {
		long bad;

		snprintf(what, sizeof what, "closing round %d", r);
		stage("closing at and above FLOOR while workers do I/O");
		bad = closing_round(r);
		check(bad == 0, what, "%ld errors", bad);
		snprintf(what, sizeof what, "closing from 3, round %d", r);
		stage("closing from 3 with a reader blocked on fd 0");
		bad = closing_from_3(r);
		check(bad == 0, what, "%ld errors", bad);
	}
	stage("fork while threads wait for I/O");
	{
		long bad = fork_during_io();

		check(bad == 0, "fork child holds only the program's descriptors", "%ld errors", bad);
	}
	stage("close_range without libc (in a child)");
	{
		long bad = raw_closing();

		check(bad == 0, "close_range without libc, then I/O", "%ld errors", bad);
	}
	stage("filling the descriptor table");
	{
		long bad = table_full();

		check(bad == 0, "table full, then I/O", "%ld errors", bad);
	}
	return failures ? 1 : 0;
}
