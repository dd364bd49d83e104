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
 * waiters need no scheduler and run in the test process itself. */
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

static g_t *spawn(void (*fn)(void *), void *arg)
{
	int err = 0;
	g_t *g = g_alloc(STK, 4096, NULL, &err);

	CHECK(g != NULL, "g_alloc failed: %d", err);
	g_start_new(g, fn, arg);
	return g;
}

static void *join(g_t *g)
{
	void *ret = (void *)0x5a5a;
	int r = g_join(g, &ret, -1, 0, NULL);

	CHECK(r == 0, "g_join returned %d", r);
	return ret;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Until g is parked in a gfutex: enqueued under the bucket lock before its
 * status turns G_WAITING (switch_finish). */
static void wait_parked(g_t *g)
{
	int64_t end = os_nanotime() + 10000 * MS;

	while (atomic_load(&g->status) != G_WAITING || g->waitreason != WAIT_GFUTEX) {
		CHECK(os_nanotime() < end, "G %llu never parked (status %u)",
		      (unsigned long long)g->goid, atomic_load(&g->status));
		g_yield();
	}
}

/* Yield until *v >= want (a spin at GOMAXPROCS=2, a hand-over at 1). */
static void yield_until(_Atomic long *v, long want, const char *what)
{
	int64_t end = os_nanotime() + 10000 * MS;

	while (atomic_load(v) < want) {
		CHECK(os_nanotime() < end, "timed out waiting for %s: %ld < %ld", what,
		      atomic_load(v), want);
		g_yield();
	}
}

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

static uint32_t xs(uint32_t *r)
{
	*r ^= *r << 13; *r ^= *r >> 17; *r ^= *r << 5;
	return *r;
}

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

/* ---- wakes from signal handlers ---------------------------------------------
 * gfutex_wake_async (sem_post from a handler) defers the wake while the
 * interrupted thread is inside a runtime section.  Here a plain thread
 * fires SIGUSR1 at the M of a G that is just going to sleep on the word
 * the handler sets: whatever instant the signal lands at, the G must wake
 * (it waits with a 300 ms deadline; timing out with the word set means the
 * wake was lost). */
#define SIG_ITERS 5000
static _Atomic uint32_t sig_word;
static _Atomic long sig_announce, sig_handled, sig_lost, sig_eagain, sig_woken;
static _Atomic pid_t sig_tid;
static _Atomic int sig_stop;

static void sig_handler(int sig)
{
	int saved = errno;

	(void)sig;
	atomic_store(&sig_word, 1);
	gfutex_wake_async(&sig_word);
	atomic_fetch_add(&sig_handled, 1);
	errno = saved;
}

static void *sig_sender(void *arg)
{
	uint32_t r = 4242;
	pid_t pid = getpid();

	(void)arg;
	for (long i = 0; i < SIG_ITERS && !atomic_load(&sig_stop); i++) {
		while (atomic_load(&sig_announce) < i + 1)
			if (atomic_load(&sig_stop))
				return NULL;
		int64_t end = os_nanotime() + (int64_t)(xs(&r) % 20000);
		while (os_nanotime() < end)
			arch_relax();
		arch_syscall(SYS_tgkill, pid, atomic_load(&sig_tid), SIGUSR1);
	}
	return NULL;
}

/* Sleep a little, parked: at GOMAXPROCS=1 a g_yield would put this G on
 * the local ring behind a spawn/join pair that keeps handing the P to each
 * other through runnext, and it would not run again (local-ring
 * starvation: test_sched.c, ring_not_starved_by_runnext_pair); a timed-out
 * G comes back through the global queue, checked every 61st schedule. */
static void nap_us(int us)
{
	static _Atomic uint32_t nap_word;

	gfutex_wait(&nap_word, 0, os_nanotime() + us * US);
}

/* Keeps the M inside the runtime most of the time: spawning, joining and
 * exiting G's. */
static void sig_child_fn(void *arg)
{
	(void)arg;
}

static void sig_churn_fn(void *arg)
{
	(void)arg;
	while (!atomic_load(&sig_stop)) {
		atomic_store(&sig_tid, os_gettid());
		join(spawn(sig_child_fn, NULL));
		/* Let the main G have the P now and then (it may sit on the
		 * local ring: see nap_us). */
		g_yield();
	}
}

/* The waiter: the main G, parked on the word while the churn runs. */
static void sig_wait_rounds(void)
{
	for (long i = 0; i < SIG_ITERS; i++) {
		atomic_store(&sig_word, 0);
		atomic_store(&sig_announce, i + 1);
		int e = gfutex_wait(&sig_word, 0, os_nanotime() + 300 * MS);
		if (e == -ETIMEDOUT && atomic_load(&sig_word) == 1)
			atomic_fetch_add(&sig_lost, 1);
		else if (e == -EAGAIN)
			atomic_fetch_add(&sig_eagain, 1);
		else if (e == 0)
			atomic_fetch_add(&sig_woken, 1);
		/* This round's handler has run before the next round resets
		 * the word. */
		int64_t end = os_nanotime() + 5000 * MS;
		while (atomic_load(&sig_handled) < i + 1) {
			CHECK(os_nanotime() < end, "signal %ld never handled", i);
			nap_us(50);
		}
		CHECK(atomic_load(&sig_lost) == 0, "a wake-up from a signal handler was lost "
		      "(round %ld; %ld woken, %ld EAGAIN)", i, atomic_load(&sig_woken),
		      atomic_load(&sig_eagain));
	}
}

/* DISABLED at GOMAXPROCS=2: it fails today (see the report:
 * gfutex_wake_async's duplicate check matches entries rt_defer_drain has
 * already woken but not yet cleared, so a post landing during a drain is
 * dropped).  Enable it with the fix. */
static void wake_async_from_signal_handler(int procs);
/* Disabled at GOMAXPROCS=1 (issue 10): the signal is a tgkill to the
 * kernel thread the churn G last ran on, and an M that has gone idle now
 * blocks every signal (core/signal.c: what a G accepts while it has no M
 * is the signal thread's to take), so the signal waits on that M until it
 * runs a G again - at GOMAXPROCS=1 an extra M can stay idle for the whole
 * test.  Programs reach threads with pthread_kill, not M tids. */
Test(core_gfutex, wake_async_from_signal_handler_p1, .disabled = true)
{
	run_child(1, wake_async_from_signal_handler);
}
Test(core_gfutex, wake_async_from_signal_handler_p2)
{
	run_child(2, wake_async_from_signal_handler);
}

static void wake_async_from_signal_handler(int procs)
{
	struct sigaction sa;
	pthread_t th;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = sig_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
	STAGE("signals");
	g_t *churn = spawn(sig_churn_fn, NULL);
	while (atomic_load(&sig_tid) == 0)
		nap_us(50);
	CHECK(pthread_create(&th, NULL, sig_sender, NULL) == 0, "pthread_create");
	sig_wait_rounds();
	atomic_store(&sig_stop, 1);
	pthread_join(th, NULL);
	join(churn);
	fprintf(stderr, "GOMAXPROCS=%d: %ld woken, %ld EAGAIN, %ld lost\n", procs,
	        atomic_load(&sig_woken), atomic_load(&sig_eagain), atomic_load(&sig_lost));
}

/* A process-directed signal may land on any thread, including the
 * runtime's timer thread (not a G, not an M).  A handler that posts a
 * semaphore there (gfutex_wake_async) must not deadlock against the lock
 * the interrupted timer callback holds (a gfutex bucket, sched.lock). */
static _Atomic uint32_t tt_word;
static _Atomic int tt_stop;
static _Atomic long tt_handled, tt_sent;

static void tt_handler(int sig)
{
	int saved = errno;

	(void)sig;
	gfutex_wake_async(&tt_word);
	atomic_fetch_add(&tt_handled, 1);
	errno = saved;
}

static bool tid_is_m(pid_t tid)
{
	for (m_t *m = atomic_load(&sched.allm); m; m = m->alllink)
		if (m->tid == tid)
			return true;
	return false;
}

static void *tt_sender(void *arg)
{
	pid_t pid = getpid(), me = os_gettid(), target = 0;
	uint32_t r = 77;

	(void)arg;
	/* The timer thread: the one thread that is neither an M nor us. */
	int64_t end = os_nanotime() + 5000 * MS;
	while (!target && os_nanotime() < end) {
		char path[64];
		for (pid_t t = pid; t < pid + 4096 && !target; t++) {
			char comm[32] = "";
			FILE *f;

			snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)t);
			if (t == me || tid_is_m(t) || !(f = fopen(path, "r")))
				continue;
			if (fgets(comm, sizeof comm, f) && strncmp(comm, "gshim-timer", 11) == 0)
				target = t;
			fclose(f);
		}
	}
	CHECK(target != 0, "timer thread not found");
	while (!atomic_load(&tt_stop)) {
		arch_syscall(SYS_tgkill, pid, target, SIGUSR2);
		atomic_fetch_add(&tt_sent, 1);
		int64_t until = os_nanotime() + (int64_t)(xs(&r) % 20) * US;
		while (os_nanotime() < until)
			arch_relax();
	}
	return NULL;
}

