/* dlopen of a library that wants an executable stack (PT_GNU_STACK with
 * PF_X, as glibc's tst-execstack): the stacks of threads that exist at
 * the time (with and without a guard page) and of threads created later
 * become executable, as glibc does for its own stacks.  Each thread looks
 * at /proc/self/maps for its stack and then runs code placed on it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include "prog.h"

static sem_t go, done;
static int verdict[3];

/* Is the page holding addr executable? */
static int exec_at(const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512], perms[8];
	uintptr_t lo, hi, a = (uintptr_t)addr;
	int r = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi, perms) == 3 &&
		    a >= lo && a < hi) {
			r = perms[2] == 'x';
			break;
		}
	fclose(f);
	return r;
}

/* Run one `ret` instruction from this thread's stack. */
static __attribute__((noinline)) int run_on_stack(void)
{
	volatile unsigned char code[16] = { 0xc3 };
	void (*fn)(void) = (void (*)(void))(uintptr_t)code;

	fn();
	return code[0] == 0xc3;
}

static int check_self(void)
{
	volatile char here;
	int x = exec_at((const void *)&here);

	if (x == 1 && !run_on_stack())
		return -2;
	return x;
}

static void *early(void *arg)
{
	int i = (int)(intptr_t)arg;

	verdict[i] = check_self();
	sem_post(&done);
	sem_wait(&go);
	verdict[i] = check_self();
	return NULL;
}

static void *late(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)check_self();
}

int main(int argc, char **argv)
{
	pthread_t t[2], l;
	pthread_attr_t a;
	void *h, *r;
	int (*answer)(void);

	watchdog(20);
	if (argc < 2) {
		printf("usage: execstack libexecstack_mod.so\n");
		return 2;
	}
	sem_init(&go, 0, 0);
	sem_init(&done, 0, 0);
	stage("threads before the dlopen");
	pthread_create(&t[0], NULL, early, (void *)0);
	pthread_attr_init(&a);
	pthread_attr_setguardsize(&a, 0);
	pthread_attr_setstacksize(&a, 64 * 1024);
	pthread_create(&t[1], &a, early, (void *)1);
	sem_wait(&done);
	sem_wait(&done);
	check(verdict[0] == 0 && verdict[1] == 0, "stacks not executable before",
	      "%d %d", verdict[0], verdict[1]);
	stage("dlopen");
	h = dlopen(argv[1], RTLD_NOW);
	if (!h) {
		const char *e = dlerror();

		/* glibc 2.41 refuses such libraries unless the tunable
		 * glibc.rtld.execstack=2 allows them: nothing to compare. */
		if (e && strstr(e, "executable stack")) {
			printf("dlopen execstack library: refused by this glibc, nothing to test\n");
			fflush(stdout);
			_exit(0);
		}
		check(0, "dlopen execstack library", "%s", e ? e : "?");
	}
	check(h != NULL, "dlopen execstack library", "failed");
	if (!h)
		return 1;
	answer = (int (*)(void))dlsym(h, "execstack_mod_answer");
	check(answer && answer() == 42, "library works", "no symbol");
	stage("threads after the dlopen");
	sem_post(&go);
	sem_post(&go);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	check(verdict[0] == 1, "existing thread's stack executable", "%d", verdict[0]);
	check(verdict[1] == 1, "existing unguarded stack executable", "%d", verdict[1]);
	pthread_create(&l, NULL, late, NULL);
	pthread_join(l, &r);
	check((intptr_t)r == 1, "new thread's stack executable", "%d", (int)(intptr_t)r);
	pthread_create(&l, &a, late, NULL);
	pthread_join(l, &r);
	check((intptr_t)r == 1, "new unguarded stack executable", "%d", (int)(intptr_t)r);
	check(check_self() == 1, "main stack executable", "no");
	return failures ? 1 : 0;
}
