/* shim/xid.c - setuid & co.: credentials change in every kernel thread.
 *
 * glibc broadcasts the change to every thread it knows (core/signal.c has
 * the protocol and what gshim must do for it).  Here: the caller makes the
 * call with its M's own TCB loaded, so that glibc's "self" is the kernel
 * thread it runs on, with the program's signals blocked meanwhile (a
 * handler would run on the M's TCB, not the G's) and errno carried back
 * to the G's TLS.  initgroups is here too: glibc's setgroups inside it is
 * an internal call gshim cannot interpose.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "shim.h"

struct xid_bracket {
	g_t *g;               /* NULL: the plain call, nothing to undo */
	void *tp;
	uint64_t mask;
};

static void xid_enter(struct xid_bracket *b)
{
	/* SIGSETXID stays deliverable (the caller's own thread may be told
	 * to change, core/signal.c), and so does SIGCANCEL (runtime). */
	uint64_t block = ~((1ull << (33 - 1)) | (1ull << (SIGCANCEL - 1)));

	b->g = shim_self();
	if (!b->g || !rt_tls_per_g())
		return (void)(b->g = NULL);
	arch_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&block, (long)&b->mask, 8, 0, 0);
	b->tp = sched_own_tcb_enter();
}

/* errno's address changes with the TCB: never let the compiler reuse
 * the one it computed before the switch back. */
static int *(*volatile errno_at)(void) = __errno_location;

/* r: the call's result; errno (of the TCB loaded during the call) goes to
 * the G's. */
static long xid_leave(struct xid_bracket *b, long r)
{
	int err;

	if (!b->g)
		return r;
	err = *errno_at();
	sched_own_tcb_leave(b->tp);
	arch_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&b->mask, 0, 8, 0, 0);
	*errno_at() = err;
	return r;
}

#define XID(name, params, args)                                          \
	SHIM_EXPORT int name params                                      \
	{                                                                \
		struct xid_bracket b;                                    \
		int res__;                                               \
                                                                         \
		xid_enter(&b);                                           \
		res__ = REAL(name) args;                                 \
		return (int)xid_leave(&b, res__);                        \
	}

XID(setuid, (uid_t u), (u))
XID(setgid, (gid_t g), (g))
XID(seteuid, (uid_t u), (u))
XID(setegid, (gid_t g), (g))
XID(setreuid, (uid_t r, uid_t e), (r, e))
XID(setregid, (gid_t r, gid_t e), (r, e))
XID(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
XID(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
XID(setgroups, (size_t n, const gid_t *list), (n, list))
XID(initgroups, (const char *user, gid_t group), (user, group))