static void tt_waiter_fn(void *arg)
{
	uint32_t r = 1 + (uint32_t)(uintptr_t)arg;
	int64_t end = os_nanotime() + 1000 * MS;

	while (os_nanotime() < end) {
		int e = gfutex_wait(&tt_word, 0, os_nanotime() + (int64_t)(xs(&r) % 20) * US);
		CHECK(e == 0 || e == -ETIMEDOUT, "%d", e);
	}
}

/* A handler on the timer thread that wakes a G would find getg() == NULL,
 * wake directly and re-take the bucket lock the interrupted gfutex_timeout
 * may hold: the runtime's helper threads block every signal, so signals
 * aimed at them stay pending and nothing deadlocks. */
GF_TEST(wake_async_on_the_timer_thread)
{
	struct sigaction sa;
	pthread_t th;
	g_t *gs[3];

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tt_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction");
	/* Start the timer thread. */
	CHECK(gfutex_wait(&tt_word, 0, os_nanotime() + MS) == -ETIMEDOUT, "first timed wait");
	STAGE("signals at the timer thread");
	for (uintptr_t i = 0; i < 3; i++)
		gs[i] = spawn(tt_waiter_fn, (void *)i);
	CHECK(pthread_create(&th, NULL, tt_sender, NULL) == 0, "pthread_create");
	for (int i = 0; i < 3; i++)
		join(gs[i]);
	atomic_store(&tt_stop, 1);
	pthread_join(th, NULL);
	fprintf(stderr, "GOMAXPROCS=%d: %ld signals sent to the timer thread, %ld handled\n",
	        procs, atomic_load(&tt_sent), atomic_load(&tt_handled));
	CHECK(atomic_load(&tt_sent) > 0, "no signal sent");
	CHECK(atomic_load(&tt_handled) == 0, "the timer thread handled a signal");
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

/* ---- more than eight deferred wakes in one runtime section ------------------
 * A handler that runs while its thread is inside a runtime section posts
 * to 20 different words, each with a G parked on it: the ring of deferred
 * wakes holds 8, so the rest turn into one "wake every waiter" entry.  All
 * 20 must wake when the section ends; nothing may abort. */
#define MANY_WORDS 20
static _Atomic uint32_t many_word[MANY_WORDS];
static _Atomic long many_woken;

static void many_waiter(void *arg)
{
	_Atomic uint32_t *w = arg;

	while (atomic_load(w) == 0)
		gfutex_wait(w, 0, -1);
	atomic_fetch_add(&many_woken, 1);
}

static void many_handler(int sig)
{
	(void)sig;
	for (int i = 0; i < MANY_WORDS; i++) {
		atomic_store(&many_word[i], 1);
		gfutex_wake_async(&many_word[i]);
	}
}

GF_TEST(wake_async_overflow_wakes_all)
{
	g_t *w[MANY_WORDS];
	struct sigaction sa;
	g_t *self;

	(void)procs;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = many_handler;
	sigaction(SIGUSR2, &sa, NULL);
	for (int i = 0; i < MANY_WORDS; i++)
		w[i] = spawn(many_waiter, (void *)&many_word[i]);
	for (int i = 0; i < MANY_WORDS; i++)
		wait_parked(w[i]);
	self = rt_enter();   /* the handler interrupts a runtime section */
	arch_syscall(SYS_tgkill, getpid(), os_gettid(), SIGUSR2);
	CHECK(atomic_load(&many_woken) == 0, "woken inside the runtime section");
	rt_exit(self);       /* the deferred wakes happen here */
	for (int i = 0; i < MANY_WORDS; i++)
		join(w[i]);
	CHECK(atomic_load(&many_woken) == MANY_WORDS, "%ld of %d woken",
	      atomic_load(&many_woken), MANY_WORDS);
}
