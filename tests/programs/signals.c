/* Signals and threads:
 *  1. pthread_kill to a running thread: the handler runs on that thread.
 *  2. pthread_kill to a thread blocked in pthread_cond_wait: the handler
 *     runs on that thread, by the time its wait returns.
 *  3. per-thread masks: with SIGUSR1 blocked in every thread but one,
 *     kill(getpid(), SIGUSR1) is handled by that one; a thread that
 *     blocks SIGUSR1 and sends it to itself has it pending (sigpending),
 *     across blocking points, until it unblocks it: then the handler runs
 *     on it before pthread_sigmask returns.
 *  4. sigwait in a dedicated thread, SIGUSR2 blocked in all threads (main
 *     blocks it before creating any): another thread sends
 *     kill(getpid(), SIGUSR2) three times with pauses; all three counted.
 *  5. raise() in a thread runs the handler on that thread, before raise
 *     returns, also after the thread blocked and woke up a few times.
 *  6. sigtimedwait with a short timeout returns EAGAIN; with the signal
 *     already sent to the thread it returns it at once.
 * Handlers record pthread_self(); every check compares it with the thread
 * that should have run it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "prog.h"

static _Atomic int usr1_count;
static _Atomic(pthread_t) usr1_self;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&usr1_self, pthread_self());
	atomic_fetch_add(&usr1_count, 1);
}

static void reset_usr1(void)
{
	atomic_store(&usr1_count, 0);
	atomic_store(&usr1_self, (pthread_t)0);
}

static int handled_by_me(int want_count)
{
	return atomic_load(&usr1_count) == want_count &&
	       pthread_equal(atomic_load(&usr1_self), pthread_self());
}

static void block_sig(int how, int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	pthread_sigmask(how, &s, NULL);
}

/* ping-pong with a partner thread: each call blocks and is woken by the
 * partner, so at GOMAXPROCS >= 2 under an M:N scheduler the caller often
 * resumes on another kernel thread */
static sem_t ping, pong;
static _Atomic int partner_stop;

static void *partner(void *arg)
{
	sigset_t all;
	(void)arg;
	sigfillset(&all); /* never a candidate for process-directed signals */
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		sem_wait(&ping);
		if (atomic_load(&partner_stop))
			return NULL;
		sem_post(&pong);
	}
}

static void bounce(int n)
{
	for (int i = 0; i < n; i++) {
		sem_post(&ping);
		sem_wait(&pong);
	}
}

/* runnable threads that keep yielding and wake whoever asks for a kick:
 * the woken thread often resumes on another kernel thread */
static _Atomic int yielder_stop, want_kick;
static sem_t kick;

static void *yielder(void *arg)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!atomic_load(&yielder_stop)) {
		sched_yield();
		if (atomic_exchange(&want_kick, 0))
			sem_post(&kick);
	}
	return arg;
}

/* ---- 1. a running thread ---------------------------------------------- */
static _Atomic int spinning;

static void *spinner(void *arg)
{
	(void)arg;
	atomic_store(&spinning, 1);
	while (atomic_load(&usr1_count) == 0)
		sched_yield();
	if (!handled_by_me(1))
		fprintf(stderr, "1: count %d, on this thread %d\n", atomic_load(&usr1_count),
			pthread_equal(atomic_load(&usr1_self), pthread_self()) != 0);
	return (void *)(intptr_t)handled_by_me(1);
}

static void test_running(void)
{
	pthread_t t;
	void *ok;

	reset_usr1();
	pthread_create(&t, NULL, spinner, NULL);
	while (!atomic_load(&spinning))
		sched_yield();
	pthread_kill(t, SIGUSR1);
	pthread_join(t, &ok);
	check_true("1. pthread_kill to a running thread: handler on that thread", ok != NULL);
}

/* ---- 2. a thread blocked in pthread_cond_wait -------------------------- */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int waiting, go;

static void *cond_waiter(void *arg)
{
	(void)arg;
	int ok;
	pthread_mutex_lock(&mu);
	waiting = 1;
	pthread_cond_broadcast(&cv);
	while (!go)
		pthread_cond_wait(&cv, &mu);
	/* the handler has run, on this thread, by the time the wait is over */
	ok = handled_by_me(1);
	if (!ok)
		fprintf(stderr, "2: after the wait: count %d, on this thread %d\n",
			atomic_load(&usr1_count),
			pthread_equal(atomic_load(&usr1_self), pthread_self()) != 0);
	pthread_mutex_unlock(&mu);
	return (void *)(intptr_t)ok;
}

