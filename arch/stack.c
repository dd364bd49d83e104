/* arch/stack.c - G stacks: allocation, guard pages, cache.
 *
 * Why this file exists
 * --------------------
 * A G runs C code, and C stacks cannot grow or move: the runtime must hand
 * every G a stack as large as the thread it impersonates would have had
 * (pthread_attr_setstacksize, or glibc's default derived from
 * RLIMIT_STACK, typically 8 MiB).  Virtual space for that is cheap on
 * x86_64 (only touched pages cost memory), but mappings are not: the kernel caps a process at vm.max_map_count VMAs (65530 by
 * default), and a stack with a guard page costs two (the PROT_NONE guard
 * and the stack itself).  glibc therefore tops out at ~32k threads with
 * default attributes; gshim must run 100k (docs/design.md, "Hazards").
 *
 * Policy
 * ------
 * Guards are a budget, not a rule.  stack_sys_init reads max_map_count once
 * and allows max_map_count/4 guarded stacks (16382 by default), i.e. half
 * of the VMA limit, leaving the other half to the program and its
 * libraries.  While under budget, a request with guard > 0 gets a mapping
 * of its own, guard mprotect'ed at the bottom (STACK_OWNED|STACK_GUARDED):
 * exactly what glibc would give, so ordinary programs see ordinary
 * overflow behaviour (SIGSEGV in the guard).  Past the budget, and for
 * every guard == 0 request, stacks are carved from chunks: one mmap
 * holding several same-size stacks back to back (STACK_OWNED|STACK_CHUNK,
 * guard 0).  Adjacent anonymous mappings with identical protection and
 * flags merge, so thousands of chunk stacks cost a handful of VMAs.
 *
 * A chunk is ceil(64 MiB / size) stacks, at least 4 (1024 stacks of 64 KiB,
 * 8 of 8 MiB): small stacks amortise the mmap, big ones do not reserve
 * absurd ranges.  If the chunk cannot be mapped (RLIMIT_AS, say) we retry
 * with one stack before giving up with EAGAIN.  Chunk stacks are never
 * unmapped: a freed one goes back to its size's free list.  Slots of a
 * fresh chunk are handed out by bumping a cursor (bucket.carve_*), so
 * mapping a chunk touches none of its pages.
 *
 * Guard markers.  Since Linux 6.13, madvise(MADV_GUARD_INSTALL) turns
 * pages of an anonymous mapping into guard pages without splitting it:
 * an access faults with SIGSEGV, as in a PROT_NONE page, but the VMA is
 * not split.  stack_init_once probes for it.  Where it works, a guarded
 * request past the budget gets a chunk slot of guard + size bytes whose
 * guard is marked when the slot is first carved (one madvise per slot,
 * kept while the slot is cached and reused; STACK_CHUNK|STACK_GUARDED,
 * in a (size, guard) chunk bucket of its own).  So past 16k threads a
 * program still gets real guards, and no canary: the canary is read at
 * every switch, and reading the bottom page of an 8 MiB stack maps it
 * (a fault, and a page-table page of its own: stacks in a chunk are 2 MiB
 * aligned, so the top of one and the bottom of the next never share one).
 * With 60,000 threads on a condvar that read was half the faults, 40% of
 * the page tables and most of the wake-up time on a host where faults are
 * dear.  Slots of guard + size bytes also put each guard beside the
 * previous stack's top page, mostly inside the same page-table page.
 * GSHIM_DEBUG=noguardmarkers=1 turns markers off (the canary as before).
 *
 * Prefault.  A fresh stack's top page is mapped by stack_alloc with one
 * madvise(MADV_POPULATE_WRITE) instead of a fault on the G's first write
 * (its context): where exceptions are dear (a PVM guest: ~15-30 us a
 * fault, ~4 us the call) that is a fault less per thread; elsewhere the
 * two cost about the same.  Only the top page: a second one is not
 * touched by most threads and would be 4 KiB of RSS each.  Reused stacks
 * are resident already.
 *
 * Unguarded stacks overflow silently into their neighbour.  The canary
 * (STACK_CANARY_BYTES of a fixed pattern at lo, checked by the scheduler
 * when a G switches out) turns that into a fatal error at the next switch
 * rather than a mystery later; it cannot undo the damage.  That is the
 * price of 100k threads; a program that wants guards everywhere should
 * create fewer threads.
 *
 * Cache
 * -----
 * Freed owned stacks go to a LIFO per exact (usable size, guard) bucket,
 * so create/exit/create costs no system call and reuses warm pages (LIFO:
 * the most recently used stack is the most likely to still be in cache
 * and TLB).  The free-list link lives in the idle stack itself, in its top
 * 16 bytes, which the previous G certainly touched: pushing faults nothing
 * in and needs no malloc.  No madvise(MADV_DONTNEED) on free: that is a
 * syscall plus refaults on the next create, the exact cost the cache is
 * there to avoid.
 *
 * Guarded stacks are capped: at most STACK_CACHE_MAX (64) cached in total
 * and at most STACK_CACHE_BYTES (512 MiB = 64 default 8 MiB stacks) of
 * virtual space; a guarded stack freed beyond that is munmap'ed, which
 * also returns its slot in the guard budget.  Chunk stacks are uncapped
 * (they cannot be unmapped individually without splitting the chunk's
 * VMA, which is the thing we are avoiding).
 *
 * Buckets live in a fixed open-addressing table (STACK_NBUCKET slots, at
 * most STACK_NBUCKET/2 used, never deleted), so lookup is O(1) expected
 * without allocation.  A program with more distinct size classes than
 * that still works: guarded stacks of a new class are simply not cached,
 * and guard == 0 stacks of a new class get a single, unchunked mapping
 * (STACK_OWNED only) that is unmapped on free.
 *
 * Statistics count stack slots: a chunk slot not yet handed out is both
 * "mapped" and "cached" (idle, reusable without a system call).
 *
 * Locking
 * -------
 * One test-and-test-and-set spinlock (stack_lock) protects every global
 * below.  It is held only for list and counter updates -- never across
 * mmap/mprotect/munmap -- so spinning is cheaper than a futex round trip;
 * after a short spin it yields with the raw sched_yield syscall in case
 * the holder's M was descheduled.  No pthread_* calls: this is below the
 * layer that implements them.  Not async-signal-safe (a handler that
 * interrupts a holder would spin forever); nobody calls it from one.
 *
 * Rejected alternatives
 * ---------------------
 *  - A guard page per stack always: 2 VMAs per thread, ~32k threads max.
 *  - Chunks with a guard between every stack: still 2 VMAs per stack
 *    (the guards split the chunk), no gain.
 *  - MAP_GROWSDOWN: one VMA each anyway, and the kernel's guard gap does
 *    not protect against large frames; glibc abandoned it for threads.
 *  - Split/segmented or copied stacks (Go's answer): needs every frame,
 *    including libc's, compiled for it, and C keeps pointers into stacks.
 *  - Raising vm.max_map_count: not ours to change.
 *  - Caching by size class (powers of two): pthread_getattr_np must
 *    report what the program asked for, and a rounded-up 8 MiB class
 *    would double the reservation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "arch/stack.h"
#include "arch.h"

#ifndef MAP_STACK
#define MAP_STACK 0
#endif

#define STACK_MIN           16384u              /* glibc's PTHREAD_STACK_MIN */
#define STACK_DEFAULT_INF   (2u << 20)          /* glibc x86_64 ARCH_STACK_DEFAULT_SIZE */
#define STACK_MAP_COUNT_DEF 65530u              /* kernel default max_map_count */
#define STACK_CHUNK_BYTES   ((size_t)64 << 20)  /* virtual space per chunk (target) */
#define STACK_CHUNK_MIN     4u                  /* stacks per chunk, at least */
#define STACK_CACHE_MAX     64u                 /* guarded stacks cached, total */
#define STACK_CACHE_BYTES   ((size_t)512 << 20) /* and their virtual space */
#define STACK_NBUCKET       128u                /* power of two; half may be used */
/* The canary is zeros: a never-touched anonymous page reads as zeros
 * from the shared zero page, so checking it costs no resident memory,
 * and a stack that was not used to within 64 bytes of its end never needs
 * it written.  A pattern would make the bottom page of every chunk stack
 * resident: 4 KiB per thread, half the cost of a thread at 100k threads.
 * An overflow writes return addresses and saved registers: not zeros. */
