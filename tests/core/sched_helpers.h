/* tests/core/sched_helpers.h - what test_sched.c and test_sched_park.c
 * share: the child harness (child.h), the SCHED_TEST macros and the
 * helpers that run in the child (spawn, join, sleep_ms from child.h; waits, the gate,
 * xs32).  Static, marked unused where a file does not take them all. */
#ifndef GSHIM_TESTS_SCHED_HELPERS_H
#define GSHIM_TESTS_SCHED_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/internal.h"

void sched_snapshot(int *idleprocs, int *threads, int *spinning, int *idlem,
                    int *globq);

#define MS ((int64_t)1000000)
#define STK ((size_t)64 << 10)
#define CHILD_TIMEOUT_S 30

/* ---- child harness --------------------------------------------------------- */

#include "child.h"

/* errno through a pointer the compiler cannot cache: after a switch the
 * same code may run on another M (another TCB). */
static __attribute__((unused)) int *(*volatile errno_at)(void) = __errno_location;


#define SCHED_TEST(name, ...)                                              \
	static void name(int procs);                                       \
	Test(core_sched, name##_p1, ##__VA_ARGS__) { run_child(1, name); }  \
	Test(core_sched, name##_p2, ##__VA_ARGS__) { run_child(2, name); }  \
	static void name(int procs)

#define SCHED_TEST_P(name, p)                                              \
	static void name(int procs);                                       \
	Test(core_sched, name##_p##p) { run_child(p, name); }              \
	static void name(int procs)

/* ---- helpers (in the child) ---------------------------------------------- */

/* Wait (yielding, then sleeping the M) until *flag != 0. */
static __attribute__((unused)) void wait_flag(_Atomic int *flag, const char *what)
{
	int64_t end = os_nanotime() + 10000 * MS;

	while (!atomic_load(flag)) {
		CHECK(os_nanotime() < end, "timed out waiting for %s", what);
		g_yield();
		if (!atomic_load(flag))
			sleep_ms(1);
	}
}

/* Until only the main G is allocated (detached G's free themselves). */
static __attribute__((unused)) void wait_only_main(void)
{
	int64_t end = os_nanotime() + 10000 * MS;

	while (g_count_all() != 1) {
		CHECK(os_nanotime() < end, "%llu G's still allocated",
		      (unsigned long long)g_count_all());
		g_yield();
		sleep_ms(1);
	}
}

/* After the last join: every G is freed.  At GOMAXPROCS=1 at once (the
 * exiting G's last reference goes in switch_finish, before anything else
 * runs on the only P).  With more P's the joiner may be stolen and run
 * before the exiting M has left the dead G's stack ("the loser frees"), so
 * give it a moment. */
static __attribute__((unused)) void expect_freed(int procs)
{
	if (procs == 1)
		CHECK(g_count_all() == 1, "%llu G's allocated after the last join",
		      (unsigned long long)g_count_all());
	else
		wait_only_main();
}

/* A gate G's block on until the test opens it. */
static __attribute__((unused)) _Atomic uint32_t gate;

static __attribute__((unused)) void gate_wait(void)
{
	while (atomic_load(&gate) == 0) {
		int r = gfutex_wait(&gate, 0, -1);
		CHECK(r == 0 || r == -EAGAIN, "gfutex_wait on the gate: %d", r);
	}
}

static __attribute__((unused)) void gate_open(void)
{
	atomic_store(&gate, 1);
	gfutex_wake(&gate, INT32_MAX);
}

static __attribute__((unused)) _Atomic int gate_entered;

static __attribute__((unused)) void gated_fn(void *arg)
{
	atomic_fetch_add(&gate_entered, 1);
	gate_wait();
	g_exit(arg);
}

static __attribute__((unused)) uint32_t xs32(uint32_t *r)
{
	*r ^= *r << 13; *r ^= *r >> 17; *r ^= *r << 5;
	return *r;
}

#endif
