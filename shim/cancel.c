/* shim/cancel.c - cancellation and cleanup handlers.
 *
 * glibc keeps the cancellation state and the pthread_cleanup_push chain in
 * its struct pthread, which is the M's, not the G's; and its
 * pthread_cancel would read a kernel tid out of a G.  So all of it is
 * ours: state per G, the cleanup chain per G.
 *
 * Acting on a cancellation (or pthread_exit) is glibc's model: forced
 * unwinding of the thread's frames from the cancellation point (or from
 * the signal handler), thread.c.  C++ destructors, the cleanup handlers
 * of code built with -fexceptions (glibc's header makes them cleanup
 * attributes) and libc's own cleanups (a stdio lock taken by fgets) run
 * as their frames are passed.  C code's pthread_cleanup_push expands to a
 * sigsetjmp into a buffer on the stack plus __pthread_register_cancel(buf):
 * when the unwinding reaches the frame holding the innermost buffer, the
 * stop function pops it and longjmps into it (cleanup_jump); the macro's
 * code runs the handler and calls __pthread_unwind_next(buf), which
 * unwinds on from there.  At the end the thread exits with
 * PTHREAD_CANCELED (or pthread_exit's value).  A buffer is popped before
 * it is jumped to, so a handler that calls pthread_exit goes on with the
 * outer handlers, as in glibc.  Once initialisers being unwound are reset
 * as the unwinding passes their frame (once.c), so a cleanup handler may
 * run the once.  LinuxThreads-style _pthread_cleanup_push buffers (glibc's
 * list in the TCB) run in their place too.  Without libgcc_s (no
 * unwinder) the C buffers alone are run, by longjmp.
 *
 * Deferred cancellation points: pthread_testcancel, pthread_join and its
 * variants (also while they wait), every wrapped blocking call at entry,
 * the parked waits (interrupted by the request), and the plain blocking
 * calls while they block: those are made through arch_cp_syscall (musl's
 * design, arch/x86_64/cp.S), and pthread_cancel signals the M of a G
 * inside one with SIGCANCEL (32 - glibc's own, unused since
 * pthread_cancel is ours, and refused to the program by glibc's
 * sigaction).  The handler moves a thread whose PC is between the flag
 * check and the syscall instruction (not yet in the kernel, or blocked
 * there and being restarted: SA_RESTART points the PC back at the
 * instruction) to the "cancelled" exit; a call the kernel does not
 * restart comes back with EINTR and the wrapper looks at the flag.
 *
 * Asynchronous cancellation (PTHREAD_CANCEL_ASYNCHRONOUS, enabled) is
 * what glibc does too: the SIGCANCEL handler acts on the request itself,
 * unwinding from the interrupted instruction - but only where a G may be
 * stopped: the PC in the program's own code (not libc, the loader, the
 * C++ runtime or gshim: preemption's safe points, core/preempt.c) and the
 * G outside every runtime section.  glibc acts anywhere, trusting the
 * program to call only async-cancel-safe functions in that mode; gshim's
 * own locks would not survive it.  The request stays on the G
 * (preempt_async_set) and sysmon signals its M again every round while
 * the G runs, so a G that was in libc, or preempted and queued, is
 * cancelled when it next runs its own code.  The handler is installed
 * with SA_NODEFER: acting leaves the handler by longjmp or unwinding,
 * which must not leave SIGCANCEL blocked in the M.
 *
 * libc's own cancellation points (stdio's reads and writes, ...) call
 * the kernel inside libc, out of gshim's sight; they are covered through
 * glibc's own state in the G's struct pthread (see in_libc_cp and
 * glibc_sync below): blocked there, SIGCANCEL acts as glibc's handler
 * would; entered with a request pending, glibc acts itself.  "Blocked
 * there" is told two ways: up to glibc 2.39 by the asynchronous-type bit
 * libc sets around the call; from 2.40 on (BZ#12683; glibc 2.41 in Debian
 * 13) libc no longer sets it but calls the kernel from its
 * __syscall_cancel_arch bridge, whose hidden start/end markers glibc's
 * handler compares the PC with.  gshim finds that bridge by its exact
 * code in libc's text, only on glibc >= 2.40 (gnu_get_libc_version) and
 * only if it matches exactly once (libc_bridge_init); on any other
 * version, or other code, it is not used and a G blocked in libc's own
 * cancellation point is cancelled at its next cancellation point instead
 * - never a guess.  The CANCELED/state bits and cleanup_jmp_buf kept in
 * the TCB mean the same in 2.36 and 2.41 (same bit values; 2.41's bridge
 * and __syscall_cancel test CANCELED at entry and after EINTR and unwind
 * through cleanup_jmp_buf, as 2.36's enable_asynccancel did).
 *
 * Threads libc created behind gshim's back (SIGEV_THREAD) are glibc's:
 * its pthread_cancel, its SIGCANCEL handler (kept when glibc installs it
 * over ours, and called for them).
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "shim.h"

/* glibc's private layout of __pthread_unwind_buf_t's pad: prev first. */
#define BUF_PREV(b) (*(__pthread_unwind_buf_t **)&(b)->__pad[0])