static void test_cond_waiter(void)
{
	pthread_t t;
	void *ok;

	reset_usr1();
	pthread_create(&t, NULL, cond_waiter, NULL);
	pthread_mutex_lock(&mu);
	while (!waiting)
		pthread_cond_wait(&cv, &mu);
	/* it is inside pthread_cond_wait now (it released the mutex there) */
	pthread_kill(t, SIGUSR1);
	pthread_mutex_unlock(&mu);
	bounce(20); /* give it time to take the signal natively */
	pthread_mutex_lock(&mu);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(t, &ok);
	check_true("2. pthread_kill to a thread in pthread_cond_wait: handler on it", ok != NULL);
}

/* ---- 3. per-thread masks ------------------------------------------------ */
static sem_t unblocked_ready, blocked_ready, done3;
static _Atomic(pthread_t) receiver;

static void *unblocked_thread(void *arg)
{
	(void)arg;
	block_sig(SIG_UNBLOCK, SIGUSR1);
	atomic_store(&receiver, pthread_self());
	sem_post(&unblocked_ready);
	/* stay runnable until the process-directed signal arrives */
	while (atomic_load(&usr1_count) == 0)
		sched_yield();
	return (void *)(intptr_t)handled_by_me(1);
}

static void *blocked_thread(void *arg)
{
	(void)arg;
	sigset_t pend;
	int ok = 1;

	/* SIGUSR1 stays blocked here (inherited from main) */
	sem_post(&blocked_ready);
	sem_wait(&done3);
	ok &= atomic_load(&usr1_count) == 1; /* it did not come here */
	/* sent to itself while blocked: pending for this thread, across
	 * blocking points, not taken by anyone else */
	reset_usr1();
	pid_t tid = gettid();
	pthread_kill(pthread_self(), SIGUSR1);
	/* block and wake until this thread resumes on another kernel thread
	 * (never natively; soon at GOMAXPROCS >= 2 under an M:N scheduler,
	 * where one of two yielding threads wakes us, often from the other
	 * kernel thread) */
	pthread_t y[2];
	atomic_store(&yielder_stop, 0);
	pthread_create(&y[0], NULL, yielder, NULL);
	pthread_create(&y[1], NULL, yielder, NULL);
	for (int i = 0; i < 20000 && gettid() == tid; i++) {
		atomic_store(&want_kick, 1);
		sem_wait(&kick);
	}
	sigemptyset(&pend);
	sigpending(&pend);
	if (sigismember(&pend, SIGUSR1) != 1)
		ok = 0, fprintf(stderr, "3b: SIGUSR1 not in sigpending()\n");
	if (atomic_load(&usr1_count) != 0)
		ok = 0, fprintf(stderr, "3b: handled while blocked\n");
	/* unblocking delivers it, here, before pthread_sigmask returns */
	block_sig(SIG_UNBLOCK, SIGUSR1);
	if (!handled_by_me(1))
		ok = 0, fprintf(stderr, "3b: after unblocking: count %d, on this thread %d\n",
				atomic_load(&usr1_count),
				pthread_equal(atomic_load(&usr1_self), pthread_self()) != 0);
	block_sig(SIG_BLOCK, SIGUSR1);
	atomic_store(&yielder_stop, 1);
	pthread_join(y[0], NULL);
	pthread_join(y[1], NULL);
	return (void *)(intptr_t)ok;
}

static void test_masks(void)
{
	pthread_t a, b;
	void *ok_a, *ok_b;

	/* main blocks SIGUSR1; b inherits that; a unblocks it */
	block_sig(SIG_BLOCK, SIGUSR1);
	reset_usr1();
	pthread_create(&b, NULL, blocked_thread, NULL);
	sem_wait(&blocked_ready);
	pthread_create(&a, NULL, unblocked_thread, NULL);
	sem_wait(&unblocked_ready);
	kill(getpid(), SIGUSR1);
	pthread_join(a, &ok_a);
	/* POSIX: some thread that does not block it.  Under gshim that may
	 * also be an idle M's scheduler context (docs/compat.md), so what is
	 * checked is that the blocked thread b never got it and it was
	 * handled exactly once. */
	(void)ok_a;
	check_true("3a. kill(getpid()) handled once, not by the thread blocking it",
	       atomic_load(&usr1_count) == 1 && !pthread_equal(atomic_load(&usr1_self), b));
	sem_post(&done3);
	pthread_join(b, &ok_b);
	check_true("3b. blocked: pending for the thread, handled when it unblocks", ok_b != NULL);
	block_sig(SIG_UNBLOCK, SIGUSR1);
}

