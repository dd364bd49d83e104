/* tests/core/test_yield.c - where a yield puts the yielder (core/sched.c,
 * switch_finish's SW_YIELD, and wakep after it).
 *
 * A yield must let every G that waits run before the yielder runs again,
 * wherever those G's wait: in this P's runnext, its ring, or the global
 * queue.  Each scenario below once went wrong:
 *  - G's waiting in the global queue (the ring overflowed into it) ran one
 *    per 61 scheduling ticks while two G's yielded to each other through
 *    the ring: thousands of yields for a few hundred G's.
 *  - a G in runnext never ran while every other G yielded and the global
 *    queue never emptied (a pick order that looked at the global queue
 *    first at every yield): a hang.
 *  - a G woken by a timer (an urgent G at the global queue's head) never
 *    ran beside CPU-bound G's that kept yielding.
 * Scenarios run in a fork()ed child (child.h) with core calls only. */
#include "sched_helpers.h"   /* the child harness, spawn and join */

#define YIELD_TEST(name)                                                   \
	static void name(int procs);                                       \
	Test(core_yield, name##_p1) { run_child(1, name); }                 \
	Test(core_yield, name##_p2) { run_child(2, name); }                 \
	static void name(int procs)

/* ---- G's in the global queue are not left behind two yielders ---------- */

#define NWAIT 600           /* > 2 rings: the ring overflows into the global queue */
static _Atomic int started;
static _Atomic long yields;

static void starter_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
}

static void yielder_fn(void *arg)
{
	int want = (int)(intptr_t)arg;

	while (atomic_load(&started) < want) {
		atomic_fetch_add(&yields, 1);
		g_yield();
	}
}

YIELD_TEST(global_waiters_run_before_yielders_again)
{
	static g_t *gs[NWAIT];
	g_t *y;

	(void)procs;
	atomic_store(&started, 0);
	atomic_store(&yields, 0);
	STAGE("spawning");
	y = spawn(yielder_fn, (void *)(intptr_t)NWAIT);
	for (int i = 0; i < NWAIT; i++)
		gs[i] = spawn(starter_fn, NULL);
	STAGE("main yields until every G started");
	while (atomic_load(&started) < NWAIT) {
		atomic_fetch_add(&yields, 1);
		g_yield();
	}
	join(y);
	for (int i = 0; i < NWAIT; i++)
		join(gs[i]);
	/* Behind everything that waits: a few yields per waiting G at most
	 * (at GOMAXPROCS=2 the yielder on the other P spins on its own).
	 * The old ring-only placement took ~30 per G at GOMAXPROCS=1. */
	if (procs == 1)
		CHECK(atomic_load(&yields) <= 4 * NWAIT, "%ld yields for %d waiting G's",
		      atomic_load(&yields), NWAIT);
}

/* ---- the G in runnext runs while everybody else yields ----------------- */

#define NALL 1000
static _Atomic int arrived;

static void arrive_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&arrived, 1);
	while (atomic_load(&arrived) < NALL)
		g_yield();
}

YIELD_TEST(runnext_runs_while_all_yield)
{
	static g_t *gs[NALL];

	(void)procs;
	atomic_store(&arrived, 0);
	STAGE("spawning %d G's that yield until all arrived", NALL);
	for (int i = 0; i < NALL; i++)
		gs[i] = spawn(arrive_fn, NULL);
	STAGE("joining (a G starved in runnext hangs here)");
	for (int i = 0; i < NALL; i++)
		join(gs[i]);
	CHECK(atomic_load(&arrived) == NALL, "arrived %d", atomic_load(&arrived));
}

/* ---- a sleeper wakes beside G's that only yield ------------------------ */

static _Atomic int stop_spin;

static void spin_yield_fn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_spin))
		g_yield();
}

YIELD_TEST(sleeper_wakes_beside_yielders)
{
	g_t *gs[4];
	int64_t t0;

	(void)procs;
	atomic_store(&stop_spin, 0);
	for (int i = 0; i < 4; i++)
		gs[i] = spawn(spin_yield_fn, NULL);
	STAGE("main parks 5 x 20 ms (a timer readies it) beside 4 yielding G's");
	t0 = os_nanotime();
	for (int i = 0; i < 5; i++) {
		int64_t until = os_nanotime() + 20 * MS;

		while (cancel_sleep_until(getcurg(), until) > 0)
			;
	}
	atomic_store(&stop_spin, 1);
	for (int i = 0; i < 4; i++)
		join(gs[i]);
	CHECK(os_nanotime() - t0 < 20000 * MS, "5 sleeps of 20 ms took %lld ms",
	      (long long)((os_nanotime() - t0) / MS));
}