#define STACK_CANARY_WORD   0ull

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102                  /* Linux 6.13 */
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23                  /* Linux 5.14 */
#endif
#define STACK_PREFAULT 4096u                    /* the top page: ctx, first frames */

/* -1: MADV_POPULATE_WRITE refused (an older kernel): fault as before. */
static _Atomic int stack_populate;

/* Guard markers: 1 the kernel installs them (probed once), 0 not known
 * yet, -1 unsupported or turned off (stack_guard_markers_off). */
static _Atomic int stack_markers;

/* PROT_EXEC joins once a loaded object asks for an executable stack
 * (stack_make_executable). */
static _Atomic int stack_map_prot = PROT_READ | PROT_WRITE;
#define STACK_MAP_PROT  atomic_load_explicit(&stack_map_prot, memory_order_relaxed)
#define STACK_RWX       (PROT_READ | PROT_WRITE | PROT_EXEC)
/* Not MAP_NORESERVE: glibc maps thread stacks without it, so the kernel's
 * overcommit policy judges a stack as it would judge glibc's.  With the
 * default heuristic (vm.overcommit_memory=0) a mapping larger than RAM +
 * swap is refused - pthread_attr_setstacksize(64 TiB) is EAGAIN, as
 * natively - where MAP_NORESERVE would have let a 64 TiB stack through
 * and left half the address space to one thread.  Only touched pages cost
 * memory either way; under overcommit_memory=2 MAP_NORESERVE is ignored,
 * and RLIMIT_AS counts every mapping. */
