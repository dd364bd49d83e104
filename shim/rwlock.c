/* shim/rwlock.c - pthread_rwlock_* on gfutex.
 *
 * glibc's rwlock waits in futex(2), which blocks the M: at GOMAXPROCS=1 a
 * reader waiting for a writer that is parked on the same P deadlocks the
 * program.  Here a waiter parks only its G (gfutex_wait); a thread that is
 * not a G blocks in the kernel inside gfutex, as before.
 *
 * The lock lives in the program's 56-byte pthread_rwlock_t (struct rw
 * below overlays it).  PTHREAD_RWLOCK_INITIALIZER is all zeros, and zero
 * is an unlocked, reader-preferring lock; the *_NP initializers only set
 * glibc's __flags word, which we read as the kind, like glibc.
 *
 * State.  One 64-bit word, changed only by CAS, whose two 32-bit halves
 * are the two gfutex wait addresses:
 *
 *   lo (offset 0)  bits 0..30  waiting writers (exact count)
 *                  bit  31     RWAIT: readers may be parked on lo
 *   hi (offset 4)  bits 0..29  readers holding the lock
 *                  bit  31     WLOCK: a writer holds the lock
 *
 * Readers park on lo, writers on hi.  A writer can enter iff hi == 0, so
 * hi holds everything a writer waits for: every transition that lets a
 * writer in changes hi by construction.  A reader can enter iff !WLOCK
 * and, for the writer-preferring kind, no writer waits; those live in
 * both halves, so a transition that lets readers in also clears RWAIT
 * when it is set, which changes lo.  A parking reader sets RWAIT by CAS
 * on the whole word, i.e. against exactly the state that refused it.
 * Hence: whenever a waiter's condition becomes true after it looked, the
 * word it sleeps on has changed, and the releasing CAS itself is that
 * change.  The releaser then calls gfutex_wake, which only hashes the
 * address and never dereferences it.
 *
 * That last point is the reason for packing everything into one word.
 * With a separate wake sequence word bumped after the releasing CAS, the
 * releaser would write to the object after giving it up: a reader that
 * timed out (leaving a stale RWAIT), a thread that then locks, unlocks,
 * destroys and frees the rwlock, and the releaser's late bump lands in
 * freed memory.  glibc avoids the same hazard by making its futex words
 * the state.  Here nothing after the releasing CAS touches the object.
 *
 * Mixed-size access: the word is written as 64 bits and read by gfutex as
 * 32-bit halves.  x86_64 (the only arch) keeps naturally aligned accesses
 * of different sizes to the same location coherent; gfutex's Dekker fence
 * pairs with the releaser's locked CAS as for a 32-bit word.
 *
 * Wake policy (all decided from the CAS's old/new values):
 *   write unlock   wake 1 writer if any waits; wake all readers if RWAIT
 *                  and readers may now enter (reader kind, or no writer
 *                  waiting).  With the reader kind both are woken and race;
 *                  the loser parks again (still counted).
 *   read unlock    the last reader wakes 1 writer if any waits.
 *   writer gives up (timeout)  its count goes; if readers were held back
 *                  only by it, wake them; if the lock is free for writers
 *                  and others wait, wake 1 (it may have consumed the wake
 *                  meant for the next writer).
 * Woken writers are counted until they acquire or give up, so "writers
 * waiting" is exact, which writer preference needs: a stale bit there
 * would hold readers back with no writer left to clear it.
 *
 * Kinds: PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP gives writer
 * preference (new readers wait while a writer waits; a recursive read
 * lock can then deadlock, as documented by glibc).  Every other kind,
 * PREFER_WRITER_NP included, prefers readers as glibc does, so recursive
 * read locks never deadlock.
 *
 * Process-shared locks (glibc marks them with __shared != 0; our private
 * init leaves it 0, as does the static initializer) keep glibc's layout
 * and code, so a process not under gshim can share them.  Every glibc
 * call goes through PSHARED (shim.h: the TCB carries the M's kernel tid
 * meanwhile).  Blocking calls first try the non-blocking variant, and
 * only then hand the P off around the real call (g_block_enter/exit),
 * which costs two sched.lock trips.
 *
 * One repair on top: glibc names the writer in __cur_writer by that TCB
 * tid, which G's on one M share and which changes when a G moves to
 * another M.  Left alone, a second G on the writer's M gets EDEADLK from
 * glibc (found by test: two processes, two G's each), and a writer that
 * migrated would take glibc's read-unlock path and corrupt the lock.  So
 * while a gshim thread holds a shared write lock, __cur_writer holds
 * RWP_MARK (-1: no tid, so glibc's own EDEADLK check never fires) and
 * glibc's unused __pad2 holds the writer's key, pid << 32 | owner id
 * (owner ids repeat from one process to the next; pids do not).  The
 * EDEADLK check is ours.  Just before the real unlock the writer clears
 * the key and puts back the value glibc will compare against, learnt
 * from glibc on a scratch lock inside the same PSHARED bracket
 * (rwp_glibc_self) rather than from the TCB layout.  No scheduling point
 * lies between glibc's store of its tid and our mark, nor between our
 * restore and the unlock.  (Processes in different pid namespaces
 * sharing one lock could collide on keys; not handled.)
 *
 * Not cancellation points (POSIX does not require it; glibc's are not):
 * plain gfutex_wait.
 *
 * Rejected: an internal mutex word guarding a small struct (simpler, but
 * every uncontended rdlock would take and release it, and read-mostly
 * workloads are what rwlocks are for); spinning before parking (useless
 * at GOMAXPROCS=1, and Go's RWMutex does not either); a handoff that
 * passes the lock to the woken writer (convoys, and timeouts complicate
 * it); a single wait address for both sides (wake-one could pick a reader
 * that cannot proceed, so writers would need broadcast wakes); our own
 * algorithm on shared futexes for process-shared locks (a process not
 * under gshim, or an older gshim, would not understand the layout).
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "shim.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rwlock.c: the lo/hi halves of rw.state assume little endian"
#endif

/* Overlay on pthread_rwlock_t.  A process-shared lock is glibc's: there
 * only shared, writer and wkey are ours to read or write (essay). */
