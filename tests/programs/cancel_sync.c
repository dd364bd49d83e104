/* Cancellation of threads waiting on synchronisation objects, as glibc
 * (tst-cancel{2,8,12..15}, tst-cond{8,...}, tst-once3/4, tst-join5):
 *  - pthread_cond_wait / timedwait / clockwait, C11 cnd_wait: the mutex
 *    (an error-checking one: unlock tells whether the caller owns it) is
 *    held again when the cleanup handler runs; a second waiter on the same
 *    condvar still gets the next signal
 *  - pthread_once: an initialiser cancelled (in a condvar wait) leaves the
 *    once as if never called - the value reads 0, a later caller runs its
 *    own initialiser, a caller already waiting in pthread_once runs it
 *    (tst-once4), and the cancelled thread's own cleanup handler may call
 *    pthread_once on it again (reset before the outer handlers run)
 *  - pthread_join: a joiner cancelled while it waits; the target stays
 *    joinable and is joined afterwards
 *  - sem_wait, sem_timedwait
 * Each wait is also checked with the request pending at entry. */
#include "prog.h"
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <threads.h>

static pthread_mutex_t mtx;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static mtx_t c11m;
static cnd_t c11c;
static sem_t sem;
static atomic_int ready, cl_count, owned, returned, global;
static pthread_barrier_t bar;

/* Runs with the mutex held if the wait re-took it: an error-checking
 * unlock succeeds only for the owner. */
static void cl_unlock(void *a)
{
	(void)a;
	cl_count++;
	owned = pthread_mutex_unlock(&mtx) == 0;
}

static void cl_c11(void *a)
{
	(void)a;
	cl_count++;
	owned = mtx_unlock(&c11m) == thrd_success;
}

static void cl(void *a)
{
	(void)a;
	cl_count++;
}

static int entry;   /* request pending at entry instead of while blocked */

static void start(void)
{
	if (entry) {
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		ready = 1;
		pthread_barrier_wait(&bar);   /* cancelled meanwhile */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	} else {
		ready = 1;
	}
}

static void *w_cond(void *a)
{
	int kind = (int)(intptr_t)a;
	struct timespec ts;

	pthread_mutex_lock(&mtx);
	pthread_cleanup_push(cl_unlock, NULL);
	start();
	switch (kind) {
	case 0:
		pthread_cond_wait(&cv, &mtx);
		break;
	case 1:
		ts = in_ms(CLOCK_REALTIME, 30 * 1000);
		pthread_cond_timedwait(&cv, &mtx, &ts);
		break;
	default:
		ts = in_ms(CLOCK_MONOTONIC, 30 * 1000);
		pthread_cond_clockwait(&cv, &mtx, CLOCK_MONOTONIC, &ts);
		break;
	}
	returned++;
	pthread_cleanup_pop(1);
	return NULL;
}

static void *w_cnd(void *a)
{
	(void)a;
	mtx_lock(&c11m);
	pthread_cleanup_push(cl_c11, NULL);
	start();
	cnd_wait(&c11c, &c11m);
	returned++;
	pthread_cleanup_pop(1);
	return NULL;
}

static void *w_sem(void *a)
{
	struct timespec ts = in_ms(CLOCK_REALTIME, 30 * 1000);

	pthread_cleanup_push(cl, NULL);
	start();
	if (a)
		sem_timedwait(&sem, &ts);
	else
		sem_wait(&sem);
	returned++;
	pthread_cleanup_pop(0);
	return NULL;
}

static pthread_t target;
static void *w_join(void *a)
{
	(void)a;
	pthread_cleanup_push(cl, NULL);
	start();
	pthread_join(target, NULL);
	returned++;
	pthread_cleanup_pop(0);
	return NULL;
}

static void *lingers(void *a)
{
	(void)a;
	while (!global)
		sleep_ms(2);
	return (void *)5;
}

static void run(const char *name, void *(*fn)(void *), void *arg, int want_owned)
{
	pthread_t t;
	void *r = NULL;
	char what[128];
	double t0;

	snprintf(what, sizeof what, "%s (%s)", name, entry ? "pending at entry" : "blocked");
	stage(what);
	ready = cl_count = owned = returned = 0;
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&t, NULL, fn, arg);
	while (!ready)
		sleep_ms(1);
	if (!entry)
		sleep_ms(10);
	t0 = now_ms();
	pthread_cancel(t);
	if (entry)
		pthread_barrier_wait(&bar);
	pthread_join(t, &r);
	note("%s: joined after %.1f ms", what, now_ms() - t0);
	check(r == PTHREAD_CANCELED && cl_count == 1 && owned == want_owned && !returned &&
	      now_ms() - t0 < 1500, what,
	      "result %p, cleanup ran %d times, mutex held in it %d, wait returned %d, %.0f ms",
	      r, cl_count, owned, returned, now_ms() - t0);
	pthread_barrier_destroy(&bar);
}

