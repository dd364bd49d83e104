/* Scheduling attributes of threads, as glibc's tests check them
 * (tst-sched1, tst-bad-schedattr, tst-attr3): explicit policies and
 * priorities at creation, inheritance, EINVAL at the right call, the
 * sched_* calls on the calling thread, and EPERM by the kernel's rules
 * (RLIMIT_RTPRIO, RLIMIT_NICE, CAP_SYS_NICE) in a child that gave up
 * root.  Run as root (natively SCHED_FIFO then succeeds) or not: the
 * privileged checks print the same either way. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "prog.h"

static int privileged;   /* may set SCHED_FIFO here (root or RLIMIT_RTPRIO) */

struct seen {
	int policy, prio, inherit, gs_policy, gs_prio, attr_policy, attr_prio;
};

static void *report(void *arg)
{
	struct seen *s = arg;
	struct sched_param sp;
	pthread_attr_t a;

	pthread_getschedparam(pthread_self(), &s->policy, &sp);
	s->prio = sp.sched_priority;
	s->gs_policy = sched_getscheduler(0);
	sched_getparam(0, &sp);
	s->gs_prio = sp.sched_priority;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getinheritsched(&a, &s->inherit);
		pthread_attr_getschedpolicy(&a, &s->attr_policy);
		pthread_attr_getschedparam(&a, &sp);
		s->attr_prio = sp.sched_priority;
		pthread_attr_destroy(&a);
	}
	return NULL;
}

static int spawn(pthread_attr_t *a, struct seen *s)
{
	pthread_t t;
	int e;

	memset(s, -1, sizeof *s);
	e = pthread_create(&t, a, report, s);
	if (e == 0)
		pthread_join(t, NULL);
	return e;
}

static void *never(void *arg)
{
	(void)arg;
	abort();
}

static void attr_setters(void)
{
	pthread_attr_t a;
	struct sched_param sp = { .sched_priority = 100 };

	pthread_attr_init(&a);
	check(pthread_attr_setschedpolicy(&a, 42) == EINVAL, "attr policy 42", "not EINVAL");
	check(pthread_attr_setinheritsched(&a, 7) == EINVAL, "attr inherit 7", "not EINVAL");
	pthread_attr_setschedpolicy(&a, SCHED_FIFO);
	check(pthread_attr_setschedparam(&a, &sp) == EINVAL, "attr FIFO prio 100", "not EINVAL");
	sp.sched_priority = 0;
	check(pthread_attr_setschedparam(&a, &sp) == EINVAL, "attr FIFO prio 0", "not EINVAL");
	pthread_attr_destroy(&a);
}

static void explicit_create(void)
{
	pthread_attr_t a;
	struct sched_param sp;
	struct seen s;
	int e;

	/* tst-bad-schedattr: a priority valid for FIFO left in an attr whose
	 * policy became OTHER: pthread_create says EINVAL. */
	pthread_attr_init(&a);
	pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&a, SCHED_FIFO);
	sp.sched_priority = sched_get_priority_max(SCHED_OTHER) + 1;
	pthread_attr_setschedparam(&a, &sp);
	pthread_attr_setschedpolicy(&a, SCHED_OTHER);
	{
		pthread_t t;
		e = pthread_create(&t, &a, never, NULL);
	}
	check(e == EINVAL, "create OTHER with prio 1", "%s", ename(e));
	pthread_attr_destroy(&a);

	/* tst-sched1: explicit SCHED_OTHER with the process's parameters. */
	pthread_attr_init(&a);
	pthread_attr_setschedpolicy(&a, SCHED_OTHER);
	sched_getparam(getpid(), &sp);
	pthread_attr_setschedparam(&a, &sp);
	pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
	e = spawn(&a, &s);
	check(e == 0 && s.policy == SCHED_OTHER && s.prio == 0 &&
	      s.inherit == PTHREAD_EXPLICIT_SCHED,
	      "create explicit OTHER", "%s policy %d prio %d inherit %d",
	      ename(e), s.policy, s.prio, s.inherit);
	pthread_attr_destroy(&a);

	/* Explicit FIFO 10: applied if allowed, EPERM if not. */
	pthread_attr_init(&a);
	pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&a, SCHED_FIFO);
	sp.sched_priority = 10;
	pthread_attr_setschedparam(&a, &sp);
	e = spawn(&a, &s);
	if (privileged)
		check(e == 0 && s.policy == SCHED_FIFO && s.prio == 10 &&
		      s.gs_policy == SCHED_FIFO && s.gs_prio == 10 &&
		      s.attr_policy == SCHED_FIFO && s.attr_prio == 10,
		      "create explicit FIFO 10", "%s %d/%d sched_get %d/%d attr %d/%d",
		      ename(e), s.policy, s.prio, s.gs_policy, s.gs_prio,
		      s.attr_policy, s.attr_prio);
	else
		check(e == EPERM, "create explicit FIFO 10", "%s", ename(e));
	/* The same attr with inheritance: the creator's settings. */
	pthread_attr_setinheritsched(&a, PTHREAD_INHERIT_SCHED);
	e = spawn(&a, &s);
	check(e == 0 && s.policy == SCHED_OTHER && s.prio == 0 &&
	      s.inherit == PTHREAD_INHERIT_SCHED,
	      "create inherit (attr says FIFO)", "%s policy %d prio %d", ename(e),
	      s.policy, s.prio);
	pthread_attr_destroy(&a);
}

