/* tests/core/test_runq.c - core/runq.c: the per-P ring, runnext, overflow
 * to the global queue, stealing, and the global queue's fair share.
 *
 * The run queues only store G pointers (and link them through schedlink
 * on the global queue), so these tests drive them directly with calloc'd
 * P's and fake G's; no scheduler is started.  Criterion runs every test in
 * a process of its own, so `sched` starts zeroed (its locks statically
 * initialised) in each test. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"

static p_t *newp(uint32_t id)
{
	p_t *p = aligned_alloc(64, sizeof(p_t));

	cr_assert_not_null(p);
	memset(p, 0, sizeof *p);
	p->id = id;
	return p;
}

static g_t *newgs(size_t n)
{
	g_t *gs = calloc(n, sizeof(g_t));

	cr_assert_not_null(gs);
	for (size_t i = 0; i < n; i++)
		gs[i].goid = i;
	return gs;
}

/* The global queue as an array (sched.lock is not needed: one thread). */
static size_t glob_list(g_t **out, size_t max)
{
	size_t n = 0;

	for (g_t *g = sched.runqhead; g; g = g->schedlink) {
		cr_assert_lt(n, max, "global queue longer than expected (cycle?)");
		out[n++] = g;
	}
	return n;
}

/* ---- ring basics --------------------------------------------------------- */

Test(core_runq, empty_queue)
{
	p_t *p = newp(0);

	cr_assert(runq_empty(p));
	cr_assert_eq(runq_len(p), 0);
	cr_assert_null(runq_get(p));
	cr_assert_null(runq_get(p));
}

Test(core_runq, fifo_order)
{
	enum { N = 200 };
	p_t *p = newp(0);
	g_t *gs = newgs(N);

	for (int i = 0; i < N; i++) {
		runq_put(p, &gs[i], false);
		cr_assert_eq(runq_len(p), (uint32_t)i + 1);
		cr_assert_not(runq_empty(p));
	}
	for (int i = 0; i < N; i++) {
		g_t *g = runq_get(p);
		cr_assert_eq(g, &gs[i], "get #%d returned goid %lld, want %d", i,
		             g ? (long long)g->goid : -1LL, i);
		cr_assert_eq(runq_len(p), (uint32_t)(N - i - 1));
	}
	cr_assert_null(runq_get(p));
	cr_assert(runq_empty(p));
	cr_assert_eq(sched.runqsize, 0, "nothing may spill to the global queue");
}

/* Indices wrap around the ring many times; order and length stay right. */
Test(core_runq, fifo_across_wraparound)
{
	enum { ROUNDS = 3000, BATCH = 7 };
	p_t *p = newp(0);
	g_t *gs = newgs(BATCH * 40);
	size_t in = 0, out = 0;

	for (int r = 0; r < ROUNDS; r++) {
		/* Keep between ~100 and ~240 queued so slots are reused at
		 * every offset. */
		int puts = runq_len(p) < 100 ? BATCH + 3 : BATCH;
		for (int i = 0; i < puts; i++)
			runq_put(p, &gs[in++ % (BATCH * 40)], false);
		for (int i = 0; i < BATCH; i++) {
			g_t *g = runq_get(p);
			cr_assert_eq(g, &gs[out % (BATCH * 40)], "round %d: wrong G", r);
			out++;
		}
		cr_assert_eq(runq_len(p), (uint32_t)(in - out));
		cr_assert_leq(runq_len(p), RUNQ_SIZE);
	}
	while (out < in) {
		cr_assert_eq(runq_get(p), &gs[out % (BATCH * 40)]);
		out++;
	}
	cr_assert_null(runq_get(p));
	cr_assert_eq(sched.runqsize, 0);
}

/* ---- runnext ------------------------------------------------------------- */

Test(core_runq, runnext_is_returned_first)
{
	p_t *p = newp(0);
	g_t *gs = newgs(4);

	runq_put(p, &gs[0], false);
	runq_put(p, &gs[1], false);
	runq_put(p, &gs[2], true);
	cr_assert_eq(p->runnext, &gs[2]);
	cr_assert_eq(runq_len(p), 3, "runnext counts in runq_len");
	cr_assert_eq(runq_get(p), &gs[2], "runnext first");
	cr_assert_null(p->runnext);
	cr_assert_eq(runq_get(p), &gs[0]);
	cr_assert_eq(runq_get(p), &gs[1]);
	cr_assert_null(runq_get(p));
}