/* The buffer holds a jmp_buf without the signal-mask tail (the macro's
 * sigsetjmp was told not to save it, so longjmp will not read it); hide
 * the size from the compiler's object-size checks. */
_Noreturn static void jump_to(__pthread_unwind_buf_t *b)
{
	void *p = b->__cancel_jmp_buf;

	__asm__("" : "+r"(p));
	longjmp(p, 1);
}

static void glibc_sync(g_t *g);
static void glibc_state(g_t *g);

_Noreturn void cleanup_jump(g_t *g)
{
	struct thread *t = thread_of(g);
	__pthread_unwind_buf_t *buf = t->cleanup;

	t->cleanup = BUF_PREV(buf);
	glibc_sync(g);
	once_unwound(t, (uintptr_t)buf);
	cancel_old_cleanups(g, (uintptr_t)buf);
	jump_to(buf);
}

/* Run the thread's cleanup handlers, innermost first, then exit it with
 * t->exit_value: thread_unwind_exit unwinds the frames (C++ destructors,
 * -fexceptions cleanups, libc's own) and jumps into the C buffers as it
 * passes them; without an unwinder, the C buffers alone, by longjmp. */
_Noreturn void cleanup_unwind(g_t *g)
{
	thread_unwind_exit(g, thread_of(g)->exit_value);
}

_Noreturn static void cancel_act(g_t *g)
{
	struct thread *t = thread_of(g);

	t->canceling = true;
	t->cancelstate = PTHREAD_CANCEL_DISABLE;
	glibc_state(g);   /* libc's own points must not start a second one */
	preempt_async_clear(g);
	t->exit_value = PTHREAD_CANCELED;
	cleanup_unwind(g);
}

/* A request is pending and may be acted on now. */
static bool cancel_acts(struct thread *t)
{
	return __builtin_expect(atomic_load_explicit(&t->cancel_req, memory_order_acquire), 0) &&
	       t->cancelstate == PTHREAD_CANCEL_ENABLE && !t->canceling;
}


void cancel_point(g_t *g)
{
	if (cancel_acts(thread_of(g)))
		cancel_act(g);
}

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000   /* the kernel's; glibc does not export it */
#endif

static const volatile uint32_t never;   /* the flag when cancel is off */

/* glibc's cancellation points inside libc (stdio's read and write, the
 * waits of system(), ...) call the kernel between its
 * __pthread_enable_asynccancel and __pthread_disable_asynccancel, which
 * set and clear the asynchronous-type bit of cancelhandling in the
 * thread's struct pthread: glibc's own handler acts on SIGCANCEL exactly
 * while that bit is set.  gshim's does the same, for a request of its own
 * (the bit is only ever set there by libc: pthread_setcanceltype is
 * ours).  The field's offset comes from libc's _thread_db descriptor;
 * the struct pthread of a G is its TCB (per-g TLS), so only that mode
 * can tell for another thread. */
#define GLIBC_CANCELTYPE_BIT 2u
static uint32_t tcb_cancel_off;   /* 0: unknown */

static bool in_libc_cp(const void *tcb)
{
	return tcb && tcb_cancel_off &&
	       (__atomic_load_n((const uint32_t *)((const char *)tcb + tcb_cancel_off),
	                        __ATOMIC_RELAXED) & GLIBC_CANCELTYPE_BIT);
}

