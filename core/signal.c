/* core/signal.c - the process's signals and the kernel threads glibc knows.
 *
 * Process-directed signals
 * ------------------------
 * kill(getpid(), sig), a signal from another process, a POSIX timer or
 * SIGCHLD go to the process: the kernel hands each to one kernel thread
 * that does not block it (the main thread first, if it qualifies) and runs
 * the handler there, interrupting whatever that thread is blocked in.  A
 * pthread program expects "a thread that does not block it": its handler
 * on one of its threads, and that thread's sleep, sigsuspend, pause or
 * condvar wait cut short.  Under gshim most threads are parked G's with no
 * kernel thread at all, and the kernel can only choose among M's.  Before,
 * an idle M kept the mask of the last G it ran, so the handler could run
 * on an M's scheduler context (pthread_self() not a program thread) while
 * the thread meant to get it slept on: a program that waits for a signal
 * in a sleep, pause or sigsuspend hung.
 *
 * Now the kernel only ever chooses between two kinds of candidates:
 *   - an M running (or blocked in a call for) a G: its kernel mask is the
 *     G's (sched_int.h, sigmask_apply), so if the kernel picks it, the G
 *     accepts the signal and the handler runs on it, interrupting its
 *     call: exactly the native outcome.
 *   - the receiver: one runtime thread that blocks everything and waits
 *     in rt_sigtimedwait for the signals some G accepts (the set `accept`).
 * An M on its scheduler context (g0) blocks every signal but glibc's two
 * (schedule(): the idle mask), and the other runtime threads block all but
 * SIGSETXID.  The receiver hands what it takes to a G (sig_forward):
 *   1. a G waiting in sigwait & co. for it (POSIX: one of them returns it);
 *   2. else a G that does not block it, the main one first (the kernel's
 *      preference): made pending on that G with g_signal, i.e. exactly
 *      as pthread_kill does - a running G is kicked, a parked one's wait
 *      is interrupted (sleeps return EINTR and the time left), a G in a
 *      blocking call gets it on its M;
 *   3. else nobody accepts it any more (masks changed since `accept` was
 *      published): it leaves `accept` and goes back to the kernel as a
 *      process-directed signal, where it stays pending as natively.
 * Dispositions as the kernel: ignored (SIG_IGN, or SIG_DFL of SIGCHLD,
 * SIGURG, SIGWINCH, SIGCONT) and no sigwaiter: dropped.  SIG_DFL whose
 * default is to terminate, dump core or stop: the receiver unblocks the
 * signal and sends it to itself, so the kernel applies the default action
 * to the whole process with the right status.  Handlers: step 2.
 *
 * `accept` only grows when a G's mask lets a new signal through
 * (sig_note_mask: pthread_sigmask, thread start); then the receiver is
 * rung (SIGCANCEL, always in its set) to wait for the new set.  It
 * shrinks lazily, in step 3.  Signals every G blocks are never taken:
 * they stay in the kernel's process-pending set, where sigpending,
 * sigwait in a G and signalfd see them, and where the kernel gives them
 * to the M of the first G that unblocks them.  So exactly-once holds: a
 * signal is either in the kernel, or taken by the receiver and made
 * pending on one G (which runs it when it accepts it), or requeued.
 *
 * Rejected: interposing sigaction so that gshim's own handler runs first
 * everywhere and forwards signals that land on the wrong context (signal,
 * sigset, bsd_signal and glibc's internal callers bypass an interposed
 * sigaction, and sigaction(NULL, &old) would have to lie); keeping idle
 * M's unblocked (the handler runs on g0: the bug above); a receiver that
 * takes every signal (signalfd and sigwait would never see the ones all
 * threads block).  Known limits: a forwarded signal reaches its G through
 * tgkill, so the handler's siginfo says SI_TKILL from this process, not
 * the original sender, si_code and si_value; between two G's on one M the
 * kernel mask is the previous G's for a few instructions (a switch to a G
 * that blocks more blocks the union first, sched.c), so a signal the
 * kernel gives the M then runs its handler as the next G, consistently
 * with that G's TLS.
 *
 * setuid & co. in a multi-threaded process (glibc's SIGSETXID)
 * ------------------------------------------------------------
 * Credentials are per kernel thread in Linux; POSIX wants them per
 * process.  glibc closes the gap: setuid (and setgid, seteuid, setreuid,
 * setresuid, their gid twins, setgroups) takes its stack-list lock, marks
 * every thread in its lists except "self" (the TCB the thread pointer
 * names), sends each SIGSETXID (33) with tgkill(tid from the TCB), waits
 * until every handler has made the same system call on its own thread and
 * cleared the mark *in its own TCB* (THREAD_SELF), repeats while anybody
 * was still marked, and finally makes the call itself.
 *
 * Under gshim the kernel threads are the M's (glibc threads: pthread_create
 * gave each its TCB), the runtime's helpers (timer, sysmon, schedtrace) and
 * the main thread (M0, whose TCB the main G uses).  A G's TCB is in no
 * list.  Three things broke the protocol, each a hang:
 *   1. The helpers blocked every signal: SIGSETXID stayed pending, the
 *      caller waited forever (seen: sysmon stuck in glibc's pthread_create
 *      on the lock the caller held, the caller in the counter wait).
 *      Helpers now block everything but SIGSETXID (os_block_all_signals).
 *   2. An M running a G with per-g TLS takes the signal with the G's TCB
 *      loaded: glibc's handler clears the mark in the G's TCB, the M's own
 *      TCB stays marked, and the caller signals that M again, round after
 *      round, until it happens to be idle.  The kernel's handler is now
 *      a relay (setxid_relay) that loads the TCB glibc marked for this
 *      kernel thread (m->os_tcb: the M's own; M0's is the main thread's)
 *      around glibc's handler, with every signal blocked, and restores
 *      the interrupted thread pointer (sigreturn does not).
 *   3. The caller: with a G's TCB as "self", glibc also signals the
 *      caller's own kernel thread (listed under the M's TCB), and when
 *      the main G calls it from another M, "self" is the main thread's
 *      TCB, so M0 is skipped and keeps its old credentials.  shim/xid.c
 *      makes the call with the M's own TCB loaded (sched_own_tcb_enter,
 *      as fork does).  On M0 a G other than the main one keeps its TCB:
 *      M0 is then signalled as the main thread, relays to the main TCB,
 *      and glibc's final call repeats the same change on that thread
 *      (setting ids to the values they now have is always allowed).
 * The relay needs glibc's handler, which glibc installs at its first
 * pthread_create (not exported): every runtime thread is started through
 * rt_thread_start, which reads the action then and puts the relay in.
 * Rejected: doing the broadcast ourselves over /proc/self/task (glibc's
 * internal callers, initgroups for one, would still use its protocol,
 * and both would need the one SIGSETXID handler).
 */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "internal.h"