struct rw {
	union {
		_Atomic uint64_t state;     /* see the essay; CAS only */
		struct {
			_Atomic uint32_t lo; /* readers' wait address */
			_Atomic uint32_t hi; /* writers' wait address */
		} half;
	};
	uint32_t unused0[4];                /* 8..23 */
	_Atomic int writer;                 /* = __cur_writer: owner id of the
	                                       write holder, else 0 (shared:
	                                       RWP_MARK or glibc's tid);
	                                       written only by the holder */
	int shared;                         /* = __shared: 0 private (ours);
	                                       else glibc's object */
	uint32_t unused1[2];                /* 32..39 */
	_Atomic uint64_t wkey;              /* = __pad2 (unused by glibc): for
	                                       process-shared locks only, who
	                                       writes (rwp_key); written only
	                                       by the holder */
	uint32_t flags;                     /* = __flags: the kind, set by init
	                                       or the static initializer */
};

_Static_assert(sizeof(struct rw) <= sizeof(pthread_rwlock_t), "rw overlay too big");
_Static_assert(_Alignof(struct rw) <= _Alignof(pthread_rwlock_t), "rw overlay alignment");
_Static_assert(offsetof(struct rw, writer) == offsetof(pthread_rwlock_t, __data.__cur_writer),
               "writer must be glibc's __cur_writer");
_Static_assert(offsetof(struct rw, shared) == offsetof(pthread_rwlock_t, __data.__shared),
               "shared must be glibc's __shared");
_Static_assert(offsetof(struct rw, wkey) == offsetof(pthread_rwlock_t, __data.__pad2),
               "wkey must be glibc's unused __pad2");
_Static_assert(offsetof(struct rw, flags) == offsetof(pthread_rwlock_t, __data.__flags),
               "flags must be glibc's __flags (the static initializers set it)");

#define RW_WC1     1ull                     /* one waiting writer */
#define RW_WCMASK  0x7fffffffull
#define RW_RWAIT   (1ull << 31)
#define RW_R1      (1ull << 32)             /* one reader */
#define RW_RMASK   (0x3fffffffull << 32)    /* full: EAGAIN */
#define RW_WLOCK   (1ull << 63)

static inline struct rw *rw_of(pthread_rwlock_t *l) { return (struct rw *)l; }

