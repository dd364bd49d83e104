/* arch/x86_64/cp.S - a system call that pthread_cancel can interrupt
 * (musl's __syscall_cp_asm design).
 *
 * long arch_cp_syscall(const uint32_t *flag, long nr,
 *                      long a, long b, long c, long d, long e, long f)
 *
 * Between arch_cp_begin and arch_cp_end the cancellation flag is read and
 * the system call made.  The cancel signal's handler (core/cancel.c)
 * moves a thread whose PC is in that range to arch_cp_cancel: either it
 * had not entered the kernel yet, or it was blocked there and the
 * kernel, restarting the call (SA_RESTART), pointed the PC back at the
 * syscall instruction.  A call the kernel does not restart returns -EINTR
 * with the PC at arch_cp_end, and the caller looks at the flag.
 * arch_cp_cancel returns ARCH_CP_CANCELED (-4096: no errno).
 */
	.text
	.globl arch_cp_syscall
	.globl arch_cp_begin
	.globl arch_cp_end
	.globl arch_cp_cancel
	.hidden arch_cp_syscall
	.hidden arch_cp_begin
	.hidden arch_cp_end
	.hidden arch_cp_cancel
	.type arch_cp_syscall, @function
arch_cp_syscall:
	.cfi_startproc
	mov %rdi, %r11          /* flag */
	mov %rsi, %rax          /* nr */
	mov %rdx, %rdi          /* a */
	mov %rcx, %rsi          /* b */
	mov %r8, %rdx           /* c */
	mov %r9, %r10           /* d */
	mov 8(%rsp), %r8        /* e */
	mov 16(%rsp), %r9       /* f */
arch_cp_begin:
	cmpl $0, (%r11)
	jne arch_cp_cancel
	syscall
arch_cp_end:
	ret
arch_cp_cancel:
	mov $-4096, %rax
	ret
	.cfi_endproc
	.size arch_cp_syscall, .-arch_cp_syscall

	.section .note.GNU-stack,"",@progbits
