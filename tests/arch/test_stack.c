/* tests/arch/test_stack.c - arch/stack.c: default size, cache, guards,
 * canary, the guard budget, concurrency, errors.
 *
 * Criterion runs every test in a process of its own, so each starts with
 * the allocator uninitialised and may change its own rlimits. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "arch/stack.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static size_t count_maps(void)
{
	char buf[65536];
	size_t lines = 0;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY);

	cr_assert(fd >= 0);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(fd);
	return lines;
}

static size_t max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	unsigned long v = 65530;

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

/* Protection of the mapping that contains addr, from /proc/self/maps. */
static void maps_prot(uintptr_t addr, char prot[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];

	cr_assert(f);
	strcpy(prot, "????");
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char p[5];
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 &&
		    addr >= lo && addr < hi) {
			memcpy(prot, p, 5);
			break;
		}
	}
	fclose(f);
}

static void set_stack_rlimit(rlim_t cur)
{
	struct rlimit rl;

	cr_assert_eq(getrlimit(RLIMIT_STACK, &rl), 0);
	if (cur == RLIM_INFINITY && rl.rlim_max != RLIM_INFINITY)
		cr_skip_test("hard RLIMIT_STACK is finite");
	rl.rlim_cur = cur;
	cr_assert_eq(setrlimit(RLIMIT_STACK, &rl), 0);
}

/* ---- default size ---------------------------------------------------- */

Test(stack_default, follows_rlimit_stack_rounded_to_page)
{
	set_stack_rlimit(3 * MiB + 100);
	cr_assert_eq(stack_default_size(), 3 * MiB + page());

	gstack_t s;
	cr_assert_eq(stack_alloc(&s, 0, page()), 0);
	cr_assert_eq(s.hi - s.lo, 3 * MiB + page());
	stack_free(&s);
}

Test(stack_default, unlimited_rlimit_gives_2mib)
{
	set_stack_rlimit(RLIM_INFINITY);
	cr_assert_eq(stack_default_size(), 2 * MiB);
}

Test(stack_default, tiny_rlimit_gives_pthread_stack_min)
{
	set_stack_rlimit(4096);
	cr_assert_eq(stack_default_size(), 16384);
}

Test(stack_default, set_default_overrides_and_rounds)
{
	stack_set_default(100000);
	cr_assert_eq(stack_default_size(), (100000 + page() - 1) / page() * page());
	stack_set_default(1);
	cr_assert_eq(stack_default_size(), 16384);
	stack_set_default(0);       /* ignored */
	cr_assert_eq(stack_default_size(), 16384);
}

Test(stack_default, set_default_before_init_survives_init)
{
	stack_set_default(5 * MiB);
	stack_sys_init();
	cr_assert_eq(stack_default_size(), 5 * MiB);
}

/* ---- cache ----------------------------------------------------------- */

Test(stack_cache, alloc_free_alloc_reuses_without_mmap)
{
	struct stack_stats st0, st1, st2;
	gstack_t a, b;

	stack_sys_init();
	cr_assert_eq(stack_alloc(&a, 256 * KiB, page()), 0);
	cr_assert_eq(a.flags, STACK_OWNED | STACK_GUARDED);
	cr_assert_eq(a.guard, page());
	uintptr_t lo = a.lo;
	stack_get_stats(&st0);
	cr_assert_eq(st0.cached, 0);
	cr_assert_eq(st0.guarded_live, 1);
	stack_free(&a);
	stack_get_stats(&st1);
	cr_assert_eq(st1.cached, 1);
	cr_assert_eq(st1.mapped, st0.mapped);
	cr_assert_eq(stack_alloc(&b, 256 * KiB, page()), 0);
	stack_get_stats(&st2);
	cr_assert_eq(b.lo, lo, "LIFO cache must hand back the same stack");
	cr_assert_eq(b.flags, STACK_OWNED | STACK_GUARDED);
	cr_assert_eq(st2.mmaps, st0.mmaps, "no mmap on a cache hit");
	cr_assert_eq(st2.cached, 0);
	stack_free(&b);
}