static inline bool rw_pshared(pthread_rwlock_t *l) { return rw_of(l)->shared != 0; }

static inline bool rw_prefer_writer(const struct rw *rw)
{
	return rw->flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}

/* May a new reader enter in state s? */
static inline bool rd_ok(uint64_t s, bool pw)
{
	return !(s & RW_WLOCK) && !(pw && (s & RW_WCMASK));
}

/* May a writer enter in state s?  (hi == 0) */
static inline bool wr_ok(uint64_t s)
{
	return !(s & (RW_WLOCK | RW_RMASK));
}

static inline int rw_self_id(void)
{
	return shim_owner_id(shim_self());
}

/* 0, EBUSY (not now), or EAGAIN (reader count full). */
static int rd_try(struct rw *rw, bool pw)
{
	uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);

	while (rd_ok(s, pw)) {
		if ((s & RW_RMASK) == RW_RMASK)
			return EAGAIN;
		/* Acquire: pairs with the release CAS of the last write
		 * unlock (and the release sequence of RMWs after it). */
		if (atomic_compare_exchange_weak_explicit(&rw->state, &s, s + RW_R1,
		        memory_order_acquire, memory_order_relaxed))
			return 0;
	}
	return EBUSY;
}

/* 0 or EBUSY.  id: the caller's owner id, recorded for EDEADLK. */
static int wr_try(struct rw *rw, int id)
{
	uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);

	while (wr_ok(s)) {
		/* Acquire: pairs with the release CAS of the last unlock. */
		if (atomic_compare_exchange_weak_explicit(&rw->state, &s, s | RW_WLOCK,
		        memory_order_acquire, memory_order_relaxed)) {
			atomic_store_explicit(&rw->writer, id, memory_order_relaxed);
			return 0;
		}
	}
	return EBUSY;
}

static inline bool deadline_passed(int64_t deadline)
{
	return deadline >= 0 && os_nanotime() >= deadline;
}

/* Slow path of the read locks.  deadline: CLOCK_MONOTONIC ns, -1 none.
 * Blocks the G (or a foreign thread's M). */
static int rd_slow(struct rw *rw, bool pw, int64_t deadline)
{
	for (;;) {
		uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);

		if (rd_ok(s, pw)) {
			if ((s & RW_RMASK) == RW_RMASK)
				return EAGAIN;
			/* Acquire: as in rd_try. */
			if (atomic_compare_exchange_weak_explicit(&rw->state, &s, s + RW_R1,
			        memory_order_acquire, memory_order_relaxed))
				return 0;
			continue;
		}
		if (deadline_passed(deadline))
			return ETIMEDOUT;
		/* Announce ourselves against exactly the state that refused
		 * us.  Relaxed: the releaser reads RWAIT with its own CAS (an
		 * RMW sees the latest value); no data is published here. */
		if (!(s & RW_RWAIT)) {
			uint64_t ns = s | RW_RWAIT;

			if (!atomic_compare_exchange_strong_explicit(&rw->state, &s, ns,
			        memory_order_relaxed, memory_order_relaxed))
				continue;
			s = ns;
		}
		/* Sleeps only while lo is what we saw; any transition that lets
		 * readers in clears RWAIT (essay), so it cannot slip past. */
		g_wait_note(getcurg(), WK_RWLOCK, (uintptr_t)rw);
		if (gfutex_wait(&rw->half.lo, (uint32_t)s, deadline) == -ETIMEDOUT)
			return ETIMEDOUT;
	}
}

/* A counted writer leaves without the lock (timeout).  See the essay's
 * wake policy. */
static void wr_unqueue(struct rw *rw, bool pw)
{
	uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed), ns;
	bool wake_r, wake_w;

	/* Relaxed: nothing is published; an RMW continues the release
	 * sequence of the unlock before it, so readers' acquire CAS still
	 * synchronises with that unlock. */
	do {
		ns = s - RW_WC1;
		wake_r = pw && !(ns & (RW_WCMASK | RW_WLOCK)) && (ns & RW_RWAIT);
		if (wake_r)
			ns &= ~RW_RWAIT;
		wake_w = (ns & RW_WCMASK) && wr_ok(ns);
	} while (!atomic_compare_exchange_weak_explicit(&rw->state, &s, ns,
	             memory_order_relaxed, memory_order_relaxed));
	if (wake_r)
		gfutex_wake(&rw->half.lo, INT32_MAX);
	if (wake_w)
		gfutex_wake(&rw->half.hi, 1);
}

