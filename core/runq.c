/* core/runq.c - run queues (Go's runqput/runqget/runqgrab/runqsteal).
 *
 * Each P has a fixed ring of RUNQ_SIZE G's.  Only the owner P writes the
 * tail; the owner and thieves advance the head with a CAS.  A thief copies
 * the G pointers out of the victim's ring first and only then claims them
 * by CAS on the victim's head: if the CAS fails somebody else consumed
 * them and the copy is discarded, so a G is never run twice.  The ring is
 * an array of atomics so those racy reads are well defined.
 *
 * Orderings:
 *   owner's store-release of tail  <->  thief's load-acquire of tail:
 *       the thief sees the G pointer stored before the tail moved.
 *   head CAS (release) by a consumer  <->  owner's load-acquire of head in
 *       runq_put: the owner does not overwrite a slot before the consumer
 *       read it.
 *
 * runnext holds one G outside the ring: the G most recently readied by the
 * running G.  It runs next and inherits the time slice, which makes
 * ping-pong between two G's (join/exit, producer/consumer) run on one P
 * without queueing delay.  Thieves take it only as a last resort (Go waits
 * 3 us first so the owner can run it; we take it in the final steal round).
 *
 * When the ring is full, half of it plus the new G move to the global queue
 * in one batch (runq_put_slow): this bounds the ring and feeds idle P's.
 *
 * Rejected: a mutex-protected deque per P.  Owner operations are the hot
 * path of every switch; they must be a load and a store.
 */
#include "internal.h"

static bool runq_put_slow(p_t *p, g_t *g, uint32_t h, uint32_t t);

void runq_put(p_t *p, g_t *g, bool next)
{
	if (next) {
		g_t *old = atomic_load_explicit(&p->runnext, memory_order_relaxed);
		/* Thieves CAS runnext too, hence the loop. */
		while (!atomic_compare_exchange_weak_explicit(&p->runnext, &old, g,
		        memory_order_release, memory_order_relaxed))
			;
		if (!old)
			return;
		g = old;   /* kick the old runnext to the ring */
	}
	for (;;) {
		uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
		if (t - h < RUNQ_SIZE) {
			atomic_store_explicit(&p->runq[t % RUNQ_SIZE], g, memory_order_relaxed);
			atomic_store_explicit(&p->runqtail, t + 1, memory_order_release);
			return;
		}
		if (runq_put_slow(p, g, h, t))
			return;
		/* Thieves took some in the meantime: the ring has room now. */
	}
}

/* Move half the ring and g to the global queue.  Owner P. */
static bool runq_put_slow(p_t *p, g_t *g, uint32_t h, uint32_t t)
{
	enum { N = RUNQ_SIZE / 2 };
	g_t *batch[N + 1];
	uint32_t i;

	if (t - h != RUNQ_SIZE)
		rt_fatal("runq_put_slow: queue is not full");
	for (i = 0; i < N; i++)
		batch[i] = atomic_load_explicit(&p->runq[(h + i) % RUNQ_SIZE],
		                                memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&p->runqhead, &h, h + N,
	        memory_order_release, memory_order_relaxed))
		return false;
	batch[N] = g;
	for (i = 0; i < N; i++)
		batch[i]->schedlink = batch[i + 1];
	lock_acquire(&sched.lock);
	globrunq_put_batch(batch[0], batch[N], N + 1);
	lock_release(&sched.lock);
	return true;
}

g_t *runq_get(p_t *p)
{
	g_t *next = atomic_load_explicit(&p->runnext, memory_order_relaxed);

	/* Only the owner sets runnext to non-NULL, so if the CAS fails a
	 * thief took it and the ring is the next place to look. */
	if (next && atomic_compare_exchange_strong_explicit(&p->runnext, &next,
	        NULL, memory_order_acquire, memory_order_relaxed))
		return next;
	return runq_get_ring(p);
}

/* The ring only, skipping runnext (fairness, see pick_local). */
g_t *runq_get_ring(p_t *p)
{
	for (;;) {
		uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
		g_t *g;

		if (t == h)
			return NULL;
		g = atomic_load_explicit(&p->runq[h % RUNQ_SIZE], memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&p->runqhead, &h, h + 1,
		        memory_order_release, memory_order_relaxed))
			return g;
	}
}

bool runq_empty(p_t *p)
{
	/* Go's runqempty: read head, tail, runnext and tail again so that a
	 * G moving from runnext to the ring is not missed in between. */
	for (;;) {
		uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_acquire);
		g_t *n = atomic_load_explicit(&p->runnext, memory_order_acquire);
		if (t == atomic_load_explicit(&p->runqtail, memory_order_acquire))
			return h == t && n == NULL;
	}
}

uint32_t runq_len(p_t *p)
{
	uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
	return (t - h) + (atomic_load_explicit(&p->runnext, memory_order_relaxed) != NULL);
}

/* Copy up to half of victim's G's into batch (Go's runqgrab).  Returns the
 * number claimed. */
