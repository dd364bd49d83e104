/* Sleeps park the thread, not the OS thread: 200 threads each sleeping
 * 5 x 20 ms (nanosleep, usleep, clock_nanosleep relative and absolute,
 * thrd_sleep) finish in well under the 20 s that sleeping one after the
 * other would take; at GOMAXPROCS=1 under gshim that is only possible if
 * a sleep does not hold the M.  Also: bad arguments get EINVAL. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#define N 200

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *sleeper(void *arg)
{
	struct timespec d = { 0, 20000000 }, abs;

	(void)arg;
	nanosleep(&d, NULL);
	usleep(20000);
	clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL);
	clock_gettime(CLOCK_REALTIME, &abs);
	abs.tv_nsec += 20000000;
	if (abs.tv_nsec >= 1000000000) {
		abs.tv_sec++;
		abs.tv_nsec -= 1000000000;
	}
	clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &abs, NULL);
	thrd_sleep(&d, NULL);
	return NULL;
}

int main(void)
{
	pthread_t t[N];
	struct timespec bad = { 0, 1000000000 };
	double start = now(), took;
	int i;

	for (i = 0; i < N; i++)
		pthread_create(&t[i], NULL, sleeper, NULL);
	for (i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	took = now() - start;
	printf("all sleepers done: %s\n", took < 3.0 ? "in parallel" : "SERIALISED");
	errno = 0;
	printf("nanosleep bad tv_nsec: %s\n",
	       nanosleep(&bad, NULL) == -1 && errno == EINVAL ? "EINVAL" : "?");
	printf("clock_nanosleep bad tv_nsec: %s\n",
	       clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL) == EINVAL ? "EINVAL" : "?");
	printf("sleep(0): %u\n", sleep(0));
	return took < 3.0 ? 0 : 1;
}
