/* What gshim notes about a descriptor number (syscall_wrap/park.h,
 * fd_hint: "a socket whose SO_RCVTIMEO / SO_SNDTIMEO is zero", so a
 * wait skips the getsockopt) must never change what the program sees.
 * Each case first makes a blocking call wait on a socket with no timeout
 * (the number gets its note), then changes what the number is:
 *
 *  A. setsockopt(SO_RCVTIMEO, 150 ms) after a first wait: the next read
 *     and recv of the empty socket fail with EAGAIN after >= 150 ms
 *     (and well before the 10 s watchdog); the same through
 *     syscall(SYS_setsockopt).
 *  B. setsockopt(SO_SNDTIMEO, 150 ms) after a first write had to wait
 *     for room: a write into the full socket ends after >= 150 ms, with
 *     EAGAIN (nothing written) or a short count.
 *  C. the number closed and reused where gshim cannot see (a raw close
 *     system call, the new descriptor made by a raw dup or socketpair):
 *     1. as a pipe's read end: read waits for the data written 30 ms later;
 *     2. as a regular file (its page cache dropped first, so a read that
 *        does not wait may say EAGAIN): read returns the file's bytes;
 *     3. as a non-blocking socket: read fails with EAGAIN at once.
 *  D. the number closed and reused the ordinary way (close, socket),
 *     the new socket given SO_RCVTIMEO: read times out.
 * Every result is what Linux does natively.  A bystander thread stays
 * blocked in a read throughout, so gshim parks the calls (it makes the
 * plain call while a program has one thread). */
#include "prog.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define TIMEO_MS 150
#define LATE_MS 30

/* System calls gshim does not see (no libc wrapper, no syscall()). */
static long raw3(long n, long a, long b, long c)
{
#ifdef __x86_64__
	long r;

	__asm__ volatile("syscall" : "=a"(r) : "0"(n), "D"(a), "S"(b), "d"(c)
	                 : "rcx", "r11", "memory");
	return r;
#else
	return syscall(n, a, b, c);
#endif
}

static long raw4(long n, long a, long b, long c, long d)
{
#ifdef __x86_64__
	long r;
	register long r10 __asm__("r10") = d;

	__asm__ volatile("syscall" : "=a"(r) : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
	                 : "rcx", "r11", "memory");
	return r;
#else
	return syscall(n, a, b, c, d);
#endif
}

/* A write of n bytes to fd LATE_MS from now, by a thread of its own. */
struct late { int fd; size_t n; pthread_t t; };

static void *late_writer(void *arg)
{
	struct late *l = arg;
	char buf[4096];

	memset(buf, 'x', sizeof buf);
	sleep_ms(LATE_MS);
	if (write(l->fd, buf, l->n) != (ssize_t)l->n)
		abort();
	return NULL;
}

static void late_start(struct late *l, int fd, size_t n)
{
	l->fd = fd;
	l->n = n;
	if (pthread_create(&l->t, NULL, late_writer, l))
		abort();
}

/* Read on fd, which has no data yet: it waits (and the number is noted). */
static void read_waits(int rfd, int wfd, const char *what)
{
	struct late l;
	char buf[64];

	late_start(&l, wfd, 8);
	check(read(rfd, buf, sizeof buf) == 8, what, "read did not return the 8 bytes");
	pthread_join(l.t, NULL);
}

static void set_timeo(int fd, int opt, int ms, bool via_syscall)
{
	struct timeval tv = { 0, ms * 1000 };

	if ((via_syscall ? syscall(SYS_setsockopt, fd, SOL_SOCKET, opt, &tv, sizeof tv) :
	                   setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv)) != 0)
		abort();
}

/* A read (or recv) of the empty fd: EAGAIN after the timeout. */
static void times_out(int fd, bool use_recv, const char *what)
{
	char buf[64];
	double t0 = now_ms(), dt;
	long r = use_recv ? ERR(recv(fd, buf, sizeof buf, 0)) : ERR(read(fd, buf, sizeof buf));

	dt = now_ms() - t0;
	check(r == -EAGAIN && dt >= TIMEO_MS - 5 && dt < 5000, what,
	      "got %s after %.0f ms", r < 0 ? errname(r) : "data", dt);
}

static void case_a(void)
{
	int s[2];

	stage("A: SO_RCVTIMEO after a first wait");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		abort();
	read_waits(s[0], s[1], "A: first read waits for the data");
	set_timeo(s[0], SO_RCVTIMEO, TIMEO_MS, false);
	times_out(s[0], false, "A: read after setsockopt(SO_RCVTIMEO) times out with EAGAIN");
	times_out(s[0], true, "A: recv after setsockopt(SO_RCVTIMEO) times out with EAGAIN");
	close(s[0]);
	close(s[1]);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		abort();
	read_waits(s[0], s[1], "A: first read waits (syscall(SYS_setsockopt) case)");
	set_timeo(s[0], SO_RCVTIMEO, TIMEO_MS, true);
	times_out(s[0], false, "A: read after syscall(SYS_setsockopt) times out with EAGAIN");
	close(s[0]);
	close(s[1]);
}

/* A thread that empties the socket after LATE_MS, once. */
static void *drainer(void *arg)
{
	int fd = *(int *)arg;
	char buf[4096];

	sleep_ms(LATE_MS);
	while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
	return NULL;
}

