/* tests/core/test_gfutex.c - core/gfutex.c: the G-level futex.
 *
 * Contract (core/rt.h): gfutex_wait parks the calling G (or blocks a
 * thread that is not a G) while *addr == val, until gfutex_wake or the
 * deadline; returns 0, -EAGAIN or -ETIMEDOUT.  gfutex_wake wakes at most n
 * and returns how many.
 *
 * Tests with G's run in a fork()ed child that starts the scheduler (see
 * tests/core/test_sched.c for why): the child _exit()s 0 on success, or
 * writes a message to a shared page and exits 1.  Tests of plain OS-thread
 * waiters need no scheduler and run in the test process itself.
 *
 * This file covers plain OS-thread waiters, EAGAIN, wake at most n,
 * deadlines, wakes racing timeouts, OS threads and G's together and many
 * waiters; wakes from signal handlers (gfutex_wake_async) are in
 * test_gfutex_signal.c (same suite, core_gfutex), the shared harness and
 * helpers in gfutex_helpers.h. */
#include "gfutex_helpers.h"

/* ---- plain OS threads, no scheduler ----------------------------------------- */

Test(core_gfutex, os_thread_eagain_and_timeout)
{
	_Atomic uint32_t w = 5;

	cr_assert_null(getg(), "no scheduler in this process");
	cr_assert_eq(gfutex_wait(&w, 4, -1), -EAGAIN);
	cr_assert_eq(gfutex_wait(&w, 4, os_nanotime() + 10 * MS), -EAGAIN);
	cr_assert_eq(gfutex_wait(&w, 5, os_nanotime() - MS), -ETIMEDOUT, "past deadline");
	cr_assert_eq(gfutex_wait(&w, 4, os_nanotime() - MS), -EAGAIN,
	             "past deadline, value differs");
	for (int i = 0; i < 3; i++) {
		int64_t t0 = os_nanotime();
		int r = gfutex_wait(&w, 5, t0 + 20 * MS);
		int64_t dt = os_nanotime() - t0;
		cr_assert_eq(r, -ETIMEDOUT, "got %d", r);
		cr_assert_geq(dt, 20 * MS, "early: %lld ns", (long long)dt);
		cr_assert_lt(dt, 500 * MS, "late: %lld ns", (long long)dt);
		cr_assert_eq(gfutex_wake(&w, INT_MAX), 0, "the timed-out waiter stayed queued");
	}
	cr_assert_eq(gfutex_wake(&w, 1), 0, "no waiters");
}

struct osw {
	_Atomic uint32_t *addr;
	uint32_t val;
	int64_t deadline;
	_Atomic int *started, *woken;
	int ret;
};

static void *os_waiter(void *arg)
{
	struct osw *a = arg;

	atomic_fetch_add(a->started, 1);
	a->ret = gfutex_wait(a->addr, a->val, a->deadline);
	atomic_fetch_add(a->woken, 1);
	return NULL;
}

/* Wake until n waiters were woken in total (the threads may not all be
 * queued yet), failing after a while. */
static int wake_until(_Atomic uint32_t *addr, int n, int per_call)
{
	int total = 0;
	int64_t end = os_nanotime() + 10000 * MS;

	while (total < n) {
		int k = gfutex_wake(addr, per_call);
		if (k < 0 || k > per_call)
			return -1000 - k;
		total += k;
		if (os_nanotime() > end)
			break;
		if (k == 0)
			usleep(200);
	}
	return total;
}

Test(core_gfutex, os_threads_wake_at_most_n)
{
	enum { T = 6 };
	_Atomic uint32_t w = 0;
	_Atomic int started = 0, woken = 0;
	pthread_t th[T];
	struct osw a[T];

	for (int i = 0; i < T; i++) {
		a[i] = (struct osw){ &w, 0, -1, &started, &woken, 99 };
		cr_assert_eq(pthread_create(&th[i], NULL, os_waiter, &a[i]), 0);
	}
	while (atomic_load(&started) < T)
		usleep(100);
	usleep(20000);    /* let them reach the kernel wait */
	/* At most two per call, and exactly two wake-ups really happen. */
	cr_assert_eq(wake_until(&w, 2, 2), 2);
	for (int i = 0; i < 500 && atomic_load(&woken) < 2; i++)
		usleep(1000);
	usleep(20000);
	cr_assert_eq(atomic_load(&woken), 2, "%d threads returned after waking 2",
	             atomic_load(&woken));
	cr_assert_eq(wake_until(&w, T - 2, INT_MAX), T - 2);
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(a[i].ret, 0, "thread %d: %d", i, a[i].ret);
	}
	cr_assert_eq(gfutex_wake(&w, INT_MAX), 0);
}

