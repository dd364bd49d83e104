/* core/segv.c - stack overflow reports, and the installation of the
 * runtime's own signal handlers.
 *
 * Purpose.  A G's stack ends in a guard region (arch/stack.c).  Running
 * into it is a SIGSEGV whose handler cannot run on the overflowed stack,
 * so every M gets an alternate signal stack (m_install_altstack, from
 * m_main and for M0 from sched_init) and the handler runs there
 * (SA_ONSTACK): a fault inside the current G's guard, or a g0's, is
 * reported as "stack overflow in thread N" instead of a bare crash.
 * switch_out checks the stack canary too, for overflows that skipped the
 * guard.
 *
 * Invariant: a fault that is not ours behaves as if gshim were not
 * there - the program's previous handler runs, or the default action is
 * restored and the faulting instruction re-executed, so the process dies
 * of the right signal.
 *
 * install_overflow_handler also installs SIGURG, gshim's kick and
 * preemption signal (core/preempt.c; the handler, sig_kick, is in
 * core/signal.c): unlike the SEGV handler it runs on the G's stack with
 * the G's mask, since it may switch away.
 *
 * Rejected: no alternate stack (the handler would itself fault on the
 * overflowed stack, and the process would die without a word); an
 * alternate stack per G (only the running G can overflow, so one per M
 * suffices, and 100,000 G's would each pay 64 KiB of address space).
 */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include "internal.h"
#include "sched_int.h"

/* ---- stack overflow reports -------------------------------------------- */

static struct sigaction old_segv, old_bus;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	g_t *g = getg();
	uintptr_t addr = (uintptr_t)si->si_addr;
	struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;

	traceback_fault();   /* a dump unwinding garbage: back to it */
	if (g && stack_in_guard(&g->stack, addr))
		rt_fatal_num("stack overflow in thread ", g->goid);
	if (g && g->is_g0 && stack_in_guard(&g->stack, addr))
		rt_fatal("stack overflow on a scheduler stack");
	/* Not ours: behave as if we were never installed.  With the default
	 * action, re-executing the faulting instruction kills the process
	 * with the right signal. */
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction) {
			old->sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	sigaction(sig, old, NULL);
}

void m_install_altstack(m_t *m)
{
	enum { ALT = 64 * 1024 };
	stack_t ss;
	void *mem = mmap(NULL, ALT, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (mem == MAP_FAILED)
		return;
	ss.ss_sp = mem;
	ss.ss_size = ALT;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) == 0)
		m->altstack = mem;
	else
		munmap(mem, ALT);
}

void install_overflow_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	/* gshim's kick and preemption signal, as Go's: SIGURG, which
	 * programs rarely use; restartable calls restart after it.  On the
	 * G's stack with the G's mask (no SA_ONSTACK, SA_NODEFER): the
	 * handler may switch away (core/preempt.c). */
	sa.sa_sigaction = sig_kick;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
	preempt_set_handler(sig_kick);
	sigaction(SIGURG, &sa, NULL);
}
