/* arch/x86_64/unwind.c - registers of a switched-out context, for
 * tracebacks (core/traceback.c).
 *
 * Purpose.  A G that is not running has no kernel thread and no signal
 * frame: all that is left of its registers is the frame arch_switch
 * pushed on its stack (switch.S: MXCSR/x87 slot, r15 r14 r13 r12 rbx rbp,
 * return address) and the stack pointer saved in ctx->sp.  This file
 * turns that frame into a ucontext_t, which is what libunwind's
 * unw_context_t is on x86_64 (libunwind-x86_64.h: unw_tdep_context_t),
 * so unw_init_local starts from the G's saved state exactly as if the G
 * had called getcontext at its switch; and it steps a frame-pointer chain
 * for the fallback walk when libunwind is absent.  An aarch64 port adds
 * arch/aarch64/unwind.c with the same three functions.
 *
 * Invariants.  The caller has checked that [sp, sp + ARCH_CTX_FRAME)
 * lies inside the G's stack; nothing here reads outside the bounds it
 * is given, so a G that changes state under a racing dump yields a wrong
 * or short backtrace, never a fault.  Nothing allocates or locks.
 *
 * Rejected: asking libunwind to unwind "remotely" through accessors over
 * the saved frame (the remote API lives in libunwind-generic and needs an
 * address space per call); reconstructing only rip/rsp (callee-saved
 * registers matter to DWARF CFI: a caller's frame base is often rbx or
 * rbp restored from the switch frame).
 */
#include <string.h>
#include "arch.h"

void arch_ctx_ucontext(uintptr_t sp, ucontext_t *uc)
{
	const uintptr_t *f = (const uintptr_t *)sp;

	memset(uc, 0, sizeof *uc);
	/* f[0], f[1]: MXCSR + x87 control word (16-byte slot) */
	uc->uc_mcontext.gregs[REG_R15] = (greg_t)f[2];
	uc->uc_mcontext.gregs[REG_R14] = (greg_t)f[3];
	uc->uc_mcontext.gregs[REG_R13] = (greg_t)f[4];
	uc->uc_mcontext.gregs[REG_R12] = (greg_t)f[5];
	uc->uc_mcontext.gregs[REG_RBX] = (greg_t)f[6];
	uc->uc_mcontext.gregs[REG_RBP] = (greg_t)f[7];
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)f[8];          /* return address */
	uc->uc_mcontext.gregs[REG_RSP] = (greg_t)(sp + ARCH_CTX_FRAME);  /* after ret */
}

void arch_uc_regs(const ucontext_t *uc, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp)
{
	*pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	*sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
	*fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
}

/* One step up a frame-pointer chain: [fp] is the caller's fp, [fp + 8]
 * the return address.  false at the end of the chain or when the next
 * frame would leave [lo, hi) or not move up the stack. */
bool arch_fp_step(uintptr_t *pc, uintptr_t *fp, uintptr_t lo, uintptr_t hi)
{
	uintptr_t f = *fp, next;

	if (f < lo || f > hi - 16 || (f & 7))
		return false;
	next = ((const uintptr_t *)f)[0];
	*pc = ((const uintptr_t *)f)[1];
	if (*pc == 0 || next <= f || next > hi - 16)
		next = 0;
	*fp = next;
	return *pc != 0;
}