/* ---- EAGAIN ------------------------------------------------------------------ */

static _Atomic uint32_t word;
static _Atomic long counter;

static void eagain_fn(void *arg)
{
	(void)arg;
	atomic_store(&word, 3);
	CHECK(gfutex_wait(&word, 2, -1) == -EAGAIN, "G: value differs");
	CHECK(gfutex_wait(&word, 2, os_nanotime() + 100 * MS) == -EAGAIN,
	      "G: value differs, with deadline");
	CHECK(gfutex_wait(&word, 3, os_nanotime() - MS) == -ETIMEDOUT, "G: past deadline");
	g_exit((void *)1);
}

GF_TEST(wait_eagain_when_value_differs)
{
	(void)procs;
	atomic_store(&word, 1);
	CHECK(gfutex_wait(&word, 0, -1) == -EAGAIN, "main G: value differs");
	CHECK(join(spawn(eagain_fn, NULL)) == (void *)1, "retval");
	CHECK(gfutex_wake(&word, INT_MAX) == 0, "nobody was queued");
}

/* ---- wake at most n ---------------------------------------------------------- */

static void count_waiter_fn(void *arg)
{
	_Atomic uint32_t *addr = arg;
	int r = gfutex_wait(addr, 0, -1);

	CHECK(r == 0, "waiter returned %d", r);
	atomic_fetch_add(&counter, 1);
}

GF_TEST(wake_wakes_at_most_n)
{
	enum { N = 10 };
	static _Atomic uint32_t words[4096];
	g_t *gs[N];

	(void)procs;
	atomic_store(&counter, 0);
	for (int i = 0; i < N; i++)
		gs[i] = spawn(count_waiter_fn, (void *)&words[0]);
	for (int i = 0; i < N; i++)
		wait_parked(gs[i]);

	/* Other addresses (many share its bucket) wake nobody. */
	for (int i = 1; i < 4096; i++)
		CHECK(gfutex_wake(&words[i], INT_MAX) == 0, "wake of words[%d] woke someone", i);
	CHECK(gfutex_wake(&words[0], 0) == 0, "wake 0");

	CHECK(gfutex_wake(&words[0], 3) == 3, "wake 3");
	yield_until(&counter, 3, "3 woken G's");
	sleep_ms(20);
	g_yield();
	CHECK(atomic_load(&counter) == 3, "%ld G's ran after waking 3", atomic_load(&counter));
	int still = 0;
	for (int i = 0; i < N; i++)
		still += atomic_load(&gs[i]->status) == G_WAITING;
	CHECK(still == N - 3, "%d still waiting", still);

	CHECK(gfutex_wake(&words[0], 1) == 1, "wake 1");
	yield_until(&counter, 4, "4 woken G's");
	CHECK(gfutex_wake(&words[0], INT_MAX) == N - 4, "wake the rest");
	for (int i = 0; i < N; i++)
		join(gs[i]);
	CHECK(atomic_load(&counter) == N, "%ld", atomic_load(&counter));
	CHECK(gfutex_wake(&words[0], INT_MAX) == 0, "queue empty at the end");
}

/* ---- deadlines ---------------------------------------------------------------- */

static void timeout_fn(void *arg)
{
	_Atomic uint32_t *w = arg;   /* a word of its own */

	for (int i = 0; i < 3; i++) {
		int64_t t0 = os_nanotime();
		int r = gfutex_wait(w, 0, t0 + 20 * MS);
		int64_t dt = os_nanotime() - t0;
		CHECK(r == -ETIMEDOUT, "G timed wait returned %d", r);
		CHECK(dt >= 20 * MS, "early: %lld ns", (long long)dt);
		CHECK(dt < 500 * MS, "late: %lld ns", (long long)dt);
		CHECK(gfutex_wake(w, INT_MAX) == 0, "timed-out waiter still queued");
	}
}

