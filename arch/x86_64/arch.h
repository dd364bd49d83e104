/* arch/x86_64/arch.h - what the scheduler needs from the CPU.
 *
 * A context is just a saved stack pointer: arch_switch pushes the
 * callee-saved registers, MXCSR and the x87 control word on the current
 * stack, stores %rsp, loads the other context's %rsp and pops.  No signal
 * mask is touched (swapcontext's rt_sigprocmask costs a syscall per switch).
 *
 * The thread-pointer helpers read the runtime's one TLS slot with a fresh
 * %fs-relative load every time, never through a cached address: after a
 * switch the same G may be on another M (docs/design.md, "Thread identity").
 */
#ifndef GSHIM_ARCH_H
#define GSHIM_ARCH_H

#include <stdint.h>
#include <ucontext.h>

typedef struct arch_ctx {
	uintptr_t sp;   /* saved stack pointer; read by switch.S, do not move */
} arch_ctx_t;

/* Save the current context in *from, resume *to.  The value returned is the
 * `arg` passed by whoever switches back to us later.  A fresh context
 * (arch_ctx_make) receives that arg as the first argument of its entry. */
void *arch_switch(arch_ctx_t *from, arch_ctx_t *to, void *arg);

/* Prepare ctx to start entry(arg_from_switch, data) on [.., top).  The
 * entry must never return.  MXCSR and the x87 control word are inherited
 * from the caller, as a new kernel thread inherits its creator's. */
void arch_ctx_make(arch_ctx_t *ctx, uintptr_t top,
                   void (*entry)(void *from_switch, void *data), void *data);

/* Tracebacks (unwind.c): the frame arch_switch leaves on a stack at
 * ctx->sp is ARCH_CTX_FRAME bytes (return address included);
 * arch_ctx_ucontext builds the registers it holds into *uc (libunwind's
 * unw_context_t on this CPU); arch_uc_regs reads pc, sp and the frame
 * pointer of a ucontext; arch_fp_step walks one frame-pointer link
 * inside [lo, hi).  libunwind's names on this CPU: ARCH_UNW_* */
#include <stdbool.h>
#define ARCH_CTX_FRAME 72
#define ARCH_UNW_LIB "libunwind.so.8"
#define ARCH_UNW_PFX "_ULx86_64_"
#define ARCH_UNW_GETCONTEXT "_Ux86_64_getcontext"
#define ARCH_UNW_REG_IP 16
#define ARCH_UNW_REG_SP 7
#define ARCH_UNW_CURSOR_WORDS 127
void arch_ctx_ucontext(uintptr_t sp, ucontext_t *uc);
void arch_uc_regs(const ucontext_t *uc, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp);
bool arch_fp_step(uintptr_t *pc, uintptr_t *fp, uintptr_t lo, uintptr_t hi);

/* A system call pthread_cancel can interrupt (cp.S): flag is read first
 * (nonzero: not made, ARCH_CP_CANCELED); the PC helpers let the cancel
 * signal's handler move a thread out of it. */
#define ARCH_CP_CANCELED (-4096L)
long arch_cp_syscall(const volatile uint32_t *flag, long nr, long a, long b, long c,
                     long d, long e, long f);
extern const char arch_cp_begin[], arch_cp_end[], arch_cp_cancel[];

static inline uintptr_t arch_uc_pc(void *uc)
{
	return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
}

static inline void arch_uc_set_pc(void *uc, uintptr_t pc)
{
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP] = (greg_t)pc;
}

static inline void arch_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline uintptr_t arch_sp(void)
{
	uintptr_t sp;
	__asm__ volatile("movq %%rsp, %0" : "=r"(sp));
	return sp;
}

/* The runtime's TLS slot (one pointer in the static TLS of libgshim).  In
 * shared-TLS mode it lives in the M's TCB and the scheduler rewrites it on
 * every switch; with a TCB per G it would be set once per TCB. */
#define ARCH_TLS_SLOT_DECL(name) \
	extern __thread void *name __attribute__((tls_model("initial-exec")))

#define ARCH_TLS_LOAD(name) ({                                          \
	void *v__;                                                      \
	__asm__ volatile("movq " #name "@gottpoff(%%rip), %0\n\t"      \
	                 "movq %%fs:(%0), %0" : "=r"(v__));             \
	v__; })

#define ARCH_TLS_STORE(name, val) do {                                  \
	void *v__ = (val); uintptr_t off__;                             \
	__asm__ volatile("movq " #name "@gottpoff(%%rip), %0\n\t"      \
	                 "movq %1, %%fs:(%0)"                           \
	                 : "=&r"(off__) : "r"(v__) : "memory");         \
	} while (0)


/* Raw system call: returns the kernel's value (-errno on failure).  Never
 * touches errno and never goes through libc's syscall(), which gshim may
 * interpose. */
static inline long arch_syscall6(long n, long a, long b, long c, long d,
                                 long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
	                 : "rcx", "r11", "memory");
	return ret;
}
#define arch_syscall(n, a, b, c) arch_syscall6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* The thread pointer (FS base).  arch_tp() reads the TCB's self pointer
 * (%fs:0), which is what glibc keeps there.  arch_set_tp writes it with
 * wrfsbase when the kernel allows it (AT_HWCAP2 & HWCAP2_FSGSBASE; never
 * probe by executing it: on some VMs it runs but the kernel restores its
 * own value later: docs/design.md, "Thread identity"), else with
 * arch_prctl(ARCH_SET_FS). */
static inline void *arch_tp(void)
{
	void *tp;

	__asm__ volatile("movq %%fs:0, %0" : "=r"(tp));
	return tp;
}

extern int arch_have_fsgsbase;   /* set by arch_tp_init */
void arch_tp_init(void);

static inline void arch_set_tp(void *tp)
{
	if (arch_have_fsgsbase)
		__asm__ volatile("wrfsbase %0" :: "r"(tp) : "memory");
	else
		arch_syscall(158 /* SYS_arch_prctl */, 0x1002 /* ARCH_SET_FS */, tp, 0);
}

#endif
