/* core/cancel.c - cancellation requests and signal interruption of waits.
 *
 * Purpose.  A G can be asked to stop what it waits for: pthread_cancel
 * (a cancellation request), a signal directed at it (its handler must run,
 * and the call then ends with EINTR or restarts), sysmon evicting it from
 * a call that holds a scarce M (core/syscall.c, "Running out of M's").  The
 * waits are the runtime's (gfutex parks, the poller, sleeps) and plain
 * system calls that block an M (syscall_wrap's connect, waitpid, ...).
 * This file is the one mechanism that interrupts them and tells the
 * caller why; what a cancellation then DOES to the thread - cleanup
 * handlers, forced unwinding, the exit value - is the shim's business,
 * reached through one hook, rt_cfg.cancel_exit (shim/cancel.c), the way
 * core learns the size of the shim's per-thread area (rt_cfg.g_ext_size).
 *
 * State (on struct g; all zero for a fresh G, which is "enabled,
 * deferred, nothing requested"):
 *   cancel_req   0 -> 1 once, by pthread_cancel; never reset (a G is
 *                zeroed on reuse).  A gfutex address: parked waits are
 *                interrupted through it (gfutex_wait_intr).
 *   cancelstate, canceltype   PTHREAD_CANCEL_*; owner writes (the shim's
 *                setters), others read racily (pthread_cancel).
 *   canceling    the G acts on a request (or glibc's unwinding does):
 *                never a second time.  cancel_begin sets it together with
 *                state DISABLE, so that libc's own points do not start a
 *                second unwinding either.
 *   in_cp        the G is inside cancel_syscall: 1 a cancellation point
 *                while it blocks, 2 only interruptible (for a sigwait
 *                kick or an eviction), 0 not in one.
 * Invariant: a request is acted on only by the G itself, at a point where
 * it holds no runtime lock (rtdepth 0 for the signal handler's cases),
 * and only while cancel_enabled(g).
 *
 * Protocol of a request (pthread_cancel, three steps with the shim's
 * glibc bookkeeping in between): cancel_request stores the request
 * (seq_cst) and, for a G in sigwait & co., sets sigwake, the word that
 * call checks (Dekker: the waiter publishes sigwait_set, then looks at
 * the request); cancel_interrupt wakes a parked wait (gfutex_interrupt)
 * and signals the M of a G inside a plain blocking call - ours (in_cp) or
 * libc's own (below) - with SIGCANCEL; cancel_async makes an
 * asynchronous-type G act at once (itself) or keeps signalling its M
 * (preempt_async_set).  The waiter's side: a wait made through
 * cancel_gfutex_wait returns -ECANCELED, the caller restores its
 * invariants (a condvar waiter re-takes the mutex) and calls cancel_point,
 * which does not return.
 *
 * Plain blocking calls (musl's design, arch/x86_64/cp.S): cancel_syscall
 * makes the call through arch_cp_syscall, which checks a flag word just
 * before the syscall instruction.  The SIGCANCEL handler moves a thread
 * whose PC is between that check and the instruction (not yet in the
 * kernel, or blocked there and being restarted: SA_RESTART points the PC
 * back at the instruction) to the "cancelled" exit; a call the kernel
 * does not restart comes back with EINTR and cancel_syscall_after looks at
 * the flag.  The flag is the request (cancellable), sigwake (in sigwait &
 * co.), or a word that is never set.  SIGCANCEL is glibc's own, unused by
 * glibc since pthread_cancel is gshim's, and refused to the program by
 * glibc's sigaction: it is installed with the kernel's interface.
 *
 * libc's own cancellation points (stdio's reads, ...) call the kernel
 * inside libc: blocked there (glibc's asynchronous-type bit in the G's
 * TCB up to 2.39, or the PC in the __syscall_cancel_arch bridge from 2.40
 * on, found by its exact code), the handler acts as glibc's would.
 *
 * Signal interruption: a parked wait cut short so that a handler could
 * run (g_signal) asks g_sig_outcome what the kernel would have done to the
 * call - restart it (SA_RESTART, a restartable call), EINTR, or nothing
 * (an ignored signal): the same answer for every wait kind.
 *
 * Rejected: keeping this in the shim (as it was).  syscall_wrap's waits
 * and the runtime's own (sleeps, the poller) needed the shim's per-thread
 * area and its functions, so the layer below called the layer above
 * through its header; and the "is cancellation enabled" test was written
 * in every caller.  Also rejected: making core run the cleanup handlers.
 * Those are glibc's model (forced unwinding, setjmp buffers of the
 * program's macros) and belong with the rest of the POSIX thread API.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000   /* the kernel's; glibc does not export it */
#endif

static const volatile uint32_t never;   /* the flag when cancel is off */

/* ---- acting ------------------------------------------------------------ */

void cancel_begin(g_t *g)
{
	g->canceling = true;
	g->cancelstate = PTHREAD_CANCEL_DISABLE;
	preempt_async_clear(g);
}

