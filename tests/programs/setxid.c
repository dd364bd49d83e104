/* setuid & co. in a multi-threaded process: every kernel thread changes.
 *
 * Eight threads wait in different ways (nanosleep loop, condvar, read on
 * a pipe, computing, sem_wait) while the process changes credentials,
 * from a thread and from main, through setresuid, setresgid, setuid,
 * seteuid, setgroups and initgroups.  After each call every task in
 * /proc/self/task must show the new ids (natively one task per thread;
 * under gshim the M's and the runtime's helpers), and the call must not
 * hang (watchdog).  Needs root (uid 0, as this machine's tests run);
 * otherwise it prints a skip line, natively and under gshim alike.
 */
#include "prog.h"
#include <dirent.h>
#include <grp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/types.h>

#define NOBODY 65534

static _Atomic int stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static sem_t sem;
static int pfd[2];
static volatile unsigned long sink;

static void *sleeper(void *a)
{
	while (!atomic_load(&stop))
		sleep_ms(1);
	return a;
}

static void *cond_waiter(void *a)
{
	pthread_mutex_lock(&mu);
	while (!atomic_load(&stop))
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return a;
}

static void *reader(void *a)
{
	char c;

	while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
		;
	return a;
}

static void *computer(void *a)
{
	while (!atomic_load(&stop))
		for (int i = 0; i < 100000; i++)
			sink += (unsigned long)i * i;
	return a;
}

static void *sem_waiter(void *a)
{
	while (sem_wait(&sem) < 0 && errno == EINTR)
		;
	return a;
}

/* Does every task's /proc line `key` start with `want` (after the tab)?
 * Returns the number of tasks that do not; -1 if /proc cannot be read. */
static int tasks_differ(const char *key, const char *want)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int bad = 0, seen = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[300], line[512];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;   /* exited meanwhile */
		while (fgets(line, sizeof line, f))
			if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') {
				char *v = line + strlen(key) + 1;

				while (*v == '\t' || *v == ' ')
					v++;
				v[strcspn(v, "\n")] = 0;
				/* Groups: has a trailing blank */
				while (*v && v[strlen(v) - 1] == ' ')
					v[strlen(v) - 1] = 0;
				seen++;
				if (strcmp(v, want)) {
					bad++;
					note("task %s %s: '%s', want '%s'", e->d_name, key, v, want);
				}
			}
		fclose(f);
	}
	closedir(d);
	return seen ? bad : -1;
}

static void expect(const char *what, int r, const char *key, const char *want)
{
	int bad = tasks_differ(key, want);

	check(r == 0 && bad == 0, what, "call returned %d (%s), %d task(s) differ", r,
	      r ? strerror(errno) : "", bad);
}

struct call { int which; int r; int err; };

static void do_call(struct call *c)
{
	gid_t g3[3] = { 1, 2, 3 };

	switch (c->which) {
	case 0: c->r = setresuid(NOBODY, NOBODY, 0); break;
	case 1: c->r = setresuid(0, 0, 0); break;
	case 2: c->r = setresgid(NOBODY, NOBODY, 0); break;
	case 3: c->r = setresgid(0, 0, 0); break;
	case 4: c->r = setgroups(3, g3); break;
	case 5: c->r = setgroups(0, NULL); break;
	case 6: c->r = seteuid(NOBODY); break;
	case 7: c->r = seteuid(0); break;
	}
	c->err = errno;
}

static void *caller(void *a)
{
	do_call(a);
	return NULL;
}

/* Make call `which` from a new thread (from_thread) or from main. */
static int call(int which, int from_thread)
{
	struct call c = { which, -1, 0 };

	if (from_thread) {
		pthread_t t;

		pthread_create(&t, NULL, caller, &c);
		pthread_join(t, NULL);
	} else {
		do_call(&c);
	}
	errno = c.err;
	return c.r;
}

int main(void)
{
	pthread_t t[8];
	void *(*fn[8])(void *) = { sleeper, sleeper, cond_waiter, reader, computer,
	                           sem_waiter, cond_waiter, sleeper };

	watchdog(20);
	if (geteuid() != 0) {
		printf("skipped: not root\n");
		return 0;
	}
	if (pipe(pfd))
		abort();
	sem_init(&sem, 0, 0);
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, fn[i], NULL);
	sleep_ms(20);

	for (int from = 1; from >= 0; from--) {
		char what[128];
		const char *who = from ? "from a thread" : "from main";

		stage(who);
		snprintf(what, sizeof what, "setresuid(nobody, nobody, 0) %s: every task", who);
		expect(what, call(0, from), "Uid", "65534\t65534\t0\t65534");
		snprintf(what, sizeof what, "setresuid(0, 0, 0) back %s: every task", who);
		expect(what, call(1, from), "Uid", "0\t0\t0\t0");
		snprintf(what, sizeof what, "setresgid(nobody, nobody, 0) %s: every task", who);
		expect(what, call(2, from), "Gid", "65534\t65534\t0\t65534");
		snprintf(what, sizeof what, "setresgid(0, 0, 0) back %s: every task", who);
		expect(what, call(3, from), "Gid", "0\t0\t0\t0");
		snprintf(what, sizeof what, "setgroups({1, 2, 3}) %s: every task", who);
		expect(what, call(4, from), "Groups", "1 2 3");
		snprintf(what, sizeof what, "setgroups(0) %s: every task", who);
		expect(what, call(5, from), "Groups", "");
		snprintf(what, sizeof what, "seteuid(nobody) %s: every task", who);
		expect(what, call(6, from), "Uid", "0\t65534\t0\t65534");
		snprintf(what, sizeof what, "seteuid(0) %s: every task", who);
		expect(what, call(7, from), "Uid", "0\t0\t0\t0");
	}

	/* Many calls while the threads keep moving between kernel threads. */
	stage("200 setresuid round trips");
	int bad = 0;
	for (int i = 0; i < 100; i++) {
		bad += call(0, i & 1) != 0;
		bad += call(1, !(i & 1)) != 0;
	}
	expect("200 setresuid calls alternating threads and main: all succeed, every task back at 0",
	       bad, "Uid", "0\t0\t0\t0");

	/* An error is the same everywhere: unprivileged, setgroups fails. */
	stage("errors");
	call(0, 1);
	errno = 0;
	int r = call(4, 0);
	check(r == -1 && errno == EPERM, "setgroups as nobody: -1 EPERM", "%d %s", r,
	      strerror(errno));
	expect("setresuid(0, 0, 0) with saved uid 0: back to root", call(1, 1), "Uid",
	       "0\t0\t0\t0");

	stage("initgroups");
	r = initgroups("root", 0);
	check(r == 0 && tasks_differ("Groups", "0") == 0,
	      "initgroups(root, 0): every task", "%d", r);
	setgroups(0, NULL);

	stage("joining");
	atomic_store(&stop, 1);
	pthread_mutex_lock(&mu);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	if (write(pfd[1], "x", 1) != 1)
		abort();
	sem_post(&sem);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
