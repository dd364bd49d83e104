/* shim/mutex.c - pthread mutexes that park G's.
 *
 * glibc's mutex waits on a kernel futex: the whole M would sleep, and at
 * GOMAXPROCS=1 the thread that holds the lock could never run to release
 * it.  Here a waiter parks on a gfutex; the M runs other G's.
 *
 * Layout.  The object is glibc's 40-byte pthread_mutex_t, in the
 * program's memory, with glibc's field meanings where they matter to
 * programs: all-zero is PTHREAD_MUTEX_INITIALIZER, `__kind` holds the type
 * (the _NP static initializers set it: 1 recursive, 2 errorcheck, 3
 * adaptive) and glibc's flag bits (16 robust, 32 prio-inherit, 64
 * prio-protect, 128 process-shared).  A private mutex then uses:
 *   __lock   the lock word, Drepper's mutex3: 0 free, 1 held, 2 held and
 *            maybe waiters (gfutex address)
 *   __owner  owner id of the holder (shim_owner_id), 0 when free; written
 *            only by the holder, so "__owner == me" is only ever true for
 *            the holder
 *   __count  recursion depth (recursive type)
 *   __nusers flags: MX_INCONSISTENT (robust, owner died); above it, the
 *            number of condvar waits using the mutex (MX_CVUSER each:
 *            destroy says EBUSY meanwhile, as glibc's __nusers makes it)
 *   __spins  priority ceiling (prio-protect; glibc keeps it in __lock)
 *   __list   the robust list of the holding thread
 * so objects can be zeroed, memcpy'd before first use, destroyed and
 * reused, exactly like glibc's.
 *
 * Process-shared mutexes (kind bit 128) are glibc's code: every call goes
 * to libc, and a lock that may block first hands the P to another M
 * (g_block_enter), because the M sleeps in the kernel.  glibc names
 * owners by kernel thread, so gshim keeps, per G, the owner-checked ones
 * it holds and fixes glibc's owner fields up around each call, and keeps
 * the robust ones on a process-wide kernel robust list (section
 * "process-shared" below).
 *
 * Robust mutexes: each thread keeps the robust mutexes it holds on a list
 * (through __list); when a thread exits holding some, each is marked
 * inconsistent and released; the next locker gets EOWNERDEAD with the
 * lock held; pthread_mutex_consistent clears the mark; unlocking without
 * it makes the mutex not recoverable (ENOTRECOVERABLE for everyone).
 *
 * Priority protocols (PI, PP) are accepted and behave as normal mutexes:
 * G's have no kernel priority to inherit or raise (docs/compat.md); the PP
 * ceiling is kept and reported, and glibc's error codes are kept: a
 * thread whose priority (pthread_setschedparam's, remembered) is above the
 * ceiling gets EINVAL, the holder of an errorcheck kind EDEADLK.
 *
 * Rejected: a wait queue inside the object (glibc's size leaves no room
 * for a G list, and memory the program zeroes must keep working) - waiters
 * live in the gfutex hash table instead, like futex waiters in the kernel.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include "shim.h"

enum {
	MX_TYPE_MASK = 3,
	MX_ROBUST = 16,
	MX_PRIO_INHERIT = 32,
	MX_PRIO_PROTECT = 64,
	MX_PSHARED = 128,
	MX_INCONSISTENT = 1,          /* in __nusers */
	MX_CVUSER = 2,                /* in __nusers: one condvar wait */
	MX_OWNER_NOTRECOVERABLE = INT_MAX - 1,   /* glibc's value */
	MX_SPIN = 100,                /* pause loops before parking */
};

#define MX(m) (&(m)->__data)

static inline _Atomic uint32_t *lockword(pthread_mutex_t *m)
{
	return (_Atomic uint32_t *)&MX(m)->__lock;
}

static inline int kind_of(const pthread_mutex_t *m)
{
	return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
}

static bool kind_valid(int kind)
{
	return kind >= 0 && (kind & ~(MX_TYPE_MASK | MX_ROBUST | MX_PRIO_INHERIT |
	                              MX_PRIO_PROTECT | MX_PSHARED | 256 | 512)) == 0;
}