_Noreturn static void cancel_act(g_t *g)
{
	cancel_begin(g);
	if (!rt_cfg.cancel_exit)
		rt_fatal("cancellation without a cancel_exit hook");
	rt_cfg.cancel_exit(g);
	__builtin_unreachable();
}

void cancel_point(g_t *g)
{
	if (cancel_pending(g))
		cancel_act(g);
}

/* ---- libc's own cancellation points ----------------------------------- */

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

_Atomic uint32_t *cancel_glibc_word(void *tcb)
{
	return tcb && tcb_cancel_off ? (_Atomic uint32_t *)((char *)tcb + tcb_cancel_off) : NULL;
}

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

/* ---- the SIGCANCEL handler --------------------------------------------- */

/* glibc's own SIGCANCEL action: installed by its pthread_cancel the first
 * time a thread gshim did not create is cancelled (cancel_reclaim). */
static struct os_ksigaction libc_cancel;
static _Atomic int libc_cancel_saved;

static void cancel_signal(int sig, siginfo_t *si, void *uc)
{
	g_t *g = getcurg();
	uintptr_t pc = arch_uc_pc(uc);

	if (!getg()) {
		/* A thread libc created: its cancellation is glibc's. */
		if (atomic_load_explicit(&libc_cancel_saved, memory_order_acquire) &&
		    (libc_cancel.flags & SA_SIGINFO) && libc_cancel.handler)
			((void (*)(int, siginfo_t *, void *))libc_cancel.handler)(sig, si, uc);
		return;
	}
	if (!g)
		return;   /* an M's scheduler context: a late signal */
	/* A sigwait kick (g_signal) for a G that has left its call: the call
	 * it interrupts now is another G's, which must not take it for a
	 * handler's EINTR. */
	/* Likewise an eviction (core/syscall.c, m_evict) meant for a G that
	 * has left its call. */
	if (si && si->si_code == SI_QUEUE && si->si_errno == SIGCANCEL_EVICT_TAG) {
		if (si->si_value.sival_ptr != g ||
		    !atomic_load_explicit(&g->evictable, memory_order_relaxed) ||
		    !atomic_load_explicit(&g->evict, memory_order_relaxed))
			atomic_store_explicit(&g->sigstray, 1, memory_order_relaxed);
	} else if (si && si->si_code == SI_QUEUE &&
	    (si->si_value.sival_ptr != g ||
	     (uint32_t)si->si_errno != atomic_load_explicit(&g->sigwait_seq, memory_order_relaxed) ||
	     !atomic_load_explicit(&g->sigwait_set, memory_order_relaxed)))
		atomic_store_explicit(&g->sigstray, 1, memory_order_relaxed);
	/* Out of the call when cancellation acts, and also out of a sigwait
	 * when a signal was made pending for it (g_signal, shim/signal.c):
	 * sigwake is only looked at there. */
	/* ... and out of a call sysmon evicts (no M could be created for
	 * runnable G's: core/syscall.c, "Running out of M's"); the wrapper
	 * goes on with the call's non-blocking twin. */
	if (atomic_load_explicit(&g->in_cp, memory_order_relaxed) &&
	    ((atomic_load_explicit(&g->in_cp, memory_order_relaxed) == 1 && cancel_pending(g)) ||
	     (atomic_load_explicit(&g->sigwait_set, memory_order_relaxed) &&
	      atomic_load_explicit(&g->sigwake, memory_order_relaxed)) ||
	     (atomic_load_explicit(&g->evictable, memory_order_relaxed) &&
	      atomic_load_explicit(&g->evict, memory_order_relaxed))) &&
	    pc >= (uintptr_t)arch_cp_begin && pc < (uintptr_t)arch_cp_end) {
		arch_uc_set_pc(uc, (uintptr_t)arch_cp_cancel);
		return;
	}
	if (cancel_pending(g) && g->rtdepth == 0 && (in_libc_cp(arch_tp()) || in_libc_bridge(pc)))
		cancel_act(g);   /* blocked in a cancellation point of libc */
	if (!atomic_load_explicit(&g->asyncsig, memory_order_relaxed))
		return;
	if (!cancel_async_enabled(g) || !cancel_pending(g)) {
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
void cancel_reclaim(void)
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

	if (d && d[0] == 32 && d[1] == 1)   /* 32 bits, one of them, offset */
		tcb_cancel_off = d[2];
	libc_bridge_init();
	if (!os_sigaction_get(SIGURG, &urg) || !urg.restorer)
		return;   /* no cancellation of plain calls while they block */
	cancel_install(&urg);
}

/* ---- requests ------------------------------------------------------------ */

void cancel_request(g_t *g)
{
	atomic_store_explicit(&g->cancel_req, 1, memory_order_seq_cst);
	/* In sigwait & co., the word its call checks (Dekker with the
	 * waiter: it publishes sigwait_set, then checks the request). */
	if (cancel_state_enabled(g) &&
	    atomic_load_explicit(&g->sigwait_set, memory_order_seq_cst))
		atomic_store_explicit(&g->sigwake, 1, memory_order_seq_cst);
}

void cancel_interrupt(g_t *g)
{
	/* Wake it if it sleeps in a cancellable wait (cancel_gfutex_wait). */
	gfutex_interrupt(g);
	/* Or interrupt the plain blocking call it is in (see above), ours
	 * or one of libc's own. */
	if ((atomic_load_explicit(&g->in_cp, memory_order_seq_cst) == 1 ||
	     (rt_tls_per_g() && in_libc_cp(g->tcb)) ||
	     /* glibc >= 2.40: maybe in libc's bridge; the handler looks */
	     (libc_bridge_lo && g != getcurg() &&
	      atomic_load_explicit(&g->status, memory_order_seq_cst) == G_RUNNING)) &&
	    cancel_state_enabled(g)) {
		m_t *m = __atomic_load_n(&g->m, __ATOMIC_ACQUIRE);

		if (m && m->tid)
			arch_syscall(SYS_tgkill, getpid(), m->tid, SIGCANCEL);
	}
}

void cancel_async(g_t *g)
{
	if (cancel_async_enabled(g)) {
		if (g == getcurg())
			cancel_point(g);
		preempt_async_set(g, SIGCANCEL);
	}
}

/* ---- cancellable waits ------------------------------------------------- */

long cancel_syscall(g_t *g, long nr, long a, long b, long c, long d, long e, long f)
{
	return cancel_syscall2(g, true, nr, a, b, c, d, e, f);
}

long cancel_syscall2(g_t *g, bool cancel, long nr, long a, long b, long c, long d, long e,
                     long f)
{
	uint32_t outer;
	long r;

	if (!g)
		return arch_syscall6(nr, a, b, c, d, e, f);
	/* A signal handler's own call inside this one's (the kernel ran
	 * the handler in the middle of it): the outer call is still one
	 * when the handler returns into it.  2: not a cancellation point
	 * while it blocks (flock), but the handler may still end it for a
	 * sigwait kick or an eviction. */
	outer = atomic_load_explicit(&g->in_cp, memory_order_relaxed);
	atomic_store_explicit(&g->in_cp, cancel ? 1 : 2, memory_order_seq_cst);
	/* sigwait & co. check g->sigwake instead, which pthread_cancel sets
	 * too (cancel_request). */
	r = arch_cp_syscall(atomic_load_explicit(&g->sigwait_set, memory_order_relaxed) ?
	                    (const volatile uint32_t *)&g->sigwake :
	                    cancel && cancel_enabled(g) ?
	                    (const volatile uint32_t *)&g->cancel_req : &never,
	                    nr, a, b, c, d, e, f);
	atomic_store_explicit(&g->in_cp, outer, memory_order_relaxed);
	return r;
}

void cancel_syscall_after(g_t *g, long r)
{
	if (g && (r == ARCH_CP_CANCELED || r == -EINTR))
		cancel_point(g);   /* acts if the request is what cut it short */
}

int cancel_gfutex_wait(g_t *g, _Atomic uint32_t *addr, uint32_t val, int64_t deadline)
{
	int r;

	if (!g || !cancel_enabled(g))
		return gfutex_wait(addr, val, deadline);
	r = gfutex_wait_intr(addr, val, deadline, &g->cancel_req);
	return r == -EINTR ? -ECANCELED : r;
}

int64_t cancel_sleep_until(g_t *g, int64_t deadline)
{
	_Atomic uint32_t nothing = 0;
	int64_t now;

	cancel_point(g);
	g_sig_outcome_reset(g);
	while ((now = os_nanotime()) < deadline) {
		int r;

		g_wait_note(g, WK_SLEEP, 0);
		r = cancel_gfutex_wait(g, &nothing, 0, deadline);

		if (r == -ECANCELED)
			cancel_point(g);
		if (atomic_load_explicit(&g->sigdelivered, memory_order_relaxed) &&
		    g_sig_outcome(g, false) == SIG_EINTR) {
			now = os_nanotime();
			return now < deadline ? deadline - now : 1;
		}
	}
	return 0;
}

/* ---- signal interruption ----------------------------------------------- */

int g_sig_outcome(g_t *g, bool restartable)
{
	uint64_t set = atomic_exchange_explicit(&g->sigdelivered, 0, memory_order_relaxed);
	/* The action when the signal was raised, not now: a handler that
	 * resets itself to SIG_DFL still interrupted the wait (tst-sem6). */
	uint64_t handled = atomic_exchange_explicit(&g->sigdeliv_handled, 0, memory_order_relaxed);
	uint64_t norestart = atomic_exchange_explicit(&g->sigdeliv_norestart, 0, memory_order_relaxed);
	int out = SIG_NONE;

	set &= handled;
	for (int sig = 1; set; sig++, set >>= 1, norestart >>= 1) {
		if (!(set & 1))
			continue;
		if (!restartable || (norestart & 1))
			out = SIG_EINTR;
		else if (out == SIG_NONE)
			out = SIG_RESTART;
	}
	return out;
}