#include "arch/os.h"
#include "sched_int.h"

static void (*glibc_setxid)(int, siginfo_t *, void *);

/* The kernel's SIGSETXID handler.  Any thread, any moment: no locks. */
static void setxid_relay(int sig, siginfo_t *si, void *uc)
{
	pid_t tid = (pid_t)arch_syscall(SYS_gettid, 0, 0, 0);
	void *tp = arch_tp(), *own = NULL;

	for (m_t *m = atomic_load_explicit(&sched.allm, memory_order_acquire); m; m = m->alllink)
		if (m->tid == tid) {
			own = m->os_tcb;
			break;
		}
	if (own && own != tp)
		arch_set_tp(own);
	glibc_setxid(sig, si, uc);
	if (own && own != tp)
		arch_set_tp(tp);
}

static void setxid_relay_install(void)
{
	static _Atomic int done;
	struct os_ksigaction ka;

	if (atomic_load_explicit(&done, memory_order_acquire) ||
	    !os_sigaction_get(SIGSETXID, &ka) || ka.handler == (void *)setxid_relay ||
	    ka.handler == (void *)SIG_DFL || ka.handler == (void *)SIG_IGN)
		return;
	if (atomic_exchange(&done, 1))
		return;
	glibc_setxid = (void (*)(int, siginfo_t *, void *))ka.handler;
	ka.handler = (void *)setxid_relay;
	ka.mask = ~0ull;   /* nothing may run on the borrowed TCB */
	arch_syscall6(SYS_rt_sigaction, SIGSETXID, (long)&ka, 0, 8, 0, 0);
}

/* A new thread starts with its creator's mask (glibc sets it before fn
 * runs): the creator blocks everything meanwhile, so that no signal of
 * the program's runs on a runtime thread or a new M before it set its own
 * (a process-directed signal hit the receiver at birth under load). */
int rt_thread_start(void *(*fn)(void *), void *arg, size_t stack_size)
{
	uint64_t all = ~(1ull << (SIGSETXID - 1)), old;
	int err;

	arch_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, 8, 0, 0);
	err = os_thread_start(fn, arg, stack_size);
	arch_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8, 0, 0);

	if (err == 0)
		setxid_relay_install();
	return err;
}

