/* Thread lifecycle corners, after glibc's tst-attr3, tst-pthread-getattr,
 * tst-default-attr, tst-pthread-attr-sigmask, tst-pthread-attr-affinity-
 * fail, tst-create-detached, tst-detach1, tst-join*: what
 * pthread_getattr_np reports for created threads (sizes as asked, detach
 * state, inheritsched, CPU set), the default attributes, attr signal
 * masks and CPU sets, detached threads and joins of ended threads, and
 * pthread_exit from a cleanup handler; what each pthread_t call says of a
 * thread that ended but is not joined.  Prints values, not only verdicts:
 * the native run is the reference. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include "prog.h"

struct attrs {
	size_t stacksize, guard;
	int detach, inherit, aff_same, on_stack;
};

static void read_attrs(pthread_t t, struct attrs *r)
{
	pthread_attr_t a;
	void *addr;
	cpu_set_t c1, c2;
	volatile char here;

	memset(r, 0, sizeof *r);
	if (pthread_getattr_np(t, &a) != 0) {
		r->detach = -1;
		return;
	}
	pthread_attr_getstacksize(&a, &r->stacksize);
	pthread_attr_getguardsize(&a, &r->guard);
	pthread_attr_getdetachstate(&a, &r->detach);
	pthread_attr_getinheritsched(&a, &r->inherit);
	pthread_attr_getstack(&a, &addr, &r->stacksize);
	r->on_stack = (char *)&here >= (char *)addr &&
	              (char *)&here < (char *)addr + r->stacksize;
	CPU_ZERO(&c1);
	CPU_ZERO(&c2);
	pthread_attr_getaffinity_np(&a, sizeof c1, &c1);
	pthread_getaffinity_np(t, sizeof c2, &c2);
	r->aff_same = CPU_EQUAL(&c1, &c2);
	pthread_attr_destroy(&a);
}

static atomic_int attrs_read;

static void *self_attrs(void *arg)
{
	read_attrs(pthread_self(), arg);
	atomic_store(&attrs_read, 1);
	return NULL;
}

static void show(const char *what, pthread_attr_t *a)
{
	struct attrs r;
	pthread_t t;
	int e;

	atomic_store(&attrs_read, 0);
	e = pthread_create(&t, a, self_attrs, &r);

	if (e) {
		printf("%s: create %s\n", what, ename(e));
		return;
	}
	{
		pthread_attr_t dflt;
		int d;

		if (!a) {
			pthread_getattr_default_np(&dflt);
			a = &dflt;
		}
		pthread_attr_getdetachstate(a, &d);
		if (a == &dflt)
			pthread_attr_destroy(&dflt);
		if (d == PTHREAD_CREATE_DETACHED) {
			/* cannot join: wait for it to have looked */
			while (!atomic_load(&attrs_read))
				sleep_ms(1);
			sleep_ms(10);
		} else
			pthread_join(t, NULL);
	}
	printf("%s: stacksize %zu guard %zu detached %d explicit %d cpus-as-getaffinity %d "
	       "frame-inside %d\n", what, r.stacksize, r.guard,
	       r.detach == PTHREAD_CREATE_DETACHED, r.inherit == PTHREAD_EXPLICIT_SCHED,
	       r.aff_same, r.on_stack);
}

static void getattr(void)
{
	pthread_attr_t a;

	show("default", NULL);
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 300007);
	pthread_attr_setguardsize(&a, 5000);
	show("300007/5000", &a);
	pthread_attr_setstacksize(&a, 1 << 20);
	pthread_attr_setguardsize(&a, 0);
	show("1MiB/0", &a);
	pthread_attr_setguardsize(&a, 3 * 4096);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	show("1MiB/12288 detached", &a);
	pthread_attr_destroy(&a);
}