Test(core_runq, runnext_only_is_not_empty)
{
	p_t *p = newp(0);
	g_t *gs = newgs(1);

	runq_put(p, &gs[0], true);
	cr_assert_not(runq_empty(p), "a G in runnext only: not empty");
	cr_assert_eq(runq_len(p), 1);
	cr_assert_eq(p->runqhead, p->runqtail, "ring stays empty");
	cr_assert_eq(runq_get(p), &gs[0]);
	cr_assert(runq_empty(p));
	cr_assert_eq(runq_len(p), 0);
}

Test(core_runq, second_runnext_kicks_first_to_ring_tail)
{
	p_t *p = newp(0);
	g_t *gs = newgs(5);

	runq_put(p, &gs[0], false);
	runq_put(p, &gs[1], true);
	runq_put(p, &gs[2], false);
	runq_put(p, &gs[3], true);          /* gs[1] -> ring tail */
	cr_assert_eq(p->runnext, &gs[3]);
	cr_assert_eq(runq_len(p), 4);
	runq_put(p, &gs[4], true);          /* gs[3] -> ring tail */
	cr_assert_eq(runq_len(p), 5);

	g_t *want[] = { &gs[4], &gs[0], &gs[2], &gs[1], &gs[3] };
	for (int i = 0; i < 5; i++) {
		g_t *g = runq_get(p);
		cr_assert_eq(g, want[i], "get #%d: goid %lld, want %lld", i,
		             g ? (long long)g->goid : -1LL, (long long)want[i]->goid);
	}
	cr_assert_null(runq_get(p));
}

/* ---- overflow to the global queue -------------------------------------- */

/* Every G in gs[0..n) appears exactly once in local + global. */
static void check_exactly_once(p_t *p, g_t *gs, size_t n, size_t want_local,
                               size_t want_global)
{
	unsigned char *seen = calloc(n, 1);
	g_t **glob = calloc(n + 1, sizeof *glob);
	size_t nl = 0, ng, i;
	g_t *g;

	cr_assert(seen && glob);
	ng = glob_list(glob, n + 1);
	cr_assert_eq(ng, want_global, "global queue holds %zu, want %zu", ng, want_global);
	cr_assert_eq((size_t)sched.runqsize, ng, "runqsize %d != list length %zu",
	             sched.runqsize, ng);
	cr_assert_eq(sched.runqtail, ng ? glob[ng - 1] : NULL, "runqtail is the last G");
	for (i = 0; i < ng; i++) {
		size_t k = (size_t)(glob[i] - gs);
		cr_assert_lt(k, n, "foreign G on the global queue");
		cr_assert_eq(seen[k], 0, "G %zu twice", k);
		seen[k] = 1;
	}
	while ((g = runq_get(p))) {
		size_t k = (size_t)(g - gs);
		cr_assert_lt(k, n, "foreign G on the local queue");
		cr_assert_eq(seen[k], 0, "G %zu twice", k);
		seen[k] = 1;
		nl++;
	}
	cr_assert_eq(nl, want_local, "local queue held %zu, want %zu", nl, want_local);
	for (i = 0; i < n; i++)
		cr_assert_eq(seen[i], 1, "G %zu lost", i);
	free(seen);
	free(glob);
}

