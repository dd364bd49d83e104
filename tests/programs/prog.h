/* Helpers shared by the whole-program tests (the .c and .cpp programs here):
 * every program that counts failures, names error numbers or prints
 * checks takes them from here.  Header-only: each test stays one file.
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
 *
 * Checks of results, for the programs whose whole stdout is compared
 * with the native run's (each prints one line and counts a failure in
 * `failures` when it does not hold):
 *   ename(e)          an error number's name: "0", "EINVAL", ...
 *   check_eq(what, got, want)
 *                     a call that returns 0 or an error number (pthread_*):
 *                     "what   EBUSY", with "<-- WRONG" and what was wanted
 *                     when got != want
 *   check_named(what, got, want, name)
 *                     the same, the values named by name() (C11 thrd_*)
 *   check_call(what, r, want_errno)
 *                     a call that returns 0 or -1 and sets errno (sem_*):
 *                     errno is read in a function of its own, right after
 *   check_true(what, ok)
 *                     "what   yes", or "NO   <-- WRONG"
 *   CHECK(cond)       prints "FAIL line N: cond" when cond is false
 *   report_failures() prints "failures: N"; the exit status (0 or 1)
 *   mono_ms()         CLOCK_MONOTONIC in whole milliseconds (int64_t)
 *   in_ms(clk, ms)    a deadline ms from now on clock clk, for timed waits
 *   yield_for_ms(ms)  sched_yield for about ms (a sleep may hold the only P)
 *
 * Valid C and C++ (tls_cxx.cpp, cxx_exit_unwind.cpp include it too).
 */
#ifndef GSHIM_TEST_PROG_H
#define GSHIM_TEST_PROG_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
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

static int failures __attribute__((unused));

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

/* ---- checks of results ---------------------------------------------------- */
static inline const char *ename(int e)
{
	const char *s;

	if (e == 0)
		return "0";
	s = strerrorname_np(e);
	return s ? s : "other";
}

static inline void check_named(const char *what, int got, int want, const char *(*name)(int))
{
	printf("%-56s %s%s\n", what, name(got), got == want ? "" : "   <-- WRONG");
	if (got != want) {
		printf("    (got %d, want %s)\n", got, name(want));
		failures++;
	}
}

static inline void check_eq(const char *what, int got, int want)
{
	check_named(what, got, want, ename);
}

/* errno read through a call the compiler cannot fold or cache: see
 * docs/compat.md on &errno caching across a thread's migration. */
__attribute__((noipa, unused)) static int prog_errno(void)
{
	return errno;
}

/* r: the call's return value; 0 -> "0", -1 -> errno's name */
static inline void check_call(const char *what, int r, int want_errno)
{
	int e = r == 0 ? 0 : r == -1 ? prog_errno() : 9999;

	printf("%-56s %s%s\n", what, r == 0 ? "0" : ename(e), e == want_errno ? "" : "   <-- WRONG");
	if (e != want_errno) {
		printf("    (returned %d, errno %d, want %s)\n", r, e, ename(want_errno));
		failures++;
	}
}

static inline void check_true(const char *what, int ok)
{
	printf("%-56s %s\n", what, ok ? "yes" : "NO   <-- WRONG");
	failures += !ok;
}

#define CHECK(cond)                                                  \
	do {                                                         \
		if (!(cond)) {                                       \
			printf("FAIL line %d: %s\n", __LINE__, #cond); \
			failures++;                                  \
		}                                                    \
	} while (0)

/* main's last words: "failures: N", and the exit status */
static inline int report_failures(void)
{
	printf("failures: %d\n", failures);
	return failures ? 1 : 0;
}

/* ---- time in whole milliseconds, deadlines -------------------------------- */
static inline int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline struct timespec in_ms(clockid_t clk, long ms)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static inline void yield_for_ms(int ms)
{
	int64_t end = mono_ms() + ms;

	while (mono_ms() < end)
		sched_yield();
}

#endif
