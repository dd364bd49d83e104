/* cond_corners: condition-variable corners from glibc's tst-cond* and
 * Open POSIX's pthread_cond_* assertions:
 *   - one broadcast wakes every waiter whatever clock each waits with
 *     (pthread_cond_wait, timedwait, clockwait on MONOTONIC and REALTIME
 *     on one condvar; a CLOCK_MONOTONIC condattr condvar beside it)
 *   - a deadline already past: ETIMEDOUT at once, the mutex held again
 *   - destroy right after broadcast while the woken waiters are still
 *     leaving: returns, and every waiter returns (many rounds)
 *   - waits with a mutex of each type: recursive held once, errorcheck
 *     not held (EPERM), bad clocks and timespecs (EINVAL)
 */
#include "prog.h"
#include <pthread.h>

static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_rt = PTHREAD_COND_INITIALIZER, cv_mono;
static int go, woken, ready;

static struct timespec in_s(clockid_t clk, long s)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	ts.tv_sec += s;
	return ts;
}

enum { W_PLAIN, W_TIMED, W_CLOCK_MONO, W_CLOCK_RT, W_MONO_CV, W_KINDS };

static void *waiter(void *arg)
{
	int kind = (int)(long)arg % W_KINDS, r = 0;
	struct timespec ts;

	pthread_mutex_lock(&mx);
	ready++;
	while (!go && r == 0) {
		switch (kind) {
		case W_PLAIN:
			r = pthread_cond_wait(&cv_rt, &mx);
			break;
		case W_TIMED:
			ts = in_s(CLOCK_REALTIME, 60);
			r = pthread_cond_timedwait(&cv_rt, &mx, &ts);
			break;
		case W_CLOCK_MONO:
			ts = in_s(CLOCK_MONOTONIC, 60);
			r = pthread_cond_clockwait(&cv_rt, &mx, CLOCK_MONOTONIC, &ts);
			break;
		case W_CLOCK_RT:
			ts = in_s(CLOCK_REALTIME, 60);
			r = pthread_cond_clockwait(&cv_rt, &mx, CLOCK_REALTIME, &ts);
			break;
		case W_MONO_CV:
			ts = in_s(CLOCK_MONOTONIC, 60);
			r = pthread_cond_timedwait(&cv_mono, &mx, &ts);
			break;
		}
	}
	if (r == 0)
		woken++;
	pthread_mutex_unlock(&mx);
	return NULL;
}

static void mixed_clocks(void)
{
	enum { N = 20 };
	pthread_t th[N];

	stage("broadcast with mixed clocks");
	go = woken = ready = 0;
	for (int i = 0; i < N; i++)
		pthread_create(&th[i], NULL, waiter, (void *)(long)i);
	for (;;) {
		pthread_mutex_lock(&mx);
		int n = ready;
		pthread_mutex_unlock(&mx);
		if (n == N)
			break;
		sleep_ms(1);
	}
	sleep_ms(10);
	pthread_mutex_lock(&mx);
	go = 1;
	pthread_cond_broadcast(&cv_rt);
	pthread_cond_broadcast(&cv_mono);
	pthread_mutex_unlock(&mx);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	check(woken == N, "broadcast wakes waiters of every clock", "woken %d of %d", woken, N);
}

static void *probe_lock(void *arg)
{
	return (void *)(long)pthread_mutex_trylock(arg);
}

static void past_deadline(void)
{
	struct timespec ts;
	pthread_t th;
	void *res;
	double t0;
	int r;

	stage("past deadline");
	pthread_mutex_lock(&mx);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec -= 1;
	t0 = now_ms();
	r = pthread_cond_timedwait(&cv_rt, &mx, &ts);
	check(r == ETIMEDOUT && now_ms() - t0 < 1000, "timedwait past deadline", "%s", errname(-r));
	pthread_create(&th, NULL, probe_lock, &mx);
	pthread_join(th, &res);
	check((long)res == EBUSY, "mutex held after ETIMEDOUT", "trylock from another thread %s",
	      errname(-(long)res));
	ts.tv_sec = 0;
	ts.tv_nsec = 0;
	r = pthread_cond_clockwait(&cv_rt, &mx, CLOCK_MONOTONIC, &ts);
	check(r == ETIMEDOUT, "clockwait MONOTONIC at 0", "%s", errname(-r));
	r = pthread_cond_timedwait(&cv_mono, &mx, &ts);
	check(r == ETIMEDOUT, "timedwait on a MONOTONIC condvar at 0", "%s", errname(-r));
	ts.tv_nsec = 1000000000;
	r = pthread_cond_timedwait(&cv_rt, &mx, &ts);
	check(r == EINVAL, "timedwait tv_nsec 1e9", "%s", errname(-r));
	ts.tv_nsec = -1;
	r = pthread_cond_clockwait(&cv_rt, &mx, CLOCK_MONOTONIC, &ts);
	check(r == EINVAL, "clockwait tv_nsec -1", "%s", errname(-r));
	ts.tv_nsec = 0;
	r = pthread_cond_clockwait(&cv_rt, &mx, CLOCK_PROCESS_CPUTIME_ID, &ts);
	check(r == EINVAL, "clockwait on a CPU clock", "%s", errname(-r));
	pthread_mutex_unlock(&mx);
}