Test(core_runq, overflow_moves_half_plus_new_to_global)
{
	enum { N = RUNQ_SIZE + 1 };
	p_t *p = newp(0);
	g_t *gs = newgs(N);
	g_t *glob[N + 1];

	sched.nprocs = 2;
	for (int i = 0; i < RUNQ_SIZE; i++)
		runq_put(p, &gs[i], false);
	cr_assert_eq(runq_len(p), RUNQ_SIZE, "a full ring holds RUNQ_SIZE");
	cr_assert_eq(sched.runqsize, 0, "no spill before the ring is full");
	runq_put(p, &gs[RUNQ_SIZE], false);
	cr_assert_eq(sched.runqsize, RUNQ_SIZE / 2 + 1);
	cr_assert_eq(runq_len(p), RUNQ_SIZE / 2);

	/* The oldest half, in order, then the new G. */
	size_t ng = glob_list(glob, N + 1);
	cr_assert_eq(ng, RUNQ_SIZE / 2 + 1);
	for (int i = 0; i < RUNQ_SIZE / 2; i++)
		cr_assert_eq(glob[i], &gs[i], "global #%d is goid %lld", i,
		             (long long)glob[i]->goid);
	cr_assert_eq(glob[RUNQ_SIZE / 2], &gs[RUNQ_SIZE]);
	/* The newer half stayed local, in order. */
	for (int i = RUNQ_SIZE / 2; i < RUNQ_SIZE; i++)
		cr_assert_eq(runq_get(p), &gs[i]);
	cr_assert_null(runq_get(p));
}

Test(core_runq, overflow_every_g_exactly_once)
{
	enum { N = 3 * RUNQ_SIZE + 17 };
	p_t *p = newp(0);
	g_t *gs = newgs(N);

	sched.nprocs = 2;
	for (int i = 0; i < N; i++)
		runq_put(p, &gs[i], (i % 11) == 0);
	cr_assert_eq(sched.lock.key, 0, "runq_put_slow released sched.lock");
	size_t local = runq_len(p);
	cr_assert_leq(local, RUNQ_SIZE + 1);
	cr_assert_eq(local + (size_t)sched.runqsize, (size_t)N);
	check_exactly_once(p, gs, N, local, N - local);
}

/* A runnext put when the ring is full pushes the old runnext through the
 * overflow path. */
Test(core_runq, overflow_from_runnext_kick)
{
	enum { N = RUNQ_SIZE + 2 };
	p_t *p = newp(0);
	g_t *gs = newgs(N);
	g_t *glob[N];

	sched.nprocs = 2;
	for (int i = 0; i < RUNQ_SIZE; i++)
		runq_put(p, &gs[i], false);
	runq_put(p, &gs[RUNQ_SIZE], true);       /* runnext, ring still full */
	cr_assert_eq(sched.runqsize, 0);
	runq_put(p, &gs[RUNQ_SIZE + 1], true);   /* kicks gs[256] into a full ring */
	cr_assert_eq(p->runnext, &gs[RUNQ_SIZE + 1]);
	cr_assert_eq(sched.runqsize, RUNQ_SIZE / 2 + 1);
	size_t ng = glob_list(glob, N);
	cr_assert_eq(glob[ng - 1], &gs[RUNQ_SIZE], "the kicked runnext goes global last");
	cr_assert_eq(runq_get(p), &gs[RUNQ_SIZE + 1]);
	for (int i = RUNQ_SIZE / 2; i < RUNQ_SIZE; i++)
		cr_assert_eq(runq_get(p), &gs[i]);
	cr_assert_null(runq_get(p));
}

/* ---- stealing ------------------------------------------------------------- */

Test(core_runq, steal_takes_half)
{
	p_t *thief = newp(0), *victim = newp(1);
	g_t *gs = newgs(10);

	for (int i = 0; i < 10; i++)
		runq_put(victim, &gs[i], false);
	g_t *g = runq_steal(thief, victim, false);
	cr_assert_not_null(g);
	cr_assert_eq(runq_len(victim), 5, "victim keeps half");
	cr_assert_eq(runq_len(thief), 4, "thief's ring gets half minus the returned one");
	/* The oldest five move: four to the thief's ring, the fifth runs. */
	cr_assert_eq(g, &gs[4], "returned goid %lld", (long long)g->goid);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(runq_get(thief), &gs[i]);
	cr_assert_null(runq_get(thief));
	for (int i = 5; i < 10; i++)
		cr_assert_eq(runq_get(victim), &gs[i]);
	cr_assert_null(runq_get(victim));
}

