/* syscall_wrap/wrap.h - what every blocking-call wrapper shares: libc's
 * original (REAL, arch/real.h), and the entersyscall/exitsyscall bracket
 * around it.  This layer sees core and arch only (core/rt.h). */
#ifndef GSHIM_SYSCALL_WRAP_H
#define GSHIM_SYSCALL_WRAP_H

#include <dlfcn.h>
#include <errno.h>
#include "core/rt.h"
#include "arch/real.h"

/* The interposed names this layer defines (libgshim exports them). */
#define WRAP_EXPORT RT_EXPORT

/* Enter a wrapped call: the G to hand to sc_exit, or NULL when there is
 * nothing to account (not a G, or already inside a call).  cancel: the
 * call is a cancellation point (acted on at entry). */
static inline g_t *sc_enter(bool cancel)
{
	g_t *g = getcurg();

	if (!g)
		return NULL;
	if (cancel)
		cancel_point(g);
	return g_syscall_enter() ? g : NULL;
}

static inline void sc_exit(g_t *g)
{
	if (g)
		g_syscall_exit();
}

/* sc_enter, naming the call for the thread-exhaustion report
 * (core/deadlock.c): its number and first argument. */
static inline g_t *sc_enter_nr(bool cancel, long nr, long a0)
{
	g_t *g = sc_enter(cancel);

	if (g) {
		g->scnr = nr;
		g->sca0 = a0;
	}
	return g;
}

/* A raw system call's result as libc returns it: -1 and errno. */
static inline long set_err(long r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* The plain blocking system call between sc_enter and sc_exit, as a
 * cancellation point also while it blocks (core/cancel.c): -errno or
 * the result.  Does not return if pthread_cancel cut it short. */
static inline long sc_call_cp(long nr, long a, long b, long c, long d, long e, long f)
{
	g_t *cur = getcurg();
	g_t *g = sc_enter_nr(true, nr, a);
	long r;

	/* EINTR from a runtime signal meant for another G (sigstray: a
	 * late eviction or sigwait kick) is not the program's: call again. */
	do {
		if (cur)
			atomic_store_explicit(&cur->sigstray, 0, memory_order_relaxed);
		r = cancel_syscall(cur, nr, a, b, c, d, e, f);
	} while (r == -EINTR && cur && atomic_exchange_explicit(&cur->sigstray, 0, memory_order_relaxed));

	sc_exit(g);
	cancel_syscall_after(cur, r);
	return r == ARCH_CP_CANCELED ? -EINTR : r;
}

/* fdclose.c: the calls that close or replace descriptor numbers (core/rtfd.c),
 * -errno or the result; also reached through syscall(). */
long pio_close(int fd, bool cp);
long pio_close_range(unsigned lo, unsigned hi, unsigned fl);
long pio_dup3(int old, int new, int fl, bool dup2);

/* A plain blocking call with a non-blocking twin (twin.c): made plainly
 * while M's are plentiful, evictable by sysmon, and made as the twin
 * between timed parks when no M can be created for runnable G's.
 * -errno or the result, as sc_call_cp. */
struct sc_twin {
	long nr, a[6];       /* the call */
	long tnr, ta[6];     /* its twin; tnr < 0: ppoll fd for events, then the call */
	int again2;          /* an errno besides EAGAIN that means "would wait" */
	int fd;              /* tnr < 0 */
	short events;
	int sockopt;         /* tnr < 0: SO_RCVTIMEO/SO_SNDTIMEO, honoured by the twin */
	bool cancel;         /* a cancellation point while it waits */
	bool restart;        /* SA_RESTART handlers restart it */
};
long sc_call_twin(const struct sc_twin *c);

#endif