static void default_attr(void)
{
	pthread_attr_t a, old;
	size_t s, g;
	int e;

	pthread_getattr_default_np(&old);
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 1 << 20);
	pthread_attr_setguardsize(&a, 2 * 4096);
	e = pthread_setattr_default_np(&a);
	pthread_attr_destroy(&a);
	check(e == 0, "setattr_default_np", "%s", ename(e));
	pthread_getattr_default_np(&a);
	pthread_attr_getstacksize(&a, &s);
	pthread_attr_getguardsize(&a, &g);
	pthread_attr_destroy(&a);
	check(s == 1 << 20 && g == 8192, "getattr_default_np round trip", "%zu %zu", s, g);
	show("after setattr_default_np", NULL);
	pthread_attr_init(&a);
	show("new attr after setattr_default_np", &a);
	pthread_attr_destroy(&a);
	/* A default cannot carry a stack, nor a stack size below the
	 * minimum. */
	pthread_attr_init(&a);
	{
		static char stk[65536];
		pthread_attr_setstack(&a, stk, sizeof stk);
	}
	e = pthread_setattr_default_np(&a);
	printf("default with a stack: %s\n", ename(e));
	pthread_attr_destroy(&a);
	/* tst-default-attr: a detached default, and a CPU set. */
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	e = pthread_setattr_default_np(&a);
	check(e == 0, "detached default", "%s", ename(e));
	show("thread of a detached default", NULL);
	{
		pthread_t t;
		atomic_store(&attrs_read, 0);
		struct attrs r;
		pthread_create(&t, NULL, self_attrs, &r);
		e = pthread_join(t, NULL);
		while (!atomic_load(&attrs_read))
			sleep_ms(1);
		sleep_ms(10);
		printf("join a thread of a detached default: %s\n", ename(e));
	}
	pthread_attr_destroy(&a);
	pthread_attr_init(&a);
	{
		cpu_set_t cs;
		CPU_ZERO(&cs);
		CPU_SET(0, &cs);
		pthread_attr_setaffinity_np(&a, sizeof cs, &cs);
	}
	e = pthread_setattr_default_np(&a);
	printf("default with CPU 0: %s\n", ename(e));
	pthread_attr_destroy(&a);
	pthread_getattr_default_np(&a);
	{
		cpu_set_t cs;
		CPU_ZERO(&cs);
		pthread_attr_getaffinity_np(&a, sizeof cs, &cs);
		printf("default reports CPU 0: %d, CPUs %d\n", CPU_ISSET(0, &cs), CPU_COUNT(&cs));
	}
	pthread_attr_destroy(&a);
	e = pthread_setattr_default_np(&old);
	check(e == 0, "default restored", "%s", ename(e));
	pthread_attr_destroy(&old);
}

/* ---- signal masks -------------------------------------------------------- */
static void mask_string(char *buf)
{
	sigset_t m;
	int i, n = 0;

	pthread_sigmask(SIG_SETMASK, NULL, &m);
	for (i = 1; i < 65; i++)
		if (i != 32 && i != 33 && sigismember(&m, i) == 1)
			n += sprintf(buf + n, "%d,", i);
	buf[n] = 0;
}

static void *mask_thread(void *arg)
{
	mask_string(arg);
	return NULL;
}

static void attr_sigmask(void)
{
	pthread_attr_t a;
	sigset_t set, saved;
	char buf[256];
	pthread_t t;
	int e;

	pthread_sigmask(SIG_SETMASK, NULL, &saved);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	pthread_create(&t, NULL, mask_thread, buf);
	pthread_join(t, NULL);
	printf("sigmask inherited: %s\n", buf);
	pthread_attr_init(&a);
	e = pthread_attr_getsigmask_np(&a, &set);
	check(e == PTHREAD_ATTR_NO_SIGMASK_NP, "attr without sigmask", "%d", e);
	pthread_create(&t, &a, mask_thread, buf);
	pthread_join(t, NULL);
	printf("sigmask with attr, none set: %s\n", buf);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN + 3);
	pthread_attr_setsigmask_np(&a, &set);
	pthread_create(&t, &a, mask_thread, buf);
	pthread_join(t, NULL);
	printf("sigmask from attr: %s\n", buf);
	mask_string(buf);
	printf("creator's mask unchanged: %s\n", buf);
	sigfillset(&set);
	pthread_attr_setsigmask_np(&a, &set);
	pthread_create(&t, &a, mask_thread, buf);
	pthread_join(t, NULL);
	printf("sigmask full from attr: %s\n", buf);
	pthread_attr_setsigmask_np(&a, NULL);
	pthread_create(&t, &a, mask_thread, buf);
	pthread_join(t, NULL);
	printf("sigmask cleared in attr: %s\n", buf);
	pthread_attr_destroy(&a);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

/* ---- CPU sets -------------------------------------------------------------- */
static void *nothing(void *arg)
{
	return arg;
}

