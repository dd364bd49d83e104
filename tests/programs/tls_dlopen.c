/* TLS of libraries dlopen'd at run time is per thread, across blocking
 * points and migrations between kernel threads.
 *
 *   tls_dlopen <path of libtls_mod.so> <path of libtls_mod_ie.so> [live]
 *
 * libtls_mod.so has `__thread int counter = 42` (general dynamic: reached
 * through __tls_get_addr and the thread's DTV); libtls_mod_ie.so has an
 * initial-exec `__thread int ie_var = 7` (a slot in every thread's static
 * TLS block that ld.so fills when the library is loaded).
 *
 * Group A threads are created first; then main loads libtls_mod.so while
 * they wait.  libtls_mod_ie.so is loaded by main before any thread exists,
 * or with `live` by an A thread while the other A threads wait.  Group B
 * is created after both loads.  main uses both libraries (increments its
 * own copies) before creating threads.  Every thread must see 42 and 7,
 * then increments its own copies across blocking points (a ring of
 * semaphores) and checks that it only ever sees its own values.  Addresses
 * of the variables are distinct among live threads.  Group C is created
 * after A and B are gone (reusing whatever they left behind) and must see
 * fresh 42 and 7 again.  main's own copies are untouched throughout. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "prog.h"

#define NA 6
#define NB 6
#define NT (NA + NB)
#define ROUNDS 1000

static int (*mod_get)(void), (*ie_get)(void);
static void (*mod_inc)(void), (*ie_inc)(void);
static int *(*mod_addr)(void), *(*ie_addr)(void);
static const char *ie_path;
static int live; /* the IE library is loaded while threads exist */
static void *ie_handle;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int tls_stage; /* 1: GD lib loaded (A0 loads the IE lib), 2: both loaded */

static sem_t ring[NT];
static pthread_barrier_t all_alive;
static atomic_long migrations, blocks;

struct result {
	int initial_ok; /* saw 42 and 7 first */
	int first_gd, first_ie;
	int bad;        /* a value or address other than its own */
	int *gd, *ie;   /* addresses, recorded while all threads are alive */
};
static struct result res[NT];

static void wait_stage(int want)
{
	pthread_mutex_lock(&mu);
	while (tls_stage < want)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void set_stage(int s)
{
	pthread_mutex_lock(&mu);
	tls_stage = s;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);
	if (!p) {
		printf("dlsym %s: %s\n", name, dlerror());
		exit(1);
	}
	return p;
}

static void load_ie(void)
{
	ie_handle = dlopen(ie_path, RTLD_NOW);
	if (!ie_handle) {
		printf("dlopen %s: %s\n", ie_path, dlerror());
		exit(1);
	}
	ie_get = (int (*)(void))sym(ie_handle, "tls_ie_get");
	ie_inc = (void (*)(void))sym(ie_handle, "tls_ie_inc");
	ie_addr = (int *(*)(void))sym(ie_handle, "tls_ie_addr");
}

/* pass a token to the next thread, wait for one from the previous: every
 * thread does the same number of these, so the ring never runs dry */
static void block_point(int id, int n)
{
	pid_t before = gettid();
	sem_post(&ring[(id + 1) % n]);
	sem_wait(&ring[id]);
	atomic_fetch_add(&blocks, 1);
	if (gettid() != before)
		atomic_fetch_add(&migrations, 1);
}

/* two threads that keep yielding and wake whoever asks for a kick: a
 * thread woken by one often resumes on another kernel thread */
static atomic_int kick_want, kick_stop;
static sem_t kick;

static void *kicker(void *arg)
{
	while (!atomic_load(&kick_stop)) {
		int w = atomic_load(&kick_want);
		if (w > 0 && atomic_compare_exchange_strong(&kick_want, &w, w - 1))
			sem_post(&kick);
		sched_yield();
	}
	return arg;
}

static void kick_wait(void)
{
	pid_t before = gettid();
	atomic_fetch_add(&kick_want, 1);
	sem_wait(&kick);
	atomic_fetch_add(&blocks, 1);
	if (gettid() != before)
		atomic_fetch_add(&migrations, 1);
}

static void run_checks(int id, int n)
{
	struct result *r = &res[id];
	int *gd = mod_addr(), *ie = ie_addr();

	r->first_gd = mod_get();
	r->first_ie = ie_get();
	r->initial_ok = r->first_gd == 42 && r->first_ie == 7 && mod_get() == 42 && ie_get() == 7 && *gd == 42 && *ie == 7;
	for (int i = 1; i <= ROUNDS; i++) {
		mod_inc();
		ie_inc();
		block_point(id, n);
		if (i % 4 == 0)
			kick_wait();
		if (mod_get() != 42 + i || ie_get() != 7 + i || mod_addr() != gd ||
		    ie_addr() != ie || *gd != 42 + i || *ie != 7 + i)
			r->bad++;
		/* an odd round: write through the address */
		if (i % 50 == 25) {
			*gd += 1000;
			*ie += 1000;
			block_point(id, n);
			if (mod_get() != 1042 + i || ie_get() != 1007 + i)
				r->bad++;
			*gd -= 1000;
			*ie -= 1000;
		}
	}
	r->gd = gd;
	r->ie = ie;
	pthread_barrier_wait(&all_alive); /* nobody exits before all recorded */
}