/* ---- process-directed signals ------------------------------------------ */

/* Signals the receiver never takes: the unblockable ones, glibc's two,
 * the kernel's synchronous fault signals (thread-directed when real), and
 * gshim's SIGURG while it is gshim's (preempt.c). */
#define BIT(s) (1ull << ((s) - 1))
#define NEVER (BIT(SIGKILL) | BIT(SIGSTOP) | SIG_INTERNAL | BIT(SIGSEGV) | \
               BIT(SIGBUS) | BIT(SIGFPE) | BIT(SIGILL) | BIT(SIGTRAP) | BIT(SIGSYS))

static _Atomic uint64_t accept;     /* some G accepts these (grows eagerly) */
static _Atomic pid_t recv_tid;      /* the receiver, 0 until it runs */
static _Atomic int recv_started;

static uint64_t never_taken(void)
{
	return NEVER | preempt_kmask_clear();
}

static void recv_ring(void)
{
	pid_t t = atomic_load_explicit(&recv_tid, memory_order_acquire);

	if (t)
		arch_syscall(SYS_tgkill, arch_syscall(SYS_getpid, 0, 0, 0), t, SIGCANCEL);
}

/* A G runs with mask: what it accepts must be taken by the receiver.
 * Any context (no locks). */
void sig_note_mask(uint64_t mask)
{
	uint64_t add = ~mask & ~never_taken() & ~atomic_load_explicit(&accept, memory_order_relaxed);

	if (__builtin_expect(add != 0, 0)) {
		atomic_fetch_or_explicit(&accept, add, memory_order_seq_cst);
		recv_ring();
	}
}

/* The signals the receiver takes (0 while it does not run).  A G that
 * sigwaits for one of them must not wait for it in the kernel too: the
 * kernel would wake both waiters for one signal, and the loser's
 * rt_sigtimedwait returns EINTR with nothing (shim/signal.c). */
uint64_t sig_taken(void)
{
	if (atomic_load_explicit(&recv_started, memory_order_relaxed) != 1)
		return 0;
	return atomic_load_explicit(&accept, memory_order_seq_cst) & ~never_taken();
}

/* The receiver exists (or is starting: what arrives meanwhile waits in
 * the kernel for it): idle M's may block everything. */
bool sig_receiver_on(void)
{
	return atomic_load_explicit(&recv_started, memory_order_relaxed) == 1;
}

/* Who gets a signal the receiver took. */
struct pick {
	uint64_t bit;
	bool rt;                      /* a real-time signal: they queue */
	int busy;                     /* acceptors it is pending on already */
	g_t *waiter, *main, *any;
};

static void pick_g(g_t *g, void *arg)
{
	struct pick *pk = arg;
	uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire);

	if (st == G_DEAD || st == G_IDLE)
		return;
	if (atomic_load_explicit(&g->sigwait_set, memory_order_seq_cst) & pk->bit) {
		if (!pk->waiter)
			pk->waiter = g;
	} else if (!(__atomic_load_n(&g->sigmask, __ATOMIC_RELAXED) & pk->bit)) {
		/* One pending instance per G (a bit): a second real-time
		 * signal must go elsewhere, or wait for the first to run. */
		if (pk->rt && (atomic_load_explicit(&g->sigpending, memory_order_acquire) & pk->bit)) {
			pk->busy++;
			return;
		}
		if (g->is_main)
			pk->main = g;
		else if (!pk->any)
			pk->any = g;
	}
}

static bool default_ignored(int sig)
{
	return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT;
}

/* The kernel's default action for sig, on the whole process: unblock it
 * here and send it to this thread.  For a stop signal the process stops
 * and, continued, the receiver goes on. */
static void default_action(int sig)
{
	uint64_t b = BIT(sig);
	pid_t pid = (pid_t)arch_syscall(SYS_getpid, 0, 0, 0);

	arch_syscall6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&b, 0, 8, 0, 0);
	arch_syscall(SYS_tgkill, pid, arch_syscall(SYS_gettid, 0, 0, 0), sig);
	arch_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&b, 0, 8, 0, 0);
}

