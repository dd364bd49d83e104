/* arch/x86_64/ctx.c - building a fresh context frame for switch.S. */
#include <sys/auxv.h>
#include "arch.h"

extern void gshim_ctx_start(void) __attribute__((visibility("hidden")));

void arch_ctx_make(arch_ctx_t *ctx, uintptr_t top,
                   void (*entry)(void *, void *), void *data)
{
	/* After switch.S pops this frame and returns into gshim_ctx_start,
	 * %rsp = top - 16: 16-byte aligned, as the call in the trampoline
	 * needs (the callee then sees the usual rsp % 16 == 8). */
	uintptr_t *sp = (uintptr_t *)((top & ~(uintptr_t)15) - 16);
	uint32_t mxcsr;
	uint16_t fpucw;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fpucw));
	*--sp = (uintptr_t)gshim_ctx_start;  /* return address */
	*--sp = 0;                           /* rbp */
	*--sp = 0;                           /* rbx */
	*--sp = (uintptr_t)entry;            /* r12 */
	*--sp = (uintptr_t)data;             /* r13 */
	*--sp = 0;                           /* r14 */
	*--sp = 0;                           /* r15 */
	sp -= 2;                             /* MXCSR + x87 CW slot */
	((uint32_t *)sp)[0] = mxcsr;
	((uint16_t *)sp)[2] = fpucw;
	ctx->sp = (uintptr_t)sp;
}

int arch_have_fsgsbase;

void arch_tp_init(void)
{
	/* HWCAP2_FSGSBASE is bit 1 of AT_HWCAP2 (asm/hwcap2.h). */
	arch_have_fsgsbase = (getauxval(AT_HWCAP2) & 2) != 0;
}