GF_TEST(wait_deadline_times_out)
{
	static _Atomic uint32_t wa, wb;

	(void)procs;
	atomic_store(&word, 0);
	/* The main G, alone (its M has nothing else to run). */
	int64_t t0 = os_nanotime();
	int r = gfutex_wait(&word, 0, t0 + 20 * MS);
	int64_t dt = os_nanotime() - t0;
	CHECK(r == -ETIMEDOUT, "main timed wait returned %d", r);
	CHECK(dt >= 20 * MS && dt < 500 * MS, "took %lld ns", (long long)dt);
	CHECK(gfutex_wake(&word, INT_MAX) == 0, "timed-out main G still queued");

	/* Two G's timing out at the same time while main waits in join. */
	g_t *a = spawn(timeout_fn, (void *)&wa), *b = spawn(timeout_fn, (void *)&wb);
	join(a);
	join(b);
}

/* Woken well before the deadline: returns 0 at once, and the cancelled
 * timer never fires on the (by then reused) stack frame. */
static _Atomic long early_ret0;
static g_t *early_waiter;

static void early_fn(void *arg)
{
	long n = (long)(uintptr_t)arg;

	for (long i = 0; i < n; i++) {
		uint32_t v = atomic_load(&word);
		int r = gfutex_wait(&word, v, os_nanotime() + 10 * MS);
		/* -ETIMEDOUT only if the waker was kept off the CPU for 10 ms. */
		CHECK(r == 0 || r == -EAGAIN || r == -ETIMEDOUT, "round %ld: %d", i, r);
		if (r == 0)
			atomic_fetch_add(&early_ret0, 1);
	}
	g_exit((void *)1);
}

static void early_waker_fn(void *arg)
{
	(void)arg;
	while (atomic_load(&counter) == 0) {
		/* Wake it only once it is parked: every round is a real
		 * wake-up that beats the deadline. */
		if (atomic_load(&early_waiter->status) != G_WAITING) {
			g_yield();
			continue;
		}
		atomic_fetch_add(&word, 1);
		gfutex_wake(&word, 1);
	}
}

GF_TEST(wake_before_deadline_cancels_timer)
{
	enum { N = 2000 };

	(void)procs;
	atomic_store(&counter, 0);
	early_waiter = spawn(early_fn, (void *)(uintptr_t)N);
	g_t *k = spawn(early_waker_fn, NULL);
	join(early_waiter);
	atomic_store(&counter, 1);
	join(k);
	CHECK(atomic_load(&early_ret0) > N / 2, "woken by the waker only %ld times",
	      atomic_load(&early_ret0));
	/* Outlive every deadline those waits armed: a stale timer firing
	 * now would ready a G that is not waiting (a fatal status error)
	 * or write to a dead stack frame. */
	sleep_ms(30);
	atomic_store(&word, 0);
	int r = gfutex_wait(&word, 0, os_nanotime() + 15 * MS);
	CHECK(r == -ETIMEDOUT, "main after the storm: %d", r);
}

/* ---- wake racing timeout --------------------------------------------------- */

#define RACE_ITERS 10000
static _Atomic uint32_t race_word, race_armed, race_done;
static long race_ok, race_timedout, race_woken;

/* Park until *w >= want: the hand-shakes between the two G's park rather
 * than spin, so the test keeps its pace on a loaded machine. */
static void park_until(_Atomic uint32_t *w, uint32_t want)
{
	uint32_t v;

	while ((v = atomic_load(w)) < want) {
		int e = gfutex_wait(w, v, -1);
		CHECK(e == 0 || e == -EAGAIN, "hand-shake wait: %d", e);
	}
}

static void publish(_Atomic uint32_t *w, uint32_t v)
{
	atomic_store(w, v);
	gfutex_wake(w, 1);
}

