/* Initial-exec TLS of a library loaded, unloaded and loaded again while
 * threads exist (glibc's tst-pt-tls4): each time it is loaded, every
 * thread, including those that existed before, starts from the initial
 * value (7), whatever the thread wrote there during the previous load.
 * Also: a thread that names itself is seen under that name in
 * /proc/self/task/<gettid()>/comm (tst-setgetname).
 *
 *   tls_reload <path of libtls_mod_ie.so> */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include "prog.h"

static pthread_barrier_t b;
static int (*get)(void);
static void (*inc)(void);
static int seen[3][3];

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg, round;

	for (round = 0; round < 3; round++) {
		pthread_barrier_wait(&b);   /* main loaded the library */
		seen[round][id] = get();
		inc();
		inc();
		pthread_barrier_wait(&b);   /* main may unload it */
	}
	return NULL;
}

static void comm_of_self(char *buf, size_t len)
{
	char path[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/self/task/%d/comm", gettid());
	fd = open(path, O_RDONLY);
	n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = 0;
}

static void *names_itself(void *arg)
{
	char buf[32];

	(void)arg;
	pthread_setname_np(pthread_self(), "reloader-x");
	comm_of_self(buf, sizeof buf);
	printf("comm after naming itself: %s\n", buf);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[2];
	int round, i;
	void *h;

	watchdog(20);
	if (argc < 2) {
		printf("usage: tls_reload <libtls_mod_ie.so>\n");
		return 2;
	}
	pthread_barrier_init(&b, NULL, 3);
	for (i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
	for (round = 0; round < 3; round++) {
		stage("load");
		h = dlopen(argv[1], RTLD_NOW);
		if (!h) {
			printf("dlopen: %s\n", dlerror());
			return 1;
		}
		get = (int (*)(void))dlsym(h, "tls_ie_get");
		inc = (void (*)(void))dlsym(h, "tls_ie_inc");
		pthread_barrier_wait(&b);
		seen[round][2] = get();
		inc();
		pthread_barrier_wait(&b);
		stage("unload");
		dlclose(h);
	}
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (round = 0; round < 3; round++)
		check(seen[round][0] == 7 && seen[round][1] == 7 && seen[round][2] == 7,
		      round == 0 ? "first load: 7 in every thread" :
		      round == 1 ? "second load: 7 again" : "third load: 7 again",
		      "%d %d %d", seen[round][0], seen[round][1], seen[round][2]);
	pthread_create(&t[0], NULL, names_itself, NULL);
	pthread_join(t[0], NULL);
	return failures ? 1 : 0;
}