#define STACK_MAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK)

/* Link stored in the top bytes of an idle stack (see "Cache" above). */
struct stack_node {
	struct stack_node *next;
	uintptr_t pad;           /* keeps hi = node + sizeof 16-byte aligned */
};

/* One (usable size, guard, chunk) class.  All fields: stack_lock. */
struct stack_bucket {
	size_t size;               /* 0: slot unused */
	size_t guard;              /* > 0 && !chunk: guarded cache (own mappings);
	                              > 0 && chunk: chunk slots with guard markers */
	bool chunk;                /* carved from chunks: never unmapped */
	struct stack_node *free;   /* LIFO of idle stacks */
	size_t nfree;
	uintptr_t carve_lo;        /* chunk: unused part of the newest chunk, */
	uintptr_t carve_hi;        /* [carve_lo, carve_hi), top first */
};

static _Atomic uint32_t stack_lock_word;

/* Everything below: stack_lock, except where noted. */
static struct stack_bucket stack_buckets[STACK_NBUCKET];
static size_t stack_nbuckets;
static size_t stack_cached_guarded;        /* stacks in guarded buckets */
static size_t stack_cached_guarded_bytes;  /* their size + guard */
static struct stack_stats stack_st;

/* Written once by stack_init_once (published by stack_inited, release). */
static size_t stack_pagesz;
static _Atomic int stack_inited;   /* 0 no, 1 in progress, 2 done */

/* Written by stack_default_compute / stack_set_default; relaxed atomics:
 * a reader racing with stack_set_default gets the old or the new value. */
static _Atomic size_t stack_default;

static void stack_lock(void)
{
	unsigned spins = 0;

	for (;;) {
		/* Test before test-and-set: spinning on a shared line keeps
		 * the holder's release store from bouncing it around. */
		if (!atomic_load_explicit(&stack_lock_word, memory_order_relaxed) &&
		    !atomic_exchange_explicit(&stack_lock_word, 1,
		                              memory_order_acquire))
			return;
		/* ~100 pauses cover any critical section here; past that the
		 * holder's M is probably off CPU, so give it ours. */
		if (++spins < 100)
			arch_relax();
		else
			arch_syscall(SYS_sched_yield, 0, 0, 0);
	}
}

static void stack_unlock(void)
{
	/* Pairs with the acquire exchange in stack_lock. */
	atomic_store_explicit(&stack_lock_word, 0, memory_order_release);
}

