/* arch/stack.h - G stacks: allocation, guard pages, cache.
 *
 * A stack is [lo, hi) usable memory, growing down from hi.  Below lo lies
 * `guard` bytes of PROT_NONE (0 for unguarded or user-supplied stacks).
 * The lowest STACK_CANARY_BYTES of every owned stack hold a canary pattern
 * that the scheduler checks when a G switches out (see stack_canary_ok):
 * this catches overflows on stacks that have no guard page.
 *
 * Context: any thread; internally locked.  Never touches TLS-cached state
 * and never calls an interposed symbol.
 */
#ifndef GSHIM_ARCH_STACK_H
#define GSHIM_ARCH_STACK_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define STACK_CANARY_BYTES 64

enum {
	STACK_OWNED   = 1u << 0,   /* gshim mapped it and may cache/unmap it */
	STACK_GUARDED = 1u << 1,   /* has a guard: its own PROT_NONE mapping, or
	                              (with STACK_CHUNK) guard markers */
	STACK_CHUNK   = 1u << 2,   /* carved from a shared chunk mapping */
	STACK_CANARY  = 1u << 3,   /* a guard was asked for but not given:
	                              the zero canary stands in for it */
};

typedef struct gstack {
	uintptr_t lo;        /* lowest usable byte */
	uintptr_t hi;        /* one past the highest usable byte */
	size_t    guard;     /* PROT_NONE bytes directly below lo */
	unsigned  flags;
} gstack_t;

/* One-time set-up: page size, vm.max_map_count -> guard budget. */
void stack_sys_init(void);

/* Allocate a stack of at least `size` usable bytes with at least `guard`
 * guard bytes (rounded up to pages); size 0 means stack_default_size().
 * Served from the cache when possible.
 * Returns 0, or EAGAIN when the memory cannot be had (what pthread_create
 * returns).  May degrade `guard` to 0 once the guard budget is spent. */
int stack_alloc(gstack_t *s, size_t size, size_t guard);

/* Guard markers (MADV_GUARD_INSTALL, Linux 6.13): guarded stacks past the
 * guard budget are chunk slots with a real guard instead of a canary.
 * stack_guard_markers: in use; stack_guard_markers_off: never use them
 * (GSHIM_DEBUG=noguardmarkers=1; call before the first stack_alloc). */
bool stack_guard_markers(void);
void stack_guard_markers_off(void);

/* Give back a stack from stack_alloc (to the cache, or unmap). */
void stack_free(gstack_t *s);

/* Describe a user-supplied stack (pthread_attr_setstack): not owned. */
void stack_user(gstack_t *s, void *addr, size_t size);

/* Write / check the canary at the bottom of an owned stack. */
void stack_canary_set(const gstack_t *s);
bool stack_canary_ok(const gstack_t *s);

/* Is addr inside the guard area of s? (for the SIGSEGV handler) */
static inline bool stack_in_guard(const gstack_t *s, uintptr_t addr)
{
	return s->guard && addr < s->lo && addr >= s->lo - s->guard;
}

/* Default stack size: glibc's rule (RLIMIT_STACK if finite, else 2 MiB,
 * at least PTHREAD_STACK_MIN), unless GSHIM_STACK_SIZE overrides it via
 * stack_set_default. */
size_t stack_default_size(void);
void stack_set_default(size_t size);
size_t stack_page_size(void);

/* Executable stacks (an execstack object was loaded): from now on, and
 * for the idle cached stacks; stack_set_exec for one stack in use. */
void stack_make_executable(void);
bool stack_is_executable(void);
void stack_set_exec(const gstack_t *s);

/* In a fork() child: release the allocator lock, which a thread that no
 * longer exists may have held at the fork. */
void stack_fork_child(void);

/* Statistics for tests and schedtrace. */
struct stack_stats {
	size_t mapped;        /* stacks currently mapped (live + cached) */
	size_t cached;        /* stacks in the cache */
	size_t guarded_live;  /* guarded stacks mapped */
	size_t guard_budget;  /* max guarded stacks (from vm.max_map_count) */
	size_t mmaps;         /* mmap calls made for stacks so far */
};
void stack_get_stats(struct stack_stats *st);

#endif
