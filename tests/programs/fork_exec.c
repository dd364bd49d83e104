/* fork from a worker thread (not main) while other threads are alive and
 * blocked:
 *  - the child execs /bin/echo; the parent's waitpid sees exit 0;
 *  - the child execs /bin/sh -c 'exit 3'; waitpid sees exit status 3;
 *  - the child does not exec: it creates 2 threads that wake each other
 *    through a condvar, joins them and _exit(0)s;
 *  - the child creates a thread and that thread execs /bin/echo.
 * Meanwhile the parent's other threads (blocked on a semaphore and in a
 * condvar ping-pong) carry on afterwards as if nothing happened. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "prog.h"

#define SLEEPERS 4

static sem_t wake;
static void *sleeper(void *arg)
{
	sem_wait(&wake);
	return arg;
}

/* ---- the parent's ping-pong pair, running while the worker forks ---- */
static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc = PTHREAD_COND_INITIALIZER;
static long turn;
static int stop_pingpong;

static void *pingpong(void *arg)
{
	long me = (long)(intptr_t)arg, n = 0;
	pthread_mutex_lock(&pm);
	while (!stop_pingpong) {
		while (turn % 2 != me && !stop_pingpong)
			pthread_cond_wait(&pc, &pm);
		turn++;
		n++;
		pthread_cond_broadcast(&pc);
	}
	pthread_mutex_unlock(&pm);
	return (void *)(intptr_t)(n > 0);
}

/* ---- in the child: two threads that wake each other ---------------- */
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cc = PTHREAD_COND_INITIALIZER;
static int cturn;

static void *child_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	long sum = 0;
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&cm);
		while (cturn % 2 != me)
			pthread_cond_wait(&cc, &cm);
		cturn++;
		sum += i;
		pthread_cond_broadcast(&cc);
		pthread_mutex_unlock(&cm);
	}
	return (void *)(intptr_t)sum;
}

static void *exec_echo_thread(void *arg)
{
	char *argv[] = {"echo", (char *)arg, NULL};
	execv("/bin/echo", argv);
	_exit(126);
}

static void check_child(const char *what, pid_t pid, int want_code)
{
	int st = 0;
	pid_t r = waitpid(pid, &st, 0);
	int ok = r == pid && WIFEXITED(st) && WEXITSTATUS(st) == want_code;
	printf("%-52s %s\n", what, ok ? "ok" : "FAILED");
	if (!ok) {
		fprintf(stderr, "%s: waitpid %d, status 0x%x\n", what, (int)r, st);
		failures++;
	}
	fflush(stdout);
}

static void *worker(void *arg)
{
	pid_t pid;
	(void)arg;

	/* 1. exec /bin/echo */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char *argv[] = {"echo", "child 1: exec'd /bin/echo", NULL};
		execv("/bin/echo", argv);
		_exit(127);
	}
	check_child("parent: child 1 (echo) exited 0", pid, 0);

	/* 2. exec /bin/sh -c 'exit 3' */
	pid = fork();
	if (pid == 0) {
		char *argv[] = {"sh", "-c", "exit 3", NULL};
		execv("/bin/sh", argv);
		_exit(127);
	}
	check_child("parent: child 2 (sh -c 'exit 3') exited 3", pid, 3);

	/* 3. threads in the child, no exec */
	pid = fork();
	if (pid == 0) {
		pthread_t t[2];
		void *r[2];
		for (int i = 0; i < 2; i++)
			if (pthread_create(&t[i], NULL, child_thread, (void *)(intptr_t)i))
				_exit(10);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], &r[i]);
		if ((intptr_t)r[0] != 4950 || (intptr_t)r[1] != 4950 || cturn != 200)
			_exit(11);
		static const char msg[] = "child 3: 2 threads joined\n";
		if (write(1, msg, sizeof msg - 1) < 0)
			_exit(12);
		_exit(0);
	}
	check_child("parent: child 3 (2 threads, _exit(0)) exited 0", pid, 0);

	/* 4. a thread of the child execs */
	pid = fork();
	if (pid == 0) {
		pthread_t t;
		pthread_create(&t, NULL, exec_echo_thread, "child 4: a thread exec'd /bin/echo");
		pthread_join(t, NULL); /* never returns: the exec replaces us */
		_exit(13);
	}
	check_child("parent: child 4 (exec from a thread) exited 0", pid, 0);
	return NULL;
}

int main(void)
{
	pthread_t s[SLEEPERS], pp[2], w;
	void *ok[2];

	sem_init(&wake, 0, 0);
	for (intptr_t i = 0; i < SLEEPERS; i++)
		pthread_create(&s[i], NULL, sleeper, (void *)i);
	for (intptr_t i = 0; i < 2; i++)
		pthread_create(&pp[i], NULL, pingpong, (void *)i);
	sched_yield();

	pthread_create(&w, NULL, worker, NULL);
	pthread_join(w, NULL);

	/* the parent's threads are all still there */
	pthread_mutex_lock(&pm);
	stop_pingpong = 1;
	pthread_cond_broadcast(&pc);
	pthread_mutex_unlock(&pm);
	for (int i = 0; i < 2; i++)
		pthread_join(pp[i], &ok[i]);
	int back = 0;
	for (int i = 0; i < SLEEPERS; i++)
		sem_post(&wake);
	for (int i = 0; i < SLEEPERS; i++) {
		void *r;
		pthread_join(s[i], &r);
		back += (intptr_t)r == i;
	}
	printf("parent: %d sleepers and the ping-pong pair carried on %s\n", back,
	       back == SLEEPERS && ok[0] && ok[1] ? "ok" : "FAILED");
	failures += back != SLEEPERS || !ok[0] || !ok[1];
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