static _Noreturn void stack_fatal(const char *msg, size_t len)
{
	arch_syscall(SYS_write, 2, "gshim: fatal: ", 14);
	arch_syscall(SYS_write, 2, msg, len);
	abort();
}
#define STACK_FATAL(s) stack_fatal(s "\n", sizeof(s))

/* Read a small decimal from a /proc file without stdio or malloc. */
static size_t stack_read_proc_ulong(const char *path, size_t dflt)
{
	char buf[32];
	long fd, n;
	size_t v = 0;
	int digits = 0;

	fd = arch_syscall6(SYS_openat, AT_FDCWD, (long)path,
	                   O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		return dflt;
	n = arch_syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	arch_syscall(SYS_close, fd, 0, 0);
	for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (v > (SIZE_MAX - 9) / 10)
			return dflt;
		v = v * 10 + (size_t)(buf[i] - '0');
		digits++;
	}
	return digits ? v : dflt;
}

/* Round x up to a page; 0 on overflow (callers treat 0 as "absurd"). */
static size_t stack_round(size_t x)
{
	size_t m = stack_pagesz - 1;

	if (x > SIZE_MAX - m)
		return 0;
	return (x + m) & ~m;
}

/* glibc's rule (nptl/nptl-stack.c, __pthread_initialize_minimal): the soft
 * RLIMIT_STACK if finite, else ARCH_STACK_DEFAULT_SIZE; at least
 * PTHREAD_STACK_MIN; page-rounded.  Read once, like glibc: a program that
 * lowers RLIMIT_STACK later does not change its threads' default. */
static size_t stack_default_compute(void)
{
	struct rlimit rl;
	size_t sz;

	if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		sz = STACK_DEFAULT_INF;
	else if (rl.rlim_cur > SIZE_MAX / 2)
		sz = STACK_DEFAULT_INF;
	else
		sz = (size_t)rl.rlim_cur;
	if (sz < STACK_MIN)
		sz = STACK_MIN;
	return stack_round(sz);
}

static void stack_init_once(void);

/* Can this kernel put guard markers in an anonymous mapping?  One page
 * marked in a two-page scratch mapping says. */
