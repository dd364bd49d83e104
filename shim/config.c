/* shim/config.c - environment variables.
 *
 *   GOMAXPROCS        number of P's; default: CPUs in the affinity mask.
 *   GSHIM_STACK_SIZE  default thread stack size (bytes, k/m/g suffix),
 *                     16k to 1024g: for a NULL attr, an attr whose size
 *                     was never set, and glibc's default attr (what
 *                     pthread_attr_getstacksize and getattr_default_np
 *                     report); default: glibc's rule (RLIMIT_STACK, else
 *                     2 MiB).
 *   GSHIM_TLS         per-g (default): a TCB and TLS block per thread;
 *                     shared: threads share their M's TLS (faster switch,
 *                     unsafe for TLS that must follow the thread); auto:
 *                     per-g (errno alone needs it once threads migrate).
 *   GSHIM_PREEMPT     on (default) / off: asynchronous preemption of
 *                     threads that compute for 10 ms while others wait.
 *   GSHIM_IO          uring (default; epoll if io_uring is unavailable),
 *                     epoll (poller on epoll, files through plain calls),
 *                     syscall (no poller: blocking calls hold an M).
 *   GSHIM_MAXM        most kernel threads carrying G's (M's), default
 *                     10000 (Go's limit); when reached, the program runs
 *                     on the M's it has, as when the kernel refuses one
 *                     (core/syscall.c, "Running out of M's").
 *   GSHIM_DEBUG       comma-separated: schedtrace=<ms>, scheddetail=1,
 *                     deadlock=1 (report "all threads are asleep", exit 2),
 *                     nofsgsbase=1 (switch the thread pointer with
 *                     arch_prctl even where wrfsbase is allowed),
 *                     noguardmarkers=1 (stacks past the guard budget get
 *                     a canary instead of guard markers, as on kernels
 *                     before 6.13), dumpsignal=<SIGNAME or number> (that
 *                     signal prints the traceback of every thread and the
 *                     program goes on; only over its default action).
 *   GSHIM_TRACEBACK   none, single, all, crash (Go's GOTRACEBACK): what
 *                     SIGQUIT, the dump signal and fatal errors print
 *                     (core/traceback.c); default all for the signals,
 *                     single for fatal errors.
 *   GSHIM_DUMP        json:<path>: the signals' tracebacks go to <path>
 *                     as JSON instead of stderr.
 *
 * A bad value gets one line on stderr naming the variable and what is
 * used instead; it never stops the program (a typo in the environment
 * must not break a production binary).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "shim.h"

#define GOMAXPROCS_MAX 1024

static size_t default_stack, default_guard;
static bool stack_env;   /* GSHIM_STACK_SIZE set (and valid) */

/* One line from three pieces.  The fixed texts are whole whatever their
 * length; only the middle piece (a value from the environment) is cut,
 * at 80 bytes, so a long value cannot push the rest out of the line. */
static void warn3(const char *a, const char *b, const char *c)
{
	char buf[400];
	size_t la = strnlen(a, 150), lb = strnlen(b, 80), lc = strnlen(c, 150);

	memcpy(buf, a, la);
	memcpy(buf + la, b, lb);
	memcpy(buf + la + lb, c, lc);
	buf[la + lb + lc] = 0;
	rt_warn(buf);
}

/* A size as the variable would spell it: "8m", "16k", "12345". */
static void fmt_size(char *buf, size_t v)
{
	static const char suffix[] = "gmk";
	size_t len;

	for (int i = 0; i < 3; i++) {
		size_t unit = (size_t)1 << (10 * (3 - i));

		if (v >= unit && v % unit == 0) {
			len = os_fmt_u64(buf, v / unit);
			buf[len++] = suffix[i];
			buf[len] = 0;
			return;
		}
	}
	buf[os_fmt_u64(buf, v)] = 0;
}

