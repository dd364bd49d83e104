/* shim/mutex_pshared.c - process-shared mutexes (kind bit 128), which
 * mutex.c's entry points send here, and what a holder's lists need when
 * a mutex is re-initialised or the process forks (forget_held,
 * mutex_fork_child).
 *
 * Process-shared mutexes are
 * glibc's own code, which names the owner of every kind that checks
 * owners (recursive, errorcheck, robust, priority-inherit) by kernel
 * thread id: the M's (PSHARED puts it in the TCB for the call).  Two G's
 * on one M would both pass as the owner, and a G that moved to another M
 * would fail its own unlock.  So each G keeps the pshared owner-checked
 * mutexes it holds (pheld); before glibc looks at a mutex the caller
 * holds, the owner fields (__owner, and the tid in the lock word of the
 * robust and PI kinds) are rewritten to name the caller's current M
 * (pshared_fixowner), and a G that finds the owner naming its own M
 * while it does not hold the mutex knows another G of this M does: it
 * waits for it at G level instead of entering glibc.
 *
 * Robust ones must also be found when their holder dies.  The kernel
 * walks a list per kernel thread when that thread dies; glibc links a
 * robust mutex into the list of THREAD_SELF, which is the G's own TCB
 * (per-G TLS) or the M's (shared TLS) - the first is unknown to the
 * kernel, the second belongs to an M the holder may leave.  So right
 * after glibc's lock we move the node to one process-wide list in the
 * same format (rt_robust, core/m.c), which every M registers with
 * the kernel: when the process dies, each M's walk marks the mutexes
 * whose lock word names it (the word names an M of this process: the one
 * that locked or last fixed the owner).  When a G ends holding some, we
 * do what the kernel would (pshared_robust_death): FUTEX_OWNER_DIED,
 * wake a waiter.  glibc's unlock unlinks the node from whichever list it
 * is on through the node's own pointers, so it is called with the list
 * lock held.  The kernel reads the list only when a thread dies. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include "mutex.h"

enum {
	FX_WAITERS = 0x80000000u, FX_OWNER_DIED = 0x40000000u,
	FX_TID_MASK = 0x3fffffffu,
};

static bool pshared_tracked(int kind)
{
	int type = kind & MX_TYPE_MASK;

	return (kind & MX_PSHARED) &&
	       ((kind & (MX_ROBUST | MX_PRIO_INHERIT)) ||
	        type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK);
}

/* The kinds whose lock word carries the owner's tid. */
static bool tid_in_word(int kind)
{
	return (kind & (MX_ROBUST | MX_PRIO_INHERIT)) != 0;
}

static int pheld_find(struct thread *t, pthread_mutex_t *m)
{
	int i;

	for (i = 0; i < 8; i++)
		if (t->pheld[i] == m)
			return i;
	return -1;
}

static void pheld_add(struct thread *t, pthread_mutex_t *m)
{
	int i = pheld_find(t, NULL);

	if (i >= 0)
		t->pheld[i] = m;   /* more than 8 at once: untracked, as glibc */
}

/* The tid glibc sees as the owner. */
static int pshared_owner(pthread_mutex_t *m, int kind)
{
	if (tid_in_word(kind))
		return (int)(atomic_load_explicit(lockword(m), memory_order_relaxed) & FX_TID_MASK);
	return __atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED);
}

/* ---- the process-wide robust list (rt_robust) ---- */

static atomic_flag plist_lock = ATOMIC_FLAG_INIT;

static void plist_acquire(void)
{
	while (atomic_flag_test_and_set_explicit(&plist_lock, memory_order_acquire))
		arch_relax();
}

static void plist_release(void)
{
	atomic_flag_clear_explicit(&plist_lock, memory_order_release);
}

/* A list node is &__list.__next (low bit: PI); the word before a node is
 * its prev pointer, as in glibc's layout and rt_robust's. */
#define NODE(m)        ((void **)&MX(m)->__list.__next)
#define NODE_PREV(n)   (((void **)(n))[-1])
#define UNTAG(p)       ((void **)((uintptr_t)(p) & ~(uintptr_t)1))

/* Unlink m from whatever list its own pointers say it is on. */
static void node_unlink(pthread_mutex_t *m)
{
	void *next = MX(m)->__list.__next, *prev = MX(m)->__list.__prev;

	if (!next || !prev)
		return;
	NODE_PREV(UNTAG(next)) = prev;
	*UNTAG(prev) = next;
	MX(m)->__list.__prev = MX(m)->__list.__next = NULL;
}