/* The receiver took sig (info as the kernel gave it): see the essay. */
static void sig_forward(int sig, siginfo_t *info)
{
	struct pick pk = { .bit = BIT(sig), .rt = sig >= 34 };
	struct os_ksigaction ka;
	void *h = (void *)SIG_DFL;
	g_t *g;

	if (os_sigaction_get(sig, &ka))
		h = ka.handler;
	/* Real-time signals queue: never merge two into one pending bit.
	 * Every acceptor has one pending: they are about to run it (a G
	 * that accepts a pending signal is delivering it); wait for one,
	 * up to a second, then merge (docs/compat.md). */
	for (int tries = 0;; tries++) {
		pk.busy = 0;
		pk.waiter = pk.main = pk.any = NULL;
		g_foreach(pick_g, &pk);
		if (pk.waiter || pk.main || pk.any || !pk.busy || tries == 20000) {
			if (!pk.waiter && !pk.main && !pk.any && pk.busy)
				pk.rt = false, g_foreach(pick_g, &pk);
			break;
		}
		struct timespec d = { 0, 50000 };
		arch_syscall(SYS_nanosleep, &d, 0, 0);
	}
	if (pk.waiter) {
		g_signal(pk.waiter, sig);
		return;
	}
	g = pk.main ? pk.main : pk.any;
	if (!g) {
		/* Nobody accepts it now: back to the kernel, pending for the
		 * process, and out of our set first (or we would take it
		 * again).  With its siginfo where the kernel allows it
		 * (rt_sigqueueinfo of a non-negative si_code is refused from a
		 * thread other than the main one). */
		long pid = arch_syscall(SYS_getpid, 0, 0, 0);

		atomic_fetch_and_explicit(&accept, ~pk.bit, memory_order_seq_cst);
		if (arch_syscall(SYS_rt_sigqueueinfo, pid, sig, info) != 0)
			arch_syscall(SYS_kill, pid, sig, 0);
		return;
	}
	if (h == (void *)SIG_IGN || (h == (void *)SIG_DFL && default_ignored(sig)))
		return;
	if (h == (void *)traceback_sighandler) {
		/* SIGQUIT or the dump signal: report from here, a thread
		 * that interrupts no G and needs no P (core/traceback.c) */
		traceback_sighandler(sig, info, NULL);
		return;
	}
	if (h == (void *)SIG_DFL) {
		default_action(sig);
		return;
	}
	g_signal(g, sig);
}

static void *receiver(void *arg)
{
	(void)arg;
	os_block_all_signals();
	prctl(PR_SET_NAME, "gshim-signal", 0, 0, 0);
	atomic_store_explicit(&recv_tid, (pid_t)arch_syscall(SYS_gettid, 0, 0, 0),
	                      memory_order_release);
	for (;;) {
		/* SIGCANCEL rings the bell: `accept` grew, read it again. */
		uint64_t set = (atomic_load_explicit(&accept, memory_order_seq_cst) &
		                ~never_taken()) | BIT(SIGCANCEL);
		siginfo_t info;
		long r = arch_syscall6(SYS_rt_sigtimedwait, (long)&set, (long)&info, 0, 8, 0, 0);

		if (r <= 0 || r == SIGCANCEL)
			continue;   /* EINTR: SIGSETXID's handler ran */
		sig_forward((int)r, &info);
	}
	return NULL;
}

/* Start the receiver (once); from then on idle M's block every signal. */
void sig_receiver_start(void)
{
	if (__builtin_expect(atomic_load_explicit(&recv_started, memory_order_relaxed), 1) ||
	    atomic_exchange(&recv_started, 1))
		return;
	/* Without it, idle M's keep the mask of their last G (the old
	 * behaviour): signals are still handled, maybe on the wrong thread. */
	if (rt_thread_start(receiver, NULL, 64 * 1024) != 0) {
		atomic_store(&recv_started, 2);   /* never again */
		rt_warn("cannot start the signal thread; process-directed signals may be "
		        "handled on a runtime thread");
	}
}

/* In the child of fork: the receiver is gone; what the surviving G
 * accepts is the new set, and the next idle M starts a new receiver. */
void sig_fork_child(g_t *self)
{
	atomic_store(&recv_tid, 0);
	atomic_store(&recv_started, 0);
	atomic_store(&accept, 0);
	if (self && !self->is_g0)
		sig_note_mask(self->sigmask);
}

/* ---- thread-directed signals: per-G masks and delivery ------------------
 *
 * Signal masks and pending sets are per G; the kernel knows only the
 * M's.  pthread_kill (g_signal) makes a signal pending on the G and gets
 * it delivered on the G's M: at once if the G runs there unmasked (the
 * SIGURG kick, sig_kick), when it resumes (switch_out), by interrupting
 * its parked wait, or by signalling the M of a G blocked in a call.  The
 * mask helpers of the switch path (sigmask_apply, m_mask_idle) are static
 * inline in sched_int.h. */

