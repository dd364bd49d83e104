/* Many threads blocked in socket reads beside a thread that never
 * blocks (a spinner), at GOMAXPROCS=1 the case where gshim leaves a
 * wait's IORING_OP_POLL_ADD queued in the ring without a system call
 * (core/netpoll_wait.c, "Deferred submission": the P has other G's to
 * run, so its M does not submit; a later reap or sysmon does).  A queued
 * request that nobody submits would leave its reader asleep for ever.
 *
 * NREADERS echo threads, each on a socketpair of its own, read one byte
 * and write it back; the main thread, for ROUNDS rounds, writes a byte to
 * every reader and reads every echo.  Every round must complete, each
 * in well under ROUND_MAX_MS (the spinner's slices make it slow, not
 * stuck); the spinner then stops.  The same with the readers in recv
 * (socket.c's path). */
#include "prog.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#define NREADERS 32
#define ROUNDS 20
#define ROUND_MAX_MS 5000.0

static int sv[NREADERS][2];
static _Atomic bool stop;
static _Atomic long spins;
static bool use_recv;

static void *spinner(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		atomic_fetch_add_explicit(&spins, 1, memory_order_relaxed);
	return NULL;
}

static void *reader(void *arg)
{
	int fd = sv[(long)arg][1];
	char c;

	for (;;) {
		ssize_t r = use_recv ? recv(fd, &c, 1, 0) : read(fd, &c, 1);

		if (r != 1)
			return NULL;   /* EOF: done */
		if (write(fd, &c, 1) != 1)
			abort();
	}
}

static void run(bool with_recv, const char *what)
{
	pthread_t rd[NREADERS], sp;
	double worst = 0;
	bool ok = true;

	use_recv = with_recv;
	atomic_store(&stop, false);
	for (long i = 0; i < NREADERS; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]) ||
		    pthread_create(&rd[i], NULL, reader, (void *)i))
			abort();
	if (pthread_create(&sp, NULL, spinner, NULL))
		abort();
	for (int round = 0; round < ROUNDS && ok; round++) {
		double t0 = now_ms(), dt;

		for (int i = 0; i < NREADERS; i++)
			if (write(sv[i][0], "r", 1) != 1)
				abort();
		for (int i = 0; i < NREADERS; i++) {
			char c = 0;

			if (read(sv[i][0], &c, 1) != 1 || c != 'r')
				ok = false;
		}
		dt = now_ms() - t0;
		worst = dt > worst ? dt : worst;
		if (dt > ROUND_MAX_MS)
			ok = false;
	}
	atomic_store(&stop, true);
	pthread_join(sp, NULL);
	for (int i = 0; i < NREADERS; i++) {
		close(sv[i][0]);
		pthread_join(rd[i], NULL);
		close(sv[i][1]);
	}
	check(ok, what, "a round took %.0f ms (limit %.0f)", worst, ROUND_MAX_MS);
	note("%s: slowest round %.1f ms", what, worst);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	watchdog(60);
	stage("readers in read()");
	run(false, "32 readers in read() beside a spinner: every round's echoes arrive");
	stage("readers in recv()");
	run(true, "32 readers in recv() beside a spinner: every round's echoes arrive");
	return report_failures();
}
