/* bench_sleepers: N threads each sleeping R times 10 ms (usleep), all at
 * once.  Reports wall time, kernel threads used (tasks in /proc/self/task
 * while they sleep) and peak RSS.  Under gshim a sleep parks the thread
 * on a timer, so a few OS threads carry them all; natively each is an OS
 * thread and thread limits may stop creation early (reported).
 *   bench_sleepers <threads> <rounds> */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int rounds;

static void *sleeper(void *arg)
{
	for (int i = 0; i < rounds; i++)
		usleep(10000);
	return arg;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000, made = 0, tasks = 0;
	pthread_attr_t at;
	pthread_t *t;
	struct rusage ru;
	struct dirent *de;
	double t0 = now_ms(), wall;
	DIR *d;

	rounds = argc > 2 ? atoi(argv[2]) : 5;
	t = malloc(sizeof *t * (size_t)n);
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 64 * 1024);
	for (int i = 0; i < n && pthread_create(&t[i], &at, sleeper, NULL) == 0; i++)
		made++;
	if ((d = opendir("/proc/self/task"))) {
		while ((de = readdir(d)))
			tasks += de->d_name[0] != '.';
		closedir(d);
	}
	for (int i = 0; i < made; i++)
		pthread_join(t[i], NULL);
	wall = now_ms() - t0;
	getrusage(RUSAGE_SELF, &ru);
	printf("RESULT name=sleepers requested=%d created=%d complete=%d wall_ms=%.1f "
	       "tasks=%d maxrss_kib=%ld kib_per_thread=%.2f\n", n, made, made == n, wall,
	       tasks, ru.ru_maxrss, made ? (double)ru.ru_maxrss / made : 0.0);
	return 0;
}