Test(core_runq, steal_rounds_up_and_appends)
{
	p_t *thief = newp(0), *victim = newp(1);
	g_t *gs = newgs(20);

	/* Odd count: n - n/2, 7 -> 4 stolen. */
	for (int i = 0; i < 7; i++)
		runq_put(victim, &gs[i], false);
	/* Thief already has two of its own: the loot goes after them. */
	runq_put(thief, &gs[10], false);
	runq_put(thief, &gs[11], false);
	g_t *g = runq_steal(thief, victim, false);
	cr_assert_eq(g, &gs[3]);
	cr_assert_eq(runq_len(victim), 3);
	g_t *want[] = { &gs[10], &gs[11], &gs[0], &gs[1], &gs[2] };
	for (int i = 0; i < 5; i++)
		cr_assert_eq(runq_get(thief), want[i], "thief get #%d", i);
	cr_assert_null(runq_get(thief));

	/* A single G is stolen whole, without touching the thief's ring. */
	for (int i = 0; i < 3; i++)
		runq_get(victim);
	runq_put(victim, &gs[15], false);
	cr_assert_eq(runq_steal(thief, victim, false), &gs[15]);
	cr_assert(runq_empty(victim));
	cr_assert(runq_empty(thief));
	cr_assert_null(runq_steal(thief, victim, true), "nothing to steal");
}

Test(core_runq, steal_full_ring_takes_half_ring)
{
	p_t *thief = newp(0), *victim = newp(1);
	g_t *gs = newgs(RUNQ_SIZE + 1);

	for (int i = 0; i < RUNQ_SIZE; i++)
		runq_put(victim, &gs[i], false);
	runq_put(victim, &gs[RUNQ_SIZE], true);
	g_t *g = runq_steal(thief, victim, true);
	cr_assert_eq(g, &gs[RUNQ_SIZE / 2 - 1]);
	cr_assert_eq(runq_len(thief), RUNQ_SIZE / 2 - 1);
	cr_assert_eq(runq_len(victim), RUNQ_SIZE / 2 + 1, "half the ring + runnext stay");
	cr_assert_eq(victim->runnext, &gs[RUNQ_SIZE],
	             "runnext is not taken while the ring has G's");
}

Test(core_runq, runnext_stolen_only_when_allowed)
{
	p_t *thief = newp(0), *victim = newp(1);
	g_t *gs = newgs(2);

	runq_put(victim, &gs[0], true);
	cr_assert_null(runq_steal(thief, victim, false),
	               "runnext must not be stolen with steal_runnext=false");
	cr_assert_eq(victim->runnext, &gs[0]);
	cr_assert_eq(runq_len(victim), 1);
	cr_assert_eq(runq_steal(thief, victim, true), &gs[0]);
	cr_assert_null(victim->runnext);
	cr_assert(runq_empty(victim));
	cr_assert(runq_empty(thief), "a lone stolen G is returned, not queued");
	cr_assert_null(runq_get(victim), "the owner cannot get it any more");

	/* Ring first: with a ring G and a runnext, the ring G is stolen. */
	runq_put(victim, &gs[0], false);
	runq_put(victim, &gs[1], true);
	cr_assert_eq(runq_steal(thief, victim, true), &gs[0]);
	cr_assert_eq(victim->runnext, &gs[1]);
}

/* ---- global queue --------------------------------------------------------- */

static void glob_fill(g_t *gs, int n)
{
	lock_acquire(&sched.lock);
	for (int i = 0; i < n; i++)
		globrunq_put(&gs[i]);
	lock_release(&sched.lock);
}

static g_t *glob_get(p_t *p, int max)
{
	lock_acquire(&sched.lock);
	g_t *g = globrunq_get(p, max);
	lock_release(&sched.lock);
	return g;
}