/* glibc 2.41 (BZ#12683, "syscall_cancel"): libc's cancellation points no
 * longer set the asynchronous-type bit around the call; they go through
 * __syscall_cancel_arch, a bridge that checks the CANCELED bit and issues
 * the syscall, and glibc's handler acts on SIGCANCEL when the PC is
 * between its start and the end of its syscall instruction.  Its markers
 * are hidden symbols, so the bridge is found by its exact code in libc's
 * text (x86_64: sysdeps/unix/sysv/linux/x86_64/syscall_cancel.S), and
 * only on glibc >= 2.40; one match, or none is used.  Unset (older glibc,
 * other code, several matches): a G blocked inside libc's own
 * cancellation point is cancelled at its next cancellation point only. */
static uintptr_t libc_bridge_lo, libc_bridge_hi;   /* [lo, hi): 0 unknown */

static const unsigned char bridge_body[] = {
	0x49, 0x89, 0xfb,             /* mov %rdi,%r11 */
	0x48, 0x89, 0xf0,             /* mov %rsi,%rax */
	0x48, 0x89, 0xd7,             /* mov %rdx,%rdi */
	0x48, 0x89, 0xce,             /* mov %rcx,%rsi */
	0x4c, 0x89, 0xc2,             /* mov %r8,%rdx */
	0x4d, 0x89, 0xca,             /* mov %r9,%r10 */
	0x4c, 0x8b, 0x44, 0x24, 0x08, /* mov 0x8(%rsp),%r8 */
	0x4c, 0x8b, 0x4c, 0x24, 0x10, /* mov 0x10(%rsp),%r9 */
	0x4c, 0x89, 0x5c, 0x24, 0x08, /* mov %r11,0x8(%rsp) */
	0x0f, 0x05,                   /* syscall */
	0xc3,                         /* ret: __syscall_cancel_arch_end */
};
/* mov (%rdi),%eax; testb $CANCELED,(%rdi); jne rel32 | jne rel8 */
static const unsigned char bridge_head32[] = { 0x8b, 0x07, 0xf6, 0x07, 0x08, 0x0f, 0x85 };
static const unsigned char bridge_head8[] = { 0x8b, 0x07, 0xf6, 0x07, 0x08, 0x75 };

struct bridge_find {
	uintptr_t lo, hi;
	int found;
};

static int bridge_scan(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct bridge_find *f = arg;
	const char *name = info->dlpi_name;

	(void)size;
	if (!name || !strstr(name, "/libc.so.6"))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const unsigned char *seg, *p, *end;

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		seg = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		end = seg + ph->p_filesz;
		for (p = seg; (p = memmem(p, (size_t)(end - p), bridge_body, sizeof bridge_body)) != NULL;
		     p++) {
			const unsigned char *start = NULL;

			if (p - seg >= 11 && !memcmp(p - 11, bridge_head32, sizeof bridge_head32))
				start = p - 11;
			else if (p - seg >= 7 && !memcmp(p - 7, bridge_head8, sizeof bridge_head8))
				start = p - 7;
			if (!start)
				continue;
			f->found++;
			f->lo = (uintptr_t)start;
			f->hi = (uintptr_t)(p + sizeof bridge_body - 1);   /* the ret */
		}
	}
	return 1;
}

static void libc_bridge_init(void)
{
	struct bridge_find f = { 0, 0, 0 };
	unsigned maj = 0, min = 0;

#if defined(__x86_64__)
	if (sscanf(gnu_get_libc_version(), "%u.%u", &maj, &min) != 2 || maj != 2 || min < 40)
		return;
	dl_iterate_phdr(bridge_scan, &f);
	if (f.found == 1) {
		libc_bridge_lo = f.lo;
		libc_bridge_hi = f.hi;
	}
#else
	(void)f; (void)maj; (void)min;
#endif
}

/* Between the bridge's CANCELED check and the end of its syscall
 * instruction (blocked there, SA_RESTART put the PC back on it). */
static bool in_libc_bridge(uintptr_t pc)
{
	return libc_bridge_lo && pc >= libc_bridge_lo && pc < libc_bridge_hi;
}