Test(stack_cache, buckets_are_exact_size_and_guard)
{
	struct stack_stats st0, st1;
	gstack_t a, b, c;

	cr_assert_eq(stack_alloc(&a, 128 * KiB, page()), 0);
	stack_free(&a);
	stack_get_stats(&st0);
	/* Different size, and different guard: both must miss the cache. */
	cr_assert_eq(stack_alloc(&b, 192 * KiB, page()), 0);
	cr_assert_eq(stack_alloc(&c, 128 * KiB, 2 * page()), 0);
	stack_get_stats(&st1);
	cr_assert_eq(st1.mmaps, st0.mmaps + 2);
	cr_assert_eq(st1.cached, 1);
	cr_assert_eq(b.hi - b.lo, 192 * KiB);
	cr_assert_eq(c.guard, 2 * page());
	stack_free(&b);
	stack_free(&c);
}

Test(stack_cache, guarded_cache_is_capped)
{
	enum { N = 100 };
	static gstack_t s[N];
	struct stack_stats st;

	for (int i = 0; i < N; i++)
		cr_assert_eq(stack_alloc(&s[i], 64 * KiB, page()), 0);
	stack_get_stats(&st);
	cr_assert_eq(st.guarded_live, N);
	for (int i = 0; i < N; i++)
		stack_free(&s[i]);
	stack_get_stats(&st);
	cr_assert_eq(st.cached, 64);
	cr_assert_eq(st.guarded_live, 64, "stacks past the cap are unmapped");
	cr_assert_eq(st.mapped, 64);
}

Test(stack_cache, chunk_stacks_share_one_mmap_and_come_back)
{
	enum { N = 10 };
	gstack_t s[N];
	struct stack_stats st0, st1;

	stack_sys_init();
	stack_get_stats(&st0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(stack_alloc(&s[i], 64 * KiB, 0), 0);
		cr_assert_eq(s[i].flags, STACK_OWNED | STACK_CHUNK);
		cr_assert_eq(s[i].guard, 0);
		cr_assert_eq(s[i].hi - s[i].lo, 64 * KiB);
		if (i)   /* carved back to back, top first */
			cr_assert_eq(s[i].hi, s[i - 1].lo);
	}
	stack_get_stats(&st1);
	cr_assert_eq(st1.mmaps, st0.mmaps + 1);
	uintptr_t last = s[N - 1].lo;
	for (int i = 0; i < N; i++)
		stack_free(&s[i]);
	gstack_t t;
	cr_assert_eq(stack_alloc(&t, 64 * KiB, 0), 0);
	cr_assert_eq(t.lo, last, "freed chunk stack is reused LIFO");
	stack_get_stats(&st1);
	cr_assert_eq(st1.mmaps, st0.mmaps + 1);
}

/* ---- guard page ------------------------------------------------------ */

static sigjmp_buf guard_jmp;
static volatile uintptr_t guard_fault_addr;

static void guard_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	guard_fault_addr = (uintptr_t)si->si_addr;
	siglongjmp(guard_jmp, 1);
}

Test(stack_guard, guard_is_prot_none_and_stack_writable_end_to_end)
{
	gstack_t s;
	char prot[5];

	cr_assert_eq(stack_alloc(&s, 256 * KiB, 2 * page()), 0);
	cr_assert_eq(s.guard, 2 * page());
	cr_assert(stack_in_guard(&s, s.lo - 1));
	cr_assert(stack_in_guard(&s, s.lo - s.guard));
	cr_assert(!stack_in_guard(&s, s.lo));
	cr_assert(!stack_in_guard(&s, s.lo - s.guard - 1));

	memset((void *)s.lo, 0xa5, s.hi - s.lo);
	cr_assert_eq(((volatile unsigned char *)s.hi)[-1], 0xa5);
	cr_assert_eq(((volatile unsigned char *)s.lo)[0], 0xa5);

	maps_prot(s.lo - 1, prot);
	cr_assert_str_eq(prot, "---p");
	maps_prot(s.lo - s.guard, prot);
	cr_assert_str_eq(prot, "---p");
	maps_prot(s.lo, prot);
	cr_assert_str_eq(prot, "rw-p");

	struct sigaction sa = { .sa_sigaction = guard_segv,
	                        .sa_flags = SA_SIGINFO | SA_NODEFER };
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	if (sigsetjmp(guard_jmp, 1) == 0) {
		((volatile char *)s.lo)[-1] = 1;
		cr_assert_fail("write into the guard did not fault");
	}
	cr_assert_eq(guard_fault_addr, s.lo - 1);
	stack_free(&s);
}

