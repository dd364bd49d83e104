/* core/signal.c - the process's signals and the kernel threads glibc knows.
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
#include <sys/syscall.h>
#include "rt.h"

#define SIGSETXID 33

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

int rt_thread_start(void *(*fn)(void *), void *arg, size_t stack_size)
{
	int err = os_thread_start(fn, arg, stack_size);

	if (err == 0)
		setxid_relay_install();
	return err;
}
