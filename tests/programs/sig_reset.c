/* A handler that resets its own disposition (SIG_DFL, or SA_RESETHAND)
 * still interrupted the wait it ran in: the wait returns EINTR when the
 * action had no SA_RESTART when the signal came, and restarts when it
 * had (glibc tst-sem6: the handler resets SIGALRM and re-arms alarm).
 * Each case: a thread parks in a wait, a process-directed or a
 * thread-directed signal runs such a handler in it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "prog.h"

static volatile sig_atomic_t handled;

static void reset_handler(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;   /* the next one must not kill the test */
	sigaction(sig, &sa, NULL);
	handled++;
}

static void install(int sig, int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = reset_handler;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static sem_t sem;
static int pfd[2];

/* which: 0 sem_wait, 1 nanosleep, 2 read of an empty pipe */
static int wait_one(int which)
{
	struct timespec ts = { 3, 0 };
	char c;

	switch (which) {
	case 0: return ERR(sem_wait(&sem));
	case 1: return ERR(nanosleep(&ts, NULL));
	default: return ERR((int)read(pfd[0], &c, 1));
	}
}

static const char *names[] = { "sem_wait", "nanosleep", "read(pipe)" };

struct arg { int which; int result; };

static void *waiter(void *p)
{
	struct arg *a = p;
	sigset_t set;

	/* created with main's mask (SIGUSR1 blocked): accept it here */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	a->result = wait_one(a->which);
	return NULL;
}

int main(void)
{
	int which, how;

	watchdog(20);
	sem_init(&sem, 0, 0);
	if (pipe(pfd))
		return 1;
	for (how = 0; how < 3; how++) {
		for (which = 0; which < 3; which++) {
			struct arg a = { which, 12345 };
			pthread_t t;
			char what[128];

			stage(names[which]);
			handled = 0;
			/* main blocks it: only the waiter accepts it */
			sigset_t set;
			sigemptyset(&set);
			sigaddset(&set, SIGUSR1);
			install(SIGUSR1, how == 2 ? SA_RESETHAND : 0);
			pthread_sigmask(SIG_BLOCK, &set, NULL);
			pthread_create(&t, NULL, waiter, &a);
			sleep_ms(100);
			if (how == 0)
				kill(getpid(), SIGUSR1);         /* process-directed */
			else
				pthread_kill(t, SIGUSR1);        /* thread-directed */
			/* a restart would wait on: end the wait after a while */
			sleep_ms(300);
			if (a.result == 12345) {
				if (which == 0)
					sem_post(&sem);
				else if (which == 2 && write(pfd[1], "x", 1) != 1)
					return 1;
			}
			pthread_join(t, NULL);
			pthread_sigmask(SIG_UNBLOCK, &set, NULL);
			snprintf(what, sizeof what, "%s, handler resets itself (%s): EINTR",
			         names[which], how == 0 ? "kill" : how == 1 ? "pthread_kill" : "SA_RESETHAND");
			check(a.result == -EINTR && handled == 1, what, "result %s, handler ran %d time(s)",
			      a.result == 12345 ? "still waiting" : a.result >= 0 ? "success" : errname(a.result), (int)handled);
		}
	}
	return failures ? 1 : 0;
}