Test(stack_guard, guard_fault_kills_a_child)
{
	gstack_t s;
	int status;

	cr_assert_eq(stack_alloc(&s, 64 * KiB, page()), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		((volatile char *)s.lo)[-(long)page()] = 1;
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
}

/* ---- canary ---------------------------------------------------------- */

/* A stack that asked for no guard gets no canary check either: the
 * program may keep its own guard zone there (the JVM does). */
Test(stack_canary, not_checked_when_no_guard_was_asked)
{
	gstack_t s;

	cr_assert_eq(stack_alloc(&s, 64 * KiB, 0), 0);
	cr_assert(s.flags & STACK_CHUNK);
	cr_assert(!(s.flags & STACK_CANARY));
	((volatile char *)s.lo)[0] = 0x5a;
	cr_assert(stack_canary_ok(&s));
	((volatile char *)s.lo)[0] = 0;
	stack_free(&s);
}

Test(stack_canary, detects_overwrite_on_unguarded_stack)
{
	gstack_t s;

	cr_assert_eq(stack_alloc(&s, 64 * KiB, 0), 0);
	cr_assert(s.flags & STACK_CHUNK);
	s.flags |= STACK_CANARY;   /* as for a degraded guarded request */
	stack_canary_set(&s);
	cr_assert(stack_canary_ok(&s));
	memset((void *)(s.lo + STACK_CANARY_BYTES), 0, 4096); /* above it: fine */
	cr_assert(stack_canary_ok(&s));
	((volatile char *)s.lo)[STACK_CANARY_BYTES - 1] ^= 1;
	cr_assert(!stack_canary_ok(&s));
	stack_canary_set(&s);
	cr_assert(stack_canary_ok(&s));
	((volatile char *)s.lo)[0] = 0x5a;   /* what an overflow writes */
	cr_assert(!stack_canary_ok(&s));
	stack_free(&s);
}

/* A guarded stack has a real guard page: no canary, so its bottom page is
 * never made resident (4 KiB per thread saved). */
Test(stack_canary, guarded_stack_has_no_canary)
{
	gstack_t s;

	cr_assert_eq(stack_alloc(&s, 64 * KiB, page()), 0);
	cr_assert(s.flags & STACK_GUARDED);
	stack_canary_set(&s);
	((volatile char *)s.lo)[7] ^= 0x40;
	cr_assert(stack_canary_ok(&s));
	stack_free(&s);
}

Test(stack_canary, user_stack_is_not_touched)
{
	static char mem[8192];
	gstack_t s;

	memset(mem, 0x11, sizeof mem);
	stack_user(&s, mem, sizeof mem);
	cr_assert_eq(s.lo, (uintptr_t)mem);
	cr_assert_eq(s.hi, (uintptr_t)mem + sizeof mem);
	cr_assert_eq(s.guard, 0);
	cr_assert_eq(s.flags, 0);
	stack_canary_set(&s);
	for (size_t i = 0; i < sizeof mem; i++)
		cr_assert_eq(mem[i], 0x11);
	cr_assert(stack_canary_ok(&s));
	stack_free(&s);   /* no-op */
	cr_assert_eq(mem[0], 0x11);
}

/* ---- guard budget ---------------------------------------------------- */

static int cmp_lo(const void *a, const void *b)
{
	uintptr_t x = ((const gstack_t *)a)->lo, y = ((const gstack_t *)b)->lo;
	return x < y ? -1 : x > y;
}

static void check_disjoint(gstack_t *s, size_t n)
{
	qsort(s, n, sizeof *s, cmp_lo);
	for (size_t i = 1; i < n; i++)
		cr_assert_leq(s[i - 1].hi, s[i].lo - s[i].guard,
		              "stacks %zu and %zu overlap", i - 1, i);
}

Test(stack_budget, twenty_thousand_guarded_requests_degrade_to_chunks)
{
	enum { N = 20000 };
	static gstack_t s[N];
	struct stack_stats st;
	size_t maxmap = max_map_count(), guarded = 0, chunk = 0;

	stack_sys_init();
	stack_get_stats(&st);
	cr_assert_eq(st.guard_budget, maxmap / 4);
	for (size_t i = 0; i < N; i++) {
		cr_assert_eq(stack_alloc(&s[i], 64 * KiB, page()), 0,
		             "allocation %zu failed", i);
		cr_assert_eq(s[i].hi - s[i].lo, 64 * KiB);
		if (!(s[i].flags & STACK_CHUNK)) {
			guarded++;
			cr_assert_eq(s[i].flags, STACK_OWNED | STACK_GUARDED);
			cr_assert_eq(s[i].guard, page());
		} else if (stack_guard_markers()) {
			/* past the budget: a chunk slot, guard markers */
			chunk++;
			cr_assert_eq(s[i].flags, STACK_OWNED | STACK_CHUNK | STACK_GUARDED);
			cr_assert_eq(s[i].guard, page());
		} else {
			chunk++;
			/* degraded: the canary stands in for the guard */
			cr_assert_eq(s[i].flags, STACK_OWNED | STACK_CHUNK | STACK_CANARY);
			cr_assert_eq(s[i].guard, 0);
		}
		/* Usable: touch the top word (the bottom is what the canary
		 * test covers). */
		((volatile uintptr_t *)s[i].hi)[-1] = i;
	}
	stack_get_stats(&st);
	size_t maps = count_maps();
	cr_log_info("guarded %zu chunk %zu maps %zu max_map_count %zu",
	            guarded, chunk, maps, maxmap);
	cr_assert_eq(guarded, N < st.guard_budget ? N : st.guard_budget);
	cr_assert_eq(st.guarded_live, guarded);
	cr_assert_eq(chunk, N - guarded);
	cr_assert_lt(maps, maxmap * 3 / 4, "%zu mappings", maps);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(((volatile uintptr_t *)s[i].hi)[-1], i);
	check_disjoint(s, N);
}

/* Past the budget, where the kernel has guard markers (6.13), a guarded
 * request still gets a real guard: a chunk slot whose guard bytes fault,
 * with no mapping of their own and no canary to read. */
static gstack_t *past_budget(size_t *n_out)
{
	struct stack_stats st;
	size_t n;
	gstack_t *s;

	stack_sys_init();
	stack_get_stats(&st);
	n = st.guard_budget + 8;
	s = calloc(n, sizeof *s);
	cr_assert(s);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(stack_alloc(&s[i], 16 * KiB, page()), 0, "allocation %zu failed", i);
	*n_out = n;
	return s;
}

Test(stack_budget, past_the_budget_guard_markers_fault)
{
	size_t n, maps0, maps1;
	gstack_t *s, extra[64];
	int status;

	stack_sys_init();
	if (!stack_guard_markers())
		cr_skip_test("no guard markers on this kernel (before 6.13)");
	s = past_budget(&n);
	gstack_t *last = &s[n - 1];
	cr_assert_eq(last->flags, STACK_OWNED | STACK_CHUNK | STACK_GUARDED);
	cr_assert_eq(last->guard, page());
	cr_assert(stack_in_guard(last, last->lo - 1));
	/* usable end to end */
	memset((void *)last->lo, 0x5a, last->hi - last->lo);
	/* 64 more cost no mapping each: they share chunks */
	maps0 = count_maps();
	for (int i = 0; i < 64; i++)
		cr_assert_eq(stack_alloc(&extra[i], 16 * KiB, page()), 0);
	maps1 = count_maps();
	cr_assert_leq(maps1, maps0 + 2, "%zu mappings before, %zu after", maps0, maps1);
	for (int i = 0; i < 64; i++) {
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			signal(SIGSEGV, SIG_DFL);
			((volatile char *)extra[i].lo)[-1] = 1;   /* into the guard */
			_exit(0);
		}
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		          "stack %d: a write below lo did not fault (status %#x)", i, status);
	}
	/* freed and handed out again, the guard is still there */
	uintptr_t freed = extra[0].lo;
	stack_free(&extra[0]);
	gstack_t again;
	cr_assert_eq(stack_alloc(&again, 16 * KiB, page()), 0);
	cr_assert_eq(again.lo, freed, "LIFO reuse of the freed slot");
	cr_assert_eq(again.flags, STACK_OWNED | STACK_CHUNK | STACK_GUARDED);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		((volatile char *)again.lo)[-(long)page()] = 1;
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
}