void g_setmask(g_t *g, uint64_t mask)
{
	g->sigmask = mask;
	sigmask_apply(g);
	sig_note_mask(mask);
	if (atomic_load_explicit(&g->sigpending, memory_order_relaxed) & ~mask)
		deliver_pending(g);
}

static void raise_on_m(m_t *m, int sig)
{
	arch_syscall(SYS_tgkill, arch_syscall(SYS_getpid, 0, 0, 0), m->tid, sig);
}

/* Raise g's pending signals on its M now that it runs.  The handlers run
 * when the tgkill returns, on this G: what pthread_kill promised.
 *
 * Not inside a runtime section (rtdepth > 0): a G that resumes from a
 * park in one (a read parked in the poller, interrupted for the signal)
 * would run the handler with the runtime's depth raised, so a blocking
 * call in the handler could not park - it would wait in the kernel with
 * the P held, and at GOMAXPROCS=1 nobody could ever wake it (glibc
 * tst-cancel20: the handler reads a pipe, the main thread must run to
 * cancel it).  Such signals wait in sigdefer until rt_exit brings the
 * depth to 0 with the G running: the handler then runs after the
 * interrupted wait has returned EINTR to its wrapper and before the
 * wrapper decides between EINTR and a restart, which is the order the
 * kernel gives (the action is recorded at raise time, below).  Also
 * held back inside a g_sighold region (rt.h), for the same reason one
 * level up: unwinding out of the handler must not skip the poller's
 * clean-up of a request still in flight.  A G
 * inside a system call's bracket (G_SYSCALL) gets them at once: the
 * signal must interrupt the call, as it would natively.  A G that parks
 * with them deferred is woken again at once (switch_finish). */
void deliver_pending(g_t *g)
{
	if ((g->rtdepth != 0 &&
	     atomic_load_explicit(&g->status, memory_order_relaxed) == G_RUNNING) ||
	    g->sighold != 0) {
		atomic_store_explicit(&g->sigdefer, 1, memory_order_relaxed);
		return;
	}
	/* Only what the G does not block: the rest stays pending on the G
	 * (sigpending() reports it; unblocking delivers it). */
	uint64_t set = atomic_fetch_and_explicit(&g->sigpending, g->sigmask,
	                                         memory_order_acq_rel) & ~g->sigmask;
	int sig;

	uint64_t s;

	/* The action as the kernel will take it, kept for the wait this
	 * interrupts: the handler may change it (SIG_DFL) before that wait
	 * decides between EINTR and a restart (g_sig_outcome). */
	for (sig = 1, s = set; s; sig++, s >>= 1) {
		struct os_ksigaction ka;
		uint64_t bit = 1ull << (sig - 1);

		if (!(s & 1) || !os_sigaction_get(sig, &ka) ||
		    ka.handler == (void *)SIG_IGN || ka.handler == (void *)SIG_DFL)
			continue;
		atomic_fetch_or_explicit(&g->sigdeliv_handled, bit, memory_order_relaxed);
		if (!(ka.flags & SA_RESTART))
			atomic_fetch_or_explicit(&g->sigdeliv_norestart, bit, memory_order_relaxed);
	}
	atomic_fetch_or_explicit(&g->sigdelivered, set, memory_order_relaxed);
	for (sig = 1; set; sig++, set >>= 1)
		if (set & 1)
			raise_on_m(g->m, sig);
}

void g_deliver_deferred(g_t *g)
{
	if (g->is_g0 || g->rtdepth != 0 || g->sighold != 0 ||
	    atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING)
		return;   /* the next rt_exit to depth 0 tries again */
	atomic_store_explicit(&g->sigdefer, 0, memory_order_relaxed);
	if (atomic_load_explicit(&g->sigpending, memory_order_relaxed) & ~g->sigmask)
		deliver_pending(g);
}

/* The thread leaves by unwinding (cancellation, pthread_exit), maybe from
 * a signal handler that runs inside a wrapped call: the call's bracket
 * (g_syscall_enter's, or g_block_enter's) never closes; close it, so the
 * G goes on and exits as a running G with a P and no runtime depth. */