/* A request already pending when libc's cancellation point is entered:
 * glibc checks its own state there (__pthread_enable_asynccancel) and
 * acts with its own code - forced unwinding that longjmps into the
 * buffer its struct pthread names in cleanup_jmp_buf once the unwinding
 * reaches that buffer's frame.  For a G with a TCB of its own (per-g TLS;
 * not the main thread, whose TCB names glibc's own buffer in
 * __libc_start_call_main) gshim keeps that state true: the CANCELED bit
 * set by pthread_cancel, the state bit by pthread_setcancelstate,
 * cleanup_jmp_buf naming the innermost C cleanup buffer (glibc's layout:
 * the program's macros made it) or, with none, a buffer in thread_entry.
 * glibc landing in a program's buffer runs its handler, whose
 * __pthread_unwind_next is ours (EXITING, set by glibc, tells that this
 * is a cancellation); landing in thread_entry ends the thread cancelled.
 * cleanup_jmp_buf's offset is found at start-up: a buffer registered with
 * libc's own __pthread_register_cancel, looked for in the TCB. */
#define GLIBC_CANCELSTATE_BIT 1u
#define GLIBC_CANCELED_BIT 8u
#define GLIBC_EXITING_BIT 16u
static uint32_t tcb_jmpbuf_off;   /* 0: unknown */
#define TCB_MULTIPLE_THREADS 0x18   /* tcbhead_t.multiple_threads, x86_64 */
static uint32_t tcb_oldcl_off;    /* cleanup: LinuxThreads-style buffers */

/* The old LinuxThreads _pthread_cleanup_push (a compatibility symbol of
 * libc, still used by old binaries) keeps a list in glibc's struct
 * pthread; glibc's unwinding runs the entries below the frame it has
 * reached.  Ours does the same (thread.c's stop function, cleanup_jump):
 * run those below limit, innermost first. */
void cancel_old_cleanups(g_t *g, uintptr_t limit)
{
	struct _pthread_cleanup_buffer **head, *b;

	if (!tcb_oldcl_off || !g->tcb || rt_cfg.tls_mode != TLS_PER_G)
		return;
	head = (struct _pthread_cleanup_buffer **)((char *)g->tcb + tcb_oldcl_off);
	while ((b = *head) != NULL && (uintptr_t)b < limit) {
		*head = b->__prev;
		if (b->__routine)
			b->__routine(b->__arg);
	}
}

static bool glibc_mirror(g_t *g)
{
	return thread_of(g)->base != NULL;   /* set only where it can be */
}

/* The main thread's TCB is glibc's own, whose cleanup_jmp_buf names the
 * buffer of __libc_start_call_main (landing there would end the kernel
 * thread under M0): glibc may act there only while a C buffer of the
 * program is innermost, and only for a request the main thread made
 * itself (pthread_cancel(pthread_self()), glibc's tst-cancel-self). */
static void *main_jb_orig;
static bool main_jb_saved;

static bool glibc_main(g_t *g)
{
	return g->is_main && tcb_jmpbuf_off && tcb_cancel_off && rt_cfg.tls_mode == TLS_PER_G &&
	       g->tcb;
}

static _Atomic uint32_t *tcb_ch(g_t *g)
{
	return (_Atomic uint32_t *)((char *)g->tcb + tcb_cancel_off);
}

/* Owner: cleanup_jmp_buf follows the chain. */
static void glibc_sync(g_t *g)
{
	struct thread *t = thread_of(g);
	void **jb;

	if (glibc_mirror(g)) {
		*(void **)((char *)g->tcb + tcb_jmpbuf_off) =
			t->cleanup ? (void *)t->cleanup : (void *)t->base;
		return;
	}
	if (!glibc_main(g))
		return;
	jb = (void **)((char *)g->tcb + tcb_jmpbuf_off);
	if (!main_jb_saved) {
		main_jb_orig = *jb;
		main_jb_saved = true;
	}
	if (t->cleanup && atomic_load_explicit(&t->cancel_req, memory_order_relaxed) &&
	    t->cancelstate == PTHREAD_CANCEL_ENABLE && !t->canceling) {
		*jb = t->cleanup;
		atomic_fetch_or_explicit(tcb_ch(g), GLIBC_CANCELED_BIT, memory_order_seq_cst);
	} else {
		atomic_fetch_and_explicit(tcb_ch(g), ~GLIBC_CANCELED_BIT, memory_order_seq_cst);
		*jb = t->cleanup ? (void *)t->cleanup : main_jb_orig;
	}
}