/* Without markers (an older kernel, or GSHIM_DEBUG=noguardmarkers=1) the
 * canary stands in for the guard past the budget. */
Test(stack_budget, past_the_budget_without_markers_the_canary)
{
	size_t n;
	gstack_t *s;

	stack_guard_markers_off();
	cr_assert(!stack_guard_markers());
	s = past_budget(&n);
	cr_assert_eq(s[n - 1].flags, STACK_OWNED | STACK_CHUNK | STACK_CANARY);
	cr_assert_eq(s[n - 1].guard, 0);
}

Test(stack_budget, hundred_thousand_default_size_stacks)
{
	enum { N = 100000 };
	gstack_t *s = calloc(N, sizeof *s);
	size_t maxmap = max_map_count();

	cr_assert(s);
	set_stack_rlimit(8 * MiB);
	cr_assert_eq(stack_default_size(), 8 * MiB);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(stack_alloc(&s[i], 0, page()), 0,
		             "allocation %zu failed", i);
	size_t maps = count_maps();
	cr_log_info("100k x 8 MiB: %zu mappings", maps);
	cr_assert_lt(maps, maxmap * 3 / 4);
	check_disjoint(s, N);
	for (size_t i = 0; i < N; i++)
		stack_free(&s[i]);
	free(s);
}