/* Slow path of the write locks.  Blocks the G (or a foreign thread's M). */
static int wr_slow(struct rw *rw, bool pw, int id, int64_t deadline)
{
	bool counted = false;

	for (;;) {
		uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);

		if (wr_ok(s)) {
			uint64_t ns = (s | RW_WLOCK) - (counted ? RW_WC1 : 0);

			/* Acquire: as in wr_try. */
			if (atomic_compare_exchange_weak_explicit(&rw->state, &s, ns,
			        memory_order_acquire, memory_order_relaxed)) {
				atomic_store_explicit(&rw->writer, id, memory_order_relaxed);
				return 0;
			}
			continue;
		}
		if (deadline_passed(deadline)) {
			if (counted)
				wr_unqueue(rw, pw);
			return ETIMEDOUT;
		}
		if (!counted) {
			/* Relaxed, as RWAIT in rd_slow.  This changes lo only:
			 * readers about to sleep re-check, which the writer
			 * preference needs. */
			uint64_t ns = s + RW_WC1;

			if (!atomic_compare_exchange_strong_explicit(&rw->state, &s, ns,
			        memory_order_relaxed, memory_order_relaxed))
				continue;
			s = ns;
			counted = true;
		}
		/* hi == 0 is the whole entry condition, so sleeping while hi
		 * is unchanged cannot miss it. */
		g_wait_note(getcurg(), WK_RWLOCK, (uintptr_t)rw);
		if (gfutex_wait(&rw->half.hi, (uint32_t)(s >> 32), deadline) == -ETIMEDOUT) {
			wr_unqueue(rw, pw);
			return ETIMEDOUT;
		}
	}
}

/* The blocking read locks, private kind.  abst NULL: no timeout (glibc
 * then checks neither the clock nor the time).  glibc's order of checks:
 * EINVAL, then EDEADLK. */
static int rw_rdlock(struct rw *rw, clockid_t clk, const struct timespec *abst)
{
	int64_t deadline = -1;
	bool pw = rw_prefer_writer(rw);
	int err;

	if (abst && (err = shim_deadline(clk, abst, &deadline)) != 0)
		return err;
	if (atomic_load_explicit(&rw->writer, memory_order_relaxed) == rw_self_id())
		return EDEADLK;
	err = rd_try(rw, pw);
	if (err != EBUSY)
		return err;
	return rd_slow(rw, pw, deadline);
}

static int rw_wrlock(struct rw *rw, clockid_t clk, const struct timespec *abst)
{
	int64_t deadline = -1;
	int id = rw_self_id();
	int err;

	if (abst && (err = shim_deadline(clk, abst, &deadline)) != 0)
		return err;
	if (atomic_load_explicit(&rw->writer, memory_order_relaxed) == id)
		return EDEADLK;
	if (wr_try(rw, id) == 0)
		return 0;
	return wr_slow(rw, rw_prefer_writer(rw), id, deadline);
}

/* ---- process-shared: glibc's code, the writer named per thread -------- */

#define RWP_MARK (-1)   /* __cur_writer while a gshim thread writes */

static inline uint64_t rwp_key(void)
{
	return (uint64_t)(uint32_t)getpid() << 32 | (uint32_t)rw_self_id();
}

/* Does the caller hold l's write lock?  Only the holder stores its own
 * key (and clears it before unlocking), so a stale read cannot show a
 * caller its own key. */
static bool rwp_self_writer(pthread_rwlock_t *l)
{
	struct rw *rw = rw_of(l);

	return atomic_load_explicit(&rw->writer, memory_order_relaxed) == RWP_MARK &&
	       atomic_load_explicit(&rw->wkey, memory_order_relaxed) == rwp_key();
}

/* After glibc granted the write lock (err == 0), before any scheduling
 * point: replace glibc's tid with the mark and our key.  We hold the
 * lock; glibc reads __cur_writer with relaxed loads only. */
