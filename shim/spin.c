/* shim/spin.c - pthread_spin_lock.
 *
 * A G that spins in glibc's pthread_spin_lock never gives up its M: at
 * GOMAXPROCS=1, if the holder is a G that was switched out while holding
 * the lock (it called sched_yield, or a blocking call parked it), the
 * spinner spins forever.  Only the lock operation can wait, so only it is
 * interposed; glibc's init, trylock, unlock and destroy stay, and ours
 * must be compatible with them on the same word.
 *
 * glibc's encoding is per architecture.  x86_64 (sysdeps/x86_64/nptl):
 * init and unlock store 1 (free), lock is `lock decl` and owns the lock
 * when the result is 0, trylock CASes 1 -> 0.  The generic code (most
 * other arches) uses 0 free, 1 locked.  Rather than hard-code either, the
 * free and locked values are learnt from glibc itself on first use: what
 * pthread_spin_init stores, then what pthread_spin_trylock leaves.
 * Acquiring is then CAS(free -> locked), which is exactly glibc's
 * trylock, so any mix of our lock and glibc's trylock/unlock agrees.
 * (A word that glibc's own decl-based lock drove negative is treated as
 * held until an unlock stores free; nothing calls glibc's lock while we
 * interpose it.)
 *
 * Waiting: test-and-test-and-set, spinning ~100 rounds of `pause` (a few
 * microseconds: a holder on another CPU usually finishes a spin-lock
 * critical section in that time), then yielding between attempts, twice
 * over: a G first yields its P (g_yield: the holder may be a G queued on
 * this P, e.g. one that called sched_yield inside its critical section),
 * then everyone yields the CPU (sched_yield(2)): the holder may be a
 * thread that is not a G, or a G whose M the kernel has preempted, and
 * g_yield returns at once when this P has nothing else to run, so
 * without the real yield a spinner could burn its whole time slice while
 * the holder waits for the CPU.  At GOMAXPROCS=1 a G does not spin at all: the holder,
 * if a G, cannot be running while we are.
 *
 * Orders: the winning CAS is acquire; it pairs with unlock's store of the
 * free value (glibc's plain `movl`, a release store on x86's TSO; an
 * atomic release store in the generic code).
 *
 * Rejected: parking on a gfutex (unlock is glibc's plain store and wakes
 * nobody, so a parked spinner would sleep forever; interposing unlock as
 * well would still miss programs that inline it); yielding without the
 * initial spin (each yield is a trip through the scheduler, slow for
 * the short critical sections spin locks are for).
 */
#include <sched.h>
#include "shim.h"

#define SPIN_TRIES 100

/* glibc's values, free << 32 | locked (as 32-bit patterns); 0 = not yet
 * learnt (free != locked, so a learnt pair is never 0).  Relaxed: one
 * atomic word, and every thread that computes it computes the same. */
static _Atomic uint64_t spin_enc;

static uint64_t spin_learn(void)
{
	pthread_spinlock_t probe;
	uint32_t freev, lockedv;
	uint64_t e;

	pthread_spin_init(&probe, PTHREAD_PROCESS_PRIVATE);
	freev = (uint32_t)probe;
	if (pthread_spin_trylock(&probe) != 0)
		rt_fatal("pthread_spin_trylock fails on a fresh lock");
	lockedv = (uint32_t)probe;
	if (freev == lockedv)
		rt_fatal("glibc's spin lock encodes free and locked alike");
	e = (uint64_t)freev << 32 | lockedv;
	atomic_store_explicit(&spin_enc, e, memory_order_relaxed);
	return e;
}

static inline bool spin_try(_Atomic int *w, int freev, int lockedv)
{
	int e = freev;

	/* Test first: no cache-line ping-pong while it is held.  Acquire on
	 * success: pairs with unlock's store of freev. */
	return atomic_load_explicit(w, memory_order_relaxed) == freev &&
	       atomic_compare_exchange_strong_explicit(w, &e, lockedv,
	               memory_order_acquire, memory_order_relaxed);
}

/* Slow path: never parks; spins, then yields the P and the CPU. */
static void spin_wait(_Atomic int *w, int freev, int lockedv)
{
	g_t *g = shim_self();
	int spins = !g || sched_gomaxprocs() > 1 ? SPIN_TRIES : 0;
	int i;

	for (;;) {
		for (i = 0; i < spins; i++) {
			arch_relax();
			if (spin_try(w, freev, lockedv))
				return;
		}
		if (g) {
			g_yield();
			if (spin_try(w, freev, lockedv))
				return;
		}
		os_sched_yield();
		if (spin_try(w, freev, lockedv))
			return;
	}
}

SHIM_EXPORT int pthread_spin_lock(pthread_spinlock_t *lock)
{
	/* pthread_spinlock_t is a volatile int; we access it atomically. */
	_Atomic int *w = (_Atomic int *)(uintptr_t)lock;
	uint64_t enc = atomic_load_explicit(&spin_enc, memory_order_relaxed);
	int freev, lockedv, e;

	if (__builtin_expect(enc == 0, 0))
		enc = spin_learn();
	freev = (int)(uint32_t)(enc >> 32);
	lockedv = (int)(uint32_t)enc;
	/* Fast path.  Acquire: as in spin_try. */
	e = freev;
	if (atomic_compare_exchange_strong_explicit(w, &e, lockedv,
	        memory_order_acquire, memory_order_relaxed))
		return 0;
	spin_wait(w, freev, lockedv);
	return 0;
}
