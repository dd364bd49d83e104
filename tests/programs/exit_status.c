/* How a process ends when main calls pthread_exit (glibc's tst-exit1..3):
 * the others keep running; exit() from one of them ends the process with
 * its status, after that thread's own TLS destructors
 * (__cxa_thread_atexit_impl, what C++ thread_local uses) and the atexit
 * handlers; when the last thread returns, the status is 0.  main's own
 * TLS destructors run at its pthread_exit.  Each case runs in a child;
 * the parent prints its output order and status. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sys/wait.h>
#include "prog.h"

extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
extern void *__dso_handle;

static void say(void *what)
{
	printf("%s\n", (const char *)what);
	fflush(stdout);
}

static void at_exit(void)
{
	say("atexit handler");
}

static void *sleeps_forever(void *arg)
{
	(void)arg;
	__cxa_thread_atexit_impl(say, "sleeper's TLS destructor (must not run)", &__dso_handle);
	for (;;)
		sleep_ms(1000);
	return NULL;
}

static void *exits(void *arg)
{
	__cxa_thread_atexit_impl(say, "exiting thread's TLS destructor", &__dso_handle);
	sleep_ms(50);
	say("worker calls exit");
	exit((int)(intptr_t)arg);
}

static void *returns(void *arg)
{
	__cxa_thread_atexit_impl(say, "returning thread's TLS destructor", &__dso_handle);
	sleep_ms(50 * (int)(intptr_t)arg);
	say(arg == (void *)1 ? "first worker returns" : "second worker returns");
	return NULL;
}

static pthread_t creator_of;

static void *creates_then_returns(void *arg)
{
	pthread_t t;

	(void)arg;
	/* tst-exit3: a thread that creates another and ends. */
	pthread_create(&t, NULL, exits, (void *)9);
	return NULL;
}

static void run(const char *name, void (*body)(void))
{
	pid_t pid;
	int st;

	printf("-- %s\n", name);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		atexit(at_exit);
		body();
		_exit(100);
	}
	waitpid(pid, &st, 0);
	if (WIFEXITED(st))
		printf("status %d\n", WEXITSTATUS(st));
	else
		printf("killed by signal %d\n", WTERMSIG(st));
	fflush(stdout);
}

static void main_exits_worker_exit(void)
{
	pthread_t t;

	__cxa_thread_atexit_impl(say, "main's TLS destructor", &__dso_handle);
	pthread_create(&t, NULL, sleeps_forever, NULL);
	pthread_create(&t, NULL, exits, (void *)7);
	pthread_exit(NULL);
}

static void main_exits_last_returns(void)
{
	pthread_t t;

	pthread_create(&t, NULL, returns, (void *)1);
	pthread_create(&t, NULL, returns, (void *)2);
	say("main calls pthread_exit");
	pthread_exit(NULL);
}

static void main_exits_grandchild_exits(void)
{
	pthread_create(&creator_of, NULL, creates_then_returns, NULL);
	pthread_exit(NULL);
}

static void worker_exits_while_main_joins(void)
{
	pthread_t t, s;

	pthread_create(&s, NULL, sleeps_forever, NULL);
	pthread_create(&t, NULL, exits, (void *)5);
	pthread_join(s, NULL);
	say("join returned (must not happen)");
}

static void main_returns(void)
{
	pthread_t s;

	__cxa_thread_atexit_impl(say, "main's TLS destructor at return", &__dso_handle);
	pthread_create(&s, NULL, sleeps_forever, NULL);
	sleep_ms(20);
	exit(3);
}

int main(void)
{
	watchdog(20);
	stage("main pthread_exit, worker exit(7)");
	run("main pthread_exit, a worker calls exit(7)", main_exits_worker_exit);
	stage("main pthread_exit, workers return");
	run("main pthread_exit, the workers return", main_exits_last_returns);
	stage("main pthread_exit, grandchild exit(9)");
	run("main pthread_exit, a thread's child calls exit(9)", main_exits_grandchild_exits);
	stage("worker exit while main joins");
	run("a worker calls exit(5) while main joins", worker_exits_while_main_joins);
	stage("main exit(3)");
	run("main calls exit(3) while a thread sleeps", main_returns);
	return 0;
}
