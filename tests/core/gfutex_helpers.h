/* tests/core/gfutex_helpers.h - what test_gfutex.c and
 * test_gfutex_signal.c share: the child harness (child.h), GF_TEST and
 * the helpers that run in the child (spawn, join and sleep_ms from child.h; wait_parked,
 * yield_until, xs).  Static, marked unused where a file does not take them all. */
#ifndef GSHIM_TESTS_GFUTEX_HELPERS_H
#define GSHIM_TESTS_GFUTEX_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/internal.h"

#define MS ((int64_t)1000000)
#define US ((int64_t)1000)
#define STK ((size_t)64 << 10)
#define CHILD_TIMEOUT_S 30

/* ---- child harness (as in test_sched.c) ------------------------------------ */

#include "child.h"

#define GF_TEST(name, ...)                                                 \
	static void name(int procs);                                       \
	Test(core_gfutex, name##_p1, ##__VA_ARGS__) { run_child(1, name); } \
	Test(core_gfutex, name##_p2, ##__VA_ARGS__) { run_child(2, name); } \
	static void name(int procs)

/* Until g is parked in a gfutex: enqueued under the bucket lock before its
 * status turns G_WAITING (switch_finish). */
static __attribute__((unused)) void wait_parked(g_t *g)
{
	int64_t end = os_nanotime() + 10000 * MS;

	while (atomic_load(&g->status) != G_WAITING || g->waitreason != WAIT_GFUTEX) {
		CHECK(os_nanotime() < end, "G %llu never parked (status %u)",
		      (unsigned long long)g->goid, atomic_load(&g->status));
		g_yield();
	}
}

/* Yield until *v >= want (a spin at GOMAXPROCS=2, a hand-over at 1). */
static __attribute__((unused)) void yield_until(_Atomic long *v, long want, const char *what)
{
	int64_t end = os_nanotime() + 10000 * MS;

	while (atomic_load(v) < want) {
		CHECK(os_nanotime() < end, "timed out waiting for %s: %ld < %ld", what,
		      atomic_load(v), want);
		g_yield();
	}
}

/* xorshift32 */
static __attribute__((unused)) uint32_t xs(uint32_t *r)
{
	*r ^= *r << 13; *r ^= *r >> 17; *r ^= *r << 5;
	return *r;
}

#endif