static int rwp_wrote(pthread_rwlock_t *l, int err)
{
	struct rw *rw = rw_of(l);

	if (err == 0) {
		atomic_store_explicit(&rw->wkey, rwp_key(), memory_order_relaxed);
		atomic_store_explicit(&rw->writer, RWP_MARK, memory_order_relaxed);
	}
	return err;
}

/* What glibc stores in __cur_writer for the calling context (its TCB's
 * tid), from glibc itself on a private scratch lock.  Call inside the
 * PSHARED bracket of the call it is for. */
static int rwp_glibc_self(void)
{
	pthread_rwlock_t probe;
	int id;

	REAL(pthread_rwlock_init)(&probe, NULL);
	if (REAL(pthread_rwlock_trywrlock)(&probe) != 0)
		rt_fatal("rwlock: glibc's trywrlock fails on a fresh lock");
	id = probe.__data.__cur_writer;
	REAL(pthread_rwlock_unlock)(&probe);
	return id;
}

/* Write unlock of a shared lock we hold (key already cleared). */
static int rwp_unlock_writer(pthread_rwlock_t *l)
{
	atomic_store_explicit(&rw_of(l)->writer, rwp_glibc_self(), memory_order_relaxed);
	return REAL(pthread_rwlock_unlock)(l);
}

/* First step of a blocking call: EINVAL for a bad time (glibc checks it
 * before anything else), EDEADLK, then a try without blocking.  True,
 * with *err set, if that settled the call; else the caller blocks in
 * glibc with the P handed off. */
static bool rwp_settled(pthread_rwlock_t *l, bool wr, clockid_t clk,
                        const struct timespec *abst, int *err)
{
	int64_t ignored;

	if (abst && (*err = shim_deadline(clk, abst, &ignored)) != 0)
		return true;
	if (rwp_self_writer(l)) {
		*err = EDEADLK;
		return true;
	}
	*err = wr ? rwp_wrote(l, PSHARED(REAL(pthread_rwlock_trywrlock)(l)))
	          : PSHARED(REAL(pthread_rwlock_tryrdlock)(l));
	return *err != EBUSY;
}

/* ---- exported ----------------------------------------------------------- */

SHIM_EXPORT int pthread_rwlock_init(pthread_rwlock_t *l, const pthread_rwlockattr_t *attr)
{
	int kind = PTHREAD_RWLOCK_DEFAULT_NP, pshared = PTHREAD_PROCESS_PRIVATE;

	if (attr) {
		pthread_rwlockattr_getkind_np(attr, &kind);
		pthread_rwlockattr_getpshared(attr, &pshared);
	}
	if (pshared != PTHREAD_PROCESS_PRIVATE)
		return PSHARED(REAL(pthread_rwlock_init)(l, attr));
	memset(l, 0, sizeof *l);
	rw_of(l)->flags = (uint32_t)kind;
	return 0;
}

SHIM_EXPORT int pthread_rwlock_destroy(pthread_rwlock_t *l)
{
	/* Private: nothing to release, and nothing of ours touches the
	 * object after an unlock (essay), so no waiting either.  glibc's
	 * returns 0 unconditionally too. */
	if (rw_pshared(l))
		return PSHARED(REAL(pthread_rwlock_destroy)(l));
	return 0;
}

SHIM_EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t *l)
{
	struct rw *rw = rw_of(l);

	if (rw_pshared(l))
		return PSHARED(REAL(pthread_rwlock_tryrdlock)(l));
	return rd_try(rw, rw_prefer_writer(rw));
}

SHIM_EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t *l)
{
	/* No EDEADLK here: glibc's trywrlock says EBUSY to the holder. */
	if (rw_pshared(l))
		return rwp_wrote(l, PSHARED(REAL(pthread_rwlock_trywrlock)(l)));
	return wr_try(rw_of(l), rw_self_id());
}

SHIM_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
	int err;

	if (!rw_pshared(l))
		return rw_rdlock(rw_of(l), CLOCK_REALTIME, NULL);
	if (rwp_settled(l, false, CLOCK_REALTIME, NULL, &err))
		return err;
	g_block_enter();
	err = PSHARED(REAL(pthread_rwlock_rdlock)(l));
	g_block_exit();
	return err;
}