/* ---- concurrency ----------------------------------------------------- */

enum { CONC_THREADS = 4, CONC_ITERS = 100000, CONC_LIVE = 16 };
static atomic_int conc_errors;

/* Ownership tag below the cache's free-list link (top 16 bytes). */
static _Atomic uintptr_t *conc_tag(const gstack_t *s)
{
	return (_Atomic uintptr_t *)(s->hi - 32);
}

static void *conc_worker(void *arg)
{
	uintptr_t me = (uintptr_t)arg;
	gstack_t live[CONC_LIVE];
	unsigned seed = (unsigned)me * 7919u;

	memset(live, 0, sizeof live);
	for (int it = 0; it < CONC_ITERS; it++) {
		int k = rand_r(&seed) % CONC_LIVE;
		gstack_t *s = &live[k];
		if (s->flags) {
			uintptr_t want = me;
			if (!atomic_compare_exchange_strong(conc_tag(s), &want, 0))
				atomic_fetch_add(&conc_errors, 1);
			stack_free(s);
		}
		/* Mix guarded (cached) and chunk stacks of two sizes. */
		size_t size = (rand_r(&seed) & 1) ? 64 * KiB : 128 * KiB;
		size_t guard = (rand_r(&seed) & 1) ? 4096 : 0;
		if (stack_alloc(s, size, guard) != 0) {
			atomic_fetch_add(&conc_errors, 1);
			memset(s, 0, sizeof *s);
			continue;
		}
		uintptr_t zero = 0;
		if (!atomic_compare_exchange_strong(conc_tag(s), &zero, me))
			atomic_fetch_add(&conc_errors, 1);  /* handed out twice */
	}
	for (int k = 0; k < CONC_LIVE; k++)
		if (live[k].flags) {
			atomic_store(conc_tag(&live[k]), 0);
			stack_free(&live[k]);
		}
	return NULL;
}

Test(stack_concurrency, threads_never_share_a_stack)
{
	pthread_t t[CONC_THREADS];
	struct stack_stats st;

	for (uintptr_t i = 0; i < CONC_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, conc_worker,
		                            (void *)(i + 1)), 0);
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&conc_errors), 0);
	stack_get_stats(&st);
	cr_assert_eq(st.cached, st.mapped, "everything freed is idle");
	cr_assert_leq(st.guarded_live, 64);
}

/* ---- errors ---------------------------------------------------------- */

Test(stack_errors, absurd_sizes_are_einval)
{
	gstack_t s;

	cr_assert_eq(stack_alloc(&s, SIZE_MAX - 10, 0), EINVAL);
	cr_assert_eq(stack_alloc(&s, 64 * KiB, SIZE_MAX - 10), EINVAL);
	cr_assert_eq(stack_alloc(&s, SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1), EINVAL);
}

static size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * KiB;
}

/* In a child, so criterion's own bookkeeping never runs under RLIMIT_AS. */
Test(stack_errors, mmap_failure_is_eagain_not_a_crash)
{
	int status;
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		gstack_t s;
		struct rlimit rl;
		stack_sys_init();
		rl.rlim_cur = rl.rlim_max = vm_size() + 64 * MiB;
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(10);
		if (stack_alloc(&s, 1024 * MiB, page()) != EAGAIN)
			_exit(11);
		if (stack_alloc(&s, 1024 * MiB, 0) != EAGAIN)
			_exit(12);
		/* Guarded-slot reservation must have been returned. */
		struct stack_stats st;
		stack_get_stats(&st);
		if (st.guarded_live != 0 || st.mapped != 0)
			_exit(13);
		/* Small stacks still work: a 64 MiB chunk may not fit under
		 * the limit, a single stack does. */
		if (stack_alloc(&s, 32 * MiB, 0) != 0)
			_exit(14);
		if (stack_alloc(&s, 4 * MiB, page()) != 0)
			_exit(15);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child crashed (status %#x)", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "child step %d failed",
	             WEXITSTATUS(status));
}