/* ---- 4. sigwait ---------------------------------------------------------- */
static sem_t counted;
static _Atomic int sigwait_count;

static void *sigwaiter(void *arg)
{
	(void)arg;
	sigset_t s;
	int sig, ok = 1;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	for (int i = 0; i < 3; i++) {
		if (sigwait(&s, &sig) != 0 || sig != SIGUSR2)
			ok = 0;
		atomic_fetch_add(&sigwait_count, 1);
		sem_post(&counted);
	}
	return (void *)(intptr_t)ok;
}

static void *sender(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++) {
		usleep(20000);
		kill(getpid(), SIGUSR2);
		sem_wait(&counted); /* standard signals do not queue */
		bounce(5);
	}
	return NULL;
}

static void test_sigwait(void)
{
	pthread_t w, s;
	void *ok;

	pthread_create(&w, NULL, sigwaiter, NULL);
	pthread_create(&s, NULL, sender, NULL);
	pthread_join(s, NULL);
	pthread_join(w, &ok);
	check_true("4. sigwait thread counted 3 process-directed SIGUSR2",
	       ok != NULL && atomic_load(&sigwait_count) == 3);
}

/* ---- 5. raise ------------------------------------------------------------ */
static void *raiser(void *arg)
{
	int ok = 1;
	(void)arg;
	for (int i = 1; i <= 10; i++) {
		raise(SIGUSR1);
		ok &= handled_by_me(i);
		bounce(3);
	}
	return (void *)(intptr_t)ok;
}

static void test_raise(void)
{
	pthread_t t[4];
	void *ok;
	int all = 1;

	/* one at a time: the count is shared */
	for (int i = 0; i < 4; i++) {
		reset_usr1();
		pthread_create(&t[i], NULL, raiser, NULL);
		pthread_join(t[i], &ok);
		all &= ok != NULL;
	}
	check_true("5. raise() in a thread: handler on that thread, before it returns", all);
}

/* ---- 6. sigtimedwait --------------------------------------------------- */
/* errno read and cleared out of line: __errno_location is a const
 * function, so GCC may compute &errno once before the call and read it
 * after.  With GSHIM_TLS=shared a thread that waited can resume on
 * another kernel thread, whose errno is elsewhere (docs/compat.md, TLS in
 * shared mode: code that caches &errno); errno_tls tests that case. */
static __attribute__((noinline)) int errno_now(void) { return errno; }
static __attribute__((noinline)) void errno_clear(void) { errno = 0; }

static void *timed_waiter(void *arg)
{
	(void)arg;
	sigset_t s;
	siginfo_t si;
	struct timespec ts = {0, 20 * 1000 * 1000};
	int ok = 1;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	errno_clear();
	ok &= sigtimedwait(&s, &si, &ts) == -1 && errno_now() == EAGAIN;
	bounce(5);
	pthread_kill(pthread_self(), SIGUSR2);
	bounce(5);
	memset(&si, 0, sizeof si);
	ok &= sigtimedwait(&s, &si, &ts) == SIGUSR2 && si.si_signo == SIGUSR2;
	errno_clear();
	ok &= sigtimedwait(&s, &si, &ts) == -1 && errno_now() == EAGAIN;
	return (void *)(intptr_t)ok;
}

static void test_sigtimedwait(void)
{
	pthread_t t;
	void *ok;

	pthread_create(&t, NULL, timed_waiter, NULL);
	pthread_join(t, &ok);
	check_true("6. sigtimedwait: EAGAIN after the timeout, a pending one at once", ok != NULL);
}

int main(void)
{
	struct sigaction sa;
	pthread_t p;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	/* SIGUSR2 only ever waited for: blocked everywhere, from the start */
	block_sig(SIG_BLOCK, SIGUSR2);
	sem_init(&ping, 0, 0);
	sem_init(&pong, 0, 0);
	sem_init(&unblocked_ready, 0, 0);
	sem_init(&blocked_ready, 0, 0);
	sem_init(&done3, 0, 0);
	sem_init(&counted, 0, 0);
	sem_init(&kick, 0, 0);
	pthread_create(&p, NULL, partner, NULL);

	test_running();
	test_cond_waiter();
	test_masks();
	test_sigwait();
	test_raise();
	test_sigtimedwait();

	atomic_store(&partner_stop, 1);
	sem_post(&ping);
	pthread_join(p, NULL);
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