static void stack_markers_probe(void)
{
	int want = 0;
	long p = arch_syscall6(SYS_mmap, 0, (long)(2 * stack_pagesz), PROT_READ | PROT_WRITE,
	                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool ok = p > 0 &&   /* errors are -4095..-1 */
	          arch_syscall(SYS_madvise, p, (long)stack_pagesz, MADV_GUARD_INSTALL) == 0;

	if (p > 0)
		arch_syscall(SYS_munmap, p, (long)(2 * stack_pagesz), 0);
	/* Unless stack_guard_markers_off came first. */
	atomic_compare_exchange_strong_explicit(&stack_markers, &want, ok ? 1 : -1,
	                                        memory_order_relaxed, memory_order_relaxed);
}

void stack_guard_markers_off(void)
{
	atomic_store_explicit(&stack_markers, -1, memory_order_relaxed);
}

bool stack_guard_markers(void)
{
	stack_init_once();
	return atomic_load_explicit(&stack_markers, memory_order_relaxed) > 0;
}

static void stack_init_once(void)
{
	int want = 0;

	/* Fast path: already done.  Acquire pairs with the release below so
	 * stack_pagesz, the budget and the default are visible. */
	if (atomic_load_explicit(&stack_inited, memory_order_acquire) == 2)
		return;
	if (!atomic_compare_exchange_strong_explicit(&stack_inited, &want, 1,
	                memory_order_acquire, memory_order_acquire)) {
		while (atomic_load_explicit(&stack_inited,
		                            memory_order_acquire) != 2)
			arch_relax();
		return;
	}
	long ps = sysconf(_SC_PAGESIZE);
	stack_pagesz = ps > 0 ? (size_t)ps : 4096;
	size_t maps = stack_read_proc_ulong("/proc/sys/vm/max_map_count",
	                                    STACK_MAP_COUNT_DEF);
	size_t dflt = stack_default_compute();
	size_t expect = 0;
	/* stack_set_default may have run first (GSHIM_STACK_SIZE parsed
	 * before anything else): keep its value. */
	atomic_compare_exchange_strong_explicit(&stack_default, &expect, dflt,
	                memory_order_relaxed, memory_order_relaxed);
	stack_lock();
	stack_st.guard_budget = maps / 4;
	stack_unlock();
	stack_markers_probe();
	atomic_store_explicit(&stack_inited, 2, memory_order_release);
}

void stack_sys_init(void)
{
	stack_init_once();
}

size_t stack_page_size(void)
{
	stack_init_once();
	return stack_pagesz;
}

size_t stack_default_size(void)
{
	stack_init_once();
	return atomic_load_explicit(&stack_default, memory_order_relaxed);
}

/* Override the default (GSHIM_STACK_SIZE).  Rounded up to a page and to at
 * least PTHREAD_STACK_MIN; 0 or an unroundable size is ignored. */
void stack_set_default(size_t size)
{
	size_t sz;

	stack_init_once();
	if (size == 0)
		return;
	if (size < STACK_MIN)
		size = STACK_MIN;
	sz = stack_round(size);
	if (sz)
		atomic_store_explicit(&stack_default, sz, memory_order_relaxed);
}

/* Find or create the bucket for (size, guard, chunk).  stack_lock must be
 * held.  NULL when the table is full (see "Buckets" above). */
static struct stack_bucket *stack_bucket(size_t size, size_t guard, bool chunk, bool create)
{
	size_t h = (size / stack_pagesz) * 0x9e3779b97f4a7c15ull ^
	           (guard / stack_pagesz + chunk) * 0xc2b2ae3d27d4eb4full;
	size_t i = (h ^ (h >> 29)) & (STACK_NBUCKET - 1);

	/* Terminates: at most half the slots are ever used. */
	for (;; i = (i + 1) & (STACK_NBUCKET - 1)) {
		struct stack_bucket *b = &stack_buckets[i];
		if (b->size == size && b->guard == guard && b->chunk == chunk)
			return b;
		if (b->size == 0) {
			if (!create || stack_nbuckets >= STACK_NBUCKET / 2)
				return NULL;
			stack_nbuckets++;
			b->size = size;
			b->guard = guard;
			b->chunk = chunk;
			return b;
		}
	}
}

/* Map the top STACK_PREFAULT bytes of a fresh stack in one system call
 * (see "Prefault" above).  Failure only means the G faults them in. */
static void stack_prefault(const gstack_t *s)
{
	size_t len = STACK_PREFAULT < s->hi - s->lo ? STACK_PREFAULT : s->hi - s->lo;

	if (atomic_load_explicit(&stack_populate, memory_order_relaxed) < 0)
		return;
	if (arch_syscall(SYS_madvise, (long)(s->hi - len), (long)len, MADV_POPULATE_WRITE) == -EINVAL)
		atomic_store_explicit(&stack_populate, -1, memory_order_relaxed);   /* before 5.14 */
}

/* A chunk stack's guard: markers (MADV_GUARD_INSTALL) on the `guard` bytes
 * below lo.  Called once per slot, when it is first carved, without
 * stack_lock; the slot has never been touched. */
static bool stack_mark(const gstack_t *s)
{
	return arch_syscall(SYS_madvise, (long)(s->lo - s->guard), (long)s->guard,
	                    MADV_GUARD_INSTALL) == 0;
}

/* Pop an idle stack.  stack_lock must be held.  O(1).  *fresh: a slot
 * never handed out before (its guard markers are still to be installed). */
static bool stack_bucket_pop(struct stack_bucket *b, gstack_t *s, bool *fresh)
{
	struct stack_node *n = b->free;
	uintptr_t hi;

	*fresh = false;
	if (n) {
		b->free = n->next;
		b->nfree--;
		hi = (uintptr_t)(n + 1);
	} else if (b->carve_hi > b->carve_lo) {
		hi = b->carve_hi;
		b->carve_hi -= b->size + b->guard;
		*fresh = true;
	} else {
		return false;
	}
	s->hi = hi;
	s->lo = hi - b->size;
	s->guard = b->guard;
	s->flags = STACK_OWNED | (b->chunk ? STACK_CHUNK : 0) | (b->guard ? STACK_GUARDED : 0);
	stack_st.cached--;
	if (b->guard && !b->chunk) {
		stack_cached_guarded--;
		stack_cached_guarded_bytes -= b->size + b->guard;
	}
	return true;
}

/* Push an idle stack.  stack_lock must be held.  Writes its top 16 bytes. */
static void stack_bucket_push(struct stack_bucket *b, const gstack_t *s)
{
	struct stack_node *n = (struct stack_node *)s->hi - 1;

	n->next = b->free;
	b->free = n;
	b->nfree++;
	stack_st.cached++;
	if (b->guard && !b->chunk) {
		stack_cached_guarded++;
		stack_cached_guarded_bytes += b->size + b->guard;
	}
}

static void *stack_mmap(size_t len)
{
	void *p = mmap(NULL, len, STACK_MAP_PROT, STACK_MAP_FLAGS, -1, 0);

	stack_lock();
	stack_st.mmaps++;
	stack_unlock();
	return p == MAP_FAILED ? NULL : p;
}

/* Slow path: a fresh guarded mapping.  The caller has reserved a slot in
 * the guard budget (stack_st.guarded_live).  Returns 0, or EAGAIN after
 * giving the slot back; on mprotect failure (the VMA limit reached earlier
 * than max_map_count/4 predicted: the program maps a lot itself) it also
 * shrinks the budget so the next requests go straight to chunks. */
static int stack_alloc_guarded(gstack_t *s, size_t size, size_t guard)
{
	char *p = stack_mmap(size + guard);

	if (p && mprotect(p, guard, PROT_NONE) == 0) {
		stack_lock();
		stack_st.mapped++;
		stack_unlock();
		s->lo = (uintptr_t)p + guard;
		s->hi = s->lo + size;
		s->guard = guard;
		s->flags = STACK_OWNED | STACK_GUARDED;
		return 0;
	}
	stack_lock();
	stack_st.guarded_live--;
	if (p)
		stack_st.guard_budget = stack_st.guarded_live;
	stack_unlock();
	if (p)
		munmap(p, size + guard);
	return EAGAIN;
}

/* Slow path: map a chunk for bucket b's size (slots of b->size +
 * b->guard bytes) and take its top stack.  Called without stack_lock; b
 * may be NULL (table full): then a single, unchunked stack without guard
 * that stack_free will unmap. */
static int stack_alloc_chunk(gstack_t *s, struct stack_bucket *b, size_t size)
{
	size_t guard = b ? b->guard : 0, slot = size + guard;   /* no overflow: stack_alloc */
	size_t n = STACK_CHUNK_MIN, len;
	char *p = NULL;

	if (b && slot < STACK_CHUNK_BYTES / STACK_CHUNK_MIN)
		n = (STACK_CHUNK_BYTES + slot - 1) / slot;
	if (!b || __builtin_mul_overflow(n, slot, &len))
		n = 1;
	if (n > 1) {
		len = n * slot;
		p = stack_mmap(len);
	}
	if (!p) {
		/* Maybe only the chunk did not fit (RLIMIT_AS, a huge size):
		 * the thread asked for one stack, try for one. */
		n = 1;
		p = stack_mmap(slot);
	}
	if (!p)
		return EAGAIN;

	uintptr_t lo = (uintptr_t)p, hi = lo + n * slot;
	uintptr_t old_lo = 0, old_hi = 0;

	s->hi = hi;
	s->lo = hi - size;
	s->guard = guard;
	s->flags = STACK_OWNED | (b ? STACK_CHUNK : 0) | (guard ? STACK_GUARDED : 0);
	stack_lock();
	stack_st.mapped += n;
	if (b) {
		/* Another thread may have installed a chunk while we mapped
		 * ours: keep whichever has more left, unmap the other's
		 * untouched remainder (never handed out, so no one holds it). */
		size_t ours = n - 1;
		size_t theirs = (b->carve_hi - b->carve_lo) / slot;
		if (theirs < ours) {
			old_lo = b->carve_lo;
			old_hi = b->carve_hi;
			b->carve_lo = lo;
			b->carve_hi = s->lo - guard;
			stack_st.cached += ours - theirs;
			stack_st.mapped -= theirs;
		} else {
			old_lo = lo;
			old_hi = s->lo - guard;
			stack_st.mapped -= ours;
		}
	}
	stack_unlock();
	if (old_hi > old_lo)
		munmap((void *)old_lo, old_hi - old_lo);
	return 0;
}

/* stack_alloc without the prefault.  *fresh: s was never handed out
 * before (a new mapping, or a slot carved for the first time). */
static int stack_alloc_slot(gstack_t *s, size_t size, size_t guard, bool *fresh)
{
	struct stack_bucket *b;

	stack_init_once();
	if (size == 0)
		size = stack_default_size();
	/* An unroundable size or guard, or a sum that wraps, can only be a
	 * garbage attr: EINVAL.  A merely huge one is for mmap to refuse. */
	size_t rsize = stack_round(size), rguard = stack_round(guard);
	if (rsize == 0 || (guard && rguard == 0) || rsize > SIZE_MAX - rguard)
		return EINVAL;
	size = rsize;
	guard = rguard;

	stack_lock();
	if (guard) {
		/* Fast path: a cached guarded stack of this class. */
		b = stack_bucket(size, guard, false, false);
		if (b && stack_bucket_pop(b, s, fresh)) {
			stack_unlock();
			return 0;
		}
		/* Slow path: a new guarded mapping, while the budget lasts. */
		if (stack_st.guarded_live < stack_st.guard_budget) {
			stack_st.guarded_live++;
			stack_unlock();
			if (stack_alloc_guarded(s, size, guard) == 0) {
				*fresh = true;
				return 0;
			}
			stack_lock();
		}
		/* Past the budget: a chunk slot whose guard is markers. */
		if (atomic_load_explicit(&stack_markers, memory_order_relaxed) > 0 &&
		    (b = stack_bucket(size, guard, true, true))) {
			if (stack_bucket_pop(b, s, fresh)) {
				stack_unlock();
			} else {
				stack_unlock();
				if (stack_alloc_chunk(s, b, size))
					return EAGAIN;
				*fresh = true;
			}
			if (!*fresh || stack_mark(s))
				return 0;
			/* No markers after all (out of memory for page
			 * tables): this one lives on with the canary, in the
			 * unguarded class it now belongs to (stack_free finds
			 * that bucket); its guard bytes stay unused. */
			stack_lock();
			b = stack_bucket(size, 0, true, true);
			stack_unlock();
			if (!b)
				return EAGAIN;   /* the table is full: the slot is lost */
			s->guard = 0;
			s->flags = STACK_OWNED | STACK_CHUNK | STACK_CANARY;
			return 0;
		}
	}
	/* Degraded or unguarded: a chunk stack.  Only a degraded one gets
	 * the canary check: a program that asked for no guard may keep its
	 * own guard zone at the bottom (the JVM mprotects one there), and
	 * reading it would fault. */
	b = stack_bucket(size, 0, true, true);
	if (b && stack_bucket_pop(b, s, fresh)) {
		stack_unlock();
		if (guard)
			s->flags |= STACK_CANARY;
		return 0;
	}
	stack_unlock();
	{
		int err = stack_alloc_chunk(s, b, size);

		if (err)
			return err;
	}
	*fresh = true;
	if (guard)
		s->flags |= STACK_CANARY;
	return 0;
}

/* Context: any thread, not a signal handler.  Blocks: the M, in mmap, on
 * the slow paths only. */
int stack_alloc(gstack_t *s, size_t size, size_t guard)
{
	bool fresh = false;
	int err = stack_alloc_slot(s, size, guard, &fresh);

	if (err == 0 && fresh)
		stack_prefault(s);
	return err;
}

/* Context: any thread, not a signal handler.  s must come from stack_alloc
 * (or stack_user: then a no-op) and no G may be running on it. */
void stack_free(gstack_t *s)
{
	size_t size = s->hi - s->lo;
	struct stack_bucket *b;

	if (!(s->flags & STACK_OWNED))
		return;
	stack_lock();
	if (s->flags & STACK_CHUNK) {
		b = stack_bucket(size, s->guard, true, false);
		if (!b) {
			stack_unlock();
			STACK_FATAL("stack_free: chunk stack of unknown size");
		}
		stack_bucket_push(b, s);
		stack_unlock();
	} else if (s->flags & STACK_GUARDED) {
		b = NULL;
		if (stack_cached_guarded < STACK_CACHE_MAX &&
		    stack_cached_guarded_bytes + size + s->guard <= STACK_CACHE_BYTES)
			b = stack_bucket(size, s->guard, false, true);
		if (b) {
			stack_bucket_push(b, s);
			stack_unlock();
		} else {
			stack_st.guarded_live--;
			stack_st.mapped--;
			stack_unlock();
			munmap((void *)(s->lo - s->guard), size + s->guard);
		}
	} else {
		/* Unchunked fallback (bucket table was full). */
		stack_st.mapped--;
		stack_unlock();
		munmap((void *)s->lo, size);
	}
	s->lo = s->hi = 0;
	s->guard = 0;
	s->flags = 0;
}

void stack_user(gstack_t *s, void *addr, size_t size)
{
	s->lo = (uintptr_t)addr;
	s->hi = (uintptr_t)addr + size;
	s->guard = 0;
	s->flags = 0;
}

/* Only chunk stacks.  A guarded stack has a real guard, and writing its
 * canary would make its bottom page resident: 4 KiB of RSS per thread for
 * nothing.  A user stack's bottom is the program's memory, and it may
 * legitimately be using it. */
void stack_canary_set(const gstack_t *s)
{
	uint64_t *w = (uint64_t *)s->lo;

	if (!(s->flags & STACK_CANARY))
		return;
	/* Write only if needed: reading keeps the page non-resident. */
	for (size_t i = 0; i < STACK_CANARY_BYTES / sizeof(*w); i++)
		if (w[i] != STACK_CANARY_WORD)
			w[i] = STACK_CANARY_WORD;
}

bool stack_canary_ok(const gstack_t *s)
{
	const volatile uint64_t *w = (const volatile uint64_t *)s->lo;

	if (!(s->flags & STACK_CANARY))
		return true;
	for (size_t i = 0; i < STACK_CANARY_BYTES / sizeof(*w); i++)
		if (w[i] != STACK_CANARY_WORD)
			return false;
	return true;
}

void stack_get_stats(struct stack_stats *st)
{
	stack_init_once();
	stack_lock();
	*st = stack_st;
	stack_unlock();
}

/* Executable stacks.  An object with PT_GNU_STACK PF_X (or none) makes
 * glibc give every thread stack execute permission, existing ones
 * included (nested-function trampolines live on the stack).  glibc only
 * knows its own stacks; the caller (shim/dl.c) tells us, and this makes
 * the future mappings and the idle cached ones executable;
 * stack_set_exec does the ones in use.  A stack mapped by a thread
 * creation racing with the dlopen itself may miss it. */
void stack_make_executable(void)
{
	size_t i;

	stack_init_once();
	if (atomic_exchange_explicit(&stack_map_prot, STACK_RWX,
	                             memory_order_relaxed) == STACK_RWX)
		return;
	stack_lock();
	for (i = 0; i < STACK_NBUCKET; i++) {
		struct stack_bucket *b = &stack_buckets[i];
		struct stack_node *n;

		if (!b->size)
			continue;
		for (n = b->free; n; n = n->next)
			mprotect((char *)(n + 1) - b->size, b->size, STACK_RWX);
		if (b->carve_hi > b->carve_lo)
			mprotect((void *)b->carve_lo, b->carve_hi - b->carve_lo, STACK_RWX);
	}
	stack_unlock();
}

bool stack_is_executable(void)
{
	return atomic_load_explicit(&stack_map_prot, memory_order_relaxed) == STACK_RWX;
}

void stack_set_exec(const gstack_t *s)
{
	if ((s->flags & STACK_OWNED) && s->hi > s->lo)
		mprotect((void *)s->lo, s->hi - s->lo, STACK_RWX);
}

/* In the child of fork(): only the forking thread survives; if another
 * held stack_lock at the fork, nobody will release it. */
void stack_fork_child(void)
{
	atomic_store_explicit(&stack_lock_word, 0, memory_order_relaxed);
}
