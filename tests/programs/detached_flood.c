/* Detached threads with 16 MiB stacks created in a loop by two creators
 * under RLIMIT_AS = 800 MiB (glibc's tst-create-detached, smaller): room
 * for a few dozen stacks at a time, so creations fail with EAGAIN until
 * earlier threads have ended and left their stacks; the creators just
 * retry.  Under gshim the new threads wait for the creator's P: a creator
 * that retried without giving it up would never let them run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include "prog.h"

enum { TOTAL = 4000, CREATORS = 2 };

static atomic_uint created, ran;
static pthread_attr_t detached;
static pthread_barrier_t start;

static void *nothing(void *arg)
{
	atomic_fetch_add(&ran, 1);
	return arg;
}

static void *creator(void *arg)
{
	pthread_t t;

	(void)arg;
	pthread_barrier_wait(&start);
	for (;;)
		if (pthread_create(&t, &detached, nothing, NULL) == 0 &&
		    atomic_fetch_add(&created, 1) + 1 >= TOTAL)
			break;
	return NULL;
}

int main(void)
{
	struct rlimit rl;
	pthread_t c[CREATORS];
	int i;
	double end;

	watchdog(25);
	getrlimit(RLIMIT_AS, &rl);
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 800ul << 20) {
		rl.rlim_cur = 800ul << 20;
		if (setrlimit(RLIMIT_AS, &rl) != 0) {
			printf("setrlimit failed\n");
			return 1;
		}
	}
	pthread_attr_init(&detached);
	pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&detached, 16 << 20);
	pthread_barrier_init(&start, NULL, CREATORS);
	stage("creating");
	for (i = 0; i < CREATORS; i++)
		pthread_create(&c[i], NULL, creator, NULL);
	for (i = 0; i < CREATORS; i++)
		pthread_join(c[i], NULL);
	stage("waiting for the last detached threads");
	end = now_ms() + 10000;
	while (atomic_load(&ran) < atomic_load(&created) && now_ms() < end)
		sleep_ms(1);
	check(atomic_load(&created) >= TOTAL && atomic_load(&ran) == atomic_load(&created),
	      "detached threads under RLIMIT_AS", "created %u ran %u",
	      atomic_load(&created), atomic_load(&ran));
	return failures ? 1 : 0;
}
