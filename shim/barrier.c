/* shim/barrier.c - pthread_barrier_* on gfutex.
 *
 * glibc's barrier waits in futex(2), blocking the M; with GOMAXPROCS=1 the
 * first waiter would stop every other party from arriving.  Here waiters
 * park their G (a foreign thread blocks in the kernel inside gfutex).
 *
 * Object: glibc's 32-byte pthread_barrier_t (no static initializer, so
 * init always runs and picks the layout):
 *
 *   state    64 bits, RMW only: low half the arrivals of the current
 *            round, high half the round number.  Waiters sleep on the
 *            high half (a gfutex address), which changes only when a
 *            round ends.
 *   leaving  parties of finished rounds that have not yet returned (still
 *            about to read state).  destroy waits for 0.
 *   tag      BAR_TAG: ours.  glibc keeps its futex flags word at this
 *            offset (0 or 128), so a process-shared barrier, which init
 *            leaves in glibc's layout and hands to glibc, never shows it.
 *   count    parties per round (init; immutable).
 *
 * Protocol.  Arrive: fetch_add(state, 1) returns the round and our
 * position in it atomically: no separate round word that could be read
 * on the wrong side of a round boundary.  Position < count: wait until
 * the round number passes ours.  Position == count: the serial thread;
 * it adds the count-1 waiters to leaving, then in one fetch_add bumps the
 * round and takes count arrivals off (state += 2^32 - count), then wakes
 * everyone on the high half.  Waiters see the new round, decrement
 * leaving and return.
 *
 * More callers than count at once (POSIX allows it; glibc supports it,
 * e.g. a pool of workers meeting in groups): position count + j is
 * position j of the next round, and so on; such a caller first waits for
 * the rounds ahead of it to end.  The serial thread's subtraction keeps
 * their arrivals.  This is also why the round is a counter and not a
 * parity bit: with extra callers, other threads can complete a whole
 * round while a woken waiter has not yet looked, and a parity bit would
 * be back where the waiter last saw it.  A 32-bit counter wraps only
 * after 2^31 rounds missed by one sleeper (compared as a signed
 * difference), the usual futex-sequence bound.
 *
 * Mixed-size access: the word is changed as 64 bits and gfutex reads its
 * high half as 32 bits.  x86_64 (the only arch) keeps naturally aligned
 * accesses of different sizes to one location coherent; our own loads are
 * 64-bit.
 *
 * Orders.  Arrivals are acq_rel RMWs on state, so the serial thread's
 * arrival acquires every party's earlier writes; its round bump is a
 * release RMW that the waiters' acquire loads read: everything written
 * before the barrier by any party happens before every return from it.
 *
 * destroy (glibc 2.36 semantics): returns once every thread of the last
 * round has stopped touching the object, so the memory may be freed at
 * once.  A round in progress (arrivals > 0: threads are blocked) gives
 * EBUSY instead of glibc's hang.  The serial thread's wake after its bump
 * and a leaver's wake after its decrement only hash the address.
 *
 * Not a cancellation point (POSIX: it is not).
 *
 * Rejected: glibc's in/current_round/out counters with their reset
 * protocol (needed because its futex words are 32 bits and the counters
 * grow; a 64-bit word needs no reset); a lock around {arrived, round}
 * (10,000 parties would queue on it); a separate 32-bit round word (a
 * waiter reading it before its arrival may see the previous round end,
 * after it may see its own round end and sleep through it); a parity
 * bit instead of the round number (see above: it fails with extra
 * callers, found by test).
 */
#include <errno.h>
#include <limits.h>
#include "shim.h"

#define BAR_TAG    0x47424152u    /* "GBAR" */
#define BAR_ROUND1 (1ull << 32)      /* one round, in state */
#define BAR_NMASK  0xffffffffull     /* arrivals, in state */
/* glibc: count >= BARRIER_IN_THRESHOLD (UINT_MAX/2) is EINVAL.  Also
 * what keeps arrivals (count + extra callers) inside the low half. */
#define BAR_MAX    (UINT_MAX / 2)

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "barrier.c: the halves of bar.state assume little endian"
#endif

struct bar {
	union {
		_Atomic uint64_t state;     /* round << 32 | arrivals; RMW only */
		struct {
			_Atomic uint32_t arrivals;
			_Atomic uint32_t round; /* the wait address */
		} half;
	};
	_Atomic uint32_t leaving;           /* see the essay */
	uint32_t tag;                       /* BAR_TAG; glibc's `shared` word */
	uint32_t count;                     /* init */
};

