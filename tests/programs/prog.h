/* Helpers shared by the whole-program tests of blocking calls, the poller
 * and preemption (io_prodcons, sleep_many, read_eintr, libc_block,
 * fairness, poll_timeouts).  Header-only: each test stays one .c file.
 *
 *   now_ms()          CLOCK_MONOTONIC in milliseconds
 *   sleep_ms(ms)      nanosleep, resumed after EINTR
 *   check(ok, what, fmt, ...)
 *                     prints "what: ok" or "what: FAILED: <reason>" on
 *                     stdout (the reason only on failure, so a passing
 *                     run's stdout does not vary) and counts failures
 *   note(fmt, ...)    a measurement, on stderr (not compared)
 *   watchdog(s)       after s seconds: "TIMEOUT ... while <stage>" and
 *                     exit 3, so a hang fails with a reason
 *   stage(what)       what the program is doing now (current_stage), for
 *                     the watchdog's message
 *   ERR(call)         a call's result, or -errno if it failed: errno is
 *                     read right after the call, in a function of its
 *                     own, so no &errno from before a blocking call (it
 *                     may resume on another kernel thread) is reused
 *   errname(-errno)   "EINTR", "EAGAIN", ... for messages
 *   vm_size()         the process's address space (VmSize) in bytes
 *   parks_without_thread(nfds), kernel_threads()
 *                     whether gshim parks a wait on nfds descriptors
 *                     here, and the process's kernel thread count
 */
#ifndef GSHIM_TEST_PROG_H
#define GSHIM_TEST_PROG_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline void sleep_ms(double ms)
{
	struct timespec d = { (time_t)(ms / 1e3), (long)((ms - (time_t)(ms / 1e3) * 1e3) * 1e6) };

	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
}

static int failures;

__attribute__((format(printf, 3, 4)))
static inline void check(int ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		printf("%s: ok\n", what);
		return;
	}
	failures++;
	printf("%s: FAILED: ", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

__attribute__((format(printf, 1, 2)))
static inline void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- watchdog ----------------------------------------------------------- */
static const char *volatile current_stage = "starting"; /* see stage() */
static unsigned watchdog_secs_;

static inline void stage(const char *what)
{
	current_stage = what;
}

static inline void put_fd(int fd, const char *s)
{
	ssize_t r = write(fd, s, strlen(s));

	(void)r;
}

static inline void on_watchdog(int sig)
{
	char secs[16];
	int i = sizeof secs - 1;
	unsigned v = watchdog_secs_;

	(void)sig;
	secs[i] = '\0';
	do
		secs[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i > 0);
	/* async-signal-safe: write(2) and _exit only */
	for (int fd = 1; fd <= 2; fd++) {
		put_fd(fd, "TIMEOUT: still running after ");
		put_fd(fd, secs + i);
		put_fd(fd, " s (watchdog) while ");
		put_fd(fd, current_stage);
		put_fd(fd, "\n");
	}
	_exit(3);
}

/* Also makes stdout line-buffered, so that what was printed before a
 * watchdog exit is not lost in the stdio buffer. */
static inline void watchdog(unsigned seconds)
{
	struct sigaction sa;

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_watchdog;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	watchdog_secs_ = seconds;
	alarm(seconds);
}

/* ---- errno without a cached &errno --------------------------------------- */
__attribute__((noinline, unused)) static long err_or_(long r)
{
	return r < 0 ? -(long)errno : r;
}
#define ERR(call) err_or_((long)(call))

static inline const char *errname(long neg)
{
	switch (-neg) {
	case EINTR: return "EINTR";
	case EAGAIN: return "EAGAIN";
	case ETIMEDOUT: return "ETIMEDOUT";
	default: return neg < 0 ? strerror((int)-neg) : "no error";
	}
}

/* ---- kernel threads ---------------------------------------------------------- */
/* Whether gshim waits for readiness of nfds descriptors without a kernel
 * thread here: under gshim with a poller; for more than one descriptor
 * not with GSHIM_IO=epoll (the plain call, by design). */
static inline int parks_without_thread(int nfds)
{
	const char *pre = getenv("LD_PRELOAD"), *io = getenv("GSHIM_IO");

	if (!pre || !strstr(pre, "libgshim"))
		return 0;
	if (io && !strcmp(io, "syscall"))
		return 0;
	if (io && !strcmp(io, "epoll") && nfds > 1)
		return 0;
	return 1;
}

/* The process's kernel threads now (/proc/self/status), -1 if unknown. */
/* The process's address space in bytes (VmSize), 0 if unknown: the base
 * for an RLIMIT_AS a test sets. */
static inline size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %zu", &kb) == 1)
			break;
	fclose(f);
	return kb << 10;
}

static inline int kernel_threads(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

#endif