/* Owner: glibc's state bit follows ours. */
static void glibc_state(g_t *g)
{
	if (glibc_main(g))
		glibc_sync(g);
	if (!glibc_mirror(g))
		return;
	if (thread_of(g)->cancelstate == PTHREAD_CANCEL_ENABLE)
		atomic_fetch_and_explicit(tcb_ch(g), ~GLIBC_CANCELSTATE_BIT, memory_order_seq_cst);
	else
		atomic_fetch_or_explicit(tcb_ch(g), GLIBC_CANCELSTATE_BIT, memory_order_seq_cst);
}

void cancel_thread_start(g_t *g, __pthread_unwind_buf_t *base)
{
	struct thread *t = thread_of(g);

	if (tcb_oldcl_off && rt_cfg.tls_mode == TLS_PER_G && g->tcb)   /* a reused TCB */
		*(void **)((char *)g->tcb + tcb_oldcl_off) = NULL;
	if (!tcb_jmpbuf_off || !tcb_cancel_off || rt_cfg.tls_mode != TLS_PER_G || !g->tcb)
		return;
	atomic_store_explicit(tcb_ch(g), 0, memory_order_relaxed);   /* a reused TCB */
	atomic_store_explicit(&t->base, base, memory_order_seq_cst);
	/* Dekker with pthread_cancel: request stored, then base read. */
	if (atomic_load_explicit(&t->cancel_req, memory_order_seq_cst))
		atomic_fetch_or_explicit(tcb_ch(g), GLIBC_CANCELED_BIT, memory_order_seq_cst);
	glibc_sync(g);
}

/* glibc started the unwinding (its bits say so) and we see it now: from
 * here on it is our cancellation. */
static void glibc_took(g_t *g)
{
	struct thread *t = thread_of(g);

	if (t->canceling || (!glibc_mirror(g) && !glibc_main(g)) ||
	    !(atomic_load_explicit(tcb_ch(g), memory_order_relaxed) & GLIBC_EXITING_BIT))
		return;
	t->canceling = true;
	t->cancelstate = PTHREAD_CANCEL_DISABLE;
	preempt_async_clear(g);
	t->exit_value = PTHREAD_CANCELED;
}

void cancel_glibc_landed(g_t *g)
{
	glibc_took(g);
	thread_of(g)->canceling = true;
}

/* glibc's own SIGCANCEL action: installed by its pthread_cancel the first
 * time a thread gshim did not create is cancelled (cancel_reclaim). */
static struct os_ksigaction libc_cancel;
static _Atomic int libc_cancel_saved;

static void cancel_signal(int sig, siginfo_t *si, void *uc)
{
	g_t *g = getcurg();
	uintptr_t pc = arch_uc_pc(uc);
	struct thread *t;

	if (!getg()) {
		/* A thread libc created: its cancellation is glibc's. */
		if (atomic_load_explicit(&libc_cancel_saved, memory_order_acquire) &&
		    (libc_cancel.flags & SA_SIGINFO) && libc_cancel.handler)
			((void (*)(int, siginfo_t *, void *))libc_cancel.handler)(sig, si, uc);
		return;
	}
	if (!g)
		return;   /* an M's scheduler context: a late signal */
	t = thread_of(g);
	/* A sigwait kick (g_signal) for a G that has left its call: the call
	 * it interrupts now is another G's, which must not take it for a
	 * handler's EINTR. */
	if (si && si->si_code == SI_QUEUE &&
	    (si->si_value.sival_ptr != g ||
	     (uint32_t)si->si_errno != atomic_load_explicit(&g->sigwait_seq, memory_order_relaxed) ||
	     !atomic_load_explicit(&g->sigwait_set, memory_order_relaxed)))
		atomic_store_explicit(&g->sigstray, 1, memory_order_relaxed);
	/* Out of the call when cancellation acts, and also out of a sigwait
	 * when a signal was made pending for it (g_signal, shim/signal.c):
	 * sigwake is only looked at there. */
	/* ... and out of a call sysmon evicts (no M could be created for
	 * runnable G's: core/sched.c, "Running out of M's"); the wrapper
	 * goes on with the call's non-blocking twin. */
	if (atomic_load_explicit(&t->in_cp, memory_order_relaxed) &&
	    ((atomic_load_explicit(&t->in_cp, memory_order_relaxed) == 1 && cancel_acts(t)) ||
	     (atomic_load_explicit(&g->sigwait_set, memory_order_relaxed) &&
	      atomic_load_explicit(&g->sigwake, memory_order_relaxed)) ||
	     (atomic_load_explicit(&g->evictable, memory_order_relaxed) &&
	      atomic_load_explicit(&g->evict, memory_order_relaxed))) &&
	    pc >= (uintptr_t)arch_cp_begin && pc < (uintptr_t)arch_cp_end) {
		arch_uc_set_pc(uc, (uintptr_t)arch_cp_cancel);
		return;
	}
	if (cancel_acts(t) && g->rtdepth == 0 && (in_libc_cp(arch_tp()) || in_libc_bridge(pc)))
		cancel_act(g);   /* blocked in a cancellation point of libc */
	if (!atomic_load_explicit(&g->asyncsig, memory_order_relaxed))
		return;
	if (!shim_cancel_async(g) || !cancel_acts(t)) {
		/* Deferred or disabled now: the next cancellation point (or
		 * pthread_setcancelstate/settype) acts. */
		preempt_async_clear(g);
		return;
	}
	if (g->rtdepth != 0 || atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING ||
	    !preempt_pc_safe(pc))
		return;   /* not here: sysmon signals again */
	cancel_act(g);
}

