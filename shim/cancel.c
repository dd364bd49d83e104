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
 * When cancellation acts is core's (core/cancel.c: the request, the
 * cancellation points, the SIGCANCEL handler, the cancellable system
 * calls); core then calls rt_cfg.cancel_exit = shim_cancel_exit, here,
 * which does not return.
 *
 * libc's own cancellation points (stdio's reads and writes, ...) call
 * the kernel inside libc, out of gshim's sight; they are covered through
 * glibc's own state in the G's struct pthread (core/cancel.c's
 * in_libc_cp, and glibc_sync below): blocked there, SIGCANCEL acts as glibc's handler
 * would; entered with a request pending, glibc acts itself.  "Blocked
 * there" is told two ways: up to glibc 2.39 by the asynchronous-type bit
 * libc sets around the call; from 2.40 on (BZ#12683; glibc 2.41 in Debian
 * 13) libc no longer sets it but calls the kernel from its
 * __syscall_cancel_arch bridge, whose hidden start/end markers glibc's
 * handler compares the PC with.  gshim finds that bridge by its exact
 * code in libc's text, only on glibc >= 2.40 (gnu_get_libc_version) and
 * only if it matches exactly once (core/cancel.c); on any other
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

/* core/cancel.c acts on a request (the flags already say so): glibc's
 * view follows, then the thread ends cancelled. */
_Noreturn void shim_cancel_exit(g_t *g)
{
	glibc_state(g);   /* libc's own points must not start a second one */
	thread_of(g)->exit_value = PTHREAD_CANCELED;
	cleanup_unwind(g);
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

	if (!tcb_oldcl_off || !g->tcb || !rt_tls_per_g())
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
	return g->is_main && tcb_jmpbuf_off && cancel_glibc_word(g->tcb) &&
	       rt_tls_per_g();
}