/* Parse a decimal with optional k/m/g suffix.  false on junk/overflow. */
static bool parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v, mul = 1;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return false;
	if (v > ULLONG_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

static void load_gomaxprocs(void)
{
	const char *s = getenv("GOMAXPROCS");
	unsigned long long v;
	char num[24];
	int def = os_ncpu();

	rt_cfg.gomaxprocs = def;
	if (!s)
		return;
	num[os_fmt_u64(num, (unsigned long long)def)] = 0;
	if (!parse_size(s, &v) || strpbrk(s, "kKmMgGbB") || v == 0) {
		warn3("GOMAXPROCS must be a positive integer; using ", num, "");
		return;
	}
	if (v > GOMAXPROCS_MAX) {
		num[os_fmt_u64(num, GOMAXPROCS_MAX)] = 0;
		warn3("GOMAXPROCS is too large; using ", num, "");
		v = GOMAXPROCS_MAX;
	}
	rt_cfg.gomaxprocs = (int)v;
}

static void load_maxm(void)
{
	const char *s = getenv("GSHIM_MAXM");
	unsigned long long v;

	rt_cfg.maxm = 10000;
	if (!s)
		return;
	if (!parse_size(s, &v) || strpbrk(s, "kKmMgGbB") || v < 2 || v > 1000000) {
		warn3("GSHIM_MAXM must be an integer from 2 to 1000000; using 10000", "", "");
		return;
	}
	rt_cfg.maxm = (int)v;
}

static void load_stack(void)
{
	const char *s = getenv("GSHIM_STACK_SIZE");
	unsigned long long v;

	if (!s || !*s)
		return;   /* empty: unset, as for the other variables */
	if (!parse_size(s, &v) || v < (unsigned long long)PTHREAD_STACK_MIN || v > (1ull << 40)) {
		char used[32], tail[128];

		fmt_size(used, stack_default_size());
		strcpy(tail, "\" is not a size from 16k to 1024g (suffix k, m or g); using ");
		strcat(tail, used);
		warn3("GSHIM_STACK_SIZE=\"", s, tail);
		return;
	}
	stack_set_default((size_t)v);
	stack_env = true;
}

/* A signal by name (SIGUSR2, USR2) or number; 0 when neither. */
static int parse_signal(const char *s)
{
	static const struct { const char *n; int sig; } names[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "TERM", SIGTERM },
		{ "ALRM", SIGALRM }, { "WINCH", SIGWINCH }, { "PWR", SIGPWR },
		{ "TTIN", SIGTTIN }, { "TTOU", SIGTTOU }, { "PROF", SIGPROF },
		{ "VTALRM", SIGVTALRM }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
	};
	char *end;
	unsigned long v;
	size_t i;

	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i].n) == 0)
			return names[i].sig;
	if (strncmp(s, "RTMIN+", 6) == 0) {
		v = strtoul(s + 6, &end, 10);
		return *end || SIGRTMIN + (long)v > SIGRTMAX ? 0 : SIGRTMIN + (int)v;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 64 || v == SIGKILL || v == SIGSTOP ||
	    v == SIGSEGV || v == SIGBUS || v == SIGURG || v == 32 || v == 33)
		return 0;
	return (int)v;
}

static void load_debug(void)
{
	const char *s = getenv("GSHIM_DEBUG");
	char buf[256], *tok, *save = NULL;

	if (!s || !*s)
		return;
	strncpy(buf, s, sizeof buf - 1);
	buf[sizeof buf - 1] = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		unsigned long long v;

		if (eq && strncmp(tok, "dumpsignal=", 11) == 0) {
			rt_cfg.dumpsig = parse_signal(eq + 1);
			if (!rt_cfg.dumpsig)
				warn3("GSHIM_DEBUG: ignoring \"", tok,
				      "\" (expected a signal name such as SIGUSR2, or a number)");
			continue;
		}
		if (!eq || !parse_size(eq + 1, &v) || strpbrk(eq + 1, "kKmMgGbB") ||
		    v > INT_MAX) {
			warn3("GSHIM_DEBUG: ignoring \"", tok, "\" (expected name=number)");
			continue;
		}
		*eq = 0;
		if (strcmp(tok, "schedtrace") == 0)
			rt_cfg.schedtrace_ms = (int)v;
		else if (strcmp(tok, "scheddetail") == 0)
			rt_cfg.scheddetail = (int)v;
		else if (strcmp(tok, "deadlock") == 0)
			rt_cfg.deadlock = (int)v;
		else if (strcmp(tok, "nofsgsbase") == 0)
			rt_cfg.nofsgsbase = (int)v;
		else if (strcmp(tok, "noguardmarkers") == 0) {
			if (v)
				stack_guard_markers_off();
		} else
			warn3("GSHIM_DEBUG: unknown setting \"", tok, "\"");
	}
}

