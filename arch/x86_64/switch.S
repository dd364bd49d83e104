/* arch/x86_64/switch.S - G context switch (see arch.h for the contract).
 *
 * Frame saved on the stack of the context being left, lowest address first:
 *   [0]  MXCSR (4 bytes) + x87 control word (2 bytes), 16-byte slot
 *   [16] r15 r14 r13 r12 rbx rbp, then the return address.
 * arch_ctx_make builds the same frame by hand for a fresh context, with
 * r12 = entry, r13 = data and the return address = gshim_ctx_start.
 */
	.text
	.globl	arch_switch
	.hidden	arch_switch
	.type	arch_switch, @function
	.p2align 4
arch_switch:
	.cfi_startproc
	endbr64
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$16, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)		/* from->sp */
	movq	(%rsi), %rsp		/* to->sp */
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$16, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	movq	%rdx, %rax		/* return value for a resumed context */
	movq	%rdx, %rdi		/* first argument for a fresh one */
	ret
	.cfi_endproc
	.size	arch_switch, .-arch_switch

/* First code of a fresh context: entry(from_switch = %rdi, data = %r13).
 * The stack is 16-byte aligned here; entry must not return. */
	.globl	gshim_ctx_start
	.hidden	gshim_ctx_start
	.type	gshim_ctx_start, @function
	.p2align 4
gshim_ctx_start:
	.cfi_startproc
	.cfi_undefined rip		/* outermost frame for unwinders */
	endbr64
	xorl	%ebp, %ebp
	movq	%r13, %rsi
	call	*%r12
	ud2
	.cfi_endproc
	.size	gshim_ctx_start, .-gshim_ctx_start

	.section .note.GNU-stack,"",@progbits