static void set_and_inherit(void)
{
	struct sched_param sp = { .sched_priority = 0 };
	struct seen s;
	int e, pol;

	check(pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == EINVAL,
	      "setschedparam FIFO 0", "not EINVAL");
	check(pthread_setschedparam(pthread_self(), 42, &sp) == EINVAL,
	      "setschedparam policy 42", "not EINVAL");
	check(pthread_setschedprio(pthread_self(), 1) == EINVAL,
	      "setschedprio 1 under OTHER", "not EINVAL");
	e = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	pthread_getschedparam(pthread_self(), &pol, &sp);
	check(e == 0 && pol == SCHED_BATCH && sched_getscheduler(0) == SCHED_BATCH,
	      "setschedparam BATCH", "%s policy %d", ename(e), pol);
	e = spawn(NULL, &s);
	check(e == 0 && s.policy == SCHED_BATCH, "new thread inherits BATCH",
	      "%s policy %d", ename(e), s.policy);
	sp.sched_priority = 5;
	e = pthread_setschedparam(pthread_self(), SCHED_RR, &sp);
	if (privileged) {
		check(e == 0, "setschedparam RR 5", "%s", ename(e));
		e = pthread_setschedprio(pthread_self(), 20);
		pthread_getschedparam(pthread_self(), &pol, &sp);
		check(e == 0 && pol == SCHED_RR && sp.sched_priority == 20,
		      "setschedprio 20", "%s %d/%d", ename(e), pol, sp.sched_priority);
		e = spawn(NULL, &s);
		check(e == 0 && s.policy == SCHED_RR && s.prio == 20,
		      "new thread inherits RR 20", "%s %d/%d", ename(e), s.policy, s.prio);
	} else {
		check(e == EPERM, "setschedparam RR 5", "%s", ename(e));
		printf("setschedprio 20: ok\nnew thread inherits RR 20: ok\n");
	}
	sp.sched_priority = 0;
	pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
}

static void sched_calls(void)
{
	struct sched_param sp = { .sched_priority = 7 };
	int r, e;

	errno = 0;
	r = sched_setscheduler(-1, SCHED_OTHER, &sp);
	e = errno;
	check(r == -1 && e == EINVAL, "sched_setscheduler(-1)", "%d %s", r, ename(e));
	errno = 0;
	r = sched_setscheduler(0, SCHED_OTHER, &sp);
	e = errno;
	check(r == -1 && e == EINVAL, "sched_setscheduler OTHER 7", "%d %s", r, ename(e));
	r = sched_setscheduler(0, SCHED_FIFO, &sp);
	e = errno;
	if (privileged) {
		check(r == 0 && sched_getscheduler(0) == SCHED_FIFO, "sched_setscheduler FIFO 7",
		      "%d %s", r, ename(e));
		sp.sched_priority = 3;
		r = sched_setparam(0, &sp);
		sp.sched_priority = -1;
		sched_getparam(0, &sp);
		check(r == 0 && sp.sched_priority == 3, "sched_setparam 3", "%d prio %d",
		      r, sp.sched_priority);
	} else {
		check(r == -1 && e == EPERM, "sched_setscheduler FIFO 7", "%d %s", r, ename(e));
		printf("sched_setparam 3: ok\n");
	}
	sp.sched_priority = 0;
	sched_setscheduler(0, SCHED_OTHER, &sp);
	check(sched_getscheduler(0) == SCHED_OTHER, "back to OTHER", "%d", sched_getscheduler(0));
}