/* ---- pthread_once ------------------------------------------------------- */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t omut = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ocond = PTHREAD_COND_INITIALIZER;
static atomic_int in_init, init2_runs, waiter_done;

static void init_blocks(void)
{
	pthread_mutex_lock(&omut);
	in_init = 1;
	for (;;)
		pthread_cond_wait(&ocond, &omut);   /* cancelled here */
}

static void init2(void)
{
	init2_runs++;
}

static void *once_runner(void *a)
{
	(void)a;
	pthread_cleanup_push(cl, NULL);
	pthread_once(&once, init_blocks);
	returned++;
	pthread_cleanup_pop(0);
	return NULL;
}

static void *once_waiter(void *a)
{
	(void)a;
	ready = 1;
	pthread_once(&once, init2);   /* waits for the runner, then runs init2 */
	waiter_done = 1;
	return NULL;
}

/* the cleanup handler calls pthread_once on the once being unwound */
static void cl_once_again(void *a)
{
	(void)a;
	cl_count++;
	pthread_once(&once, init2);
}

static void *once_runner_again(void *a)
{
	(void)a;
	pthread_cleanup_push(cl_once_again, NULL);
	pthread_once(&once, init_blocks);
	returned++;
	pthread_cleanup_pop(0);
	return NULL;
}

static void once_case(const char *what, void *(*runner)(void *), int with_waiter)
{
	pthread_t t, w;
	void *r = NULL;
	int v;

	stage(what);
	once = (pthread_once_t)PTHREAD_ONCE_INIT;
	in_init = init2_runs = waiter_done = cl_count = returned = ready = 0;
	pthread_create(&t, NULL, runner, NULL);
	while (!in_init)
		sleep_ms(1);
	pthread_mutex_lock(&omut);    /* the initialiser waits on ocond */
	pthread_mutex_unlock(&omut);
	if (with_waiter) {
		pthread_create(&w, NULL, once_waiter, NULL);
		while (!ready)
			sleep_ms(1);
		sleep_ms(10);           /* into pthread_once's wait */
	}
	pthread_cancel(t);
	pthread_join(t, &r);
	/* the cancelled initialiser re-took omut (condvar rule): free it */
	pthread_mutex_unlock(&omut);
	if (with_waiter)
		pthread_join(w, NULL);
	v = *(int *)&once;
	pthread_once(&once, init2);   /* done already if a waiter or handler ran it */
	check(r == PTHREAD_CANCELED && cl_count == 1 && !returned && init2_runs == 1 &&
	      (!with_waiter || waiter_done) && v == (runner == once_runner && !with_waiter ? 0 : 2),
	      what, "result %p, cleanup %d, returned %d, init2 ran %d times, waiter %d, once %d",
	      r, cl_count, returned, init2_runs, waiter_done, v);
}

int main(void)
{
	pthread_mutexattr_t ma;
	pthread_t t;
	void *r;

	watchdog(20);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&mtx, &ma);
	mtx_init(&c11m, mtx_plain);
	cnd_init(&c11c);
	sem_init(&sem, 0, 0);

	pthread_create(&target, NULL, lingers, NULL);
	for (entry = 0; entry < 2; entry++) {
		run("pthread_cond_wait", w_cond, (void *)0, 1);
		run("pthread_cond_timedwait", w_cond, (void *)1, 1);
		run("pthread_cond_clockwait", w_cond, (void *)2, 1);
		run("cnd_wait", w_cnd, NULL, 1);
		run("sem_wait", w_sem, NULL, 0);
		run("sem_timedwait", w_sem, (void *)1, 0);
		run("pthread_join", w_join, NULL, 0);
	}
	global = 1;
	stage("join after a cancelled join");
	printf("target still joinable: %s\n", pthread_join(target, &r) == 0 && r == (void *)5 ? "yes" : "no");

	/* a waiter left on the condvar by a cancelled one still gets a signal */
	stage("signal after a cancelled waiter");
	{
		pthread_t a, b;
		void *ra, *rb;

		entry = 0;
		ready = cl_count = owned = returned = 0;
		pthread_create(&a, NULL, w_cond, NULL);
		pthread_create(&b, NULL, w_cond, NULL);
		sleep_ms(20);
		pthread_cancel(a);
		pthread_join(a, &ra);
		/* signal until b is out: a signal sent before b waits (a loaded
		 * machine) is lost, natively too */
		while (!returned) {
			pthread_mutex_lock(&mtx);
			pthread_cond_signal(&cv);
			pthread_mutex_unlock(&mtx);
			sleep_ms(1);
		}
		pthread_join(b, &rb);
		check(ra == PTHREAD_CANCELED && rb == NULL && returned == 1, "signal after a cancelled waiter",
		      "results %p %p, returned %d", ra, rb, returned);
	}

	once_case("pthread_once: initialiser cancelled, later call runs", once_runner, 0);
	once_case("pthread_once: initialiser cancelled, waiter runs", once_runner, 1);
	once_case("pthread_once: cleanup handler calls it again", once_runner_again, 0);

	(void)t;
	return failures != 0;
}
