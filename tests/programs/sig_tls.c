/* A handler of a process-directed signal runs in some thread that does not
 * block it, as that thread: its pthread_self() and its __thread variables
 * belong together, and it is a thread of the program that has not been
 * joined.  Rounds of ten threads (each records its index in a __thread);
 * the main thread blocks the signal and sends it 1000 times per round with
 * kill(), each handled before the next; then the round's threads are
 * released and joined, and new ones created.  A runtime that wakes the
 * joiner before the exiting thread is off its CPU can run a handler "as" a
 * thread whose join has returned (glibc tst-tls3 caught that). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "prog.h"

#define N 10
#define ROUNDS 10
#define SIGS 1000

static pthread_t th[N];
static __thread long my_index = -1;
static pthread_barrier_t bar;
static sem_t handled;

static void handler(int sig)
{
	long i = my_index;
	pthread_t self = pthread_self();

	(void)sig;
	if (i < 0 || i >= N || !pthread_equal(th[i], self)) {
		static const char msg[] = "handler ran with another thread's TLS or as a joined thread\n";

		write(STDOUT_FILENO, msg, sizeof msg - 1);
		_exit(1);
	}
	sem_post(&handled);
}

static void *worker(void *arg)
{
	my_index = (long)arg;
	pthread_barrier_wait(&bar);   /* indexes set */
	pthread_barrier_wait(&bar);   /* signals done */
	return NULL;
}

int main(void)
{
	struct sigaction sa;
	sigset_t usr1;

	watchdog(60);
	pthread_barrier_init(&bar, NULL, N + 1);
	sem_init(&handled, 0, 0);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	for (int r = 0; r < ROUNDS; r++) {
		stage("a round of signals");
		for (long i = 0; i < N; i++)
			if (pthread_create(&th[i], NULL, worker, (void *)i) != 0) {
				puts("pthread_create failed");
				return 1;
			}
		pthread_barrier_wait(&bar);
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
		for (int k = 0; k < SIGS; k++) {
			kill(getpid(), SIGUSR1);
			while (sem_wait(&handled) != 0 && errno == EINTR)
				;
		}
		pthread_barrier_wait(&bar);
		for (int i = 0; i < N; i++)
			pthread_join(th[i], NULL);
		pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	}
	puts("every handler ran as a live thread with its own TLS: ok");
	return failures != 0;
}
