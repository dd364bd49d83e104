/* core/g.c - G allocation, reuse, validation and the join protocol.
 *
 * Memory.  G's are carved from slabs mapped with MAP_NORESERVE and are
 * never returned to the system: a dead G goes to a free list (per P, then
 * global, Go's gfput/gfget) with its stack still attached, so creating a
 * thread after one exited costs no mmap, and a stale pthread_t always
 * points at G-shaped memory.  Slabs double in size (64 .. 65536 G's), so
 * 100,000 G's take a dozen slabs and g_valid is a short scan; when a
 * doubled slab cannot be mapped (RLIMIT_AS) the smallest is tried.
 *
 * Out of memory.  Creating a G is the one place that may say EAGAIN, so
 * it also reserves what every live G may need later and must not fail
 * for: room for its timer on the timer heaps and a slot in the poller's
 * table (timer_reserve, netpoll_reserve).  Without them, a G's timed
 * wait would have to block its M in the kernel, and its I/O wait take
 * the plain call.
 *
 * Identity.  `gen` is odd while a G is allocated and even while free;
 * g_valid accepts a pointer only if it is the start of a G in some slab
 * and that G is allocated.  pthread_join on a handle whose thread was
 * already joined therefore gets ESRCH instead of a crash (until the G is
 * reused, which native glibc has the same problem with).
 *
 * Join protocol.  refs counts the owners of a G's memory: the thread
 * itself, plus one for the eventual joiner while it is joinable.  Exit
 * publishes retval and sets `exited` (a gfutex address) while still on its
 * own stack, then drops its ref in switch_finish once it is off that stack;
 * a joiner waits for `exited`, reads retval and drops the other ref;
 * detach drops the joiner's ref.  Whoever drops the last ref frees the G:
 * "the loser frees" (musl).  This lets the exiting G switch straight to
 * its joiner, which is usually in runnext, without a pass through g0.
 *
 * joinstate serialises join against join and detach: JOINABLE -> DETACHED
 * (pthread_detach), JOINABLE -> JOINING (a joiner is waiting; back to
 * JOINABLE on timeout).  glibc returns EINVAL for a second joiner or for
 * detaching a thread somebody joins.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include "internal.h"

enum { GJ_JOINING = 3 };

#define MAX_SLABS 48
#define GFREE_LOCAL_MAX 64

static struct {
	lock_t lock;
	uintptr_t lo[MAX_SLABS];
	uintptr_t hi[MAX_SLABS];
	_Atomic int nslabs;
	uintptr_t next, end;      /* bump allocation in the newest slab */
	size_t gsize;             /* sizeof(g_t) + ext, rounded to 64 */
	size_t slab_count;        /* G's in the next slab */
	_Atomic uint64_t allocated;
} reg = { .lock = LOCK_INIT(RANK_REG) };

static size_t g_size(void)
{
	if (!reg.gsize)
		reg.gsize = (sizeof(g_t) + rt_cfg.g_ext_size + 63) & ~(size_t)63;
	return reg.gsize;
}