static void race_waiter_fn(void *arg)
{
	uint32_t r = 0x1234567u;

	(void)arg;
	for (uint32_t i = 0; i < RACE_ITERS; i++) {
		publish(&race_armed, i + 1);
		int64_t dl = os_nanotime() + (int64_t)(xs(&r) % 40) * US;
		int e = gfutex_wait(&race_word, 0, dl);
		CHECK(e == 0 || e == -ETIMEDOUT, "round %u: %d", i, e);
		if (e == 0)
			race_ok++;
		else
			race_timedout++;
		/* Do not start the next wait before this round's wake. */
		park_until(&race_done, i + 1);
	}
}

static void race_waker_fn(void *arg)
{
	uint32_t r = 0x7654321u;

	(void)arg;
	for (uint32_t i = 0; i < RACE_ITERS; i++) {
		park_until(&race_armed, i + 1);
		int64_t end = os_nanotime() + (int64_t)(xs(&r) % 40) * US;
		while (os_nanotime() < end)
			arch_relax();
		int k = gfutex_wake(&race_word, 1);
		CHECK(k == 0 || k == 1, "wake returned %d", k);
		race_woken += k;
		publish(&race_done, i + 1);
	}
}

GF_TEST(wake_racing_timeout_never_loses_g)
{
	STAGE("race");
	g_t *a = spawn(race_waiter_fn, NULL);
	g_t *b = spawn(race_waker_fn, NULL);
	join(a);
	join(b);
	/* Every wake that counted a waiter was seen by it as a wake-up, and
	 * every other wait timed out: no wake-up was lost or double counted. */
	CHECK(race_ok == race_woken, "waits returning 0: %ld, wakes counted: %ld (timeouts %ld)",
	      race_ok, race_woken, race_timedout);
	CHECK(race_ok + race_timedout == RACE_ITERS, "sum");
	CHECK(gfutex_wake(&race_word, INT_MAX) == 0, "a waiter left behind");
	fprintf(stderr, "GOMAXPROCS=%d: %ld woken, %ld timed out\n", procs, race_ok,
	        race_timedout);
}

/* Many timed waiters at once: the timer heap holds hundreds of entries,
 * removes them from the middle (cancelled by a wake) and fires the rest
 * in deadline order. */
#define MT_N 1000
static struct {
	_Atomic uint32_t word[MT_N];
	int64_t timeout[MT_N], took[MT_N];
	int ret[MT_N];
	int woken_by_main[MT_N];
} mt;

static void mt_fn(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	int64_t t0 = os_nanotime();

	mt.ret[i] = gfutex_wait(&mt.word[i], 0, t0 + mt.timeout[i]);
	mt.took[i] = os_nanotime() - t0;
}

GF_TEST(many_timed_waiters)
{
	static g_t *gs[MT_N];
	uint32_t r = 99;
	int timedout = 0, woken = 0;

	(void)procs;
	STAGE("spawn");
	for (uintptr_t i = 0; i < MT_N; i++) {
		mt.timeout[i] = (int64_t)(1 + xs(&r) % 60) * MS;
		gs[i] = spawn(mt_fn, (void *)i);
	}
	/* Park for 20 ms: they queue and the shortest expire; then wake
	 * every other one. */
	static _Atomic uint32_t nap;
	int e = gfutex_wait(&nap, 0, os_nanotime() + 20 * MS);
	CHECK(e == -ETIMEDOUT, "%d", e);
	STAGE("wake");
	for (int i = 1; i < MT_N; i += 2)
		mt.woken_by_main[i] = gfutex_wake(&mt.word[i], 1);
	STAGE("join");
	for (int i = 0; i < MT_N; i++)
		join(gs[i]);
	for (int i = 0; i < MT_N; i++) {
		if (mt.ret[i] == 0) {
			CHECK(mt.woken_by_main[i] == 1, "G %d returned 0 but was not woken", i);
			woken++;
		} else {
			CHECK(mt.ret[i] == -ETIMEDOUT, "G %d: %d", i, mt.ret[i]);
			CHECK(mt.woken_by_main[i] == 0, "G %d counted as woken but timed out", i);
			CHECK(mt.took[i] >= mt.timeout[i], "G %d timed out after %lld of %lld ns", i,
			      (long long)mt.took[i], (long long)mt.timeout[i]);
			timedout++;
		}
		CHECK(mt.took[i] < mt.timeout[i] + 1000 * MS, "G %d took %lld ms", i,
		      (long long)(mt.took[i] / MS));
	}
	CHECK(woken > 0 && timedout > MT_N / 2, "%d woken, %d timed out", woken, timedout);
	for (int i = 0; i < MT_N; i++)
		CHECK(gfutex_wake(&mt.word[i], INT_MAX) == 0, "G %d's waiter left queued", i);
}

