/* tests/core/child.h - run a scheduler scenario in a fork()ed child.
 *
 * sched_init turns the calling thread into M0 and its context into the
 * main G, which may then migrate to other OS threads; criterion's own
 * machinery must not run on a migrated G, so each scenario runs in a
 * child that _exit()s 0 on success or writes a message to a shared page
 * and exits 1; the parent waits with a timeout and asserts.  No criterion
 * call may be made in the child. */
#ifndef GSHIM_TESTS_CHILD_H
#define GSHIM_TESTS_CHILD_H

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/rt.h"

#ifndef CHILD_TIMEOUT_S
#define CHILD_TIMEOUT_S 30
#endif
#ifndef MS
#define MS ((int64_t)1000000)
#endif

struct shared {
	char msg[2048];              /* failure message */
	char stage[256];             /* last stage reached, for timeouts */
};
static struct shared *sh;

static void child_fail(const char *file, int line, const char *cond,
                       const char *fmt, ...)
	__attribute__((format(printf, 4, 5), noreturn));
static void child_fail(const char *file, int line, const char *cond,
                       const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(sh->msg, sizeof sh->msg, "%s:%d: check failed: %s: ",
	                 file, line, cond);

	va_start(ap, fmt);
	vsnprintf(sh->msg + n, sizeof sh->msg - (size_t)n, fmt, ap);
	va_end(ap);
	_exit(1);
}

#define CHECK(cond, ...) do { if (!(cond)) child_fail(__FILE__, __LINE__, \
	#cond, __VA_ARGS__); } while (0)
#define STAGE(...) snprintf(sh->stage, sizeof sh->stage, __VA_ARGS__)

static void run_child(int procs, void (*scenario)(int procs))
{
	pid_t pid;
	int status = 0;
	int64_t deadline;

	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
	          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
	memset(sh, 0, sizeof *sh);
	fflush(NULL);
	pid = fork();
	/* No criterion call in the child: even a passing assertion talks to
	 * the runner, and the child must leave that to the parent. */
	if (pid == 0) {
		alarm(CHILD_TIMEOUT_S + 5);   /* belt and braces */
		rt_cfg.gomaxprocs = procs;
		sched_init();
		CHECK(sched_ready(), "sched_init did not finish");
		CHECK(sched_gomaxprocs() == procs, "gomaxprocs %d", sched_gomaxprocs());
		CHECK(getcurg() && getcurg()->is_main, "not on the main G after sched_init");
		scenario(procs);
		_exit(0);
	}
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	deadline = os_nanotime() + (int64_t)CHILD_TIMEOUT_S * 1000 * MS;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		cr_assert_eq(r, 0, "waitpid: %s", strerror(errno));
		if (os_nanotime() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("GOMAXPROCS=%d: child timed out after %d s; last stage: %s",
			               procs, CHILD_TIMEOUT_S, sh->stage);
		}
		usleep(2000);
	}
	if (WIFSIGNALED(status))
		cr_assert_fail("GOMAXPROCS=%d: child killed by signal %d; last stage: %s; %s",
		               procs, WTERMSIG(status), sh->stage, sh->msg);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "GOMAXPROCS=%d: %s (last stage: %s)",
	             procs, sh->msg[0] ? sh->msg : "child failed", sh->stage);
}

/* ---- helpers every scenario uses (in the child) -------------------------- */

#ifndef STK
#define STK ((size_t)64 << 10)
#endif

static __attribute__((unused)) g_t *spawn_opt(void (*fn)(void *), void *arg, bool detached)
{
	int err = 0;
	g_t *g = g_alloc(STK, 4096, NULL, &err);

	CHECK(g != NULL, "g_alloc failed: %d", err);
	CHECK(atomic_load(&g->status) == G_IDLE, "fresh G status %u", atomic_load(&g->status));
	if (detached)
		g_mark_detached(g);
	g_start_new(g, fn, arg);
	return g;
}

static __attribute__((unused)) g_t *spawn(void (*fn)(void *), void *arg)
{
	return spawn_opt(fn, arg, false);
}

static __attribute__((unused)) void *join(g_t *g)
{
	void *ret = (void *)0x5a5a;
	int r = g_join(g, &ret, -1, 0, NULL);

	CHECK(r == 0, "g_join returned %d", r);
	return ret;
}

static __attribute__((unused)) void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

#endif