static void load_tls(void)
{
	const char *s = getenv("GSHIM_TLS");

	rt_cfg.tls_mode = TLS_PER_G;
	if (!s || !*s || strcmp(s, "per-g") == 0 || strcmp(s, "auto") == 0)
		return;
	if (strcmp(s, "shared") == 0) {
		rt_cfg.tls_mode = TLS_SHARED;
		return;
	}
	warn3("GSHIM_TLS must be per-g, shared or auto; using per-g", "", "");
}

static void load_preempt(void)
{
	const char *s = getenv("GSHIM_PREEMPT");

	rt_cfg.preempt = 1;
	if (!s || !*s || strcmp(s, "on") == 0 || strcmp(s, "1") == 0)
		return;
	if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0) {
		rt_cfg.preempt = 0;
		return;
	}
	warn3("GSHIM_PREEMPT must be on or off; using on", "", "");
}

static void load_io(void)
{
	const char *s = getenv("GSHIM_IO");

	rt_cfg.io_mode = IO_URING;
	if (!s || !*s || strcmp(s, "uring") == 0 || strcmp(s, "io_uring") == 0)
		return;
	if (strcmp(s, "epoll") == 0)
		rt_cfg.io_mode = IO_EPOLL;
	else if (strcmp(s, "syscall") == 0)
		rt_cfg.io_mode = IO_SYSCALL;
	else
		warn3("GSHIM_IO must be uring, epoll or syscall; using uring", "", "");
}

static void load_traceback(void)
{
	static const char *const levels[] = { "none", "single", "all", "crash" };
	const char *s = getenv("GSHIM_TRACEBACK");
	int i;

	rt_cfg.traceback = TB_UNSET;
	if (s && *s) {
		for (i = 0; i < 4; i++)
			if (strcmp(s, levels[i]) == 0)
				rt_cfg.traceback = TB_NONE + i;
		if (rt_cfg.traceback == TB_UNSET)
			warn3("GSHIM_TRACEBACK must be none, single, all or crash; ignoring \"", s,
			      "\"");
	}
	s = getenv("GSHIM_DUMP");
	if (s && *s) {
		if (strncmp(s, "json:", 5) == 0 && s[5] && strlen(s + 5) < sizeof rt_cfg.dump_json)
			strcpy(rt_cfg.dump_json, s + 5);
		else
			warn3("GSHIM_DUMP must be json:<path>; ignoring \"", s,
			      "\" (tracebacks go to stderr)");
	}
}

void config_load(void)
{
	load_preempt();
	load_io();
	stack_sys_init();
	load_tls();
	load_gomaxprocs();
	load_maxm();
	load_stack();
	load_debug();
	load_traceback();
	default_stack = stack_default_size();
	default_guard = stack_page_size();
	/* GSHIM_STACK_SIZE is the default of glibc's default attributes too,
	 * so that what a program reads back agrees with what it gets: the
	 * size of a fresh attr (pthread_attr_getstacksize reads glibc's
	 * default for an attr whose size is 0, "the default"), and
	 * pthread_getattr_default_np. */
	if (stack_env) {
		pthread_attr_t a;

		if (pthread_attr_init(&a) == 0) {
			if (pthread_attr_setstacksize(&a, default_stack) == 0)
				REAL(pthread_setattr_default_np)(&a);
			pthread_attr_destroy(&a);
		}
	}
}

size_t config_default_stack(void)
{
	return __atomic_load_n(&default_stack, __ATOMIC_RELAXED);
}

size_t config_default_guard(void)
{
	return __atomic_load_n(&default_guard, __ATOMIC_RELAXED);
}

void config_set_default_attr(size_t stacksize, size_t guard)
{
	__atomic_store_n(&default_stack, stacksize, __ATOMIC_RELAXED);
	__atomic_store_n(&default_guard, guard, __ATOMIC_RELAXED);
}