/* ---- robust list -------------------------------------------------------- */

static void robust_push(struct thread *t, pthread_mutex_t *m)
{
	MX(m)->__list.__prev = NULL;
	MX(m)->__list.__next = (struct __pthread_internal_list *)t->robust;
	if (t->robust)
		MX(t->robust)->__list.__prev = (struct __pthread_internal_list *)m;
	t->robust = m;
}

static void robust_remove(struct thread *t, pthread_mutex_t *m)
{
	pthread_mutex_t *prev = (pthread_mutex_t *)MX(m)->__list.__prev;
	pthread_mutex_t *next = (pthread_mutex_t *)MX(m)->__list.__next;

	if (prev)
		MX(prev)->__list.__next = (struct __pthread_internal_list *)next;
	else if (t->robust == m)
		t->robust = next;
	if (next)
		MX(next)->__list.__prev = (struct __pthread_internal_list *)prev;
	MX(m)->__list.__prev = MX(m)->__list.__next = NULL;
}

static void release_word(pthread_mutex_t *m, int nwake)
{
	/* Release: the next holder sees everything done under the lock. */
	if (atomic_exchange_explicit(lockword(m), 0, memory_order_release) == 2)
		gfutex_wake(lockword(m), nwake);
}

/* A thread exits holding robust mutexes: mark each, release it. */
void mutex_robust_exit(struct thread *t)
{
	while (t->robust) {
		pthread_mutex_t *m = t->robust;

		robust_remove(t, m);
		__atomic_or_fetch(&MX(m)->__nusers, MX_INCONSISTENT, __ATOMIC_RELAXED);
		MX(m)->__count = 0;
		__atomic_store_n(&MX(m)->__owner, 0, __ATOMIC_RELAXED);
		release_word(m, 1);
	}
}

/* ---- lock ---------------------------------------------------------------- */

/* Take the lock word.  deadline < 0: forever. */
static int acquire_word(pthread_mutex_t *m, int64_t deadline, bool try_only,
                        const struct timespec *abst, clockid_t clk)
{
	_Atomic uint32_t *w = lockword(m);
	uint32_t c = 0;
	int i;

	if (atomic_compare_exchange_strong_explicit(w, &c, 1,
	        memory_order_acquire, memory_order_relaxed))
		return 0;
	if (try_only)
		return EBUSY;
	/* glibc validates the timeout only once it has to wait. */
	if (abst) {
		int err = shim_deadline(clk, abst, &deadline);
		if (err)
			return err;
	}
	/* Spin a little when another P may be about to release it. */
	if (sched_gomaxprocs() > 1) {
		for (i = 0; i < MX_SPIN; i++) {
			arch_relax();
			c = 0;
			if (atomic_load_explicit(w, memory_order_relaxed) == 0 &&
			    atomic_compare_exchange_weak_explicit(w, &c, 1,
			        memory_order_acquire, memory_order_relaxed))
				return 0;
		}
	}
	/* Park.  Whoever takes it from here marks it contended (2), so the
	 * unlock that follows wakes the next waiter. */
	while (atomic_exchange_explicit(w, 2, memory_order_acquire) != 0) {
		g_t *g = getcurg();
		int r;

		if (g && thread_of(g)->lock_cancellable) {
			/* Asynchronous cancellation (pthread_mutex_lock below):
			 * the wait is where glibc's signal would stop it. */
			r = cancel_gfutex_wait(g, w, 2, deadline);
			if (r == -ECANCELED) {
				thread_of(g)->lock_cancellable = false;
				cancel_point(g);
			}
		} else {
			r = gfutex_wait(w, 2, deadline);
		}
		if (r == -ETIMEDOUT) {
			c = 0;
			/* One last try: a timeout racing the release. */
			if (atomic_compare_exchange_strong_explicit(w, &c, 2,
			        memory_order_acquire, memory_order_relaxed))
				return 0;
			return ETIMEDOUT;
		}
	}
	return 0;
}