/* In a child that gave up root: EPERM exactly where the kernel says.
 * Whether RLIMIT_RTPRIO can be raised to 5 first depends on the
 * environment (CAP_SYS_RESOURCE), so these print what they got, and the
 * comparison with the native run is the check. */
static void got(const char *what, int e)
{
	printf("child: %s: %s\n", what, ename(e));
}

static void unprivileged_child(void)
{
	struct rlimit rl = { 5, 5 };
	struct sched_param sp;
	pthread_attr_t a;
	struct seen s;
	int e;

	if (setrlimit(RLIMIT_RTPRIO, &rl) != 0) {
		getrlimit(RLIMIT_RTPRIO, &rl);
		printf("child: RLIMIT_RTPRIO stays %ld\n", (long)rl.rlim_cur);
	}
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_NICE, &rl);
	/* The raw system call, for this kernel thread only: the child has
	 * no other.  (glibc's setuid in a fork child of a gshim process can
	 * hang in its setxid broadcast, waiting for a thread of the parent:
	 * a fork problem, not this test's.) */
	if (getuid() == 0 && syscall(SYS_setresuid, 65534, 65534, 65534) != 0) {
		printf("setuid failed\n");
		_exit(1);
	}
	pthread_attr_init(&a);
	pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&a, SCHED_FIFO);
	sp.sched_priority = 6;
	pthread_attr_setschedparam(&a, &sp);
	got("create FIFO 6", spawn(&a, &s));
	sp.sched_priority = 5;
	pthread_attr_setschedparam(&a, &sp);
	e = spawn(&a, &s);
	got("create FIFO 5", e);
	if (e == 0)
		printf("child: it runs as %d/%d\n", s.policy, s.prio);
	pthread_attr_destroy(&a);
	got("setschedparam RR 5", pthread_setschedparam(pthread_self(), SCHED_RR, &sp));
	got("setschedprio 6", pthread_setschedprio(pthread_self(), 6));
	got("setschedprio 2", pthread_setschedprio(pthread_self(), 2));
	sp.sched_priority = 0;
	got("OTHER 0", pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp));
	got("to IDLE", pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp));
	got("IDLE to OTHER with RLIMIT_NICE 0",
	    pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp));
	got("IDLE to BATCH", pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp));
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_RTPRIO, &rl);
	sp.sched_priority = 1;
	got("FIFO 1 with RLIMIT_RTPRIO 0",
	    pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp));
	errno = 0;
	sched_setscheduler(0, SCHED_RR, &sp);
	got("sched_setscheduler RR 1", errno);
	fflush(stdout);
	_exit(0);
}

int main(void)
{
	struct sched_param sp = { .sched_priority = 1 };
	pid_t pid;
	int st;

	watchdog(20);
	/* Can this process use real-time policies?  Ask the kernel in a
	 * child (so that nothing here changes). */
	pid = fork();
	if (pid == 0)
		_exit(sched_setscheduler(0, SCHED_FIFO, &sp) == 0 ? 0 : 1);
	waitpid(pid, &st, 0);
	privileged = WIFEXITED(st) && WEXITSTATUS(st) == 0;

	stage("attr setters");
	attr_setters();
	stage("explicit create");
	explicit_create();
	stage("set and inherit");
	set_and_inherit();
	stage("sched calls");
	sched_calls();
	stage("unprivileged child");
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		unprivileged_child();
	waitpid(pid, &st, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child", "status %d", st);
	return failures ? 1 : 0;
}