/* A never-used G from the slabs.  reg.lock held. */
static g_t *slab_take(void)
{
	size_t gs = g_size();
	g_t *g;

	if (reg.next + gs > reg.end) {
		int n = atomic_load_explicit(&reg.nslabs, memory_order_relaxed);
		size_t count = reg.slab_count ? reg.slab_count : 64;
		void *mem;

		if (n == MAX_SLABS)
			return NULL;
		mem = mmap(NULL, count * gs, PROT_READ | PROT_WRITE,
		           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (mem == MAP_FAILED && count > 64) {
			/* Out of address space (RLIMIT_AS) for the doubled
			 * slab: the thread asked for one G, try the smallest
			 * slab (the next doubles from where this left off). */
			count = 64;
			mem = mmap(NULL, count * gs, PROT_READ | PROT_WRITE,
			           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		}
		if (mem == MAP_FAILED)
			return NULL;
		reg.lo[n] = (uintptr_t)mem;
		reg.hi[n] = (uintptr_t)mem + count * gs;
		/* Publish the bounds before the count: g_valid reads without
		 * the lock. */
		atomic_store_explicit(&reg.nslabs, n + 1, memory_order_release);
		reg.next = reg.lo[n];
		reg.end = reg.hi[n];
		if (count < 65536)
			reg.slab_count = count * 2;
		else
			reg.slab_count = count;
	}
	g = (g_t *)reg.next;
	reg.next += gs;
	return g;
}

bool g_in_slab(const void *ptr)
{
	uintptr_t a = (uintptr_t)ptr;
	int n = atomic_load_explicit(&reg.nslabs, memory_order_acquire), i;

	for (i = 0; i < n; i++)
		if (a >= reg.lo[i] && a < reg.hi[i])
			return true;
	return false;
}

bool g_valid(const void *ptr)
{
	uintptr_t a = (uintptr_t)ptr;
	int n = atomic_load_explicit(&reg.nslabs, memory_order_acquire), i;

	for (i = 0; i < n; i++) {
		if (a >= reg.lo[i] && a < reg.hi[i]) {
			const g_t *g = ptr;
			if ((a - reg.lo[i]) % reg.gsize != 0)
				return false;
			return atomic_load_explicit(&((g_t *)g)->gen, memory_order_acquire) & 1;
		}
	}
	return false;
}

/* Move the head of p's local free list to the global one.  gflock held. */
static void gfree_move_one(p_t *p)
{
	g_t *x = p->gfree;

	p->gfree = x->schedlink;
	p->ngfree--;
	x->schedlink = sched.gfree;
	sched.gfree = x;
	sched.ngfree++;
}

/* Free-list put.  p is the caller's own P, or NULL (global list). */
void gfree_put(p_t *p, g_t *g)
{
	if (p) {
		g->schedlink = p->gfree;
		p->gfree = g;
		if (++p->ngfree < GFREE_LOCAL_MAX)
			return;
		/* Move half to the global list so other P's can reuse them. */
		lock_acquire(&sched.gflock);
		while (p->ngfree > GFREE_LOCAL_MAX / 2)
			gfree_move_one(p);
		lock_release(&sched.gflock);
		return;
	}
	lock_acquire(&sched.gflock);
	g->schedlink = sched.gfree;
	sched.gfree = g;
	sched.ngfree++;
	lock_release(&sched.gflock);
}

/* Dead G's cached by idle P's keep their stacks mapped, and only their
 * owner reuses them, which an idle P has not got.  When memory for a new
 * stack runs out (RLIMIT_AS) those stacks may be all there is: move them
 * to the global list, where the caller can take one.  sched.lock keeps
 * the idle P's unowned meanwhile (pidle_get needs it).  True if any
 * moved. */
static bool gfree_reclaim_idle(void)
{
	bool moved = false;
	p_t *p;

	lock_acquire(&sched.lock);
	lock_acquire(&sched.gflock);
	for (p = sched.pidle; p; p = p->link) {
		while (p->gfree) {
			gfree_move_one(p);
			moved = true;
		}
	}
	lock_release(&sched.gflock);
	lock_release(&sched.lock);
	return moved;
}

g_t *gfree_get(p_t *p, size_t size, size_t guard)
{
	g_t *g;

	(void)size; (void)guard;
	if (p && !p->gfree && sched.ngfree) {
		lock_acquire(&sched.gflock);
		while (sched.gfree && p->ngfree < GFREE_LOCAL_MAX / 2) {
			g_t *x = sched.gfree;
			sched.gfree = x->schedlink;
			sched.ngfree--;
			x->schedlink = p->gfree;
			p->gfree = x;
			p->ngfree++;
		}
		lock_release(&sched.gflock);
	}
	if (p) {
		g = p->gfree;
		if (g) {
			p->gfree = g->schedlink;
			p->ngfree--;
		}
		return g;
	}
	lock_acquire(&sched.gflock);
	g = sched.gfree;
	if (g) {
		sched.gfree = g->schedlink;
		sched.ngfree--;
	}
	lock_release(&sched.gflock);
	return g;
}

static p_t *cur_p(void)
{
	m_t *m = getm();

	return m ? m->p : NULL;
}

/* Reset a G for a new life, keeping its stack and its generation. */
static void g_reset(g_t *g)
{
	gstack_t st = g->stack;
	void *tcb = g->tcb;
	int nmods = g->tls_nmods;
	uint32_t gen = atomic_load_explicit(&g->gen, memory_order_relaxed);

	memset(g, 0, g_size());
	g->stack = st;
	g->tcb = tcb;
	g->tls_nmods = nmods;
	atomic_store_explicit(&g->gen, gen, memory_order_relaxed);
}

/* A G with a stack of the requested shape (or the user's stack), fresh
 * identity, status G_IDLE, two refs (thread + joiner).  NULL and *err set
 * (EAGAIN) when memory cannot be had. */
static g_t *g_alloc_locked(size_t stacksize, size_t guard, const gstack_t *user,
                           int *err);

g_t *g_alloc(size_t stacksize, size_t guard, const gstack_t *user, int *err)
{
	g_t *self = rt_enter();
	g_t *g = g_alloc_locked(stacksize, guard, user, err);

	/* What every live G may need later without a way to fail: a timer
	 * for its timed waits and a poller slot for its I/O waits (core/
	 * timer.c, core/netpoll_wait.c).  Out of memory for them: EAGAIN now,
	 * as for a stack, not a G that later holds its M in every wait. */
	if (g) {
		int64_t live = (int64_t)atomic_load_explicit(&reg.allocated, memory_order_relaxed);

		if (!timer_reserve(live) || !netpoll_reserve((uint64_t)live)) {
			atomic_store_explicit(&g->status, G_DEAD, memory_order_relaxed);
			g_free(g);
			*err = EAGAIN;
			g = NULL;
		}
	}
	rt_exit(self);
	return g;
}

static g_t *g_alloc_locked(size_t stacksize, size_t guard, const gstack_t *user,
                           int *err)
{
	g_t *g = gfree_get(cur_p(), stacksize, guard);
	bool fits;

	if (!g) {
		lock_acquire(&reg.lock);
		g = slab_take();
		lock_release(&reg.lock);
		if (!g) {
			*err = EAGAIN;
			return NULL;
		}
		memset(g, 0, g_size());
	} else {
		g_reset(g);
	}
	/* Does the cached stack fit this request? */
	fits = !user && (g->stack.flags & STACK_OWNED) &&
	       g->stack.hi - g->stack.lo == stacksize &&
	       (g->stack.guard >= guard || !(g->stack.flags & STACK_GUARDED));
	if (!fits && (g->stack.flags & STACK_OWNED)) {
		stack_free(&g->stack);
		memset(&g->stack, 0, sizeof g->stack);
	}
	if (fits && !(g->stack.flags & STACK_GUARDED)) {
		/* A reused unguarded stack: the canary stands in for a guard
		 * only if one was asked for (see arch/stack.c). */
		if (guard)
			g->stack.flags |= STACK_CANARY;
		else
			g->stack.flags &= ~STACK_CANARY;
	}
	if (user) {
		g->stack = *user;
	} else if (!fits) {
		int e = stack_alloc(&g->stack, stacksize, guard);
		if (e) {
			memset(&g->stack, 0, sizeof g->stack);
			atomic_store_explicit(&g->status, G_DEAD, memory_order_relaxed);
			gfree_put(NULL, g);
			if (gfree_reclaim_idle())
				return g_alloc_locked(stacksize, guard, user, err);
			*err = e;
			return NULL;
		}
	}
	g->goid = atomic_fetch_add_explicit(&sched.goidgen, 1, memory_order_relaxed) + 1;
	atomic_store_explicit(&g->refs, 2, memory_order_relaxed);
	atomic_store_explicit(&g->joinstate, GJ_JOINABLE, memory_order_relaxed);
	atomic_store_explicit(&g->status, G_IDLE, memory_order_relaxed);
	/* odd = allocated; release pairs with g_valid's acquire */
	atomic_fetch_add_explicit(&g->gen, 1, memory_order_release);
	atomic_fetch_add_explicit(&reg.allocated, 1, memory_order_relaxed);
	return g;
}

g_t *g_alloc_main(void)
{
	int err = 0;
	gstack_t none;
	g_t *g;

	memset(&none, 0, sizeof none);
	g = g_alloc(0, 0, &none, &err);
	if (!g)
		return NULL;   /* start-up out of memory: sched_init gives up */
	g->is_main = true;
	return g;
}

void g_free(g_t *g)
{
	/* even = free */
	atomic_fetch_add_explicit(&g->gen, 1, memory_order_release);
	atomic_fetch_sub_explicit(&reg.allocated, 1, memory_order_relaxed);
	if (!(g->stack.flags & STACK_OWNED))
		memset(&g->stack, 0, sizeof g->stack);
	gfree_put(cur_p(), g);
}

void g_unref(g_t *g)
{
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1) {
		g_t *self = rt_enter();
		g_free(g);
		rt_exit(self);
	}
}

uint64_t g_count_all(void)
{
	return atomic_load_explicit(&reg.allocated, memory_order_relaxed);
}

long g_live_count(void)
{
	return atomic_load_explicit(&sched.ngs, memory_order_relaxed);
}

void g_exited_publish(g_t *g)
{
	/* Release: the joiner's acquire load of exited sees retval. */
	atomic_store_explicit(&g->exited, 1, memory_order_release);
	gfutex_wake(&g->exited, 1);
}

int g_detach(g_t *g)
{
	uint32_t st = GJ_JOINABLE;

	if (!g_valid(g))
		return ESRCH;
	if (!atomic_compare_exchange_strong_explicit(&g->joinstate, &st, GJ_DETACHED,
	        memory_order_acq_rel, memory_order_acquire))
		return EINVAL;
	g_unref(g);   /* the joiner's ref: nobody will join now */
	return 0;
}

/* Join g.  deadline_ns: CLOCK_MONOTONIC, < 0 = none.  try_only: EBUSY
 * instead of waiting (pthread_tryjoin_np). */
int g_join(g_t *g, void **retval, int64_t deadline_ns, unsigned flags,
           _Atomic uint32_t *intr)
{
	g_t *self = getcurg();
	bool try_only = flags & GJOIN_TRY;
	uint32_t st = GJ_JOINABLE;

	if (!g_valid(g))
		return ESRCH;
	if (g == self)
		return EDEADLK;
	if (!atomic_compare_exchange_strong_explicit(&g->joinstate, &st, GJ_JOINING,
	        memory_order_acq_rel, memory_order_acquire))
		return EINVAL;
	/* Two threads joining each other: glibc reports EDEADLK to the
	 * second one instead of hanging both. */
	atomic_store_explicit(&g->joiner, self, memory_order_seq_cst);
	if (self && !(flags & GJOIN_ENDING) &&
	    atomic_load_explicit(&self->joiner, memory_order_seq_cst) == g &&
	    !atomic_load_explicit(&g->exited, memory_order_acquire)) {
		atomic_store_explicit(&g->joiner, NULL, memory_order_relaxed);
		atomic_store_explicit(&g->joinstate, GJ_JOINABLE, memory_order_release);
		return EDEADLK;
	}
	while (!atomic_load_explicit(&g->exited, memory_order_acquire)) {
		int r;

		if (try_only)
			goto busy;
		g_wait_note(getcurg(), WK_JOIN, (uintptr_t)g);
		r = intr ? gfutex_wait_intr(&g->exited, 0, deadline_ns, intr) :
		           gfutex_wait(&g->exited, 0, deadline_ns);
		if (atomic_load_explicit(&g->exited, memory_order_acquire))
			break;
		if (r == -ETIMEDOUT)
			goto timedout;
		if (r == -EINTR) {
			atomic_store_explicit(&g->joiner, NULL, memory_order_relaxed);
			atomic_store_explicit(&g->joinstate, GJ_JOINABLE, memory_order_release);
			return ECANCELED;
		}
	}
	if (retval)
		*retval = g->retval;
	g_unref(g);
	return 0;
busy:
timedout:
	atomic_store_explicit(&g->joiner, NULL, memory_order_relaxed);
	atomic_store_explicit(&g->joinstate, GJ_JOINABLE, memory_order_release);
	return try_only ? EBUSY : ETIMEDOUT;
}

bool g_stale_joined(const void *maybe_g)
{
	const g_t *g = maybe_g;

	/* joinstate keeps its last value until the G is reused (g_alloc):
	 * GJ_JOINING after a join, GJ_DETACHED after a detached exit. */
	return g_in_slab(g) && !(atomic_load_explicit(&g->gen, memory_order_acquire) & 1) &&
	       atomic_load_explicit(&g->joinstate, memory_order_relaxed) == GJ_JOINING;
}

void g_foreach(void (*fn)(g_t *, void *), void *arg)
{
	int n = atomic_load_explicit(&reg.nslabs, memory_order_acquire), i;
	size_t gs = g_size();

	lock_acquire(&reg.lock);
	for (i = 0; i < n; i++) {
		uintptr_t a, end = i == n - 1 ? reg.next : reg.hi[i];
		for (a = reg.lo[i]; a + gs <= end; a += gs) {
			g_t *g = (g_t *)a;
			if (atomic_load_explicit(&g->gen, memory_order_acquire) & 1)
				fn(g, arg);
		}
	}
	lock_release(&reg.lock);
}

void g_foreach_nolock(void (*fn)(g_t *, void *), void *arg)
{
	int n = atomic_load_explicit(&reg.nslabs, memory_order_acquire), i;
	size_t gs = reg.gsize;

	if (!gs)
		return;
	for (i = 0; i < n; i++) {
		/* reg.next only grows inside the newest slab; a racy read may
		 * miss a G allocated meanwhile, never point past mapped memory */
		uintptr_t a, end = i == n - 1 ? __atomic_load_n(&reg.next, __ATOMIC_RELAXED)
		                              : reg.hi[i];
		if (end < reg.lo[i] || end > reg.hi[i])
			end = reg.hi[i];
		for (a = reg.lo[i]; a + gs <= end; a += gs) {
			g_t *g = (g_t *)a;
			if (atomic_load_explicit(&g->gen, memory_order_acquire) & 1)
				fn(g, arg);
		}
	}
}

/* An execstack object was loaded: make the stacks of every G executable,
 * the free ones (their stacks are reused as they are) included. */
void g_stacks_executable(void)
{
	int n, i;
	size_t gs = g_size();

	stack_make_executable();
	lock_acquire(&reg.lock);
	n = atomic_load_explicit(&reg.nslabs, memory_order_acquire);
	for (i = 0; i < n; i++) {
		uintptr_t a, end = i == n - 1 ? reg.next : reg.hi[i];
		for (a = reg.lo[i]; a + gs <= end; a += gs)
			stack_set_exec(&((g_t *)a)->stack);
	}
	lock_release(&reg.lock);
}

/* Before the G first runs: nobody will join it. */
void g_mark_detached(g_t *g)
{
	atomic_store_explicit(&g->joinstate, GJ_DETACHED, memory_order_relaxed);
	atomic_store_explicit(&g->refs, 1, memory_order_relaxed);
}

void g_fork_child(void)
{
	lock_init(&reg.lock, RANK_REG);
	lock_init(&sched.gflock, RANK_GFREE);
}