Test(core_runq, globrunq_fifo_and_batch)
{
	p_t *p = newp(0);
	g_t *gs = newgs(8);

	sched.nprocs = 1;
	cr_assert_null(glob_get(p, 0), "empty global queue");
	glob_fill(gs, 3);
	/* A batch of three, linked through schedlink. */
	gs[5].schedlink = &gs[6];
	gs[6].schedlink = &gs[7];
	gs[7].schedlink = (g_t *)0xdeadbeef;    /* must be cleared */
	lock_acquire(&sched.lock);
	globrunq_put_batch(&gs[5], &gs[7], 3);
	lock_release(&sched.lock);
	cr_assert_eq(sched.runqsize, 6);
	cr_assert_null(gs[7].schedlink);
	cr_assert_eq(sched.runqtail, &gs[7]);

	int order[] = { 0, 1, 2, 5, 6, 7 };
	for (int i = 0; i < 6; i++)
		cr_assert_eq(glob_get(p, 1), &gs[order[i]], "global #%d", i);
	cr_assert_eq(sched.runqsize, 0);
	cr_assert_null(sched.runqhead);
	cr_assert_null(sched.runqtail, "tail reset when drained");
	cr_assert(runq_empty(p), "max=1 never fills the ring");
	/* The queue works again after being drained. */
	glob_fill(gs, 1);
	cr_assert_eq(sched.runqhead, &gs[0]);
	cr_assert_eq(sched.runqtail, &gs[0]);
	cr_assert_eq(glob_get(p, 0), &gs[0]);
	cr_assert_null(sched.runqtail);
}

Test(core_runq, globrunq_fair_share)
{
	p_t *p = newp(0);
	g_t *gs = newgs(10);

	sched.nprocs = 2;
	glob_fill(gs, 10);
	/* 10/2 + 1 = 6: one returned, five into the ring, in order. */
	cr_assert_eq(glob_get(p, 0), &gs[0]);
	cr_assert_eq(sched.runqsize, 4);
	cr_assert_eq(runq_len(p), 5);
	for (int i = 1; i <= 5; i++)
		cr_assert_eq(runq_get(p), &gs[i]);
	/* 4/2 + 1 = 3 */
	cr_assert_eq(glob_get(p, 0), &gs[6]);
	cr_assert_eq(sched.runqsize, 1);
	cr_assert_eq(runq_len(p), 2);
	cr_assert_eq(runq_get(p), &gs[7]);
	cr_assert_eq(runq_get(p), &gs[8]);
	/* 1/2 + 1 = 1, clamped to the size. */
	cr_assert_eq(glob_get(p, 0), &gs[9]);
	cr_assert_eq(sched.runqsize, 0);
	cr_assert(runq_empty(p));
	cr_assert_null(sched.runqtail);
}

Test(core_runq, globrunq_max_limits)
{
	p_t *p = newp(0);
	g_t *gs = newgs(300);

	sched.nprocs = 4;
	glob_fill(gs, 20);
	/* 20/4 + 1 = 6, max 3 wins. */
	cr_assert_eq(glob_get(p, 3), &gs[0]);
	cr_assert_eq(runq_len(p), 2);
	cr_assert_eq(sched.runqsize, 17);
	/* max larger than the share: the share wins (17/4 + 1 = 5). */
	while (runq_get(p))
		;
	cr_assert_eq(glob_get(p, 100), &gs[3]);
	cr_assert_eq(runq_len(p), 4);
	cr_assert_eq(sched.runqsize, 12);
	while (runq_get(p))
		;
	while (glob_get(p, 1))
		;
	cr_assert_eq(sched.runqsize, 0);

	/* Never more than half a ring, even with one P. */
	sched.nprocs = 1;
	glob_fill(gs, 300);
	cr_assert_eq(glob_get(p, 0), &gs[0]);
	cr_assert_eq(runq_len(p), RUNQ_SIZE / 2 - 1);
	cr_assert_eq(sched.runqsize, 300 - RUNQ_SIZE / 2);
	for (int i = 1; i < RUNQ_SIZE / 2; i++)
		cr_assert_eq(runq_get(p), &gs[i]);
	cr_assert_eq(sched.runqhead, &gs[RUNQ_SIZE / 2]);
}

/* ---- concurrency: one owner, two thieves ---------------------------------- */

#define CN 1000000

static struct {
	g_t *gs;
	_Atomic uint8_t *count;       /* times each G was consumed */
	_Atomic long consumed;
	_Atomic long dups;
	_Atomic int go;
	p_t *owner, *thief[2];
	long stolen[2];               /* G's obtained by runq_steal, per thief */
	long from_global[3];
} cs;

static void consume(g_t *g)
{
	size_t k = (size_t)(g - cs.gs);

	if (k >= CN || atomic_fetch_add_explicit(&cs.count[k], 1, memory_order_relaxed) != 0)
		atomic_fetch_add_explicit(&cs.dups, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&cs.consumed, 1, memory_order_relaxed);
}

