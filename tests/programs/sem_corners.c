/* sem_corners: semaphore corners from glibc's tst-sem* and Open POSIX's
 * sem_* assertions:
 *   - sem_timedwait / sem_clockwait with a bad tv_nsec or clock, with the
 *     semaphore available and not (glibc 2.36 checks them first: EINVAL
 *     either way, the value untouched); a deadline already past
 *   - sem_post at SEM_VALUE_MAX: EOVERFLOW; sem_getvalue
 *   - named semaphores: sem_open/sem_close/sem_unlink, posted and waited
 *     for by threads and by a forked child
 *   - an unnamed pshared semaphore in shared memory: parent and child
 *     post and wait for each other (ping-pong), a waiter blocked before
 *     the other side posts
 *   - a private semaphore used in a forked child (threads there too)
 */
#include "prog.h"
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>

static int rc(int r)
{
	return r == 0 ? 0 : -errno;
}

static void bad_times(void)
{
	sem_t s;
	struct timespec ts;
	int v, r;

	stage("bad timespecs");
	sem_init(&s, 0, 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	ts.tv_nsec = 1000000000;
	r = rc(sem_timedwait(&s, &ts));
	sem_getvalue(&s, &v);
	printf("timedwait tv_nsec 1e9, available: %s, value %d\n", errname(r), v);
	ts.tv_nsec = -1;
	r = rc(sem_timedwait(&s, &ts));
	sem_getvalue(&s, &v);
	printf("timedwait tv_nsec -1, available: %s, value %d\n", errname(r), v);
	ts.tv_nsec = 0;
	r = rc(sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &ts));
	sem_getvalue(&s, &v);
	printf("clockwait CPU clock, available: %s, value %d\n", errname(r), v);
	r = rc(sem_clockwait(&s, CLOCK_MONOTONIC, &ts));
	sem_getvalue(&s, &v);
	printf("clockwait MONOTONIC, available: %s, value %d\n", errname(r), v);
	/* now 0 */
	ts.tv_nsec = 1000000000;
	r = rc(sem_timedwait(&s, &ts));
	printf("timedwait tv_nsec 1e9, unavailable: %s\n", errname(r));
	ts.tv_nsec = -5;
	r = rc(sem_clockwait(&s, CLOCK_MONOTONIC, &ts));
	printf("clockwait tv_nsec -5, unavailable: %s\n", errname(r));
	ts.tv_nsec = 0;
	r = rc(sem_clockwait(&s, 12345, &ts));
	printf("clockwait clock 12345, unavailable: %s\n", errname(r));
	ts.tv_sec = 0;
	r = rc(sem_timedwait(&s, &ts));
	printf("timedwait past deadline: %s\n", errname(r));
	r = rc(sem_clockwait(&s, CLOCK_MONOTONIC, &ts));
	printf("clockwait MONOTONIC past deadline: %s\n", errname(r));
	r = rc(sem_trywait(&s));
	printf("trywait at 0: %s\n", errname(r));
	sem_destroy(&s);
}

static void overflow(void)
{
	sem_t s;
	int v, r;

	stage("overflow");
	r = rc(sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1u));
	printf("init above SEM_VALUE_MAX: %s\n", errname(r));
	sem_init(&s, 0, SEM_VALUE_MAX - 1);
	r = rc(sem_post(&s));
	sem_getvalue(&s, &v);
	printf("post to SEM_VALUE_MAX: %s, value is max %d\n", errname(r), v == SEM_VALUE_MAX);
	r = rc(sem_post(&s));
	sem_getvalue(&s, &v);
	printf("post at SEM_VALUE_MAX: %s, value is max %d\n", errname(r), v == SEM_VALUE_MAX);
	sem_destroy(&s);
	sem_init(&s, 1, SEM_VALUE_MAX);
	r = rc(sem_post(&s));
	printf("pshared post at SEM_VALUE_MAX: %s\n", errname(r));
	sem_destroy(&s);
}

/* ---- named ---- */

static sem_t *named;

static void *named_poster(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++)
		sem_post(named);
	return NULL;
}

static void named_sems(void)
{
	char name[64];
	pthread_t th[4];
	sem_t *again;
	pid_t pid;
	int st, v, got = 0;

	stage("named semaphores");
	snprintf(name, sizeof name, "/gshim-sem-corners-%d", (int)getpid());
	sem_unlink(name);
	named = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
	check(named != SEM_FAILED, "sem_open O_CREAT", "%s", errname(-errno));
	again = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
	printf("sem_open O_EXCL again: %s\n", again == SEM_FAILED ? errname(-errno) : "opened");
	again = sem_open(name, 0);
	check(again == named, "sem_open again maps the same", "%p vs %p", (void *)again, (void *)named);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, named_poster, NULL);
	for (int i = 0; i < 400; i++)
		got += sem_wait(named) == 0;
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	sem_getvalue(named, &v);
	check(got == 400 && v == 0, "named: 4 threads post 400, one waits", "got %d, value %d", got, v);

	pid = fork();
	if (pid == 0) {
		sem_t *c = sem_open(name, 0);

		if (c == SEM_FAILED)
			_exit(2);
		sleep_ms(20);                 /* the parent waits first */
		for (int i = 0; i < 10; i++)
			sem_post(c);
		sem_close(c);
		_exit(0);
	}
	got = 0;
	for (int i = 0; i < 10; i++)
		got += sem_wait(named) == 0;
	waitpid(pid, &st, 0);
	check(got == 10 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "named: a forked child opens it and posts", "got %d, status %#x", got, st);
	check(sem_close(again) == 0, "sem_close", "%s", errname(-errno));
	check(sem_unlink(name) == 0, "sem_unlink", "%s", errname(-errno));
	printf("sem_unlink again: %s\n", errname(rc(sem_unlink(name))));
	printf("sem_open after unlink: %s\n", sem_open(name, 0) == SEM_FAILED ? errname(-errno) : "opened");
	sem_close(named);
}