static uint32_t runq_grab(p_t *victim, g_t **batch, bool steal_runnext)
{
	for (;;) {
		uint32_t h = atomic_load_explicit(&victim->runqhead, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&victim->runqtail, memory_order_acquire);
		uint32_t n = t - h, i;

		n -= n / 2;
		if (n == 0) {
			g_t *next;

			if (!steal_runnext)
				return 0;
			next = atomic_load_explicit(&victim->runnext, memory_order_acquire);
			if (!next)
				return 0;
			if (!atomic_compare_exchange_strong_explicit(&victim->runnext,
			        &next, NULL, memory_order_acq_rel, memory_order_relaxed))
				continue;
			batch[0] = next;
			return 1;
		}
		if (n > RUNQ_SIZE / 2)   /* read an inconsistent h and t */
			continue;
		for (i = 0; i < n; i++)
			batch[i] = atomic_load_explicit(&victim->runq[(h + i) % RUNQ_SIZE],
			                                memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&victim->runqhead, &h, h + n,
		        memory_order_acq_rel, memory_order_relaxed))
			return n;
	}
}

g_t *runq_steal(p_t *p, p_t *victim, bool steal_runnext)
{
	g_t *batch[RUNQ_SIZE / 2];
	uint32_t n = runq_grab(victim, batch, steal_runnext), i, t, h;

	if (n == 0)
		return NULL;
	n--;   /* batch[n] is returned to run now */
	if (n == 0)
		return batch[0];
	h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
	t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
	if (t - h + n > RUNQ_SIZE)
		rt_fatal("runq_steal: local queue overflow");
	for (i = 0; i < n; i++)
		atomic_store_explicit(&p->runq[(t + i) % RUNQ_SIZE], batch[i],
		                      memory_order_relaxed);
	atomic_store_explicit(&p->runqtail, t + n, memory_order_release);
	return batch[n];
}

void globrunq_put(g_t *g)
{
	g->schedlink = NULL;
	if (sched.runqtail)
		sched.runqtail->schedlink = g;
	else
		sched.runqhead = g;
	sched.runqtail = g;
	atomic_fetch_add_explicit(&sched.runqsize, 1, memory_order_relaxed);
}

/* Urgent G's (globrunq_put_head) form a FIFO prefix of the global queue,
 * ending at sched.urgtail: the first event readied is the first served. */
static inline void urgent_taken(g_t *g)
{
	if (g->urgent) {
		g->urgent = false;
		if (sched.urgtail == g)
			sched.urgtail = NULL;
		atomic_fetch_sub_explicit(&sched.nurgent, 1, memory_order_relaxed);
	}
}

void globrunq_put_head(g_t *g)
{
	g->urgent = true;
	atomic_fetch_add_explicit(&sched.nurgent, 1, memory_order_relaxed);
	if (sched.urgtail) {
		g->schedlink = sched.urgtail->schedlink;
		sched.urgtail->schedlink = g;
	} else {
		g->schedlink = sched.runqhead;
		sched.runqhead = g;
	}
	if (sched.runqtail == sched.urgtail || !sched.runqtail)
		sched.runqtail = g;
	sched.urgtail = g;
	atomic_fetch_add_explicit(&sched.runqsize, 1, memory_order_relaxed);
}

/* The first G that is not urgent (the fairness look of pick_local: a
 * flood of I/O events must not starve preempted or yielded G's). */
g_t *globrunq_get_plain(void)
{
	g_t **link = sched.urgtail ? &sched.urgtail->schedlink : &sched.runqhead;
	g_t *g = *link;

	if (!g)
		return NULL;
	*link = g->schedlink;
	if (sched.runqtail == g)
		sched.runqtail = sched.urgtail;
	g->schedlink = NULL;
	atomic_fetch_sub_explicit(&sched.runqsize, 1, memory_order_relaxed);
	return g;
}

void globrunq_put_batch(g_t *head, g_t *tail, int n)
{
	tail->schedlink = NULL;
	if (sched.runqtail)
		sched.runqtail->schedlink = head;
	else
		sched.runqhead = head;
	sched.runqtail = tail;
	atomic_fetch_add_explicit(&sched.runqsize, n, memory_order_relaxed);
}

/* Take a fair share of the global queue (Go's globrunqget): at most
 * size/nprocs+1, at most `max` if max > 0, at most half a local ring.
 * One is returned, the rest go to p's ring. */
g_t *globrunq_get(p_t *p, int max)
{
	int size = atomic_load_explicit(&sched.runqsize, memory_order_relaxed);
	int n, i;
	g_t *g;

	if (size == 0)
		return NULL;
	n = size / sched.nprocs + 1;
	if (n > size)
		n = size;
	if (max > 0 && n > max)
		n = max;
	if (n > RUNQ_SIZE / 2)
		n = RUNQ_SIZE / 2;
	atomic_fetch_sub_explicit(&sched.runqsize, n, memory_order_relaxed);
	g = sched.runqhead;
	sched.runqhead = g->schedlink;
	urgent_taken(g);
	for (i = 1; i < n; i++) {
		g_t *g1 = sched.runqhead;
		sched.runqhead = g1->schedlink;
		urgent_taken(g1);
		runq_put(p, g1, false);
	}
	if (!sched.runqhead)
		sched.runqtail = NULL;
	return g;
}