static _Atomic uint32_t *tcb_ch(g_t *g)
{
	return cancel_glibc_word(g->tcb);
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
	if (t->cleanup && cancel_pending(g)) {
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
	if (cancel_state_enabled(g))
		atomic_fetch_and_explicit(tcb_ch(g), ~GLIBC_CANCELSTATE_BIT, memory_order_seq_cst);
	else
		atomic_fetch_or_explicit(tcb_ch(g), GLIBC_CANCELSTATE_BIT, memory_order_seq_cst);
}

void cancel_thread_start(g_t *g, __pthread_unwind_buf_t *base)
{
	struct thread *t = thread_of(g);

	if (tcb_oldcl_off && rt_tls_per_g() && g->tcb)   /* a reused TCB */
		*(void **)((char *)g->tcb + tcb_oldcl_off) = NULL;
	if (!tcb_jmpbuf_off || !cancel_glibc_word(g->tcb) || !rt_tls_per_g())
		return;
	atomic_store_explicit(tcb_ch(g), 0, memory_order_relaxed);   /* a reused TCB */
	atomic_store_explicit(&t->base, base, memory_order_seq_cst);
	/* Dekker with pthread_cancel: request stored, then base read. */
	if (atomic_load_explicit(&g->cancel_req, memory_order_seq_cst))
		atomic_fetch_or_explicit(tcb_ch(g), GLIBC_CANCELED_BIT, memory_order_seq_cst);
	glibc_sync(g);
}

/* glibc started the unwinding (its bits say so) and we see it now: from
 * here on it is our cancellation. */
static void glibc_took(g_t *g)
{
	struct thread *t = thread_of(g);

	if (g->canceling || (!glibc_mirror(g) && !glibc_main(g)) ||
	    !(atomic_load_explicit(tcb_ch(g), memory_order_relaxed) & GLIBC_EXITING_BIT))
		return;
	cancel_begin(g);
	t->exit_value = PTHREAD_CANCELED;
}

void cancel_glibc_landed(g_t *g)
{
	glibc_took(g);
	g->canceling = true;
}

/* glibc's cleanup_jmp_buf and LinuxThreads cleanup list offsets in the
 * TCB, found once at start-up (after core's cancel_init, which found
 * cancelhandling's): a buffer registered with libc's own functions,
 * looked for in the calling thread's TCB. */
void shim_cancel_init(void)
{
	const uint32_t *sz = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");

	if (sz && cancel_glibc_word(arch_tp())) {
		__pthread_unwind_buf_t probe;
		char *self = arch_tp();

		REAL(__pthread_register_cancel)(&probe);
		for (uint32_t off = 0; off + sizeof(void *) <= sz[0]; off += sizeof(void *))
			if (*(void **)(self + off) == (void *)&probe) {
				tcb_jmpbuf_off = off;
				break;
			}
		REAL(__pthread_unregister_cancel)(&probe);
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
}

SHIM_EXPORT int pthread_cancel(pthread_t th)
{
	g_t *g;

	/* glibc: 0 for a thread that has exited (joined or not). */
	if (!shim_is_g(th)) {
		int r;

		if (shim_is_stale_g(th))
			return 0;
		r = REAL(pthread_cancel)(th);
		cancel_reclaim();
		return r;
	}
	g = (g_t *)th;
	if (atomic_load(&g->status) == G_DEAD)
		return 0;
	cancel_request(g);
	if (atomic_load_explicit(&thread_of(g)->base, memory_order_seq_cst))
		atomic_fetch_or_explicit(tcb_ch(g), GLIBC_CANCELED_BIT, memory_order_seq_cst);
	cancel_interrupt(g);
	if (g == getcurg() && g->is_main) {
		/* As glibc's pthread_cancel: a process that never made a
		 * thread takes libc's single-thread paths, which skip the
		 * cancellation points; a thread cancelling itself must not. */
		__atomic_store_n((int *)((char *)arch_tp() + TCB_MULTIPLE_THREADS), 1,
		                 __ATOMIC_RELAXED);
		__libc_single_threaded = 0;
		glibc_sync(g);
	}
	cancel_async(g);
	return 0;
}

SHIM_EXPORT void pthread_testcancel(void)
{
	g_t *g = shim_self();

	if (!g) {
		REAL(pthread_testcancel)();
		return;
	}
	cancel_point(g);
}

SHIM_EXPORT int pthread_setcancelstate(int state, int *old)
{
	g_t *g = shim_self();

	if (!g)
		return REAL(pthread_setcancelstate)(state, old);
	if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE)
		return EINVAL;
	if (old)
		*old = g->cancelstate;
	__atomic_store_n(&g->cancelstate, state, __ATOMIC_RELAXED);
	glibc_state(g);
	if (g->canceltype == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
	return 0;
}

SHIM_EXPORT int pthread_setcanceltype(int type, int *old)
{
	g_t *g = shim_self();

	if (!g)
		return REAL(pthread_setcanceltype)(type, old);
	if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS)
		return EINVAL;
	if (old)
		*old = g->canceltype;
	__atomic_store_n(&g->canceltype, type, __ATOMIC_RELAXED);
	if (type == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
	return 0;
}

SHIM_EXPORT void __pthread_register_cancel(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g) {
		REAL(__pthread_register_cancel)(buf);
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
		REAL(__pthread_unregister_cancel)(buf);
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
		REAL(__pthread_register_cancel_defer)(buf);
		return;
	}
	t = thread_of(g);
	buf->__pad[2] = (void *)(intptr_t)g->canceltype;
	g->canceltype = PTHREAD_CANCEL_DEFERRED;
	BUF_PREV(buf) = t->cleanup;
	t->cleanup = buf;
	glibc_sync(g);
}

SHIM_EXPORT void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g) {
		REAL(__pthread_unregister_cancel_restore)(buf);
		return;
	}
	t = thread_of(g);
	t->cleanup = BUF_PREV(buf);
	glibc_sync(g);
	g->canceltype = (int)(intptr_t)buf->__pad[2];
	if (g->canceltype == PTHREAD_CANCEL_ASYNCHRONOUS)
		cancel_point(g);
}

SHIM_EXPORT _Noreturn void __pthread_unwind_next(__pthread_unwind_buf_t *buf)
{
	g_t *g = shim_self();
	struct thread *t;

	if (!g)
		REAL(__pthread_unwind_next)(buf);
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