static bool all_consumed(void)
{
	return atomic_load_explicit(&cs.consumed, memory_order_relaxed) >= CN;
}

/* Global queue, only when p's ring is empty (globrunq_get may fill it). */
static g_t *try_global(p_t *p)
{
	g_t *g = NULL;

	if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0 &&
	    runq_empty(p)) {
		lock_acquire(&sched.lock);
		g = globrunq_get(p, 0);
		lock_release(&sched.lock);
	}
	return g;
}

static void *owner_main(void *arg)
{
	p_t *p = cs.owner;
	unsigned r = 12345;
	g_t *g;

	(void)arg;
	while (!atomic_load(&cs.go))
		;
	for (long i = 0; i < CN; i++) {
		r = r * 1103515245u + 12345u;
		runq_put(p, &cs.gs[i], ((r >> 16) & 7) == 0);
		/* Consume about two for every three produced: the ring fills
		 * up now and then and overflows to the global queue. */
		if ((r >> 20) % 3 != 0 && (g = runq_get(p)))
			consume(g);
		if ((i & 1023) == 0 && (g = try_global(p))) {
			cs.from_global[2]++;
			consume(g);
		}
	}
	while (!all_consumed()) {
		if ((g = runq_get(p)) || (g = try_global(p)))
			consume(g);
	}
	return NULL;
}

static void *thief_main(void *arg)
{
	int me = (int)(intptr_t)arg;
	p_t *p = cs.thief[me], *other = cs.thief[!me];
	unsigned r = 777u + (unsigned)me;
	g_t *g;

	while (!atomic_load(&cs.go))
		;
	while (!all_consumed()) {
		/* Run a few of our own, leaving some for the other thief. */
		for (int k = 0; k < 4 && (g = runq_get(p)); k++)
			consume(g);
		if (!runq_empty(p))
			continue;
		/* Steal only with an empty ring, as find_runnable does. */
		r = r * 1103515245u + 12345u;
		g = runq_steal(p, cs.owner, (r >> 16) & 1);
		if (!g)
			g = runq_steal(p, other, (r >> 17) & 1);
		if (g) {
			cs.stolen[me]++;
			consume(g);
			continue;
		}
		if ((g = try_global(p))) {
			cs.from_global[me]++;
			consume(g);
		}
	}
	return NULL;
}

Test(core_runq, concurrent_owner_and_two_thieves, .timeout = 60)
{
	pthread_t th[3];

	sched.nprocs = 3;
	cs.gs = newgs(CN);
	cs.count = calloc(CN, 1);
	cr_assert_not_null(cs.count);
	cs.owner = newp(0);
	cs.thief[0] = newp(1);
	cs.thief[1] = newp(2);
	cr_assert_eq(pthread_create(&th[0], NULL, owner_main, NULL), 0);
	cr_assert_eq(pthread_create(&th[1], NULL, thief_main, (void *)0), 0);
	cr_assert_eq(pthread_create(&th[2], NULL, thief_main, (void *)1), 0);
	atomic_store(&cs.go, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);

	cr_assert_eq(cs.dups, 0, "%ld G's consumed twice (or foreign)", (long)cs.dups);
	cr_assert_eq(cs.consumed, CN, "consumed %ld of %d", (long)cs.consumed, CN);
	for (long i = 0; i < CN; i++)
		cr_assert_eq(cs.count[i], 1, "G %ld consumed %d times", i, cs.count[i]);
	cr_assert(runq_empty(cs.owner) && runq_empty(cs.thief[0]) && runq_empty(cs.thief[1]));
	cr_assert_eq(sched.runqsize, 0);
	cr_assert_null(sched.runqhead);
	/* The test must have exercised what it claims to. */
	cr_assert_gt(cs.stolen[0] + cs.stolen[1], 0, "no successful steal");
	cr_log_info("steals %ld/%ld, global gets %ld/%ld/%ld\n", cs.stolen[0],
	            cs.stolen[1], cs.from_global[0], cs.from_global[1],
	            cs.from_global[2]);
}
