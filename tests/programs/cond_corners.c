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
 *   - signals (thread- and process-directed) do not wake a waiter
 *   - destroy of a mutex a condvar waiter uses: EBUSY
 */
#include "prog.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_rt = PTHREAD_COND_INITIALIZER, cv_mono;
static int go, woken, ready;

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
			ts = in_ms(CLOCK_REALTIME, 60 * 1000);
			r = pthread_cond_timedwait(&cv_rt, &mx, &ts);
			break;
		case W_CLOCK_MONO:
			ts = in_ms(CLOCK_MONOTONIC, 60 * 1000);
			r = pthread_cond_clockwait(&cv_rt, &mx, CLOCK_MONOTONIC, &ts);
			break;
		case W_CLOCK_RT:
			ts = in_ms(CLOCK_REALTIME, 60 * 1000);
			r = pthread_cond_clockwait(&cv_rt, &mx, CLOCK_REALTIME, &ts);
			break;
		case W_MONO_CV:
			ts = in_ms(CLOCK_MONOTONIC, 60 * 1000);
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

/* Signals do not wake a condvar wait: glibc restarts its futex wait
 * after a handler, so a waiter that gets a signal every millisecond stays
 * asleep until it is signalled (glibc tst-eintr5).  Both an untimed and a
 * timed wait, a thread-directed and a process-directed signal. */
static volatile sig_atomic_t usr1_seen;
static int sig_woken;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen++;
}

static void *sig_waiter(void *arg)
{
	struct timespec far = in_ms(CLOCK_REALTIME, 1000 * 1000);
	int timed = (int)(intptr_t)arg, r = 0;
	sigset_t ss;

	/* created with the main thread's mask, which blocks it */
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
	pthread_mutex_lock(&mx);
	ready = 1;
	while (!go) {
		r = timed ? pthread_cond_timedwait(&cv_rt, &mx, &far) : pthread_cond_wait(&cv_rt, &mx);
		if (r != 0)
			break;
		if (!go)
			sig_woken++;   /* returned with nothing signalled */
	}
	pthread_mutex_unlock(&mx);
	return (void *)(intptr_t)r;
}

static void signals_do_not_wake(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	for (int timed = 0; timed < 2; timed++)
		for (int directed = 0; directed < 2; directed++) {
			pthread_t t;
			sigset_t ss;
			void *rv;
			char what[96];

			go = ready = sig_woken = 0;
			usr1_seen = 0;
			/* the main thread blocks it: a kill() goes to the waiter */
			sigemptyset(&ss);
			sigaddset(&ss, SIGUSR1);
			pthread_sigmask(SIG_BLOCK, &ss, NULL);
			pthread_create(&t, NULL, sig_waiter, (void *)(intptr_t)timed);
			while (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
				sched_yield();
			for (int i = 0; i < 200; i++) {
				if (directed)
					pthread_kill(t, SIGUSR1);
				else
					kill(getpid(), SIGUSR1);
				usleep(1000);
			}
			pthread_mutex_lock(&mx);
			go = 1;
			pthread_cond_broadcast(&cv_rt);
			pthread_mutex_unlock(&mx);
			pthread_join(t, &rv);
			pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
			snprintf(what, sizeof what, "%s wait, %s signals: no wake-up but the broadcast",
			         timed ? "timed" : "untimed", directed ? "thread-directed" : "process-directed");
			check(rv == NULL && sig_woken == 0 && usr1_seen > 0, what,
			      "returned %d, woken %d times without a signal, %d handlers ran",
			      (int)(intptr_t)rv, sig_woken, (int)usr1_seen);
		}
	signal(SIGUSR1, SIG_DFL);
}

/* A mutex a condvar waiter uses cannot be destroyed: EBUSY, although it
 * is unlocked while the waiter sleeps (glibc counts it in __nusers;
 * tst-mutex8), for each non-robust type; after the waiter leaves, 0. */
static pthread_mutex_t cvm;
static pthread_cond_t cvc = PTHREAD_COND_INITIALIZER;
static int cv_done, cv_in;

static void *cv_user(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&cvm);
	cv_in = 1;
	while (!cv_done)
		pthread_cond_wait(&cvc, &cvm);
	pthread_mutex_unlock(&cvm);
	return NULL;
}

static void destroy_in_use(void)
{
	static const int types[] = { PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_RECURSIVE,
	                             PTHREAD_MUTEX_ERRORCHECK };
	static const char *names[] = { "normal", "recursive", "errorcheck" };

	for (int i = 0; i < 3; i++) {
		pthread_mutexattr_t ma;
		pthread_t t;
		char what[96];
		int busy, in;

		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, types[i]);
		pthread_mutex_init(&cvm, &ma);
		pthread_mutexattr_destroy(&ma);
		cv_done = cv_in = 0;
		pthread_create(&t, NULL, cv_user, NULL);
		do {
			pthread_mutex_lock(&cvm);
			in = cv_in;
			pthread_mutex_unlock(&cvm);
			if (!in)
				sched_yield();
		} while (!in);
		/* the waiter is inside pthread_cond_wait now: mutex unlocked */
		busy = pthread_mutex_destroy(&cvm);
		pthread_mutex_lock(&cvm);
		cv_done = 1;
		pthread_cond_signal(&cvc);
		pthread_mutex_unlock(&cvm);
		pthread_join(t, NULL);
		snprintf(what, sizeof what, "destroy of a %s mutex a condvar waiter uses", names[i]);
		check(busy == EBUSY, what, "returned %d, want EBUSY", busy);
		snprintf(what, sizeof what, "destroy of that %s mutex once the waiter left", names[i]);
		busy = pthread_mutex_destroy(&cvm);
		check(busy == 0, what, "returned %d", busy);
	}
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
	signals_do_not_wake();
	destroy_in_use();
	printf("failures: %d\n", failures);
	return failures != 0;
}