static void case_b(void)
{
	int s[2], one = 4096, fl;
	char buf[4096];
	pthread_t t;
	double t0, dt;
	long r;

	stage("B: SO_SNDTIMEO after a first wait");
	memset(buf, 'y', sizeof buf);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		abort();
	setsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
	/* Fill the socket, then one more write waits until the drainer reads. */
	fl = fcntl(s[1], F_GETFL);
	fcntl(s[1], F_SETFL, fl | O_NONBLOCK);
	while (write(s[1], buf, sizeof buf) > 0)
		;
	fcntl(s[1], F_SETFL, fl);
	pthread_create(&t, NULL, drainer, &s[0]);
	r = write(s[1], buf, 1);
	check(r == 1, "B: write into the full socket waits for room", "got %ld", r);
	pthread_join(t, NULL);
	fcntl(s[1], F_SETFL, fl | O_NONBLOCK);
	while (write(s[1], buf, sizeof buf) > 0)
		;
	fcntl(s[1], F_SETFL, fl);
	set_timeo(s[1], SO_SNDTIMEO, TIMEO_MS, false);
	t0 = now_ms();
	r = ERR(write(s[1], buf, sizeof buf));
	dt = now_ms() - t0;
	check((r == -EAGAIN || (r > 0 && r < (long)sizeof buf)) && dt >= TIMEO_MS - 5 && dt < 5000,
	      "B: write after setsockopt(SO_SNDTIMEO) ends at the timeout",
	      "got %ld after %.0f ms", r, dt);
	close(s[0]);
	close(s[1]);
}

/* A socket whose number is noted: returned with its read end waited on. */
static int noted_socket(int *peer, const char *what)
{
	int s[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		abort();
	read_waits(s[0], s[1], what);
	*peer = s[1];
	return s[0];
}

static void case_c(void)
{
	int peer, fd, p[2], f, q[2];
	char path[] = "/tmp/gshim-fd_notes.XXXXXX", buf[8192], want[8192];
	struct late l;
	double t0, dt;
	long r;

	stage("C1: reused as a pipe");
	fd = noted_socket(&peer, "C1: first read on the socket waits");
	raw3(SYS_close, fd, 0, 0);
	if (pipe(p))
		abort();
	check(p[0] == fd, "C1: the pipe's read end has the socket's number", "got %d", p[0]);
	late_start(&l, p[1], 8);
	r = read(p[0], buf, sizeof buf);
	check(r == 8, "C1: read of the pipe waits for its data", "got %ld", r);
	pthread_join(l.t, NULL);
	close(p[0]);
	close(p[1]);
	close(peer);

	stage("C2: reused as a regular file");
	memset(want, 'f', sizeof want);
	f = mkstemp(path);
	if (f < 0 || write(f, want, sizeof want) != sizeof want || fsync(f))
		abort();
	unlink(path);
	fd = noted_socket(&peer, "C2: first read on the socket waits");
	raw3(SYS_close, fd, 0, 0);
	r = raw3(SYS_dup, f, 0, 0);
	check(r == fd, "C2: the file has the socket's number", "got %ld", r);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	lseek(fd, 0, SEEK_SET);
	r = read(fd, buf, sizeof buf);
	check(r == (long)sizeof buf && memcmp(buf, want, sizeof buf) == 0,
	      "C2: read of the file returns its bytes", "got %ld", r);
	close(fd);
	close(f);
	close(peer);

	stage("C3: reused as a non-blocking socket");
	fd = noted_socket(&peer, "C3: first read on the socket waits");
	raw3(SYS_close, fd, 0, 0);
	if (raw4(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, (long)q) != 0)
		abort();
	check(q[0] == fd, "C3: the new socket has the old number", "got %d", q[0]);
	t0 = now_ms();
	r = ERR(read(q[0], buf, sizeof buf));
	dt = now_ms() - t0;
	check(r == -EAGAIN && dt < 100, "C3: read of the empty non-blocking socket: EAGAIN at once",
	      "got %ld after %.0f ms", r, dt);
	close(q[0]);
	close(q[1]);
	close(peer);
}

static void case_d(void)
{
	int peer, fd, s;

	stage("D: closed, a new socket with SO_RCVTIMEO on the number");
	fd = noted_socket(&peer, "D: first read on the socket waits");
	close(fd);
	close(peer);
	s = socket(AF_INET, SOCK_STREAM, 0);
	check(s == fd, "D: the new socket has the old number", "got %d", s);
	set_timeo(s, SO_RCVTIMEO, TIMEO_MS, false);
	/* An unconnected stream socket's read fails with ENOTCONN at once,
	 * natively: a UDP socket waits for a datagram. */
	close(s);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	check(s == fd, "D: a UDP socket has the old number", "got %d", s);
	set_timeo(s, SO_RCVTIMEO, TIMEO_MS, false);
	times_out(s, false, "D: read of the UDP socket times out with EAGAIN");
	close(s);
}

/* A thread that lives through the cases: gshim parks calls only while
 * another thread exists (park.h, poller_off). */
static int hold[2];

static void *bystander(void *arg)
{
	char c;

	(void)arg;
	return read(hold[0], &c, 1) == 1 ? NULL : (void *)1;
}

int main(void)
{
	pthread_t by;

	setvbuf(stdout, NULL, _IONBF, 0);
	watchdog(20);
	if (pipe(hold) || pthread_create(&by, NULL, bystander, NULL))
		abort();
	case_a();
	case_b();
	case_c();
	case_d();
	if (write(hold[1], "x", 1) != 1 || pthread_join(by, NULL))
		abort();
	return report_failures();
}
