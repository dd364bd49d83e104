/* 1000 threads each sleep 100 ms (nanosleep) at the same time.
 *
 * Timed from the start barrier to the last join: the sleeps must overlap
 * (wall <= 2000 ms; one after the other would take 100 s), and none may
 * end early (< 100 ms on CLOCK_MONOTONIC, which nanosleep measures).
 * Prints the wall time, the median and 99th percentile oversleep and the
 * number of kernel threads (/proc/self/task) while the sleepers sleep:
 * ~1000 natively, a handful under an M:N runtime (printed, not checked,
 * since the same program runs natively). */
#include "prog.h"
#include <dirent.h>
#include <pthread.h>

#define N 1000
#define SLEEP_MS 100.0
#define MAX_WALL_MS 2000.0 /* generous: a noisy 2-CPU VM */

static pthread_barrier_t start;

struct sleeper {
	double slept_ms; /* as measured on CLOCK_MONOTONIC */
	long err;        /* -errno of nanosleep, or 0 */
};

static struct sleeper sleepers[N];

static void *sleeper(void *arg)
{
	struct sleeper *s = arg;
	struct timespec d = { 0, (long)(SLEEP_MS * 1e6) };
	double t0;

	pthread_barrier_wait(&start);
	t0 = now_ms();
	s->err = ERR(nanosleep(&d, NULL));
	s->slept_ms = now_ms() - t0;
	return NULL;
}

static int count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	static pthread_t t[N];
	static double over_us[N];
	pthread_attr_t attr;
	double t0, wall, shortest = 1e9;
	int tasks, errors = 0, early = 0;

	watchdog(20);
	pthread_barrier_init(&start, NULL, N + 1);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 << 10); /* 1000 x 8 MiB is a lot of address space */

	stage("creating 1000 sleepers");
	for (int i = 0; i < N; i++)
		if (pthread_create(&t[i], &attr, sleeper, &sleepers[i])) {
			printf("sleep_many: FAILED: pthread_create %d\n", i);
			return 1;
		}
	stage("sleeping");
	pthread_barrier_wait(&start);
	t0 = now_ms();
	sleep_ms(SLEEP_MS / 2); /* all sleepers are asleep now */
	tasks = count_tasks();
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	wall = now_ms() - t0;

	for (int i = 0; i < N; i++) {
		errors += sleepers[i].err != 0;
		early += sleepers[i].slept_ms < SLEEP_MS;
		if (sleepers[i].slept_ms < shortest)
			shortest = sleepers[i].slept_ms;
		over_us[i] = (sleepers[i].slept_ms - SLEEP_MS) * 1e3;
	}
	qsort(over_us, N, sizeof over_us[0], cmp_double);
	printf("sleep_many: wall=%.1f ms p50=%.0f us p99=%.0f us max=%.0f us threads_os=%d\n",
	       wall, over_us[N / 2], over_us[N * 99 / 100], over_us[N - 1], tasks);

	/* the sleeps overlapped: they do not hold a kernel thread (or a P) each */
	check(wall <= MAX_WALL_MS, "sleeps overlap", "wall %.1f ms > %.0f ms", wall, MAX_WALL_MS);
	/* a sleep lasts at least what was asked, and succeeds */
	check(!early && !errors, "no sleep ends early or fails",
	      "%d of %d ended early (shortest %.3f ms), %d failed", early, N, shortest, errors);
	return failures ? 1 : 0;
}
