/* GSHIM_STACK_SIZE (issue 11 item 6).  It sets the default stack size,
 * and "the default" is what a thread gets with a NULL attr and with an
 * attr fresh from pthread_attr_init (whose size 0 means the default in
 * glibc); pthread_attr_getstacksize of such an attr and
 * pthread_getattr_default_np report it.  Before, only NULL attrs got it.
 * A bad value ("1", "1t", "abc") gets one whole warning line naming the
 * value and the size used instead (it was cut off at "...; using ").
 *
 * The program runs itself again with GSHIM_STACK_SIZE set (the variable
 * means nothing natively: there every size is glibc's default) and reads
 * the child's stderr.  In the child: the sizes reported for threads
 * created with a NULL attr, a fresh attr, a fresh attr after
 * pthread_setattr_default_np of a fresh attr (size 0: the default stays),
 * the size a fresh attr reports and the default attr's must all agree -
 * and under gshim equal the variable's value (or glibc's default for a
 * bad value); each thread touches most of that stack. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <alloca.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include "prog.h"

static void *body(void *arg)
{
	pthread_attr_t a;
	size_t size = 0;

	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getstacksize(&a, &size);
		pthread_attr_destroy(&a);
	}
	/* Use three quarters of it: the stack must really be that big. */
	{
		volatile char *p = alloca(size / 4 * 3);

		for (size_t i = 0; i < size / 4 * 3; i += 4096)
			p[i] = 1;
	}
	*(size_t *)arg = size;
	return NULL;
}

static size_t thread_size(const pthread_attr_t *a)
{
	pthread_t t;
	size_t size = 0;

	if (pthread_create(&t, a, body, &size) != 0)
		return 0;
	pthread_join(t, NULL);
	return size;
}

static int under_gshim(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "libgshim");
}

/* glibc's default: RLIMIT_STACK if finite, else 2 MiB (x86_64). */
static size_t glibc_default(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 2 << 20;
	return rl.rlim_cur < 16384 ? 16384 : (rl.rlim_cur + 4095) & ~(size_t)4095;
}

static int child(const char *expect_s)
{
	pthread_attr_t fresh, dflt;
	size_t expect = strtoull(expect_s, NULL, 0), null_sz, fresh_sz, attr_sz, dflt_sz, after;

	watchdog(20);
	if (!under_gshim())
		expect = glibc_default();
	if (!expect)
		expect = glibc_default();
	pthread_attr_init(&fresh);
	null_sz = thread_size(NULL);
	fresh_sz = thread_size(&fresh);
	pthread_attr_getstacksize(&fresh, &attr_sz);
	pthread_getattr_default_np(&dflt);
	pthread_attr_getstacksize(&dflt, &dflt_sz);
	pthread_attr_destroy(&dflt);
	/* A default attr whose size is 0 changes the rest, not the size. */
	pthread_setattr_default_np(&fresh);
	after = thread_size(NULL);
	pthread_attr_destroy(&fresh);
	if (null_sz != expect || fresh_sz != expect || attr_sz != expect || dflt_sz != expect ||
	    after != expect) {
		fprintf(stderr, "child: expected %zu: NULL attr %zu, fresh attr %zu, fresh attr "
		        "reports %zu, default attr %zu, after setattr_default_np %zu\n",
		        expect, null_sz, fresh_sz, attr_sz, dflt_sz, after);
		return 1;
	}
	return 0;
}

/* Run ourselves with GSHIM_STACK_SIZE=value; the child's stderr in err. */
static int run(const char *value, const char *expect, char *err, size_t errlen)
{
	int fd[2], status;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	if (pipe(fd) != 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		setenv("GSHIM_STACK_SIZE", value, 1);
		execl("/proc/self/exe", "stack_env", "child", expect, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	while (n + 1 < errlen && (r = read(fd[0], err + n, errlen - 1 - n)) > 0)
		n += (size_t)r;
	err[n] = 0;
	close(fd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Under gshim a bad value must give exactly one line:
 * gshim: GSHIM_STACK_SIZE="<value>" is not a size ...; using <size>
 * with the default's size; natively nothing. */
static int warning_ok(const char *err, const char *value, char *why, size_t whylen)
{
	char want[128], used[32];
	size_t d = glibc_default();

	if (!under_gshim()) {
		snprintf(why, whylen, "native run printed: %s", err);
		return err[0] == 0;
	}
	if (d % (1 << 20) == 0)
		snprintf(used, sizeof used, "%zum", d >> 20);
	else if (d % 1024 == 0)
		snprintf(used, sizeof used, "%zuk", d >> 10);
	else
		snprintf(used, sizeof used, "%zu", d);
	snprintf(want, sizeof want, "gshim: GSHIM_STACK_SIZE=\"%s\" is not a size", value);
	snprintf(why, whylen, "stderr: %s", err);
	if (strncmp(err, want, strlen(want)) != 0 || !strchr(err, '\n') ||
	    strchr(err, '\n')[1] != 0)
		return 0;
	snprintf(want, sizeof want, "; using %s\n", used);
	return strlen(err) > strlen(want) && strcmp(err + strlen(err) - strlen(want), want) == 0;
}

int main(int argc, char **argv)
{
	static const char *bad[] = { "1", "1t", "abc", "-5", "" };
	char err[4096], why[4200], what[128];
	int r;

	if (argc == 3 && strcmp(argv[1], "child") == 0)
		return child(argv[2]);
	watchdog(25);

	stage("GSHIM_STACK_SIZE=256k");
	r = run("256k", "262144", err, sizeof err);
	check(r == 0 && err[0] == 0, "GSHIM_STACK_SIZE=256k: NULL attr, fresh attr and default agree",
	      "status %d, stderr: %s", r, err);
	stage("GSHIM_STACK_SIZE=3m");
	r = run("3m", "3145728", err, sizeof err);
	check(r == 0 && err[0] == 0, "GSHIM_STACK_SIZE=3m: NULL attr, fresh attr and default agree",
	      "status %d, stderr: %s", r, err);

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(what, sizeof what, "GSHIM_STACK_SIZE=\"%s\"", bad[i]);
		stage(what);
		r = run(bad[i], "0", err, sizeof err);
		/* An empty value is no value: no warning either. */
		if (!bad[i][0]) {
			check(r == 0 && err[0] == 0, "GSHIM_STACK_SIZE=\"\": the default, no warning",
			      "status %d, stderr: %s", r, err);
			continue;
		}
		snprintf(what, sizeof what, "GSHIM_STACK_SIZE=\"%s\": the default, one whole warning line",
		         bad[i]);
		check(r == 0 && warning_ok(err, bad[i], why, sizeof why), what, "status %d, %s", r,
		      why);
	}
	return failures ? 1 : 0;
}
