/* tests/core/test_sched_park.c - core/sched.c, continued from
 * test_sched.c (same criterion suite, core_sched): spinning and parking
 * M's (idle M's after bursts, runnext hand-offs), lost wake-ups (gfutex
 * hand-offs between G's on two M's, a ring of G's, chaos) and errno per G
 * across yields and parks.  Every scenario runs in a fork()ed child, as
 * explained in test_sched.c; harness and helpers in sched_helpers.h. */
#include "sched_helpers.h"

/* ---- spinning and parking M's ------------------------------------------------ */

#define BURST 100
static struct {
	pid_t tid[BURST];
	int64_t t0[BURST], t1[BURST];
	_Atomic uint32_t left;
} burst;

static void burst_fn(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	int64_t end;

	burst.tid[i] = os_gettid();
	burst.t0[i] = os_nanotime();
	end = burst.t0[i] + 4 * MS;
	while (os_nanotime() < end)
		arch_relax();
	burst.t1[i] = os_nanotime();
	CHECK(os_gettid() == burst.tid[i], "a spinning G moved between M's");
	if (atomic_fetch_sub(&burst.left, 1) == 1)
		gfutex_wake(&burst.left, 1);
}

static void quiet_fn(void *arg)
{
	(void)arg;
}

static void check_idle(int procs, const char *when)
{
	int idleprocs, threads, spinning, idlem, globq;
	struct rusage r0, r1;

	/* Real nanosleep: blocks this M (and the main G's P) for 50 ms; the
	 * other M's must find nothing and park. */
	sleep_ms(50);
	getrusage(RUSAGE_SELF, &r0);
	sleep_ms(50);
	getrusage(RUSAGE_SELF, &r1);
	sched_snapshot(&idleprocs, &threads, &spinning, &idlem, &globq);
	CHECK(spinning == 0, "%s: %d M's still spinning", when, spinning);
	CHECK(idleprocs == procs - 1, "%s: %d idle P's, want %d", when, idleprocs, procs - 1);
	CHECK(globq == 0, "%s: global queue %d", when, globq);
	CHECK(threads >= 1 && idlem == threads - 1,
	      "%s: %d M's, %d idle: all but the main G's M should park", when, threads, idlem);
	long cpu_us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L +
	              (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
	              (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L +
	              (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
	CHECK(cpu_us < 20000, "%s: process used %ld us of CPU in 50 ms of idleness", when,
	      cpu_us);
}

SCHED_TEST(burst_after_quiet_uses_all_ps)
{
	static _Atomic uint32_t dummy;
	int64_t t0, wall, serial = 0;
	pid_t tids[BURST];
	int ntids = 0;

	/* Warm up (lets a second M start at GOMAXPROCS=2), then go quiet:
	 * the main G parks for 30 ms and every M runs out of work. */
	STAGE("warm-up");
	for (int i = 0; i < 10; i++)
		join(spawn(quiet_fn, NULL));
	STAGE("quiet");
	int e = gfutex_wait(&dummy, 0, os_nanotime() + 30 * MS);
	CHECK(e == -ETIMEDOUT, "quiet wait returned %d", e);
	check_idle(procs, "before the burst");

	STAGE("burst");
	atomic_store(&burst.left, BURST);
	t0 = os_nanotime();
	for (uintptr_t i = 0; i < BURST; i++)
		spawn_opt(burst_fn, (void *)i, true);
	for (uint32_t v; (v = atomic_load(&burst.left)) != 0;)
		gfutex_wait(&burst.left, v, -1);
	wall = os_nanotime() - t0;

	for (int i = 0; i < BURST; i++) {
		int k;
		serial += burst.t1[i] - burst.t0[i];
		for (k = 0; k < ntids && tids[k] != burst.tid[i]; k++)
			;
		if (k == ntids)
			tids[ntids++] = burst.tid[i];
	}
	/* Two G's on different M's ran at the same time. */
	bool overlap = false;
	for (int i = 0; i < BURST && !overlap; i++)
		for (int k = 0; k < BURST && !overlap; k++)
			overlap = burst.tid[i] != burst.tid[k] &&
			          burst.t0[i] < burst.t1[k] && burst.t0[k] < burst.t1[i];
	CHECK(ntids == procs, "G's ran on %d OS threads at GOMAXPROCS=%d (wall %lld ms, "
	      "serial %lld ms)", ntids, procs, (long long)(wall / MS), (long long)(serial / MS));
	CHECK(overlap == (procs > 1), "overlap %d at GOMAXPROCS=%d", overlap, procs);
	wait_only_main();
	STAGE("idle after the burst");
	check_idle(procs, "after the burst");
}

/* A G readied while the readier keeps its P busy must be run by another
 * M: the readier's wakep and the spinning M's "stop spinning, then look
 * again" must not both miss it.  The pauses between rounds catch the
 * other M in every state: spinning, giving up its P, parked. */
static _Atomic int rb_flag;
static _Atomic uint32_t rb_word;

static void rb_spawned_fn(void *arg)
{
	(void)arg;
	atomic_store(&rb_flag, 1);
}

static void rb_waiter_fn(void *arg)
{
	(void)arg;
	for (;;) {
		uint32_t v = atomic_load(&rb_word);
		if (v == UINT32_MAX)
			return;
		if (v & 1) {                   /* woken: report and re-arm */
			atomic_store(&rb_word, v + 1);
			atomic_store(&rb_flag, 1);
			continue;
		}
		gfutex_wait(&rb_word, v, -1);
	}
}

static void rb_busy_until_flag(int round, const char *how)
{
	int64_t end = os_nanotime() + 2000 * MS;

	while (!atomic_load(&rb_flag))
		CHECK(os_nanotime() < end, "round %d: a G readied by %s while its P stayed "
		      "busy never ran on the other P", round, how);
	atomic_store(&rb_flag, 0);
}

static void rb_pause(uint32_t *r)
{
	*r ^= *r << 13; *r ^= *r >> 17; *r ^= *r << 5;
	int64_t end = os_nanotime() + (int64_t)(*r % 300) * 1000;   /* 0-300 us */
	if (*r & 0x10000)
		sleep_ms(0);               /* a syscall; sometimes a real sleep */
	while (os_nanotime() < end)
		arch_relax();
}

SCHED_TEST_P(ready_while_busy_runs_elsewhere, 2)
{
	uint32_t r = 12345;

	(void)procs;
	STAGE("spawn");
	for (int i = 0; i < 3000; i++) {
		spawn_opt(rb_spawned_fn, NULL, true);
		rb_busy_until_flag(i, "g_start_new");
		rb_pause(&r);
	}
	STAGE("wake");
	g_t *w = spawn(rb_waiter_fn, NULL);
	for (int i = 0; i < 3000; i++) {
		/* Wait until it is parked (or about to) on an even value. */
		int64_t end = os_nanotime() + 2000 * MS;
		while (atomic_load(&rb_word) & 1)
			CHECK(os_nanotime() < end, "waiter stuck");
		rb_pause(&r);
		atomic_fetch_add(&rb_word, 1);
		gfutex_wake(&rb_word, 1);
		rb_busy_until_flag(i, "gfutex_wake");
	}
	while (atomic_load(&rb_word) & 1)
		;
	atomic_store(&rb_word, UINT32_MAX);
	gfutex_wake(&rb_word, 1);
	join(w);
}

/* ---- lost wake-ups --------------------------------------------------------- */

#define HANDOFFS 100000
static _Atomic uint32_t turn;
static _Atomic long handoffs, cross_m;
static _Atomic pid_t last_tid;

/* After handing the turn over, the G keeps its M busy for a moment (a
 * pseudo-random few microseconds) before it waits: the woken G sits in
 * this P's runnext meanwhile, and at GOMAXPROCS=2 the other M steals it,
 * so wakers and waiters really run in parallel on two M's and race in
 * gfutex_wait / gfutex_wake / g_park. */
static void handoff_fn(void *arg)
{
	uint32_t me = (uint32_t)(uintptr_t)arg;
	uint32_t r = 0x9e3779b9u * (me + 1);

	for (int i = 0; i < HANDOFFS; i++) {
		uint32_t v;
		while ((v = atomic_load(&turn)) != me) {
			int e = gfutex_wait(&turn, v, -1);
			CHECK(e == 0 || e == -EAGAIN, "gfutex_wait %d", e);
		}
		pid_t tid = os_gettid();
		if (atomic_exchange(&last_tid, tid) != tid)
			atomic_fetch_add(&cross_m, 1);
		atomic_fetch_add(&handoffs, 1);
		atomic_store(&turn, !me);
		gfutex_wake(&turn, 1);
		r ^= r << 13; r ^= r >> 17; r ^= r << 5;
		for (uint32_t k = r % 64; k; k--)
			arch_relax();
	}
}

SCHED_TEST(gfutex_ping_pong_100k)
{
	int64_t t0 = os_nanotime();

	STAGE("ping-pong");
	g_t *a = spawn(handoff_fn, (void *)0);
	g_t *b = spawn(handoff_fn, (void *)1);
	join(a);
	join(b);
	CHECK(atomic_load(&handoffs) == 2 * HANDOFFS, "%ld", atomic_load(&handoffs));
	fprintf(stderr, "GOMAXPROCS=%d: %ld of %d hand-offs crossed M's, %lld ms\n", procs,
	        atomic_load(&cross_m), 2 * HANDOFFS, (long long)((os_nanotime() - t0) / MS));
}

/* Same, with the main G also taking part through a third word, so the
 * wakers and the woken are spread over the P's. */
static _Atomic uint32_t ring_tok;
#define RING_G 3
#define RING_ROUNDS 30000

static void ring_fn(void *arg)
{
	uint32_t me = (uint32_t)(uintptr_t)arg;

	for (int i = 0; i < RING_ROUNDS; i++) {
		uint32_t v;
		while ((v = atomic_load(&ring_tok)) != me) {
			int r = gfutex_wait(&ring_tok, v, -1);
			CHECK(r == 0 || r == -EAGAIN, "gfutex_wait %d", r);
		}
		atomic_store(&ring_tok, (me + 1) % RING_G);
		gfutex_wake(&ring_tok, INT32_MAX);
	}
}

SCHED_TEST(gfutex_token_ring)
{
	g_t *gs[RING_G];

	(void)procs;
	STAGE("ring");
	for (uintptr_t i = 0; i < RING_G; i++)
		gs[i] = spawn(ring_fn, (void *)i);
	for (int i = 0; i < RING_G; i++)
		join(gs[i]);
	CHECK(atomic_load(&ring_tok) == 0, "token %u", atomic_load(&ring_tok));
}

/* Everything at once: G's that yield, spawn and join, spawn detached
 * G's, wait with and without tiny deadlines and wake each other, for a
 * fixed number of steps each.  It must finish, every G must be accounted
 * for and freed, and the scheduler must go idle afterwards. */
#define CHAOS_G 8
#define CHAOS_STEPS 20000
static _Atomic uint32_t chaos_words[4];
static _Atomic long chaos_spawned, chaos_finished, chaos_detached_done;

static void chaos_leaf_fn(void *arg)
{
	uintptr_t x = (uintptr_t)arg;

	if (x & 1)
		g_yield();
	atomic_fetch_add(&chaos_finished, 1);
	if (x & 2)
		g_exit((void *)(x ^ 0x55));
}

static void chaos_detached_fn(void *arg)
{
	(void)arg;
	g_yield();
	atomic_fetch_add(&chaos_detached_done, 1);
}

static void chaos_fn(void *arg)
{
	uint32_t r = 0x2545f491u * ((uint32_t)(uintptr_t)arg + 1);

	for (int i = 0; i < CHAOS_STEPS; i++) {
		uint32_t op = xs32(&r) % 8;
		_Atomic uint32_t *w = &chaos_words[xs32(&r) % 4];

		switch (op) {
		case 0:
			g_yield();
			break;
		case 1: {
			uintptr_t x = xs32(&r) & 0xffff;
			atomic_fetch_add(&chaos_spawned, 1);
			void *ret = join(spawn(chaos_leaf_fn, (void *)x));
			CHECK(ret == (x & 2 ? (void *)(x ^ 0x55) : NULL), "leaf retval %p", ret);
			break;
		}
		case 2:
			atomic_fetch_add(&chaos_spawned, 1);
			spawn_opt(chaos_detached_fn, NULL, true);
			break;
		case 3: {
			int e = gfutex_wait(w, atomic_load(w), os_nanotime() + (xs32(&r) % 50) * 1000);
			CHECK(e == 0 || e == -EAGAIN || e == -ETIMEDOUT, "timed wait %d", e);
			break;
		}
		case 4: {
			/* Mostly a different value: EAGAIN, unless another G
			 * moved the word on in between. */
			uint32_t v = atomic_load(w);
			int e = gfutex_wait(w, v + 1, os_nanotime() + MS);
			CHECK(e == -EAGAIN || e == 0 || e == -ETIMEDOUT, "wait: %d", e);
			break;
		}
		case 5:
		case 6:
			atomic_fetch_add(w, 1);
			gfutex_wake(w, (int)(xs32(&r) % 3));
			break;
		default: {
			g_t *g = spawn(chaos_leaf_fn, (void *)(uintptr_t)2);
			atomic_fetch_add(&chaos_spawned, 1);
			void *ret;
			int e;
			while ((e = g_join(g, &ret, -1, GJOIN_TRY, NULL)) == EBUSY)
				g_yield();
			CHECK(e == 0 && ret == (void *)(2 ^ 0x55), "tryjoin loop: %d %p", e, ret);
			break;
		}
		}
	}
}

static void chaos(int procs);
/* More P's than this machine's CPUs: more interleavings. */
Test(core_sched, chaos_p4) { run_child(4, chaos); }

SCHED_TEST(chaos)
{
	g_t *gs[CHAOS_G];

	STAGE("chaos");
	for (uintptr_t i = 0; i < CHAOS_G; i++)
		gs[i] = spawn(chaos_fn, (void *)i);
	for (int i = 0; i < CHAOS_G; i++)
		join(gs[i]);
	STAGE("chaos: drain");
	wait_only_main();
	CHECK(atomic_load(&chaos_finished) + atomic_load(&chaos_detached_done) ==
	      atomic_load(&chaos_spawned), "spawned %ld, finished %ld + %ld detached",
	      atomic_load(&chaos_spawned), atomic_load(&chaos_finished),
	      atomic_load(&chaos_detached_done));
	CHECK(atomic_load(&sched.ngs) == 1, "ngs %ld", atomic_load(&sched.ngs));
	STAGE("chaos: idle");
	check_idle(procs, "after chaos");
}

/* ---- errno per G ---------------------------------------------------------- */

#define ERRNO_ROUNDS 1000
static _Atomic int errno_last;     /* which G set errno last */
static _Atomic uint32_t errno_turn;

static void errno_yield_fn(void *arg)
{
	int me = (int)(uintptr_t)arg;

	CHECK(*errno_at() == 0, "a fresh G starts with errno %d", *errno_at());
	for (int i = 0; i < ERRNO_ROUNDS; i++) {
		int mine = me * 100000 + i + 1;
		*errno_at() = mine;
		atomic_store(&errno_last, me);
		g_yield();
		CHECK(atomic_load(&errno_last) != me, "the other G did not run (round %d)", i);
		CHECK(*errno_at() == mine, "G %d round %d: errno %d, want %d", me, i,
		      *errno_at(), mine);
	}
	atomic_store(&errno_last, me);
}

SCHED_TEST_P(errno_per_g_yield, 1)
{
	(void)procs;
	*errno_at() = 4242;
	g_t *a = spawn(errno_yield_fn, (void *)1);
	g_t *b = spawn(errno_yield_fn, (void *)2);
	join(a);
	join(b);
	CHECK(*errno_at() == 4242, "main's errno %d", *errno_at());
}

/* At GOMAXPROCS=2 the hand-off goes through gfutex: the G's park and may
 * resume on another M, whose TLS errno is a different variable. */
static void errno_park_fn(void *arg)
{
	uint32_t me = (uint32_t)(uintptr_t)arg;

	for (int i = 0; i < ERRNO_ROUNDS; i++) {
		int mine = (int)me * 100000 + i + 1;
		uint32_t v;

		while ((v = atomic_load(&errno_turn)) != me) {
			*errno_at() = mine;
			gfutex_wait(&errno_turn, v, -1);
			CHECK(*errno_at() == mine, "G %u round %d: errno %d, want %d", me, i,
			      *errno_at(), mine);
		}
		*errno_at() = -mine;
		atomic_store(&errno_turn, !me);
		gfutex_wake(&errno_turn, 1);
		CHECK(*errno_at() == -mine, "errno changed by gfutex_wake: %d", *errno_at());
	}
}

SCHED_TEST(errno_per_g_park)
{
	(void)procs;
	*errno_at() = 4243;
	g_t *a = spawn(errno_park_fn, (void *)0);
	g_t *b = spawn(errno_park_fn, (void *)1);
	join(a);
	CHECK(*errno_at() == 4243, "main's errno %d", *errno_at());
	join(b);
	CHECK(*errno_at() == 4243, "main's errno %d", *errno_at());
}