/* plist_lock held. */
static void plist_push(pthread_mutex_t *m, int kind)
{
	void *first = rt_robust.list;

	MX(m)->__list.__next = first;
	MX(m)->__list.__prev = (void *)&rt_robust.list;
	NODE_PREV(UNTAG(first)) = NODE(m);
	__atomic_store_n(&rt_robust.list,
	                 (void *)((uintptr_t)NODE(m) | ((kind & MX_PRIO_INHERIT) ? 1 : 0)),
	                 __ATOMIC_RELEASE);
}

/* After glibc took m for g (newly, not a recursion): glibc linked it
 * into THREAD_SELF's list; move it to the process list. */
static void plist_adopt(pthread_mutex_t *m, int kind)
{
	node_unlink(m);   /* THREAD_SELF's list: only this thread touches it */
	plist_acquire();
	plist_push(m, kind);
	plist_release();
}

/* Rewrite the owner fields of m, held by g, to name g's current M. */
static void pshared_fixowner(g_t *g, pthread_mutex_t *m, int kind)
{
	int tid = g->m->tid, o = __atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED);

	/* Not the INCONSISTENT / NOTRECOVERABLE marks. */
	if (o != 0 && o < MX_OWNER_NOTRECOVERABLE && o != tid)
		__atomic_store_n(&MX(m)->__owner, tid, __ATOMIC_RELAXED);
	if (tid_in_word(kind)) {
		uint32_t v = atomic_load_explicit(lockword(m), memory_order_relaxed);

		/* Waiters may set FUTEX_WAITERS meanwhile: CAS.  A PI mutex
		 * with waiters in the kernel keeps its old owner there
		 * (docs/compat.md). */
		while ((v & FX_TID_MASK) != (uint32_t)tid &&
		       !atomic_compare_exchange_weak_explicit(lockword(m), &v,
		               (v & ~FX_TID_MASK) | (uint32_t)tid,
		               memory_order_relaxed, memory_order_relaxed))
			;
	}
}

/* If g holds m, make glibc's owner fields name g's current M. */
void mutex_pshared_fixowner(g_t *g, pthread_mutex_t *m)
{
	int kind = kind_of(m);

	if (g && pshared_tracked(kind) && pheld_find(thread_of(g), m) >= 0)
		pshared_fixowner(g, m, kind);
}

/* Around glibc's condvar wait, which unlocks and re-locks m inside
 * glibc: its unlock unlinks the node without our list lock, so the node
 * leaves the process list first (onto a private dummy); the re-lock
 * links it into THREAD_SELF's list, from where _after adopts it. */
void mutex_pshared_cond_before(g_t *g, pthread_mutex_t *m, void *dummy[2])
{
	int kind = kind_of(m);

	if (!g || !pshared_tracked(kind) || pheld_find(thread_of(g), m) < 0)
		return;
	pshared_fixowner(g, m, kind);
	if (!(kind & MX_ROBUST) || !MX(m)->__list.__next)
		return;
	plist_acquire();
	node_unlink(m);
	plist_release();
	dummy[0] = dummy[1] = NULL;
	MX(m)->__list.__next = (void *)&dummy[1];
	MX(m)->__list.__prev = (void *)&dummy[1];
	dummy[0] = dummy[1] = NODE(m);
}

void mutex_pshared_cond_after(g_t *g, pthread_mutex_t *m, int r)
{
	int kind = kind_of(m);

	if (!g || !pshared_tracked(kind))
		return;
	if ((r == 0 || r == EOWNERDEAD || r == ETIMEDOUT) &&
	    pheld_find(thread_of(g), m) < 0)
		pheld_add(thread_of(g), m);
	if ((kind & MX_ROBUST) && MX(m)->__list.__next)
		plist_adopt(m, kind);
}

/* g ends holding m (robust, pshared): what the kernel does for a dying
 * thread's list - mark the owner dead, wake one waiter. */
static void pshared_robust_death(pthread_mutex_t *m, int kind)
{
	uint32_t v;

	plist_acquire();
	node_unlink(m);
	plist_release();
	v = atomic_load_explicit(lockword(m), memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(lockword(m), &v,
	        (v & FX_WAITERS) | FX_OWNER_DIED, memory_order_release,
	        memory_order_relaxed))
		;
	/* PI waiters sleep in the kernel's PI state, which only the owning
	 * kernel thread can hand on (docs/compat.md). */
	if ((v & FX_WAITERS) && !(kind & MX_PRIO_INHERIT))
		arch_syscall6(SYS_futex, (long)lockword(m), FUTEX_WAKE, 1, 0, 0, 0);
}