/* ---- destroy right after broadcast ---- */

struct dround {
	pthread_mutex_t m;
	pthread_cond_t c;
	int go, in;
};

static void *dwaiter(void *arg)
{
	struct dround *d = arg;

	pthread_mutex_lock(&d->m);
	d->in++;
	while (!d->go)
		pthread_cond_wait(&d->c, &d->m);
	pthread_mutex_unlock(&d->m);
	return NULL;
}

static void destroy_after_broadcast(void)
{
	enum { ROUNDS = 200, N = 4 };
	int bad = 0;

	stage("destroy after broadcast");
	for (int round = 0; round < ROUNDS; round++) {
		struct dround *d = calloc(1, sizeof *d);
		pthread_t th[N];

		pthread_mutex_init(&d->m, NULL);
		pthread_cond_init(&d->c, NULL);
		for (int i = 0; i < N; i++)
			pthread_create(&th[i], NULL, dwaiter, d);
		for (;;) {
			pthread_mutex_lock(&d->m);
			int in = d->in;
			if (in == N) {
				d->go = 1;
				pthread_cond_broadcast(&d->c);
				/* POSIX: destroying a condvar nobody waits on
				 * any more is fine, even while the woken are
				 * still on their way out. */
				pthread_mutex_unlock(&d->m);
				if (pthread_cond_destroy(&d->c) != 0)
					bad++;
				break;
			}
			pthread_mutex_unlock(&d->m);
			sched_yield();
		}
		for (int i = 0; i < N; i++)
			pthread_join(th[i], NULL);
		pthread_mutex_destroy(&d->m);
		free(d);
	}
	check(bad == 0, "destroy right after broadcast", "%d rounds failed", bad);
}

/* ---- mutex types ---- */

static void mutex_types(void)
{
	pthread_mutexattr_t a;
	pthread_mutex_t rec, ec;
	struct timespec ts = { 0, 0 };
	int r;

	stage("mutex types");
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&rec, &a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&ec, &a);
	pthread_mutexattr_destroy(&a);

	pthread_mutex_lock(&rec);
	r = pthread_cond_timedwait(&cv_rt, &rec, &ts);
	check(r == ETIMEDOUT, "timedwait with a recursive mutex held once", "%s", errname(-r));
	r = pthread_mutex_unlock(&rec);
	check(r == 0, "recursive mutex held once after the wait", "unlock %s", errname(-r));
	r = pthread_mutex_unlock(&rec);
	check(r == EPERM, "recursive mutex released", "second unlock %s", errname(-r));

	r = pthread_cond_wait(&cv_rt, &ec);
	check(r == EPERM, "wait with an errorcheck mutex not held", "%s", errname(-r));
	r = pthread_cond_timedwait(&cv_rt, &ec, &ts);
	check(r == EPERM || r == ETIMEDOUT, "timedwait with an errorcheck mutex not held",
	      "%s", errname(-r));
	pthread_mutex_lock(&ec);
	r = pthread_cond_timedwait(&cv_rt, &ec, &ts);
	check(r == ETIMEDOUT, "timedwait with an errorcheck mutex held", "%s", errname(-r));
	r = pthread_mutex_unlock(&ec);
	check(r == 0, "errorcheck mutex held after the wait", "unlock %s", errname(-r));
	pthread_mutex_destroy(&rec);
	pthread_mutex_destroy(&ec);
}

int main(void)
{
	pthread_condattr_t ca;

	watchdog(20);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv_mono, &ca);
	pthread_condattr_destroy(&ca);
	mixed_clocks();
	past_deadline();
	destroy_after_broadcast();
	mutex_types();
	printf("failures: %d\n", failures);
	return failures != 0;
}
