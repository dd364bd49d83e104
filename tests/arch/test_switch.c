/* tests/arch/test_switch.c - arch_switch / arch_ctx_make (arch/x86_64).
 *
 * What the contract in arch.h promises, checked directly: values travel
 * through the arg/return channel, callee-saved registers survive a switch
 * even when the other side trashes them, MXCSR and the x87 control word
 * are per context, a fresh context starts with (from_switch, data) on an
 * ABI-aligned stack, and a G can use a real amount of its stack.
 *
 * fegetround/fesetround live in libm, which the unit tests do not link, so
 * the FP control registers are read and written with stmxcsr/fnstcw. */
#include <criterion/criterion.h>
#include <stdalign.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <emmintrin.h>
#include "arch.h"

#define STK (256u << 10)

/* A 256 KiB stack with a PROT_NONE page below it, so an overflow faults
 * instead of scribbling over the test. */
static uintptr_t stack_top(void)
{
	char *p = mmap(NULL, STK + 4096, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(mprotect(p, 4096, PROT_NONE), 0);
	return (uintptr_t)p + 4096 + STK;
}

static arch_ctx_t main_ctx, g_ctx;

/* ---- ping-pong through the arg / return channel ---------------------- */

#define PINGS 200000

static void pong_entry(void *from_switch, void *data)
{
	uintptr_t v = (uintptr_t)from_switch;

	cr_assert_eq((uintptr_t)data, 0xda7a);
	for (;;)
		v = (uintptr_t)arch_switch(&g_ctx, &main_ctx, (void *)(v * 2 + 1));
}

Test(switch, ping_pong_passes_values_both_ways)
{
	arch_ctx_make(&g_ctx, stack_top(), pong_entry, (void *)0xda7a);
	for (uintptr_t i = 0; i < PINGS; i++) {
		uintptr_t r = (uintptr_t)arch_switch(&main_ctx, &g_ctx, (void *)i);
		cr_assert_eq(r, i * 2 + 1, "round %zu: got %zu", (size_t)i, (size_t)r);
	}
}

/* ---- fresh context: arguments and ABI stack alignment ----------------- */

static void *entry_from, *entry_data;
static uintptr_t entry_frame, entry_vec, entry_top;
static double entry_sum;

/* The compiler assumes rsp % 16 == 8 on entry and lays out this aligned
 * local relative to rsp: a misaligned entry stack shows up as a
 * misaligned address, and movapd on it would fault. */
static __attribute__((noinline)) double aligned_sse(void)
{
	alignas(16) volatile double v[2] = { 1.5, 2.25 };
	__m128d x;

	entry_vec = (uintptr_t)v;
	x = _mm_load_pd((const double *)v);
	x = _mm_add_pd(x, x);
	_mm_store_pd((double *)v, x);
	return v[0] + v[1];
}

static void fresh_entry(void *from_switch, void *data)
{
	entry_from = from_switch;
	entry_data = data;
	entry_frame = (uintptr_t)__builtin_frame_address(0);
	entry_sum = aligned_sse();
	arch_switch(&g_ctx, &main_ctx, (void *)1);
	cr_assert_fail("resumed a finished context");
}

static void check_fresh(uintptr_t top)
{
	entry_top = top;
	arch_ctx_make(&g_ctx, top, fresh_entry, (void *)0xfeed);
	cr_assert_eq(arch_switch(&main_ctx, &g_ctx, (void *)0xbeef), (void *)1);
	cr_assert_eq(entry_from, (void *)0xbeef);
	cr_assert_eq(entry_data, (void *)0xfeed);
	/* After `push %rbp` in a correctly entered function, rbp % 16 == 0. */
	cr_assert_eq(entry_frame & 15, 0, "frame %#lx", (unsigned long)entry_frame);
	cr_assert_eq(entry_vec & 15, 0);
	cr_assert_eq(entry_sum, 7.5);
	cr_assert(entry_frame < top && entry_frame > top - 4096,
	          "entry runs on the new stack");
}

Test(switch, fresh_context_gets_args_on_aligned_stack)
{
	uintptr_t top = stack_top();

	check_fresh(top);
	/* arch_ctx_make must align a top that is not. */
	check_fresh(top - 8);
	check_fresh(top - 4);
	check_fresh(top - 24);
}

/* ---- callee-saved registers ------------------------------------------ */

/* regs_switch(from, to, out, pattern): load rbx, rbp, r12..r15 with
 * pattern+0..5, arch_switch(from, to, NULL), then store the six registers
 * into out[0..5] and return.  Written in asm so the compiler cannot keep
 * the values anywhere but in those registers. */
void regs_switch(arch_ctx_t *from, arch_ctx_t *to, uint64_t *out, uint64_t pattern);
__asm__(
	"	.text\n"
	"	.p2align 4\n"
	"	.type regs_switch, @function\n"
	"regs_switch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	pushq %rdx\n"
	"	pushq %rcx\n"
	"	subq $8, %rsp\n"          /* 9 pushes + ret: aligned for call */
	"	movq %rcx, %rbx\n"
	"	leaq 1(%rcx), %rbp\n"
	"	leaq 2(%rcx), %r12\n"
	"	leaq 3(%rcx), %r13\n"
	"	leaq 4(%rcx), %r14\n"
	"	leaq 5(%rcx), %r15\n"
	"	xorl %edx, %edx\n"
	"	call arch_switch\n"
	"	movq 16(%rsp), %rdx\n"
	"	movq %rbx, 0(%rdx)\n"
	"	movq %rbp, 8(%rdx)\n"
	"	movq %r12, 16(%rdx)\n"
	"	movq %r13, 24(%rdx)\n"
	"	movq %r14, 32(%rdx)\n"
	"	movq %r15, 40(%rdx)\n"
	"	addq $24, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	"	.size regs_switch, .-regs_switch\n");

static uint64_t g_regs[6];
static int g_reg_errors;

static void regs_entry(void *from_switch, void *data)
{
	(void)from_switch;
	(void)data;
	for (uint64_t round = 0;; round++) {
		uint64_t pat = 0xdead000000000000ull + round * 0x100;
		regs_switch(&g_ctx, &main_ctx, g_regs, pat);
		for (int i = 0; i < 6; i++)
			if (g_regs[i] != pat + (uint64_t)i)
				g_reg_errors++;
	}
}

Test(switch, callee_saved_registers_survive_hostile_peer)
{
	uint64_t out[6];

	arch_ctx_make(&g_ctx, stack_top(), regs_entry, NULL);
	for (uint64_t round = 0; round < 1000; round++) {
		uint64_t pat = 0x1111000000000000ull + round * 0x100;
		regs_switch(&main_ctx, &g_ctx, out, pat);
		for (int i = 0; i < 6; i++)
			cr_assert_eq(out[i], pat + (uint64_t)i,
			             "round %lu reg %d: %#lx", (unsigned long)round,
			             i, (unsigned long)out[i]);
	}
	cr_assert_eq(g_reg_errors, 0);
}

/* The same property as the compiler sees it: many live locals across
 * switches, in both contexts, compared with a run that never switches. */
static __attribute__((noinline)) uint64_t churn(uint64_t seed, arch_ctx_t *self,
                                                arch_ctx_t *other)
{
	uint64_t a = seed, b = seed * 3 + 1, c = seed ^ 0x5555, d = seed + 77,
	         e = seed * 11, f = ~seed, g = seed << 3, h = seed >> 1,
	         i = seed * seed, j = seed + 0x1234567, k = seed * 5 + 9;

	for (int n = 0; n < 500; n++) {
		a += b; b ^= c; c += d * 3; d ^= e >> 2; e += f;
		f ^= g + 1; g += h; h ^= i; i += j * 7; j ^= k; k += a;
		if (self)
			arch_switch(self, other, NULL);
		a ^= k >> 3; k += j; j ^= i << 1; i += h; h ^= g;
		g += f; f ^= e; e += d; d ^= c; c += b >> 5; b ^= a * 13;
	}
	return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i ^ j ^ k;
}

static uint64_t churn_g_result;

static void churn_entry(void *from_switch, void *data)
{
	(void)from_switch;
	churn_g_result = churn((uint64_t)(uintptr_t)data, &g_ctx, &main_ctx);
	for (;;)
		arch_switch(&g_ctx, &main_ctx, (void *)1);
}

Test(switch, live_locals_survive_many_switches)
{
	uint64_t want_main = churn(12345, NULL, NULL);
	uint64_t want_g = churn(987654321, NULL, NULL);

	arch_ctx_make(&g_ctx, stack_top(), churn_entry, (void *)(uintptr_t)987654321);
	uint64_t got_main = churn(12345, &main_ctx, &g_ctx);
	/* G has switched 500 times; one more lets it finish and report. */
	cr_assert_eq(arch_switch(&main_ctx, &g_ctx, NULL), (void *)1);
	cr_assert_eq(got_main, want_main);
	cr_assert_eq(churn_g_result, want_g);
}

/* ---- MXCSR and x87 control word are per context ----------------------- */

#define MXCSR_RC_MASK 0x6000u
#define MXCSR_RC_UP   0x4000u
#define MXCSR_RC_ZERO 0x6000u
#define MXCSR_RC_DOWN 0x2000u
#define X87_RC_MASK   0x0c00u
#define X87_RC_DOWN   0x0400u
#define X87_RC_UP     0x0800u

static uint32_t mxcsr_get(void)
{
	uint32_t v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static void mxcsr_set_rc(uint32_t rc)
{
	uint32_t v = (mxcsr_get() & ~MXCSR_RC_MASK) | rc;
	__asm__ volatile("ldmxcsr %0" : : "m"(v) : "memory");
}

static uint16_t x87_get(void)
{
	uint16_t v;
	__asm__ volatile("fnstcw %0" : "=m"(v));
	return v;
}

static void x87_set_rc(uint16_t rc)
{
	uint16_t v = (uint16_t)((x87_get() & ~X87_RC_MASK) | rc);
	__asm__ volatile("fldcw %0" : : "m"(v) : "memory");
}

/* 1/3 in SSE double arithmetic, rounded by MXCSR.RC.  In asm: C
 * arithmetic may be folded or moved across the ldmxcsr (the compiler
 * assumes the default FP environment). */
static double third(void)
{
	double q = 1.0, three = 3.0;
	__asm__ volatile("divsd %1, %0" : "+x"(q) : "x"(three) : "memory");
	return q;
}

static uint32_t fp_g_seen_mxcsr_at_start;
static int fp_g_errors;

static void fp_entry(void *from_switch, void *data)
{
	(void)from_switch;
	(void)data;
	fp_g_seen_mxcsr_at_start = mxcsr_get() & MXCSR_RC_MASK;
	for (;;) {
		mxcsr_set_rc(MXCSR_RC_ZERO);
		x87_set_rc(X87_RC_UP);
		double t = third();
		arch_switch(&g_ctx, &main_ctx, NULL);
		if ((mxcsr_get() & MXCSR_RC_MASK) != MXCSR_RC_ZERO ||
		    (x87_get() & X87_RC_MASK) != X87_RC_UP || third() != t)
			fp_g_errors++;
	}
}

Test(switch, mxcsr_and_x87_control_are_per_context)
{
	mxcsr_set_rc(MXCSR_RC_DOWN);
	double down = third();
	mxcsr_set_rc(MXCSR_RC_UP);
	double up = third();
	cr_assert_lt(down, up, "rounding mode has an observable effect");

	x87_set_rc(X87_RC_DOWN);
	/* Made now: the new context inherits RC=up, as a new thread would. */
	arch_ctx_make(&g_ctx, stack_top(), fp_entry, NULL);
	for (int round = 0; round < 100; round++) {
		arch_switch(&main_ctx, &g_ctx, NULL);
		cr_assert_eq(mxcsr_get() & MXCSR_RC_MASK, MXCSR_RC_UP);
		cr_assert_eq(x87_get() & X87_RC_MASK, X87_RC_DOWN);
		cr_assert_eq(third(), up);
	}
	cr_assert_eq(fp_g_seen_mxcsr_at_start, MXCSR_RC_UP);
	cr_assert_eq(fp_g_errors, 0);
	mxcsr_set_rc(0);
	x87_set_rc(0);
}

/* ---- a ring of contexts --------------------------------------------- */

#define RING 16
static arch_ctx_t ring_ctx[RING];
static int ring_hops[RING];

static void ring_entry(void *from_switch, void *data)
{
	int me = (int)(uintptr_t)data;
	uintptr_t token = (uintptr_t)from_switch;

	for (;;) {
		ring_hops[me]++;
		arch_ctx_t *next = me + 1 < RING ? &ring_ctx[me + 1] : &main_ctx;
		token = (uintptr_t)arch_switch(&ring_ctx[me], next,
		                               (void *)(token + 1));
	}
}

Test(switch, ring_of_contexts)
{
	for (int i = 0; i < RING; i++)
		arch_ctx_make(&ring_ctx[i], stack_top(), ring_entry,
		              (void *)(uintptr_t)i);
	for (uintptr_t lap = 0; lap < 1000; lap++) {
		uintptr_t t = (uintptr_t)arch_switch(&main_ctx, &ring_ctx[0],
		                                     (void *)(lap * 100));
		cr_assert_eq(t, lap * 100 + RING);
	}
	for (int i = 0; i < RING; i++)
		cr_assert_eq(ring_hops[i], 1000);
}

/* ---- deep recursion on a 256 KiB stack ------------------------------- */

static uintptr_t deep_lowest;

static __attribute__((noinline)) uint64_t deep(int n)
{
	volatile char buf[200];

	buf[0] = (char)n;
	buf[sizeof buf - 1] = (char)(n >> 3);
	if ((uintptr_t)buf < deep_lowest)
		deep_lowest = (uintptr_t)buf;
	if (n == 0)
		return 0;
	/* Not a tail call: the addition needs this frame after the call. */
	return deep(n - 1) + (uint8_t)buf[0] + (uint8_t)buf[sizeof buf - 1];
}

static uint64_t deep_result;

static void deep_entry(void *from_switch, void *data)
{
	deep_result = deep((int)(uintptr_t)data);
	arch_switch(&g_ctx, from_switch, NULL);
	cr_assert_fail("resumed a finished context");
}

Test(switch, deep_recursion_on_256k_stack)
{
	enum { DEPTH = 800 };
	uint64_t want = 0;
	uintptr_t top = stack_top();

	for (int n = 1; n <= DEPTH; n++)
		want += (uint8_t)(char)n + (uint8_t)(char)(n >> 3);
	deep_lowest = UINTPTR_MAX;
	arch_ctx_make(&g_ctx, top, deep_entry, (void *)(uintptr_t)DEPTH);
	arch_switch(&main_ctx, &g_ctx, &main_ctx);
	cr_assert_eq(deep_result, want);
	cr_assert_geq(deep_lowest, top - STK, "stayed on the G stack");
	cr_assert_lt(deep_lowest, top - STK / 2,
	             "used %lu bytes: recursion too shallow to mean anything",
	             (unsigned long)(top - deep_lowest));
}