static int mutex_lock(pthread_mutex_t *m, bool try_only,
                      const struct timespec *abst, clockid_t clk)
{
	g_t *g = shim_self();
	int kind = kind_of(m), type = kind & MX_TYPE_MASK, id, err;

	if (!kind_valid(kind))
		return EINVAL;
	id = shim_owner_id(g);
	if (__atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) == id) {
		if (type == PTHREAD_MUTEX_RECURSIVE) {
			if (MX(m)->__count == UINT_MAX)
				return EAGAIN;
			MX(m)->__count++;
			return 0;
		}
		/* glibc: trylock says EBUSY, except for the robust and
		 * priority kinds (their own code paths say EDEADLK). */
		if (type == PTHREAD_MUTEX_ERRORCHECK)
			return try_only && !(kind & (MX_ROBUST | MX_PRIO_INHERIT |
			                             MX_PRIO_PROTECT)) ? EBUSY : EDEADLK;
		if (try_only)
			return EBUSY;
		/* NORMAL/ADAPTIVE: relocking deadlocks, as POSIX and glibc
		 * say (a timed lock times out). */
	}
	if ((kind & MX_ROBUST) &&
	    __atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) == MX_OWNER_NOTRECOVERABLE)
		return ENOTRECOVERABLE;
	/* glibc: a thread whose priority is above the ceiling may not take
	 * a priority-protect mutex.  The priority is the one the program set
	 * (pthread_setschedparam): G's have no kernel priority to raise. */
	if ((kind & MX_PRIO_PROTECT) && g && thread_of(g)->policy != SCHED_OTHER &&
	    thread_of(g)->param.sched_priority > MX(m)->__spins)
		return EINVAL;
	err = acquire_word(m, -1, try_only, abst, clk);
	if (err)
		return err;
	if (kind & MX_ROBUST) {
		if (__atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) == MX_OWNER_NOTRECOVERABLE) {
			release_word(m, INT32_MAX);
			return ENOTRECOVERABLE;
		}
		__atomic_store_n(&MX(m)->__owner, id, __ATOMIC_RELAXED);
		MX(m)->__count = 1;
		if (g)
			robust_push(thread_of(g), m);
		if (__atomic_load_n(&MX(m)->__nusers, __ATOMIC_RELAXED) & MX_INCONSISTENT)
			return EOWNERDEAD;
		return 0;
	}
	__atomic_store_n(&MX(m)->__owner, id, __ATOMIC_RELAXED);
	MX(m)->__count = 1;
	return 0;
}

/* ---- process-shared ---------------------------------------------------------
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
 * same format (rt_robust, core/sched.c), which every M registers with
 * the kernel: when the process dies, each M's walk marks the mutexes
 * whose lock word names it (the word names an M of this process: the one
 * that locked or last fixed the owner).  When a G ends holding some, we
 * do what the kernel would (pshared_robust_death): FUTEX_OWNER_DIED,
 * wake a waiter.  glibc's unlock unlinks the node from whichever list it
 * is on through the node's own pointers, so it is called with the list
 * lock held.  The kernel reads the list only when a thread dies. */

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

static int pshared_lock(pthread_mutex_t *m, bool try_only, clockid_t clk,
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

static int pshared_unlock(pthread_mutex_t *m)
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

/* cond.c: a condvar wait starts (delta 1) or ends (-1) using m. */
void mutex_cv_use(pthread_mutex_t *m, int delta)
{
	if (!(kind_of(m) & MX_PSHARED))
		__atomic_add_fetch(&MX(m)->__nusers, (unsigned)(delta * MX_CVUSER), __ATOMIC_RELAXED);
}

/* Used by cond.c to re-take the mutex after a wait. */
int mutex_relock(pthread_mutex_t *m)
{
	if (kind_of(m) & MX_PSHARED)
		return pshared_lock(m, false, CLOCK_REALTIME, NULL);
	return mutex_lock(m, false, NULL, CLOCK_REALTIME);
}

/* With asynchronous cancellation enabled a thread waiting for a mutex is
 * cancelled (POSIX calls locking unsafe then, but glibc acts anywhere and
 * its tst-cancel1 relies on it); a condvar's re-lock never is (cond.c:
 * the handlers need the mutex held). */
SHIM_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
	g_t *g = getcurg();
	int r;

	if (!g || !cancel_async_enabled(g))
		return mutex_relock(m);
	thread_of(g)->lock_cancellable = true;
	r = mutex_relock(m);
	thread_of(g)->lock_cancellable = false;
	return r;
}

