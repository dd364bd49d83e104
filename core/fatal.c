/* core/fatal.c - dying loudly.
 *
 * A broken invariant must never turn into silent corruption: the runtime
 * prints one line and aborts.  Everything here writes with the raw write
 * syscall from a stack buffer, so it works with the heap corrupted, inside
 * a signal handler, or with any runtime lock held.  Then the traceback
 * (core/traceback.c; GSHIM_TRACEBACK, by default the failing thread's),
 * written the same way.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include "internal.h"

static void write_line(const char *prefix, const char *msg, bool num,
                       unsigned long long n)
{
	char buf[512];
	size_t len = 0, l;

	l = strlen(prefix);
	memcpy(buf, prefix, l);
	len = l;
	l = strnlen(msg, sizeof buf - 40 - len);
	memcpy(buf + len, msg, l);
	len += l;
	if (num)
		len += os_fmt_u64(buf + len, n);
	buf[len++] = '\n';
	os_write_all(2, buf, len);
}

/* Die of sig's default action (SIGABRT: core; SIGQUIT after a traceback,
 * core/traceback.c).  The program may handle sig (and gshim may interpose
 * sigaction), so reset it to the default with raw syscalls, unblock it
 * and send it to this thread; should it still return, SIGKILL. */
_Noreturn void rt_die_of(int sig)
{
	struct os_ksigaction ksa = { SIG_DFL, 0, NULL, 0 };
	uint64_t unblock = 1ull << (sig - 1);
	long pid = arch_syscall(SYS_getpid, 0, 0, 0), tid = arch_syscall(SYS_gettid, 0, 0, 0);

	arch_syscall6(SYS_rt_sigaction, sig, (long)&ksa, 0, 8, 0, 0);
	arch_syscall6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&unblock, 0, 8, 0, 0);
	arch_syscall(SYS_tgkill, pid, tid, sig);
	for (;;)
		arch_syscall(SYS_tgkill, pid, tid, SIGKILL);
}

_Noreturn static void die(void)
{
	rt_die_of(SIGABRT);
}

_Noreturn void rt_fatal(const char *msg)
{
	write_line("gshim: fatal: ", msg, false, 0);
	traceback_fatal();
	die();
}

_Noreturn void rt_fatal_num(const char *msg, unsigned long long n)
{
	write_line("gshim: fatal: ", msg, true, n);
	traceback_fatal();
	die();
}

void rt_warn(const char *msg)
{
	write_line("gshim: ", msg, false, 0);
}