static void affinity(void)
{
	int max_cpu = (int)sysconf(_SC_NPROCESSORS_CONF) + 1;
	size_t size = CPU_ALLOC_SIZE(max_cpu);
	cpu_set_t *set = CPU_ALLOC(max_cpu);
	pthread_attr_t a;
	pthread_t t;
	int e, r;

	CPU_ZERO_S(size, set);
	CPU_SET_S(max_cpu, size, set);
	errno = 0;
	r = sched_setaffinity(0, size, set);
	printf("sched_setaffinity invalid cpu: %d %s\n", r, ename(errno));
	pthread_attr_init(&a);
	pthread_attr_setaffinity_np(&a, size, set);
	e = pthread_create(&t, &a, nothing, NULL);
	printf("create with invalid cpu: %s\n", ename(e));
	if (e == 0)
		pthread_join(t, NULL);
	sched_getaffinity(0, size, set);
	pthread_attr_setaffinity_np(&a, size, set);
	e = pthread_create(&t, &a, nothing, NULL);
	printf("create with the process's cpus: %s\n", ename(e));
	if (e == 0)
		pthread_join(t, NULL);
	pthread_attr_destroy(&a);
	CPU_FREE(set);
}

/* ---- detached threads, joins of ended threads ------------------------------- */
static atomic_int finished;

static void *count(void *arg)
{
	atomic_fetch_add(&finished, 1);
	return arg;
}

static void detached(void)
{
	pthread_attr_t a;
	pthread_t t, t2;
	int e, i, fails = 0;
	double end;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	/* tst-create-detached / tst-detach1: joining one is EINVAL, whether
	 * it is still running or gone. */
	pthread_create(&t, &a, count, NULL);
	e = pthread_join(t, NULL);
	check(e == EINVAL, "join detached", "%s", ename(e));
	end = now_ms() + 5000;
	while (atomic_load(&finished) < 1 && now_ms() < end)
		sleep_ms(1);
	sleep_ms(20);
	e = pthread_join(t, NULL);
	check(e == EINVAL, "join detached after it ended", "%s", ename(e));
	/* Many detached creates in a row. */
	atomic_store(&finished, 0);
	for (i = 0; i < 2000; i++)
		if (pthread_create(&t, &a, count, NULL) != 0)
			fails++;
	while (atomic_load(&finished) < 2000 - fails && now_ms() < end + 10000)
		sleep_ms(1);
	check(fails == 0 && atomic_load(&finished) == 2000, "2000 detached threads",
	      "%d failed creates, %d ran", fails, atomic_load(&finished));
	pthread_attr_destroy(&a);

	/* A joined thread's handle: ESRCH for join, tryjoin and detach. */
	pthread_create(&t, NULL, nothing, (void *)7);
	e = pthread_join(t, NULL);
	check(e == 0, "first join", "%s", ename(e));
	printf("second join: %s\n", ename(pthread_join(t, NULL)));
	printf("tryjoin after join: %s\n", ename(pthread_tryjoin_np(t, NULL)));
	printf("detach after join: %s\n", ename(pthread_detach(t)));
	/* A thread detached after it ended. */
	atomic_store(&finished, 0);
	pthread_create(&t2, NULL, count, NULL);
	while (atomic_load(&finished) < 1)
		sleep_ms(1);
	sleep_ms(20);
	printf("detach of an ended thread: %s\n", ename(pthread_detach(t2)));
	printf("join after that detach: %s\n", ename(pthread_join(t2, NULL)));
}

/* ---- pthread_exit from a cleanup handler ---------------------------------- */
static void exit_again(void *arg)
{
	pthread_exit(arg);
}

/* (pthread_exit from a handler that pthread_exit or a cancellation is
 * running hangs glibc 2.36: not tested.) */
static void *exits_in_cleanup(void *arg)
{
	pthread_cleanup_push(exit_again, arg);
	pthread_cleanup_pop(1);            /* runs it, which exits */
	return (void *)2;
}

static void cleanup_exit(void)
{
	pthread_t t;
	void *r = NULL;
	int e;

	pthread_create(&t, NULL, exits_in_cleanup, (void *)42);
	e = pthread_join(t, &r);
	printf("pop(1) handler calls pthread_exit: join %s value %d\n", ename(e), (int)(intptr_t)r);
}

