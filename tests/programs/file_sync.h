/* tests/programs/file_sync.h - what file_sync.c and file_sync_threads.c
 * share: the byte patterns and sizes, temporary files, and the thread that
 * keeps the program multi-threaded (keeper).  Static, marked unused where
 * a program does not take them all. */
#ifndef GSHIM_TESTS_FILE_SYNC_H
#define GSHIM_TESTS_FILE_SYNC_H

#include "prog.h"
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define NTHREADS 8

/* ---- patterns and sizes --------------------------------------------------- */
static __attribute__((unused)) uint64_t mix(uint64_t x) /* splitmix64's finaliser */
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* the stream of one file: thread, file number (and round) in the seed */
static __attribute__((unused)) uint64_t file_seed(int thread, int file)
{
	return ((uint64_t)(thread + 1) << 48) ^ ((uint64_t)(file + 1) << 40);
}

static inline uint8_t pat(uint64_t seed, uint64_t off)
{
	return (uint8_t)(mix(seed ^ (off >> 3)) >> ((off & 7) * 8));
}

static __attribute__((unused)) void fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pat(seed, off + i);
}

/* -1, or the file offset of the first byte of buf that is not the pattern */
static __attribute__((unused)) long first_bad(uint64_t seed, uint64_t off, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != pat(seed, off + i))
			return (long)(off + i);
	return -1;
}

static __attribute__((unused)) size_t next_size(uint64_t *state, size_t max)
{
	return 1 + (size_t)(mix((*state)++) % max);
}

static __attribute__((unused)) const char *tmpdir(void)
{
	const char *d = getenv("TMPDIR");

	return d && *d ? d : "/tmp";
}

/* mkstemp in tmpdir(); the path in path[] (PATH_MAX) */
static __attribute__((unused)) int make_temp(char *path, const char *tag)
{
	snprintf(path, PATH_MAX, "%s/gshim-file_sync-%s.XXXXXX", tmpdir(), tag);
	return mkstemp(path);
}

static __attribute__((unused)) long fsize(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? -(long)errno : (long)st.st_size;
}

/* drop the file's (clean) pages from the page cache */
static __attribute__((unused)) void evict(int fd)
{
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

#define SFR_ALL (SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)

/* ---- a thread that keeps the program multi-threaded ------------------------ */
/* gshim makes the plain blocking call when a program has one thread (no
 * one to run meanwhile): parts 1 and 3 run in main with this one parked
 * on a condition variable (which does not touch the poller). */
static pthread_mutex_t keep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t keep_cv = PTHREAD_COND_INITIALIZER;
static int keep_done;

static void *keeper(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&keep_mu);
	while (!keep_done)
		pthread_cond_wait(&keep_cv, &keep_mu);
	pthread_mutex_unlock(&keep_mu);
	return NULL;
}

static pthread_t keeper_start(void)
{
	pthread_t keep;

	pthread_create(&keep, NULL, keeper, NULL);
	return keep;
}

static void keeper_stop(pthread_t keep)
{
	pthread_mutex_lock(&keep_mu);
	keep_done = 1;
	pthread_cond_signal(&keep_cv);
	pthread_mutex_unlock(&keep_mu);
	pthread_join(keep, NULL);
}

#endif