SHIM_EXPORT int pthread_mutex_trylock(pthread_mutex_t *m)
{
	if (kind_of(m) & MX_PSHARED)
		return pshared_lock(m, true, CLOCK_REALTIME, NULL);
	return mutex_lock(m, true, NULL, CLOCK_REALTIME);
}

SHIM_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk,
                                        const struct timespec *abst)
{
	if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
		return EINVAL;
	if (kind_of(m) & MX_PSHARED)
		return pshared_lock(m, false, clk, abst);
	return mutex_lock(m, false, abst, clk);
}

SHIM_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abst)
{
	return pthread_mutex_clocklock(m, CLOCK_REALTIME, abst);
}

/* ---- unlock -------------------------------------------------------------- */

int mutex_unlock(pthread_mutex_t *m)
{
	g_t *g;
	int kind = kind_of(m), type = kind & MX_TYPE_MASK, id;

	if (kind & MX_PSHARED)
		return pshared_unlock(m);
	if (!kind_valid(kind))
		return EINVAL;
	g = getcurg();
	id = shim_owner_id(g);
	if (type != PTHREAD_MUTEX_NORMAL && type != PTHREAD_MUTEX_ADAPTIVE_NP) {
		if (__atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) != id)
			return EPERM;
		if (type == PTHREAD_MUTEX_RECURSIVE && --MX(m)->__count != 0)
			return 0;
	} else if ((kind & MX_ROBUST) &&
	           __atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) != id) {
		return EPERM;   /* robust mutexes always check the owner */
	}
	if (kind & MX_ROBUST) {
		if (g)
			robust_remove(thread_of(g), m);
		if (__atomic_load_n(&MX(m)->__nusers, __ATOMIC_RELAXED) & MX_INCONSISTENT) {
			/* Unlocked without pthread_mutex_consistent: dead for
			 * good; wake everybody to tell them. */
			__atomic_store_n(&MX(m)->__owner, MX_OWNER_NOTRECOVERABLE, __ATOMIC_RELAXED);
			MX(m)->__count = 0;
			release_word(m, INT32_MAX);
			return 0;
		}
	}
	__atomic_store_n(&MX(m)->__owner, 0, __ATOMIC_RELAXED);
	MX(m)->__count = 0;
	release_word(m, 1);
	return 0;
}

SHIM_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m)
{
	int r = mutex_unlock(m);

	g_coop_yield(getcurg());   /* a pending preemption: now is safe */
	return r;
}

/* ---- init, destroy, the rest ---------------------------------------------- */

/* Re-initialising a mutex the caller holds (a forked child does, for
 * one its parent held): it must leave the caller's lists first, or they
 * would link through memory that is about to be rewritten. */
static void forget_held(pthread_mutex_t *m)
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

SHIM_EXPORT int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *attr)
{
	int err, protocol = PTHREAD_PRIO_NONE, ceiling = 0;

	real_init();   /* PSHARED calls below, maybe before our constructor */
	forget_held(m);
	/* glibc validates the attribute and encodes type, robustness,
	 * protocol and pshared in __kind exactly as programs expect. */
	int pshared = PTHREAD_PROCESS_PRIVATE;

	err = PSHARED(REAL(pthread_mutex_init)(m, attr));
	if (err)
		return err;
	if (attr)
		pthread_mutexattr_getpshared(attr, &pshared);
	if (pshared == PTHREAD_PROCESS_SHARED)
		return 0;
	/* glibc also sets the pshared bit on every robust mutex (the kernel's
	 * robust-list walk needs shared futexes); a private robust mutex is
	 * ours, with the robust list per G. */
	MX(m)->__kind &= ~MX_PSHARED;
	if (attr) {
		pthread_mutexattr_getprotocol(attr, &protocol);
		if (protocol == PTHREAD_PRIO_PROTECT)
			pthread_mutexattr_getprioceiling(attr, &ceiling);
	}
	/* Private: our lock word starts free (glibc keeps a PP ceiling in
	 * it; we keep it in __spins). */
	MX(m)->__lock = 0;
	MX(m)->__spins = (short)ceiling;
	MX(m)->__nusers = 0;
	return 0;
}