static void *group_a(void *arg)
{
	int id = (int)(intptr_t)arg;
	if (id == 0 && live) {
		/* a thread, not main, loads the initial-exec library while
		 * the other A threads wait */
		wait_stage(1);
		load_ie();
		set_stage(2);
	} else {
		wait_stage(2);
	}
	run_checks(id, NT);
	return NULL;
}

static void *group_b(void *arg)
{
	run_checks((int)(intptr_t)arg, NT);
	return NULL;
}

static int distinct(int i, int from, int to)
{
	for (int j = from; j < to; j++)
		if (j != i && (res[j].gd == res[i].gd || res[j].ie == res[i].ie))
			return 0;
	return 1;
}

static int report(const char *group, int from, int to, int all_from, int all_to)
{
	int bad = 0;
	for (int i = from; i < to; i++) {
		int distinct_ok = distinct(i, all_from, all_to);
		printf("group %s thread %2d: initial %d/%d %s, own copies %s, addresses %s\n",
		       group, i, res[i].first_gd, res[i].first_ie, res[i].initial_ok ? "ok" : "WRONG",
		       res[i].bad ? "CORRUPTED" : "ok", distinct_ok ? "distinct" : "SHARED");
		bad += !res[i].initial_ok || res[i].bad || !distinct_ok;
	}
	return bad;
}

int main(int argc, char **argv)
{
	pthread_t t[NT];

	if (argc < 3) {
		fprintf(stderr, "usage: %s <libtls_mod.so> <libtls_mod_ie.so> [live]\n", argv[0]);
		return 2;
	}
	ie_path = argv[2];
	live = argc > 3 && strcmp(argv[3], "live") == 0;
	int main_ie_initial = 1;
	if (!live) {
		/* loaded before any thread exists, and used by main */
		load_ie();
		main_ie_initial = ie_get() == 7;
		ie_inc();
	}
	for (int i = 0; i < NT; i++)
		sem_init(&ring[i], 0, 0);
	pthread_barrier_init(&all_alive, NULL, NT);
	sem_init(&kick, 0, 0);
	pthread_t kickers[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&kickers[i], NULL, kicker, NULL);

	/* group A: alive before any load */
	for (intptr_t i = 0; i < NA; i++)
		if (pthread_create(&t[i], NULL, group_a, (void *)i))
			return 2;
	sched_yield();

	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h) {
		printf("dlopen %s: %s\n", argv[1], dlerror());
		return 1;
	}
	mod_get = (int (*)(void))sym(h, "tls_mod_get");
	mod_inc = (void (*)(void))sym(h, "tls_mod_inc");
	mod_addr = (int *(*)(void))sym(h, "tls_mod_addr");
	int main_initial = mod_get() == 42;
	mod_inc();
	if (live) {
		set_stage(1);
		wait_stage(2);
		main_ie_initial = ie_get() == 7;
		ie_inc();
	} else {
		set_stage(2);
	}
	main_initial = main_initial && main_ie_initial;

	/* group B: created after both loads */
	for (intptr_t i = NA; i < NT; i++)
		if (pthread_create(&t[i], NULL, group_b, (void *)i))
			return 2;
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	/* A and B were alive together: addresses distinct across both */
	failures += report("A", 0, NA, 0, NT);
	failures += report("B", NA, NT, 0, NT);

	/* group C: after A and B are gone */
	for (int i = 0; i < NT; i++)
		res[i] = (struct result){0};
	for (intptr_t i = 0; i < NT; i++)
		if (pthread_create(&t[i], NULL, group_b, (void *)i))
			return 2;
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	failures += report("C", 0, NT, 0, NT);

	int main_ok = main_initial && mod_get() == 43 && ie_get() == 8 &&
		      *mod_addr() == 43 && *ie_addr() == 8;
	printf("main: initial 42/7 %s, own copies %s (%d/%d, want 43/8)\n",
	       main_initial ? "ok" : "WRONG", main_ok ? "ok" : "CORRUPTED", mod_get(), ie_get());
	failures += !main_ok;
	atomic_store(&kick_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(kickers[i], NULL);
	fprintf(stderr, "tls_dlopen: %ld of %ld block points resumed on another kernel thread\n",
		atomic_load(&migrations), atomic_load(&blocks));
	dlclose(ie_handle);
	dlclose(h);
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
