/* A signal handler that blocks: a thread parked in a read gets a signal;
 * its handler does a blocking call of its own (a read on another pipe, a
 * nanosleep, a pause-like sigsuspend, a condvar wait), and while it sits
 * there the main thread cancels the thread.  Natively the handler's call is
 * a cancellation point like any other: the thread unwinds from inside the
 * handler through the handler's cleanup handlers and then the outer ones,
 * and join returns PTHREAD_CANCELED.  Under an M:N runtime the handler's
 * call is nested inside the outer parked call; with one P it must not hold
 * the only P while it waits (the main thread needs it to send the cancel).
 * Also: the handler's call completes normally when data arrives (no
 * cancel), and the outer read then still sees its own data.
 * Each case runs with the handler on the thread's stack and with SA_ONSTACK
 * on an alternate stack the thread set up. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "prog.h"

enum inner { IN_READ, IN_SLEEP, IN_COND, IN_SIGSUSPEND, IN_NONE };
static const char *inner_name[] = { "read", "nanosleep", "cond_wait", "sigsuspend", "none" };

static int outer[2], inner[2];
static enum inner mode;
static int use_altstack;
static volatile sig_atomic_t in_handler, handler_done;
static volatile uint64_t cleanups;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t bar;
static char inner_got;

static void cl(void *arg)
{
	cleanups = (cleanups << 4) | (uintptr_t)arg;
}

static void unlock_mu(void *arg)
{
	(void)arg;
	pthread_mutex_unlock(&mu);
	cleanups = (cleanups << 4) | 5;
}

static __attribute__((noinline)) void handler_body(void)
{
	char c;
	struct timespec ts = { 30, 0 };
	sigset_t none;

	pthread_cleanup_push(cl, (void *)1);
	in_handler = 1;
	switch (mode) {
	case IN_READ:
		if (read(inner[0], &c, 1) == 1)
			inner_got = c;
		break;
	case IN_SLEEP:
		nanosleep(&ts, NULL);
		break;
	case IN_COND:
		pthread_mutex_lock(&mu);
		pthread_cleanup_push(unlock_mu, NULL);
		pthread_cond_wait(&cv, &mu);
		pthread_cleanup_pop(0);
		pthread_mutex_unlock(&mu);
		break;
	case IN_SIGSUSPEND:
		sigemptyset(&none);
		sigsuspend(&none);
		break;
	case IN_NONE:
		break;
	}
	pthread_cleanup_pop(0);
}

static void handler(int sig)
{
	(void)sig;
	pthread_cleanup_push(cl, (void *)2);
	handler_body();
	pthread_cleanup_pop(0);
	in_handler = 0;
	handler_done = 1;
}

static __attribute__((noinline)) char thread_body(void)
{
	char c = 0;

	pthread_cleanup_push(cl, (void *)3);
	pthread_barrier_wait(&bar);
	/* EINTR when the handler returns (SA_RESTART is not set): read
	 * again, so the outer data is still ours. */
	while (read(outer[0], &c, 1) != 1)
		;
	pthread_cleanup_pop(0);
	return c;
}

static void *thread(void *arg)
{
	static char altstack[64 * 1024];
	char c;

	(void)arg;
	if (use_altstack) {
		stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
		sigaltstack(&ss, NULL);
	}
	pthread_cleanup_push(cl, (void *)4);
	c = thread_body();
	pthread_cleanup_pop(0);
	return (void *)(uintptr_t)c;
}

static void one(enum inner m, int cancel, int alt)
{
	struct sigaction sa;
	pthread_t t;
	void *ret;
	char what[96];
	double t0;

	mode = m;
	use_altstack = alt;
	in_handler = handler_done = 0;
	cleanups = 0;
	inner_got = 0;
	snprintf(what, sizeof what, "%s in handler, %s%s", inner_name[m],
	         cancel ? "cancelled" : "completed", alt ? ", altstack" : "");
	stage(what);
	if (pipe(outer) || pipe(inner)) {
		perror("pipe");
		exit(1);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = alt ? SA_ONSTACK : 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&t, NULL, thread, NULL);
	pthread_barrier_wait(&bar);
	sleep_ms(50);   /* let it park in the outer read */
	pthread_kill(t, SIGHUP);
	t0 = now_ms();
	while (!in_handler && !handler_done && now_ms() - t0 < 10000)
		sleep_ms(1);
	sleep_ms(50);   /* let the handler block in its own call */
	if (cancel) {
		pthread_cancel(t);
		pthread_join(t, &ret);
		check(ret == PTHREAD_CANCELED, what, "join value %p", ret);
		/* handler's own cleanups first (the condvar's unlock: 5) */
		uint64_t want = m == IN_COND ? 0x51234 : 0x1234;
		check(cleanups == want, what, "cleanups 0x%llx, want 0x%llx",
		      (unsigned long long)cleanups, (unsigned long long)want);
	} else {
		switch (m) {
		case IN_READ:
			write(inner[1], "i", 1);
			break;
		case IN_SLEEP:
			break;   /* cut short below by the second signal */
		case IN_COND:
			pthread_mutex_lock(&mu);
			pthread_cond_signal(&cv);
			pthread_mutex_unlock(&mu);
			break;
		case IN_SIGSUSPEND:
		case IN_NONE:
			break;
		}
		t0 = now_ms();
		while (!handler_done && now_ms() - t0 < 10000)
			sleep_ms(1);
		write(outer[1], "o", 1);
		pthread_join(t, &ret);
		check(ret == (void *)(uintptr_t)'o', what, "outer read got %p", ret);
		if (m == IN_READ)
			check(inner_got == 'i', what, "inner read got %d", inner_got);
		check(cleanups == 0, what, "cleanups 0x%llx", (unsigned long long)cleanups);
	}
	pthread_barrier_destroy(&bar);
	close(outer[0]); close(outer[1]);
	close(inner[0]); close(inner[1]);
}

int main(void)
{
	watchdog(60);
	for (int alt = 0; alt < 2; alt++) {
		for (enum inner m = IN_READ; m <= IN_SIGSUSPEND; m++)
			one(m, 1, alt);
		one(IN_READ, 0, alt);
		one(IN_COND, 0, alt);
		one(IN_NONE, 0, alt);
	}
	return failures != 0;
}