SHIM_EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t *l, const struct timespec *abst)
{
	int err;

	if (!rw_pshared(l))
		return rw_rdlock(rw_of(l), CLOCK_REALTIME, abst);
	if (rwp_settled(l, false, CLOCK_REALTIME, abst, &err))
		return err;
	g_block_enter();
	err = PSHARED(REAL(pthread_rwlock_timedrdlock)(l, abst));
	g_block_exit();
	return err;
}

SHIM_EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t clk,
                                           const struct timespec *abst)
{
	int err;

	if (!rw_pshared(l))
		return rw_rdlock(rw_of(l), clk, abst);
	if (rwp_settled(l, false, clk, abst, &err))
		return err;
	g_block_enter();
	err = PSHARED(REAL(pthread_rwlock_clockrdlock)(l, clk, abst));
	g_block_exit();
	return err;
}

/* The write locks mark the lock as ours before g_block_exit, which may
 * switch this M to other G's. */
SHIM_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
	int err;

	if (!rw_pshared(l))
		return rw_wrlock(rw_of(l), CLOCK_REALTIME, NULL);
	if (rwp_settled(l, true, CLOCK_REALTIME, NULL, &err))
		return err;
	g_block_enter();
	err = rwp_wrote(l, PSHARED(REAL(pthread_rwlock_wrlock)(l)));
	g_block_exit();
	return err;
}

SHIM_EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t *l, const struct timespec *abst)
{
	int err;

	if (!rw_pshared(l))
		return rw_wrlock(rw_of(l), CLOCK_REALTIME, abst);
	if (rwp_settled(l, true, CLOCK_REALTIME, abst, &err))
		return err;
	g_block_enter();
	err = rwp_wrote(l, PSHARED(REAL(pthread_rwlock_timedwrlock)(l, abst)));
	g_block_exit();
	return err;
}

SHIM_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t clk,
                                           const struct timespec *abst)
{
	int err;

	if (!rw_pshared(l))
		return rw_wrlock(rw_of(l), clk, abst);
	if (rwp_settled(l, true, clk, abst, &err))
		return err;
	g_block_enter();
	err = rwp_wrote(l, PSHARED(REAL(pthread_rwlock_clockwrlock)(l, clk, abst)));
	g_block_exit();
	return err;
}

SHIM_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *l)
{
	struct rw *rw = rw_of(l);
	uint64_t s, ns;
	bool pw, wake_r = false, wake_w;

	if (rw_pshared(l)) {
		if (rwp_self_writer(l)) {
			atomic_store_explicit(&rw->wkey, 0, memory_order_relaxed);
			return PSHARED(rwp_unlock_writer(l));
		}
		return PSHARED(REAL(pthread_rwlock_unlock)(l));
	}
	pw = rw_prefer_writer(rw);
	s = atomic_load_explicit(&rw->state, memory_order_relaxed);
	if (s & RW_WLOCK) {
		/* We are the writer (WLOCK cannot clear under us).  Give up
		 * the id before the lock: after the CAS we own nothing. */
		atomic_store_explicit(&rw->writer, 0, memory_order_relaxed);
		do {
			ns = s & ~RW_WLOCK;
			wake_w = (s & RW_WCMASK) != 0;
			wake_r = (s & RW_RWAIT) && !(pw && (s & RW_WCMASK));
			if (wake_r)
				ns &= ~RW_RWAIT;
			/* Release: pairs with the acquire CAS of the next
			 * holder (rd_try/wr_try/the slow paths). */
		} while (!atomic_compare_exchange_weak_explicit(&rw->state, &s, ns,
		             memory_order_release, memory_order_relaxed));
	} else {
		if (!(s & RW_RMASK))
			return EPERM;   /* not locked at all (glibc: undefined) */
		do {
			ns = s - RW_R1;
			wake_w = !(ns & RW_RMASK) && (ns & RW_WCMASK);
			/* Release: as above, for the next writer. */
		} while (!atomic_compare_exchange_weak_explicit(&rw->state, &s, ns,
		             memory_order_release, memory_order_relaxed));
	}
	/* From here on the object may be gone (destroyed and freed by a
	 * thread that locked it after us): gfutex_wake only hashes the
	 * address. */
	if (wake_r)
		gfutex_wake(&rw->half.lo, INT32_MAX);
	if (wake_w)
		gfutex_wake(&rw->half.hi, 1);
	return 0;
}