void g_call_abandon(void)
{
	g_t *g = getcurg();

	if (!g)
		return;
	if (atomic_load_explicit(&g->status, memory_order_relaxed) == G_SYSCALL) {
		if (g->rtdepth > 0)
			g_syscall_exit();
		else
			g_block_exit();
	}
	/* Leaving a handler without sigreturn leaves the kernel mask of
	 * this M as the handler had it (its signal and sa_mask blocked).
	 * Natively that mask dies with the thread; here the M goes on to
	 * run other G's, which would never get those signals (m->cur_mask
	 * would not even know).  Load the G's own mask again. */
	m_setmask(g->sigmask & ~preempt_kmask_clear());
	g->m->cur_mask = g->sigmask;
}

void g_signal(g_t *g, int sig)
{
	uint64_t bit = 1ull << (sig - 1);
	m_t *m;

	if (g == getcurg() && !(g->sigmask & bit)) {
		raise_on_m(g->m, sig);
		return;
	}
	atomic_fetch_or_explicit(&g->sigpending, bit, memory_order_seq_cst);
	if (__atomic_load_n(&g->sigmask, __ATOMIC_RELAXED) & bit) {
		/* Blocked: pending on the G until it unblocks it or sigwaits
		 * for it.  If it waits for it in the kernel right now, end that
		 * wait (shim/signal.c takes it from sigpending then).  Dekker
		 * with the waiter: it publishes sigwait_set, then looks at
		 * sigpending; we stored sigpending, then look at sigwait_set. */
		if (atomic_load_explicit(&g->sigwait_set, memory_order_seq_cst) & bit) {
			atomic_store_explicit(&g->sigwake, 1, memory_order_seq_cst);
			m = __atomic_load_n(&g->m, __ATOMIC_ACQUIRE);
			if (m && atomic_load_explicit(&g->status, memory_order_acquire) == G_SYSCALL) {
				/* Named for g and its wait: if g left that
				 * wait meanwhile, the call the kick interrupts
				 * knows it was not meant for it (core/cancel.c:
				 * sigstray). */
				siginfo_t si;

				memset(&si, 0, sizeof si);
				si.si_signo = SIGCANCEL;
				si.si_code = SI_QUEUE;
				si.si_pid = (pid_t)arch_syscall(SYS_getpid, 0, 0, 0);
				si.si_value.sival_ptr = g;
				/* G's are reused, and wait again: the round */
				si.si_errno = (int)atomic_load_explicit(&g->sigwait_seq,
				                                        memory_order_relaxed);
				arch_syscall6(SYS_rt_tgsigqueueinfo, si.si_pid, m->tid, SIGCANCEL,
				              (long)&si, 0, 0);
			}
		}
		return;
	}
	/* Running right now (and maybe for long, without switching): kick its
	 * M.  A G that parks before the kick lands is woken again at once by
	 * switch_finish, which reads sigpending after publishing G_WAITING
	 * (Dekker with the status read below); one that yields runs the
	 * signal when it resumes. */
	m = g->m;
	/* seq_cst: Dekker with a G about to park (switch_finish, SW_PARK) */
	uint32_t st = atomic_load_explicit(&g->status, memory_order_seq_cst);
	/* Blocked in the kernel (sigwait, a pshared wait, a wrapped call): the
	 * signal itself must reach it there, and interrupt the call as it
	 * would natively. */
	if (m && st == G_SYSCALL &&
	    (atomic_fetch_and_explicit(&g->sigpending, ~bit, memory_order_acq_rel) & bit)) {
		raise_on_m(m, sig);
		return;
	}
	/* Running on another M: kick that M with SIGURG.  Its handler
	 * (sig_kick) raises the pending signals of whatever G it finds
	 * running, i.e. only if it is still this one; if the G switched out
	 * in between, the signals wait on it for its next resume.  Sending
	 * the program's signal itself could land on the M's next G. */
	/* Parked in an interruptible wait (poller, sleep, condvar): wake it
	 * so the handler runs now, as it would in a blocked native thread;
	 * the wait decides between EINTR and going on. */
	if (st == G_WAITING) {
		gfutex_interrupt(g);
		return;
	}
	if (m && st == G_RUNNING && preempt_sig_ours())
		arch_syscall(SYS_tgkill, arch_syscall(SYS_getpid, 0, 0, 0), m->tid, SIGURG);
}


/* SIGURG from g_signal: deliver the running G's pending signals. */
void sig_kick(int sig, siginfo_t *si, void *uc)
{
	g_t *g = getcurg();
	int saved = *errno_loc();

	(void)sig; (void)si;
	if (g && g->m && (atomic_load_explicit(&g->sigpending, memory_order_relaxed) & ~g->sigmask))
		deliver_pending(g);
	if (g)
		preempt_handle(uc);
	*errno_loc() = saved;
}
