/* traceback: a thread dump of named threads in known states (issue 14).
 *
 *   traceback usr2   five named threads block - on a mutex main holds
 *                    (tb-mutex), a condvar (tb-cond), a join of tb-cond
 *                    (tb-join), a sleep (tb-sleep), a pipe read
 *                    (tb-pipe) - then kill(getpid(), SIGUSR2): with
 *                    GSHIM_DEBUG=dumpsignal=SIGUSR2 gshim prints the dump
 *                    and the program goes on, releases everybody and
 *                    prints "done" once the dump is on stderr (a file);
 *                    "usr2 quiet": no dump is expected, just go on
 *   traceback quit   the same set-up, then kill(getpid(), SIGQUIT): the
 *                    dump, then death by SIGQUIT
 * traceback.sh runs it and checks stderr (and the JSON of GSHIM_DUMP).
 * The blocking calls are followed by work so that the compiler cannot
 * turn them into tail calls: each start function must be in its stack.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "prog.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go_cond;
static int pfd[2];
static pthread_t t_cond;
static volatile int ready;

#define KEEP() __asm__ volatile("" ::: "memory")

__attribute__((noinline)) void *tb_mutex_waiter(void *a)
{
	pthread_setname_np(pthread_self(), "tb-mutex");
	__atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&mu);
	KEEP();
	pthread_mutex_unlock(&mu);
	KEEP();
	return a;
}

__attribute__((noinline)) void *tb_cond_waiter(void *a)
{
	pthread_setname_np(pthread_self(), "tb-cond");
	pthread_mutex_lock(&cmu);
	__atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
	while (!go_cond)
		pthread_cond_wait(&cv, &cmu);
	KEEP();
	pthread_mutex_unlock(&cmu);
	KEEP();
	return a;
}

__attribute__((noinline)) void *tb_joiner(void *a)
{
	void *r;

	pthread_setname_np(pthread_self(), "tb-join");
	__atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
	pthread_join(t_cond, &r);
	KEEP();
	return r == a ? a : NULL;
}

__attribute__((noinline)) void *tb_sleeper(void *a)
{
	pthread_setname_np(pthread_self(), "tb-sleep");
	__atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		/* one long sleep: main ends it with pthread_cancel */
		struct timespec d = { 60, 0 };
		nanosleep(&d, NULL);
		KEEP();
	}
	return a;
}

__attribute__((noinline)) void *tb_pipe_reader(void *a)
{
	char c;
	ssize_t n;

	pthread_setname_np(pthread_self(), "tb-pipe");
	__atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
	n = read(pfd[0], &c, 1);
	KEEP();
	return n == 1 ? a : NULL;
}

/* The dump is made by gshim's signal thread while we go on: wait until
 * its last line is on stderr (a file: traceback.sh redirects it), so
 * that exiting does not cut it short. */
static void wait_dump(void)
{
	static char buf[1 << 16];
	int i;

	for (i = 0; i < 1000; i++) {
		int fd = open("/proc/self/fd/2", O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;

		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			if (strstr(buf, "\nSCHED ") || strstr(buf, "traceback written to"))
				return;
		}
		sleep_ms(10);
	}
}

int main(int argc, char **argv)
{
	pthread_t t[5];
	int sig = argc > 1 && strcmp(argv[1], "quit") == 0 ? SIGQUIT : SIGUSR2;
	int i;

	watchdog(20);
	if (pipe(pfd) != 0)
		return 1;
	pthread_mutex_lock(&mu);
	pthread_create(&t[0], NULL, tb_mutex_waiter, NULL);
	pthread_create(&t_cond, NULL, tb_cond_waiter, NULL);
	t[1] = t_cond;
	pthread_create(&t[2], NULL, tb_joiner, NULL);
	pthread_create(&t[3], NULL, tb_sleeper, NULL);
	pthread_create(&t[4], NULL, tb_pipe_reader, NULL);
	while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < 5)
		sleep_ms(10);
	sleep_ms(300);   /* all of them blocked by now */
	kill(getpid(), sig);
	if (argc > 2 && strcmp(argv[2], "quiet") == 0)
		sleep_ms(500);   /* nothing is printed (GSHIM_TRACEBACK=none) */
	else
		wait_dump();

	pthread_mutex_unlock(&mu);
	pthread_mutex_lock(&cmu);
	go_cond = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&cmu);
	pthread_cancel(t[3]);
	if (write(pfd[1], "x", 1) != 1)
		return 1;
	pthread_join(t[0], NULL);
	pthread_join(t[2], NULL);   /* joined t_cond */
	for (i = 3; i < 5; i++)
		pthread_join(t[i], NULL);
	printf("done\n");
	return 0;
}
