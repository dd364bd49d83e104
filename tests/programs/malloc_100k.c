/* 100,000 short-lived threads, created and joined in batches of 100, each
 * malloc/free-ing a few blocks of varying size (up to 64 KiB) across a
 * yield.  Memory must stay bounded: glibc keeps per-thread malloc state
 * (tcache, arena pointer) in TLS, so a runtime that gave every thread a
 * fresh TLS block without recycling it would leak that state per thread.
 * The program checks its own peak RSS (getrusage ru_maxrss) against
 * MAX_RSS_MB and prints only "ok" on success. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define THREADS 100000
#define BATCH 100
#define BLOCKS 6
#define MAX_RSS_MB 200

static const size_t sizes[] = {16, 200, 1024, 4000, 16384, 65536, 24, 3000, 40000};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void *worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	unsigned char *b[BLOCKS];
	size_t len[BLOCKS];
	uintptr_t bad = 0;

	for (int i = 0; i < BLOCKS; i++) {
		len[i] = sizes[(id + i * 7) % NSIZES] - (id % 13);
		b[i] = malloc(len[i]);
		if (!b[i])
			return (void *)1;
		memset(b[i], (int)((id + i) & 0xff), len[i]);
	}
	/* free half, yield (other threads of the batch run, maybe on another
	 * kernel thread), allocate again, check the rest */
	for (int i = 0; i < BLOCKS; i += 2)
		free(b[i]);
	sched_yield();
	for (int i = 0; i < BLOCKS; i += 2) {
		b[i] = malloc(len[i]);
		if (!b[i])
			return (void *)1;
		memset(b[i], (int)((id + i) & 0xff), len[i]);
	}
	sched_yield();
	for (int i = 0; i < BLOCKS; i++) {
		unsigned char want = (unsigned char)((id + i) & 0xff);
		if (b[i][0] != want || b[i][len[i] - 1] != want || b[i][len[i] / 2] != want)
			bad = 1;
		free(b[i]);
	}
	return (void *)bad;
}

int main(void)
{
	static pthread_t t[BATCH];
	long failures = 0;

	for (int done = 0; done < THREADS; done += BATCH) {
		for (int i = 0; i < BATCH; i++)
			if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(done + i))) {
				printf("pthread_create failed at thread %d\n", done + i);
				return 1;
			}
		for (int i = 0; i < BATCH; i++) {
			void *rv;
			pthread_join(t[i], &rv);
			failures += rv != NULL;
		}
	}

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	long rss_mb = ru.ru_maxrss / 1024;
	fprintf(stderr, "malloc_100k: peak RSS %ld MB\n", rss_mb);
	if (failures) {
		printf("%ld threads saw corrupted blocks\n", failures);
		return 1;
	}
	if (rss_mb > MAX_RSS_MB) {
		printf("peak RSS %ld MB > %d MB\n", rss_mb, MAX_RSS_MB);
		return 1;
	}
	printf("ok\n");
	return 0;
}
