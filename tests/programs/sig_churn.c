/* Process-directed signals while threads come and go: one thread sends
 * kill(getpid(), SIGUSR1) every half millisecond (blocking the signal
 * itself), ten threads create and join short-lived threads as fast as they
 * can, and the main thread does the same.  Every signal must be handled by
 * some thread (counted by the handler), creates and joins must never fail
 * (in particular never with EINTR), and the process must not crash: the
 * thread chosen for a signal may be exiting, or its memory reused by the
 * next thread (glibc's tst-eintr1 does this for 3 seconds).  The handler
 * writes to a regular file, so a blocking-call wrapper runs wherever the
 * signal lands (in a runtime's scheduler, possibly between two threads).
 * Also the thread-directed form: the source sends to the main thread. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "prog.h"

static atomic_long handled, sent, rounds;
static atomic_int stop;
static pthread_t main_thread;
static int directed;

static int log_fd = -1;   /* a regular file: the handler writes to it */

static void handler(int sig)
{
	if (sig == SIGUSR1)
		atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
	/* A blocking-call wrapper, run from wherever the signal lands (as
	 * tst-eintr1's handler writes a dot to its output file). */
	if (write(log_fd, ".", 1) != 1)
		atomic_fetch_add_explicit(&handled, 1000000000, memory_order_relaxed);
}

static void *source(void *arg)
{
	struct timespec ts = { 0, 500000 };
	sigset_t ss;

	(void)arg;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	while (!atomic_load(&stop)) {
		if (directed)
			pthread_kill(main_thread, SIGUSR1);
		else
			kill(getpid(), SIGUSR1);
		atomic_fetch_add(&sent, 1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void *leaf(void *arg)
{
	return arg;
}

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		pthread_t t;
		void *ret = NULL;
		int e = pthread_create(&t, NULL, leaf, (void *)&handled);

		if (e != 0) {
			printf("pthread_create: %s\n", strerror(e));
			exit(1);
		}
		e = pthread_join(t, &ret);
		if (e != 0 || ret != (void *)&handled) {
			printf("pthread_join: %s, value %p\n", strerror(e), ret);
			exit(1);
		}
		atomic_fetch_add_explicit(&rounds, 1, memory_order_relaxed);
	}
	return NULL;
}

static void run(int dir, double secs)
{
	pthread_t src, th[10];
	struct sigaction sa;
	double t0;

	directed = dir;
	atomic_store(&stop, 0);
	atomic_store(&handled, 0);
	atomic_store(&sent, 0);
	atomic_store(&rounds, 0);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	main_thread = pthread_self();
	stage(dir ? "thread-directed signals while threads churn"
	          : "process-directed signals while threads churn");
	for (int i = 0; i < 10; i++)
		if (pthread_create(&th[i], NULL, churn, NULL) != 0) {
			puts("pthread_create failed");
			exit(1);
		}
	pthread_create(&src, NULL, source, NULL);
	t0 = now_ms();
	while (now_ms() - t0 < secs * 1000) {
		pthread_t t;

		if (pthread_create(&t, NULL, leaf, NULL) == 0)
			pthread_join(t, NULL);
	}
	atomic_store(&stop, 1);
	pthread_join(src, NULL);
	for (int i = 0; i < 10; i++)
		pthread_join(th[i], NULL);
	/* Let the last ones in flight arrive. */
	t0 = now_ms();
	while (atomic_load(&handled) < atomic_load(&sent) && now_ms() - t0 < 2000)
		sleep_ms(1);
	note("%s: sent %ld, handled %ld, %ld create+join rounds\n", dir ? "directed" : "process",
	     atomic_load(&sent), atomic_load(&handled), atomic_load(&rounds));
	/* Standard signals coalesce while pending: fewer handled than sent is
	 * native too; none handled is not. */
	check(atomic_load(&handled) < 1000000000, dir ? "handler's writes (directed)" : "handler's writes (process)",
	      "a write failed");
	check(atomic_load(&handled) > 0, dir ? "directed signals handled" : "process signals handled",
	      "none of %ld handled", atomic_load(&sent));
	check(atomic_load(&rounds) > 0, dir ? "churn went on (directed)" : "churn went on (process)",
	      "no thread was created and joined");
}

int main(void)
{
	FILE *log = tmpfile();

	if (!log) {
		perror("tmpfile");
		return 1;
	}
	log_fd = fileno(log);
	watchdog(60);
	run(0, 2);
	run(1, 1);
	return failures != 0;
}