static void cancel_install(const struct os_ksigaction *urg)
{
	struct os_ksigaction ka;

	ka.handler = (void *)cancel_signal;
	ka.flags = SA_SIGINFO | SA_RESTART | SA_RESTORER | SA_NODEFER;
	ka.restorer = urg->restorer;
	ka.mask = 0;
	arch_syscall6(SYS_rt_sigaction, SIGCANCEL, (long)&ka, 0, 8, 0, 0);
}

/* glibc's pthread_cancel (of a thread libc created) installs glibc's
 * handler over ours the first time: keep it for those threads and put
 * ours back.  Until then a request of ours sent in that window may reach
 * glibc's handler, which only marks glibc's state of the G's TCB. */
static void cancel_reclaim(void)
{
	struct os_ksigaction cur, urg;

	if (!os_sigaction_get(SIGCANCEL, &cur) || cur.handler == (void *)cancel_signal ||
	    !os_sigaction_get(SIGURG, &urg) || !urg.restorer)
		return;
	if (!atomic_load_explicit(&libc_cancel_saved, memory_order_relaxed)) {
		libc_cancel = cur;
		atomic_store_explicit(&libc_cancel_saved, 1, memory_order_release);
	}
	cancel_install(&urg);
}

/* Installed once at start-up, with the kernel's interface: glibc's
 * sigaction refuses its own signal.  The restorer is the one glibc put on
 * the runtime's SIGURG action (sched_init). */
void cancel_init(void)
{
	struct os_ksigaction urg;
	const uint32_t *d = dlsym(RTLD_DEFAULT, "_thread_db_pthread_cancelhandling");

	const uint32_t *sz = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");

	if (d && d[0] == 32 && d[1] == 1)   /* 32 bits, one of them, offset */
		tcb_cancel_off = d[2];
	if (sz && tcb_cancel_off) {
		__pthread_unwind_buf_t probe;
		char *self = arch_tp();

		real___pthread_register_cancel(&probe);
		for (uint32_t off = 0; off + sizeof(void *) <= sz[0]; off += sizeof(void *))
			if (*(void **)(self + off) == (void *)&probe) {
				tcb_jmpbuf_off = off;
				break;
			}
		real___pthread_unregister_cancel(&probe);
	}
	if (sz && tcb_jmpbuf_off) {
		void (*push)(struct _pthread_cleanup_buffer *, void (*)(void *), void *) =
			dlvsym(RTLD_NEXT, "_pthread_cleanup_push", "GLIBC_2.2.5");
		void (*pop)(struct _pthread_cleanup_buffer *, int) =
			dlvsym(RTLD_NEXT, "_pthread_cleanup_pop", "GLIBC_2.2.5");
		struct _pthread_cleanup_buffer old;
		char *self = arch_tp();

		if (push && pop) {
			push(&old, NULL, NULL);
			for (uint32_t off = 0; off + sizeof(void *) <= sz[0]; off += sizeof(void *))
				if (*(void **)(self + off) == (void *)&old) {
					tcb_oldcl_off = off;
					break;
				}
			pop(&old, 0);
		}
	}
	libc_bridge_init();
	if (!os_sigaction_get(SIGURG, &urg) || !urg.restorer)
		return;   /* no cancellation of plain calls while they block */
	cancel_install(&urg);
}