SHIM_EXPORT int pthread_mutex_destroy(pthread_mutex_t *m)
{
	int kind = kind_of(m);

	if (kind & MX_PSHARED)
		return PSHARED(REAL(pthread_mutex_destroy)(m));
	if (!kind_valid(kind))
		return EINVAL;
	/* Held, or in use by a condvar wait (glibc: __nusers) */
	if (!(kind & MX_ROBUST) &&
	    (atomic_load_explicit(lockword(m), memory_order_relaxed) ||
	     __atomic_load_n(&MX(m)->__nusers, __ATOMIC_RELAXED) >= MX_CVUSER))
		return EBUSY;
	/* Like glibc: a destroyed mutex is invalid until initialised again. */
	__atomic_store_n(&MX(m)->__kind, -1, __ATOMIC_RELAXED);
	return 0;
}

SHIM_EXPORT int pthread_mutex_consistent(pthread_mutex_t *m)
{
	int kind = kind_of(m);

	if (kind & MX_PSHARED)
		return PSHARED(REAL(pthread_mutex_consistent)(m));
	if (!(kind & MX_ROBUST) ||
	    !(__atomic_load_n(&MX(m)->__nusers, __ATOMIC_RELAXED) & MX_INCONSISTENT) ||
	    __atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) != shim_owner_id(getcurg()))
		return EINVAL;
	__atomic_and_fetch(&MX(m)->__nusers, ~(unsigned)MX_INCONSISTENT, __ATOMIC_RELAXED);
	return 0;
}

/* glibc's header redirects the _np name with an asm label: define it
 * under its own label. */
SHIM_EXPORT int gshim_mutex_consistent_np(pthread_mutex_t *m)
	__asm__("pthread_mutex_consistent_np");
int gshim_mutex_consistent_np(pthread_mutex_t *m)
{
	return pthread_mutex_consistent(m);
}

SHIM_EXPORT int pthread_mutex_getprioceiling(const pthread_mutex_t *m, int *ceiling)
{
	int kind = kind_of(m);

	if (kind & MX_PSHARED)
		return PSHARED(REAL(pthread_mutex_getprioceiling)(m, ceiling));
	if (!(kind & MX_PRIO_PROTECT))
		return EINVAL;
	*ceiling = m->__data.__spins;
	return 0;
}

SHIM_EXPORT int pthread_mutex_setprioceiling(pthread_mutex_t *m, int ceiling, int *old)
{
	int kind = kind_of(m), err;

	if (kind & MX_PSHARED)
		return PSHARED(REAL(pthread_mutex_setprioceiling)(m, ceiling, old));
	if (!(kind & MX_PRIO_PROTECT) ||
	    ceiling < sched_get_priority_min(SCHED_FIFO) ||
	    ceiling > sched_get_priority_max(SCHED_FIFO))
		return EINVAL;
	/* POSIX: lock, change, unlock.  glibc: a holder of the errorcheck
	 * kind gets EDEADLK, of the recursive kind changes it in place. */
	if (__atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) == shim_owner_id(getcurg())) {
		if ((kind & MX_TYPE_MASK) == PTHREAD_MUTEX_ERRORCHECK)
			return EDEADLK;
		if ((kind & MX_TYPE_MASK) == PTHREAD_MUTEX_RECURSIVE)
			err = EDEADLK;   /* held: no lock, no unlock */
		else
			err = mutex_lock(m, false, NULL, CLOCK_REALTIME);
	} else {
		err = mutex_lock(m, false, NULL, CLOCK_REALTIME);
	}
	if (err && err != EDEADLK)
		return err;
	*old = MX(m)->__spins;
	MX(m)->__spins = (short)ceiling;
	if (!err)
		mutex_unlock(m);
	return 0;
}
