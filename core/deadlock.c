/* core/deadlock.c - reports for a program that cannot go on: the
 * deadlock check (GSHIM_DEBUG=deadlock=1, Go's "all goroutines are
 * asleep") and the thread-exhaustion report (sysmon, when every M is
 * blocked in a call and no kernel thread can be created for another).
 *
 * Both only read: they count and list G's with g_foreach and write to
 * fd 2 with os_write_all, without malloc or stdio, since they run on an
 * idle M's g0 (deadlock_check, from stopm) or on sysmon (starve_report,
 * from sched_mstarve in core/syscall.c) while the program may hold any
 * lock.  Each line is formatted into a buffer on the stack and written
 * whole, so reports from concurrent M's do not interleave mid-line.
 *
 * Invariant for the deadlock check: it is called by an M about to sleep,
 * with no lock held; its decision (every P idle, no G queued, no timer,
 * nobody in the poller, no G running or in a call, some G waiting) is
 * final, since no M is left to ready anything.  Opt-in, because a G that
 * only a signal handler, another process or a thread created behind
 * gshim's back would wake is reported too.
 *
 * Rejected: checking from sysmon (it would need a stable view of every
 * P at once; the last M to go idle has it for free); exiting on thread
 * exhaustion by default (the calls may still return: another process may
 * release the lock or write to the pipe).
 */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"
#include "sched_int.h"

/* GSHIM_DEBUG=deadlock=1: called by an M about to sleep.  If every P is
 * idle, nothing is queued, no timer is pending and no G is in a blocking
 * call, no G can ever be woken by the runtime again: say so, list the
 * G's, and exit with status 2 (Go's "all goroutines are asleep").  A G
 * that only a signal handler, another process or a thread created behind
 * gshim's back would wake is reported too: hence opt-in. */
struct dl_count { int waiting, blocked; };

static void dl_count_g(g_t *g, void *arg)
{
	struct dl_count *c = arg;
	uint32_t st = atomic_load(&g->status);

	if (st == G_WAITING)
		c->waiting++;
	else if (st == G_SYSCALL || st == G_RUNNING || st == G_RUNNABLE)
		c->blocked++;
}

static void dl_print_g(g_t *g, void *arg)
{
	static const char *const reasons[WAIT_MAX] = {
		[WAIT_NONE] = "", [WAIT_GFUTEX] = "sync",
	};
	char buf[160];
	size_t len = 0;
	uint32_t st = atomic_load(&g->status);
	uintptr_t addr = (uintptr_t)atomic_load(&g->waitaddr);

	(void)arg;
	if (st != G_WAITING)
		return;
	memcpy(buf, "  thread ", 9);
	len = 9;
	len += os_fmt_u64(buf + len, g->goid);
	memcpy(buf + len, g->is_main ? " (main) [" : " [", g->is_main ? 9 : 2);
	len += g->is_main ? 9 : 2;
	if (g->waitreason < WAIT_MAX) {
		size_t l = strlen(reasons[g->waitreason]);
		memcpy(buf + len, reasons[g->waitreason], l);
		len += l;
	}
	memcpy(buf + len, "] on 0x", 7);
	len += 7;
	len += os_fmt_hex(buf + len, addr, 16);
	buf[len++] = '\n';
	os_write_all(2, buf, len);
}

void deadlock_check(void)
{
	struct dl_count c = { 0, 0 };
	static const char msg[] = "gshim: fatal: all threads are asleep - deadlock!\n";

	if (atomic_load(&sched.npidle) != sched.nprocs ||
	    atomic_load(&sched.runqsize) != 0 || timer_count() != 0 || netpoll_waiting())
		return;
	g_foreach(dl_count_g, &c);
	if (c.blocked || !c.waiting)
		return;
	os_write_all(2, msg, sizeof msg - 1);
	g_foreach(dl_print_g, NULL);
	_exit(2);
}