long shim_cp_syscall(g_t *g, long nr, long a, long b, long c, long d, long e, long f)
{
	return shim_cp_syscall2(g, true, nr, a, b, c, d, e, f);
}

long shim_cp_syscall2(g_t *g, bool cancel, long nr, long a, long b, long c, long d, long e,
                      long f)
{
	struct thread *t;
	uint32_t outer;
	long r;

	if (!g)
		return arch_syscall6(nr, a, b, c, d, e, f);
	t = thread_of(g);
	/* A signal handler's own call inside this one's (the kernel ran
	 * the handler in the middle of it): the outer call is still one
	 * when the handler returns into it.  2: not a cancellation point
	 * while it blocks (flock), but the handler may still end it for a
	 * sigwait kick or an eviction. */
	outer = atomic_load_explicit(&t->in_cp, memory_order_relaxed);
	atomic_store_explicit(&t->in_cp, cancel ? 1 : 2, memory_order_seq_cst);
	/* sigwait & co. check g->sigwake instead, which pthread_cancel sets
	 * too (below). */
	r = arch_cp_syscall(atomic_load_explicit(&g->sigwait_set, memory_order_relaxed) ?
	                    (const volatile uint32_t *)&g->sigwake :
	                    cancel && t->cancelstate == PTHREAD_CANCEL_ENABLE && !t->canceling ?
	                    (const volatile uint32_t *)&t->cancel_req : &never,
	                    nr, a, b, c, d, e, f);
	atomic_store_explicit(&t->in_cp, outer, memory_order_relaxed);
	return r;
}

void shim_cp_after(g_t *g, long r)
{
	if (g && (r == ARCH_CP_CANCELED || r == -EINTR))
		cancel_point(g);   /* acts if the request is what cut it short */
}

int shim_wait_cancellable(g_t *g, _Atomic uint32_t *addr, uint32_t val,
                          int64_t deadline)
{
	struct thread *t;
	int r;

	if (!g)
		return gfutex_wait(addr, val, deadline);
	t = thread_of(g);
	if (t->cancelstate != PTHREAD_CANCEL_ENABLE || t->canceling)
		return gfutex_wait(addr, val, deadline);
	r = gfutex_wait_intr(addr, val, deadline, &t->cancel_req);
	return r == -EINTR ? -ECANCELED : r;
}

SHIM_EXPORT int pthread_cancel(pthread_t th)
{
	g_t *g;

	/* glibc: 0 for a thread that has exited (joined or not). */
	if (!shim_is_g(th)) {
		int r;

		if (shim_is_stale_g(th))
			return 0;
		r = real_pthread_cancel(th);
		cancel_reclaim();
		return r;
	}
	g = (g_t *)th;
	if (atomic_load(&g->status) == G_DEAD)
		return 0;
	atomic_store_explicit(&thread_of(g)->cancel_req, 1, memory_order_seq_cst);
	/* In sigwait & co., the word its call checks (Dekker with the
	 * waiter: it publishes sigwait_set, then checks the request). */
	if (thread_of(g)->cancelstate == PTHREAD_CANCEL_ENABLE &&
	    atomic_load_explicit(&g->sigwait_set, memory_order_seq_cst))
		atomic_store_explicit(&g->sigwake, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&thread_of(g)->base, memory_order_seq_cst))
		atomic_fetch_or_explicit(tcb_ch(g), GLIBC_CANCELED_BIT, memory_order_seq_cst);
	/* Wake it if it sleeps in a cancellable wait (shim_wait_cancellable). */
	gfutex_interrupt(g);
	/* Or interrupt the plain blocking call it is in (see above), ours
	 * or one of libc's own. */
	if ((atomic_load_explicit(&thread_of(g)->in_cp, memory_order_seq_cst) == 1 ||
	     (rt_cfg.tls_mode == TLS_PER_G && in_libc_cp(g->tcb)) ||
	     /* glibc >= 2.40: maybe in libc's bridge; the handler looks */
	     (libc_bridge_lo && g != getcurg() &&
	      atomic_load_explicit(&g->status, memory_order_seq_cst) == G_RUNNING)) &&
	    thread_of(g)->cancelstate == PTHREAD_CANCEL_ENABLE) {
		m_t *m = __atomic_load_n(&g->m, __ATOMIC_ACQUIRE);

		if (m && m->tid)
			arch_syscall(SYS_tgkill, getpid(), m->tid, SIGCANCEL);
	}
	if (g == getcurg() && g->is_main) {
		/* As glibc's pthread_cancel: a process that never made a
		 * thread takes libc's single-thread paths, which skip the
		 * cancellation points; a thread cancelling itself must not. */
		__atomic_store_n((int *)((char *)arch_tp() + TCB_MULTIPLE_THREADS), 1,
		                 __ATOMIC_RELAXED);
		__libc_single_threaded = 0;
		glibc_sync(g);
	}
	if (shim_cancel_async(g)) {
		if (g == getcurg())
			cancel_point(g);
		preempt_async_set(g, SIGCANCEL);
	}
	return 0;
}

