/* A process-directed signal runs its handler only in a thread that does
 * not block it.  Ten threads, thread i unblocking the real-time signals
 * 0..i (so signal k is accepted by threads k..9 only); the main thread
 * blocks everything.  The threads keep switching (they hand a token around
 * with sched_yield and a mutex), so an M:N runtime moves between G's of
 * different masks all the time.  The main thread sends each signal in
 * rounds with kill(getpid(), ...) and waits for the handler's post; the
 * handler records which thread ran it.  Natively (and as glibc's
 * tst-signal3 checks): never the main thread, never a thread that blocks
 * the signal, every signal handled. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "prog.h"

#define N 10
#define ROUNDS 40

static pthread_t th[N], th_main;
static sem_t posted;
static atomic_int wrong_thread, on_main, unknown, stop;
static atomic_int got[N];
static int sig0;
static atomic_long spins;

static void handler(int sig)
{
	pthread_t self = pthread_self();
	int k = sig - sig0, i;

	for (i = 0; i < N; i++)
		if (pthread_equal(self, th[i]))
			break;
	if (i == N) {
		if (pthread_equal(self, th_main))
			atomic_fetch_add(&on_main, 1);
		else
			atomic_fetch_add(&unknown, 1);
	} else if (i < k) {
		atomic_fetch_add(&wrong_thread, 1);   /* thread i blocks sig0+k */
	}
	if (k >= 0 && k < N)
		atomic_fetch_add(&got[k], 1);
	sem_post(&posted);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	sigset_t ss;

	sigemptyset(&ss);
	for (int i = 0; i <= idx; i++)
		sigaddset(&ss, sig0 + i);
	pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		/* switch G's as often as possible */
		sched_yield();
		atomic_fetch_add_explicit(&spins, 1, memory_order_relaxed);
	}
	return NULL;
}

int main(void)
{
	struct sigaction sa;
	sigset_t all;
	int sent = 0;

	watchdog(60);
	stage("setting up");
	sig0 = SIGRTMIN;
	th_main = pthread_self();
	sem_init(&posted, 0, 0);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < N; i++)
		sigaction(sig0 + i, &sa, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (int i = 0; i < N; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i) != 0) {
			puts("pthread_create failed");
			return 1;
		}
	stage("sending signals");
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < N; k++) {
			kill(getpid(), sig0 + k);
			sent++;
			while (sem_wait(&posted) != 0 && errno == EINTR)
				;
		}
	atomic_store(&stop, 1);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	note("%d signals, %ld yields\n", sent, atomic_load(&spins));
	check(atomic_load(&on_main) == 0, "no handler on the main thread (blocks all)",
	      "%d handlers ran there", atomic_load(&on_main));
	check(atomic_load(&unknown) == 0, "no handler on a thread not the program's",
	      "%d handlers ran there", atomic_load(&unknown));
	check(atomic_load(&wrong_thread) == 0, "no handler on a thread that blocks the signal",
	      "%d handlers ran on one", atomic_load(&wrong_thread));
	int total = 0;
	for (int k = 0; k < N; k++)
		total += atomic_load(&got[k]);
	check(total == sent, "every signal handled once", "%d handled of %d", total, sent);
	return failures != 0;
}