/* Names of the calls gshim makes while holding an M, for the report. */
const char *deadlock_sc_name(long nr)
{
	switch (nr) {
	case SCNR_WAIT: return "a kernel wait (process-shared object or sigwait)";
	case SYS_flock: return "flock";
	case SYS_fcntl: return "fcntl lock wait";
	case SYS_preadv2: case SYS_read: case SYS_readv: case SYS_pread64: return "read";
	case SYS_pwritev2: case SYS_write: case SYS_writev: case SYS_pwrite64: return "write";
	case SYS_recvmsg: case SYS_recvfrom: case SYS_recvmmsg: return "recv";
	case SYS_sendmsg: case SYS_sendto: case SYS_sendmmsg: return "send";
	case SYS_accept4: case SYS_accept: return "accept";
	case SYS_connect: return "connect";
	case SYS_wait4: case SYS_waitid: return "wait";
	case SYS_ppoll: case SYS_poll: return "poll";
	case SYS_pselect6: case SYS_select: return "select";
	case SYS_epoll_pwait: case SYS_epoll_pwait2: case SYS_epoll_wait: return "epoll_wait";
	case SYS_msgrcv: return "msgrcv";
	case SYS_msgsnd: return "msgsnd";
	case SYS_semop: case SYS_semtimedop: return "semop";
	case SYS_rt_sigsuspend: return "sigsuspend";
	case SYS_openat: case SYS_open: return "open";
	case SYS_fsync: case SYS_fdatasync: case SYS_sync_file_range: return "fsync";
	case SYS_futex: return "futex";
	case SYS_splice: case SYS_tee: case SYS_sendfile: case SYS_copy_file_range:
		return "splice";
	default: return NULL;
	}
}

struct starve_count { int runnable, blocked; };

static void starve_count_g(g_t *g, void *arg)
{
	struct starve_count *c = arg;
	uint32_t st = atomic_load(&g->status);

	c->runnable += st == G_RUNNABLE;
	c->blocked += st == G_SYSCALL;
}

static size_t fmt_str(char *buf, size_t len, const char *s)
{
	size_t l = strlen(s);

	memcpy(buf + len, s, l);
	return len + l;
}

static void starve_print_g(g_t *g, void *arg)
{
	char buf[200];
	size_t len;
	long nr = __atomic_load_n(&g->scnr, __ATOMIC_RELAXED);
	const char *name = deadlock_sc_name(nr);

	(void)arg;
	if (atomic_load(&g->status) != G_SYSCALL)
		return;
	len = fmt_str(buf, 0, "  thread ");
	len += os_fmt_u64(buf + len, g->goid);
	len = fmt_str(buf, len, g->is_main ? " (main) blocked in " : " blocked in ");
	if (name) {
		len = fmt_str(buf, len, name);
		if (nr != SCNR_WAIT) {
			long a0 = __atomic_load_n(&g->sca0, __ATOMIC_RELAXED);

			len = fmt_str(buf, len, nr == SYS_wait4 || nr == SYS_waitid ? " (" : " (fd ");
			if (a0 < 0) {
				buf[len++] = '-';
				a0 = -a0;
			}
			len += os_fmt_u64(buf + len, (unsigned long long)a0);
			buf[len++] = ')';
		}
	} else if (nr > 0) {
		len = fmt_str(buf, len, "system call ");
		len += os_fmt_u64(buf + len, (unsigned long long)nr);
	} else {
		len = fmt_str(buf, len, "a call gshim does not name");
	}
	buf[len++] = '\n';
	os_write_all(2, buf, len);
}

/* Once: what waits, and on what. */
void starve_report(void)
{
	struct starve_count c = { 0, 0 };
	char buf[256];
	size_t len;

	g_foreach(starve_count_g, &c);
	len = fmt_str(buf, 0, rt_cfg.deadlock ? "gshim: fatal: thread exhaustion - " :
	                                        "gshim: thread exhaustion - ");
	len = fmt_str(buf, len, "no OS thread can be created for an M and every M is "
	                        "blocked in a call: ");
	len += os_fmt_u64(buf + len, (unsigned long long)c.runnable);
	len = fmt_str(buf, len, " runnable thread(s) wait until one of these returns:\n");
	os_write_all(2, buf, len);
	g_foreach(starve_print_g, NULL);
	if (rt_cfg.deadlock)
		_exit(2);
}