/* ---- OS threads and G's together -------------------------------------------- */

static _Atomic uint32_t os_to_g, g_to_os;

static void *os_thread_fn(void *arg)
{
	struct osw *a = arg;

	CHECK(getg() == NULL, "a plain pthread is not a G");
	/* 1: wait, to be woken by a G. */
	atomic_fetch_add(a->started, 1);
	a->ret = gfutex_wait(&g_to_os, 0, -1);
	atomic_fetch_add(a->woken, 1);
	/* 2: wake a G that waits (the value stays: only a wake lets it go). */
	if (wake_until(&os_to_g, 1, 1) != 1)
		a->ret = 1000;
	return NULL;
}

static void g_side_fn(void *arg)
{
	struct osw *a = arg;
	int64_t end = os_nanotime() + 10000 * MS;
	int k = 0;

	while (atomic_load(a->started) == 0)
		g_yield();
	/* Wake without changing the value: only a real wake-up lets the
	 * thread return 0. */
	while ((k = gfutex_wake(&g_to_os, 1)) == 0) {
		CHECK(os_nanotime() < end, "the OS thread never queued");
		g_yield();
		sleep_ms(1);
	}
	CHECK(k == 1, "woke %d", k);
	int r = gfutex_wait(&os_to_g, 0, -1);
	CHECK(r == 0, "G woken by an OS thread: %d", r);
	g_exit((void *)2);
}

GF_TEST(os_thread_and_g_wake_each_other)
{
	_Atomic int started = 0, woken = 0;
	struct osw a = { NULL, 0, -1, &started, &woken, 99 };
	pthread_t th;

	(void)procs;
	for (int round = 0; round < 20; round++) {
		atomic_store(&started, 0);
		atomic_store(&woken, 0);
		a.ret = 99;
		CHECK(pthread_create(&th, NULL, os_thread_fn, &a) == 0, "pthread_create");
		g_t *g = spawn(g_side_fn, &a);
		CHECK(join(g) == (void *)2, "round %d: G retval", round);
		pthread_join(th, NULL);
		CHECK(a.ret == 0, "round %d: OS thread's wait returned %d", round, a.ret);
		CHECK(atomic_load(&woken) == 1, "woken");
	}
	/* An OS thread timing out while G's run. */
	{
		_Atomic uint32_t w = 0;
		struct osw t = { &w, 0, os_nanotime() + 20 * MS, &started, &woken, 99 };
		int64_t t0 = os_nanotime();
		CHECK(pthread_create(&th, NULL, os_waiter, &t) == 0, "pthread_create");
		pthread_join(th, NULL);
		CHECK(t.ret == -ETIMEDOUT, "OS thread timed wait: %d", t.ret);
		CHECK(os_nanotime() - t0 >= 20 * MS, "early");
		CHECK(gfutex_wake(&w, INT_MAX) == 0, "still queued");
	}
}

/* ---- many waiters ----------------------------------------------------------- */

GF_TEST(thousand_waiters_woken_by_one_wake)
{
	enum { N = 1000 };
	static _Atomic uint32_t w;
	static g_t *gs[N];

	(void)procs;
	atomic_store(&counter, 0);
	STAGE("spawn");
	for (int i = 0; i < N; i++)
		gs[i] = spawn(count_waiter_fn, (void *)&w);
	for (int i = 0; i < N; i++)
		wait_parked(gs[i]);
	CHECK(atomic_load(&counter) == 0, "a waiter returned early");
	STAGE("wake");
	int k = gfutex_wake(&w, INT_MAX);
	CHECK(k == N, "woke %d of %d", k, N);
	for (int i = 0; i < N; i++)
		join(gs[i]);
	CHECK(atomic_load(&counter) == N, "%ld returned", atomic_load(&counter));
	CHECK(gfutex_wake(&w, INT_MAX) == 0, "queue empty");
}
