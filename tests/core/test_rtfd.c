/* tests/core/test_rtfd.c - core/rtfd.c: the runtime's descriptors and the
 * program's calls that close or replace numbers.
 *
 * Contract (core/rt.h, the essay in rtfd.c): a number marked in a
 * transition is ours; the program's close of it reports success and
 * leaves it open, close_range is split around it, dup2/dup3 onto it
 * moves the poller's descriptor away first and then gives the program the
 * number; a runtime transition never overlaps a program call.
 *
 * Each scenario runs in a fork()ed child (child.h): close_range(3, ~0U)
 * would close criterion's own descriptors. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "core/internal.h"

#define STK ((size_t)64 << 10)
#include "child.h"

#define FD_TEST(name, ...)                                                 \
	static void name(int procs);                                       \
	Test(core_rtfd, name##_p1, ##__VA_ARGS__) { run_child(1, name); } \
	Test(core_rtfd, name##_p2, ##__VA_ARGS__) { run_child(2, name); } \
	static void name(int procs)

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static bool same_file(int a, int b)
{
	struct stat x, y;

	return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_ino == y.st_ino &&
	       x.st_dev == y.st_dev;
}

static int ours(int fd)
{
	int h;

	rtfd_begin(true);
	h = rtfd_dup_high(fd);
	rtfd_end();
	CHECK(h >= 0 && rtfd_is(h), "rtfd_dup_high: %d", h);
	return h;
}

static long sys_dup3(int old, int new, int fl)
{
	return syscall(SYS_dup3, old, new, fl);
}

FD_TEST(close_range_skips_ours)
{
	int p[2], a, b;

	(void)procs;
	CHECK(pipe(p) == 0, "pipe");
	a = ours(p[0]);
	b = ours(p[1]);
	CHECK(a > p[1] && b > a, "ours are high: %d %d", a, b);
	CHECK(rtfd_close_range(3, ~0U, 0) == 0, "close_range");
	CHECK(!is_open(p[0]) && !is_open(p[1]), "the program's are closed");
	CHECK(is_open(a) && is_open(b) && rtfd_is(a) && rtfd_is(b), "ours are open and marked");
	/* Ranges that begin, end or lie at our numbers. */
	CHECK(rtfd_close_range((unsigned)a, (unsigned)b, 0) == 0, "close_range(a, b)");
	CHECK(rtfd_close_range((unsigned)b, (unsigned)b, 0) == 0, "close_range(b, b)");
	CHECK(is_open(a) && is_open(b), "still open");
	CHECK(rtfd_close_begin(a) == 0, "close of ours: success, no call");
	CHECK(is_open(a), "still open");
	CHECK(rtfd_close_range(5, 4, 0) == -EINVAL, "lo > hi: the kernel's EINVAL");
	rtfd_begin(true);
	rtfd_close(a);
	rtfd_close(b);
	rtfd_end();
	CHECK(!is_open(a) && !rtfd_is(a), "closed by the runtime");
}

FD_TEST(dup2_onto_ours)
{
	int p[2], h, r;

	(void)procs;
	CHECK(pipe(p) == 0, "pipe");
	h = ours(p[0]);
	CHECK(rtfd_dup3(12345678, h, sys_dup3, 0) == -EBADF, "bad old: EBADF, nothing moved");
	CHECK(rtfd_is(h) && same_file(h, p[0]), "still ours");
	CHECK(rtfd_dup3(p[1], h, sys_dup3, 0x40) == -EINVAL, "bad flags: EINVAL");
	r = (int)rtfd_dup3(p[1], h, sys_dup3, O_CLOEXEC);
	CHECK(r == h, "dup3 onto ours gives the number: %d", r);
	CHECK(!rtfd_is(h) && same_file(h, p[1]), "the program's now");
	CHECK(rtfd_close_begin(h) == 1, "and its close is the kernel's");
	rtfd_close_end(1);
}

/* A runtime transition that creates, checks and closes a descriptor,
 * against the program closing everything at the top all the time: the
 * runtime's descriptor is never closed under it. */
static _Atomic int stop;
static int base_fd;

static void *closer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		rtfd_close_range((unsigned)base_fd, ~0U, 0);
		rtfd_close_begin(base_fd + 1) == 1 ? rtfd_close_end(1) : (void)0;
	}
	return NULL;
}

FD_TEST(transitions_exclude_program_closes)
{
	pthread_t t;
	int p[2], bad = 0;

	(void)procs;
	CHECK(pipe(p) == 0, "pipe");
	base_fd = ours(p[0]);
	rtfd_begin(true);
	rtfd_close(base_fd);
	rtfd_end();
	atomic_store(&stop, 0);
	CHECK(pthread_create(&t, NULL, closer, NULL) == 0, "pthread_create");
	for (int i = 0; i < 20000; i++) {
		int h;

		rtfd_begin(true);
		h = rtfd_dup_high(p[0]);
		rtfd_end();
		if (h < 0)
			continue;
		/* Between transitions: marked, so the closer leaves it. */
		rtfd_begin(true);
		if (!same_file(h, p[0]))
			bad++;
		rtfd_close(h);
		rtfd_end();
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	CHECK(bad == 0, "%d of the runtime's descriptors closed under it", bad);
}

/* ---- the poller's ring moved while a G waits ---------------------------- */

static int ring_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int fd = -1;

	while (d && (e = readdir(d)) != NULL) {
		char path[300], link[64];
		ssize_t n;

		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof link - 1);
		if (n > 0) {
			link[n] = 0;
			if (strstr(link, "io_uring"))
				fd = atoi(e->d_name);
		}
	}
	if (d)
		closedir(d);
	return fd;
}

struct waiter {
	int fd, r;
	_Atomic int waiting;
};

static void waiter_main(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->waiting, 1);
	w->r = netpoll_wait(w->fd, POLLIN, -1, NULL);
}

FD_TEST(ring_moved_under_a_waiter)
{
	struct waiter w = { 0 };
	int p[2], q[2], rfd, r;
	g_t *g;
	void *ret;

	(void)procs;
	rt_cfg.io_mode = IO_URING;
	CHECK(pipe(p) == 0 && pipe(q) == 0, "pipe");
	w.fd = p[0];
	g = g_alloc(STK, 4096, NULL, &r);
	CHECK(g != NULL, "g_alloc");
	g_start_new(g, waiter_main, &w);
	while (!atomic_load(&w.waiting))
		g_yield();
	if (netpoll_mode() != IO_URING) {
		CHECK(write(p[1], "x", 1) == 1, "write");
		g_join(g, &ret, -1, 0, NULL);
		return;   /* no io_uring here: nothing to move */
	}
	usleep(20000);   /* let it park in the ring */
	rfd = ring_fd();
	CHECK(rfd >= 0 && rtfd_is(rfd), "the ring is ours: %d", rfd);
	r = (int)rtfd_dup3(q[0], rfd, sys_dup3, 0);
	CHECK(r == rfd && same_file(rfd, q[0]) && !rtfd_is(rfd), "the program got the ring's number");
	CHECK(ring_fd() >= 0 && ring_fd() != rfd && rtfd_is(ring_fd()), "the ring moved");
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(g_join(g, &ret, -1, 0, NULL) == 0, "join");
	CHECK(w.r == 0, "the waiter woke ready: %d", w.r);
}