SHIM_EXPORT void pthread_testcancel(void)
{
	g_t *g = shim_self();

	if (!g) {
		real_pthread_testcancel();
		return;
	}
	cancel_point(g);
}

SHIM_EXPORT int pthread_setcancelstate(int state, int *old)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g)
		return real_pthread_setcancelstate(state, old);
	if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE)
		return EINVAL;
	t = thread_of(g);
	if (old)
		*old = t->cancelstate;
	__atomic_store_n(&t->cancelstate, state, __ATOMIC_RELAXED);
	glibc_state(g);
	if (t->canceltype == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
	return 0;
}

SHIM_EXPORT int pthread_setcanceltype(int type, int *old)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g)
		return real_pthread_setcanceltype(type, old);
	if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS)
		return EINVAL;
	t = thread_of(g);
	if (old)
		*old = t->canceltype;
	__atomic_store_n(&t->canceltype, type, __ATOMIC_RELAXED);
	if (type == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
	return 0;
}

SHIM_EXPORT void __pthread_register_cancel(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g) {
		real___pthread_register_cancel(buf);
		return;
	}
	t = thread_of(g);
	BUF_PREV(buf) = t->cleanup;
	t->cleanup = buf;
	glibc_sync(g);
}

SHIM_EXPORT void __pthread_unregister_cancel(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();

	if (!g) {
		real___pthread_unregister_cancel(buf);
		return;
	}
	thread_of(g)->cleanup = BUF_PREV(buf);
	glibc_sync(g);
}

/* pthread_cleanup_push_defer_np: also switch to deferred for the region;
 * the old type is kept in the pad (glibc keeps it in the same buffer). */
SHIM_EXPORT void __pthread_register_cancel_defer(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g) {
		real___pthread_register_cancel_defer(buf);
		return;
	}
	t = thread_of(g);
	buf->__pad[2] = (void *)(intptr_t)t->canceltype;
	t->canceltype = PTHREAD_CANCEL_DEFERRED;
	BUF_PREV(buf) = t->cleanup;
	t->cleanup = buf;
	glibc_sync(g);
}

SHIM_EXPORT void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g) {
		real___pthread_unregister_cancel_restore(buf);
		return;
	}
	t = thread_of(g);
	t->cleanup = BUF_PREV(buf);
	glibc_sync(g);
	t->canceltype = (int)(intptr_t)buf->__pad[2];
	if (t->canceltype == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
}

SHIM_EXPORT _Noreturn void __pthread_unwind_next(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g)
		real___pthread_unwind_next(buf);
	t = thread_of(g);
	/* glibc's own unwinding (a cancellation point inside libc) may have
	 * brought us here: then it is a cancellation. */
	glibc_took(g);
	/* buf was popped before the jump into it (cleanup_jump) or, by
	 * glibc, not: either way the next one is the head now (a handler's
	 * own push/pop pairs are balanced by now). */
	t->cleanup = BUF_PREV(buf);
	glibc_sync(g);
	cleanup_unwind(g);
}