/* ---- names ----------------------------------------------------------------- */
static void *sleeper(void *arg)
{
	sleep_ms(100);
	return arg;
}

static void names(void)
{
	pthread_t t;
	char buf[32];

	pthread_create(&t, NULL, sleeper, NULL);
	printf("setname 16 chars: %s\n", ename(pthread_setname_np(t, "0123456789abcdef")));
	printf("setname 15 chars: %s\n", ename(pthread_setname_np(t, "0123456789abcde")));
	printf("getname into 15 bytes: %s\n", ename(pthread_getname_np(t, buf, 15)));
	printf("getname into 16 bytes: %s", ename(pthread_getname_np(t, buf, 16)));
	printf(" %s\n", buf);
	pthread_join(t, NULL);
}

/* ---- a thread that has ended but is not joined (issue 11 item 4) ----------
 * glibc: pthread_kill (signal 0 or a real one) and pthread_cancel say 0;
 * the calls that check the kernel tid, which the kernel cleared at exit,
 * ESRCH (get/setschedparam, setschedprio, getcpuclockid, sigqueue); the
 * names, read and written through /proc/self/task/<tid>/comm, ENOENT;
 * the join then gives the thread's value, and a second join ESRCH. */
static atomic_int usr1_seen;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&usr1_seen, 1);
}

static void *ends_now(void *arg)
{
	return arg;
}

static void ended_unjoined(void)
{
	struct sched_param sp = { 0 };
	union sigval sv = { 0 };
	struct sigaction sa, old;
	pthread_t t;
	clockid_t clk;
	char name[32];
	void *ret = NULL;
	int pol, e;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, &old);
	pthread_create(&t, NULL, ends_now, (void *)42);
	/* Until it has ended: natively the kernel clears the tid a moment
	 * after the thread function returns (then getschedparam is ESRCH);
	 * a loaded machine may take long.  Under gshim a getschedparam that
	 * never says ESRCH waits the 5 s and prints 0, unlike native. */
	for (double end = now_ms() + 5000; now_ms() < end;) {
		struct sched_param p;

		if (pthread_getschedparam(t, &pol, &p) == ESRCH)
			break;
		sleep_ms(1);
	}
	sleep_ms(10);
	printf("ended, unjoined: pthread_kill 0: %s\n", ename(pthread_kill(t, 0)));
	printf("ended, unjoined: pthread_kill SIGUSR1: %s\n", ename(pthread_kill(t, SIGUSR1)));
	printf("ended, unjoined: pthread_sigqueue: %s\n", ename(pthread_sigqueue(t, SIGUSR1, sv)));
	printf("ended, unjoined: pthread_cancel: %s\n", ename(pthread_cancel(t)));
	printf("ended, unjoined: pthread_getschedparam: %s\n",
	       ename(pthread_getschedparam(t, &pol, &sp)));
	sp.sched_priority = 0;
	printf("ended, unjoined: pthread_setschedparam: %s\n",
	       ename(pthread_setschedparam(t, SCHED_OTHER, &sp)));
	printf("ended, unjoined: pthread_setschedprio: %s\n", ename(pthread_setschedprio(t, 0)));
	printf("ended, unjoined: pthread_getcpuclockid: %s\n", ename(pthread_getcpuclockid(t, &clk)));
	printf("ended, unjoined: pthread_getname_np: %s\n", ename(pthread_getname_np(t, name, sizeof name)));
	printf("ended, unjoined: pthread_setname_np: %s\n", ename(pthread_setname_np(t, "x")));
	e = pthread_join(t, &ret);
	printf("ended, unjoined: join: %s, value %ld (the cancel did not change it)\n", ename(e),
	       (long)ret);
	printf("ended, joined: second join: %s\n", ename(pthread_join(t, NULL)));
	sleep_ms(10);
	printf("ended: SIGUSR1 handled %d times (no thread to run it)\n", atomic_load(&usr1_seen));
	sigaction(SIGUSR1, &old, NULL);
}

int main(void)
{
	watchdog(30);
	stage("getattr");
	getattr();
	stage("default attr");
	default_attr();
	stage("sigmask");
	attr_sigmask();
	stage("affinity");
	affinity();
	stage("detached");
	detached();
	stage("cleanup exit");
	cleanup_exit();
	stage("names");
	names();
	stage("ended, unjoined");
	ended_unjoined();
	return failures ? 1 : 0;
}