void mutex_pshared_exit(struct thread *t)
{
	int i;

	for (i = 0; i < 8; i++) {
		pthread_mutex_t *m = t->pheld[i];

		if (!m)
			continue;
		t->pheld[i] = NULL;
		if (kind_of(m) & MX_ROBUST)
			pshared_robust_death(m, kind_of(m));
	}
}

/* Another G of this M holds m: wait for it to let go, at G level. */
static int pshared_wait_sibling(g_t *g, pthread_mutex_t *m, int kind,
                                int64_t deadline, bool try_only)
{
	while (pshared_owner(m, kind) == g->m->tid &&
	       pheld_find(thread_of(g), m) < 0) {
		if (try_only)
			return EBUSY;
		if (deadline >= 0 && os_nanotime() >= deadline)
			return ETIMEDOUT;
		g_yield();
		if (pshared_owner(m, kind) == g->m->tid)
			cancel_sleep_until(g, os_nanotime() + 50000);
	}
	return 0;
}

int pshared_lock(pthread_mutex_t *m, bool try_only, clockid_t clk,
                 const struct timespec *abst)
{
	g_t *g = shim_self();
	int kind = kind_of(m), r;
	int64_t deadline = -1;
	bool held = false;

	if (g && pshared_tracked(kind)) {
		struct thread *t = thread_of(g);

		if (pheld_find(t, m) >= 0) {
			held = true;
			pshared_fixowner(g, m, kind);
			/* glibc answers from here: EDEADLK, EBUSY, count++ */
		} else {
			if (abst && shim_deadline(clk, abst, &deadline) != 0)
				deadline = -1;   /* glibc reports EINVAL below */
			r = pshared_wait_sibling(g, m, kind, deadline, try_only);
			if (r)
				return r;
		}
	}
	if (try_only) {
		r = PSHARED(REAL(pthread_mutex_trylock)(m));
	} else {
		g_block_enter();
		r = abst ? PSHARED(REAL(pthread_mutex_clocklock)(m, clk, abst))
		         : PSHARED(REAL(pthread_mutex_lock)(m));
		g_block_exit();
	}
	if (g && !held && pshared_tracked(kind) && (r == 0 || r == EOWNERDEAD)) {
		pheld_add(thread_of(g), m);
		if (kind & MX_ROBUST)
			plist_adopt(m, kind);
	}
	return r;
}

int pshared_unlock(pthread_mutex_t *m)
{
	g_t *g = getcurg();
	int kind = kind_of(m), r, i;

	if (!g || !pshared_tracked(kind))
		return PSHARED(REAL(pthread_mutex_unlock)(m));
	i = pheld_find(thread_of(g), m);
	if (i < 0)
		return EPERM;
	pshared_fixowner(g, m, kind);
	if (kind & MX_ROBUST) {
		/* glibc unlinks the node from the process list. */
		plist_acquire();
		r = PSHARED(REAL(pthread_mutex_unlock)(m));
		plist_release();
	} else {
		r = PSHARED(REAL(pthread_mutex_unlock)(m));
	}
	if (r == 0 && pshared_owner(m, kind) != g->m->tid)
		thread_of(g)->pheld[i] = NULL;   /* released for good */
	return r;
}

/* A forked child holds none of its parent's mutexes (glibc empties the
 * child's robust list too). */
void mutex_fork_child(void)
{
	g_t *g = getcurg();

	atomic_flag_clear(&plist_lock);
	if (g) {
		memset(thread_of(g)->pheld, 0, sizeof thread_of(g)->pheld);
		thread_of(g)->robust = NULL;
	}
}

/* Re-initialising a mutex the caller holds (a forked child does, for
 * one its parent held): it must leave the caller's lists first, or they
 * would link through memory that is about to be rewritten. */
void forget_held(pthread_mutex_t *m)
{
	g_t *g = getcurg();
	struct thread *t;
	pthread_mutex_t *r;
	int i;

	if (!g)
		return;
	t = thread_of(g);
	if ((i = pheld_find(t, m)) >= 0) {
		t->pheld[i] = NULL;
		if (MX(m)->__list.__next) {
			plist_acquire();
			node_unlink(m);
			plist_release();
		}
	}
	for (r = t->robust; r; r = (pthread_mutex_t *)MX(r)->__list.__next)
		if (r == m) {
			robust_remove(t, m);
			break;
		}
}