_Static_assert(sizeof(struct bar) <= sizeof(pthread_barrier_t), "bar overlay too big");
_Static_assert(_Alignof(struct bar) <= _Alignof(pthread_barrier_t), "bar overlay alignment");
_Static_assert(offsetof(struct bar, tag) == 12, "tag must sit on glibc's `shared` word");

static inline struct bar *bar_of(pthread_barrier_t *b) { return (struct bar *)b; }

static inline bool bar_ours(pthread_barrier_t *b) { return bar_of(b)->tag == BAR_TAG; }

SHIM_EXPORT int pthread_barrier_init(pthread_barrier_t *b, const pthread_barrierattr_t *attr,
                                     unsigned count)
{
	struct bar *bar = bar_of(b);
	int pshared = PTHREAD_PROCESS_PRIVATE;

	if (count == 0 || count >= BAR_MAX)
		return EINVAL;
	if (attr)
		pthread_barrierattr_getpshared(attr, &pshared);
	if (pshared != PTHREAD_PROCESS_PRIVATE) {
		return REAL(pthread_barrier_init)(b, attr, count);
	}
	atomic_init(&bar->state, 0);
	atomic_init(&bar->leaving, 0);
	bar->count = count;
	bar->tag = BAR_TAG;
	return 0;
}

/* Executed by the serial thread (the count-th arrival): end the round. */
static void bar_complete(struct bar *bar, uint32_t count)
{
	/* Relaxed: published by the release bump below, which the waiters
	 * acquire before they decrement. */
	atomic_fetch_add_explicit(&bar->leaving, count - 1, memory_order_relaxed);
	/* Release: pairs with the waiters' acquire load in bar_await.  Next
	 * round; this round's count arrivals off, later callers' kept. */
	atomic_fetch_add_explicit(&bar->state, BAR_ROUND1 - count, memory_order_release);
	gfutex_wake(&bar->half.round, INT32_MAX);
}

/* Sleep until the round number has reached r. */
static void bar_await(struct bar *bar, uint32_t r)
{
	for (;;) {
		/* Acquire: pairs with bar_complete's release bump. */
		uint32_t cur = (uint32_t)(atomic_load_explicit(&bar->state,
		                   memory_order_acquire) >> 32);

		if ((int32_t)(cur - r) >= 0)
			return;
		g_wait_note(getcurg(), WK_BARRIER, (uintptr_t)bar);
		gfutex_wait(&bar->half.round, cur, -1);
	}
}

SHIM_EXPORT int pthread_barrier_wait(pthread_barrier_t *b)
{
	struct bar *bar = bar_of(b);
	uint32_t count, round, pos;
	uint64_t v;
	int err;

	if (!bar_ours(b)) {
		g_block_enter();
		err = REAL(pthread_barrier_wait)(b);
		g_block_exit();
		return err;
	}
	count = bar->count;
	/* Acq_rel: release our pre-barrier writes to the serial thread,
	 * acquire the others' if we are it. */
	v = atomic_fetch_add_explicit(&bar->state, 1, memory_order_acq_rel);
	round = (uint32_t)(v >> 32);
	pos = (uint32_t)(v & BAR_NMASK);        /* arrivals before us */
	if (pos >= count) {
		/* An early caller of a later round: wait for the rounds ahead. */
		round += pos / count;
		pos %= count;
		bar_await(bar, round);
	}
	if (pos + 1 == count) {
		bar_complete(bar, count);
		return PTHREAD_BARRIER_SERIAL_THREAD;
	}
	bar_await(bar, round + 1);
	/* Release: our last access to the object happens before destroy's
	 * acquire load sees 0.  After it, only the address is used. */
	if (atomic_fetch_sub_explicit(&bar->leaving, 1, memory_order_release) == 1)
		gfutex_wake(&bar->leaving, INT32_MAX);
	return 0;
}

SHIM_EXPORT int pthread_barrier_destroy(pthread_barrier_t *b)
{
	struct bar *bar = bar_of(b);
	int err;

	if (!bar_ours(b)) {
		/* glibc's destroy may wait for the last round's leavers. */
		g_block_enter();
		err = REAL(pthread_barrier_destroy)(b);
		g_block_exit();
		return err;
	}
	if (atomic_load_explicit(&bar->state, memory_order_relaxed) & BAR_NMASK)
		return EBUSY;
	for (;;) {
		/* Acquire: pairs with the leavers' release decrement. */
		uint32_t l = atomic_load_explicit(&bar->leaving, memory_order_acquire);

		if (l == 0)
			return 0;
		g_wait_note(getcurg(), WK_BARRIER, (uintptr_t)bar);
		gfutex_wait(&bar->leaving, l, -1);
	}
}