/* ---- pshared in shared memory across fork ---- */

static void shared_fork(void)
{
	sem_t *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid;
	int st, ok = 1;
	struct timespec ts;

	stage("pshared semaphores across fork");
	sem_init(&s[0], 1, 0);   /* parent -> child */
	sem_init(&s[1], 1, 0);   /* child -> parent */
	pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 200; i++) {
			if (sem_wait(&s[0]) != 0)
				_exit(2);
			sem_post(&s[1]);
		}
		/* the parent blocks first this time */
		sleep_ms(30);
		sem_post(&s[1]);
		_exit(0);
	}
	for (int i = 0; i < 200; i++) {
		sem_post(&s[0]);
		if (sem_wait(&s[1]) != 0)
			ok = 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	if (sem_timedwait(&s[1], &ts) != 0)
		ok = 0;
	waitpid(pid, &st, 0);
	check(ok && WIFEXITED(st) && WEXITSTATUS(st) == 0, "pshared: 200 ping-pongs with a child",
	      "ok %d status %#x", ok, st);
	sem_destroy(&s[0]);
	sem_destroy(&s[1]);
	munmap(s, 4096);
}

/* ---- private semaphore in a forked child ---- */

static sem_t priv;

static void *priv_poster(void *arg)
{
	(void)arg;
	sleep_ms(10);
	for (int i = 0; i < 50; i++)
		sem_post(&priv);
	return NULL;
}

static void private_child(void)
{
	pid_t pid;
	int st;

	stage("private semaphore in a forked child");
	sem_init(&priv, 0, 3);
	pid = fork();
	if (pid == 0) {
		pthread_t th;
		int got = 0, v;

		for (int i = 0; i < 3; i++)
			got += sem_trywait(&priv) == 0;
		pthread_create(&th, NULL, priv_poster, NULL);
		for (int i = 0; i < 50; i++)
			got += sem_wait(&priv) == 0;
		pthread_join(th, NULL);
		sem_getvalue(&priv, &v);
		_exit(got == 53 && v == 0 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "private semaphore in a forked child",
	      "status %#x", st);
	int v;
	sem_getvalue(&priv, &v);
	check(v == 3, "parent's copy untouched", "value %d", v);
	sem_destroy(&priv);
}

/* ---- a handler run in the waiting thread ---- */

static sem_t isem;
static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static _Atomic int intr_done;

static void *intr_waiter(void *arg)
{
	struct timespec ts;
	int r;

	if (arg) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		r = rc(sem_timedwait(&isem, &ts));
	} else {
		r = rc(sem_wait(&isem));
	}
	intr_done = 1;
	return (void *)(long)r;
}

static void interrupted(void)
{
	struct sigaction sa;
	pthread_t th;
	void *res;

	stage("sem_wait interrupted by a handler");
	sem_init(&isem, 0, 0);
	for (int restart = 0; restart < 2; restart++)
	for (long timed = 0; timed < 2; timed++) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_usr1;
		/* with SA_RESTART the kernel restarts glibc's futex wait */
		sa.sa_flags = restart ? SA_RESTART : 0;
		sigaction(SIGUSR1, &sa, NULL);
		handled = 0;
		intr_done = 0;
		pthread_create(&th, NULL, intr_waiter, (void *)timed);
		sleep_ms(30);
		if (restart && !timed) {
			/* restarted: the post ends it */
			pthread_kill(th, SIGUSR1);
			sleep_ms(30);
			sem_post(&isem);
		} else {
			/* again until it returns, in case a signal came
			 * before the thread was in the wait */
			for (int i = 0; i < 200 && !intr_done; i++) {
				pthread_kill(th, SIGUSR1);
				sleep_ms(50);
			}
		}
		pthread_join(th, &res);
		printf("%s, handler %s SA_RESTART: %s, handler ran %s\n",
		       timed ? "sem_timedwait" : "sem_wait", restart ? "with" : "without",
		       errname((long)res), handled ? "yes" : "no");
	}
	sem_destroy(&isem);
}

int main(void)
{
	watchdog(20);
	bad_times();
	overflow();
	named_sems();
	shared_fork();
	private_child();
	interrupted();
	printf("failures: %d\n", failures);
	return failures != 0;
}
