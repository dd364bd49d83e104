/* Process-directed signals (kill(getpid(), sig)) reach the one thread that
 * does not block them, interrupting what it waits in, as natively.
 *
 * In each case every thread but the target T blocks SIGUSR1 (main blocks
 * it before creating any thread); T waits in one call; ~50 ms later main
 * sends kill(getpid(), SIGUSR1).  The handler (no SA_RESTART) must run
 * once, on T, and the call must end as Linux ends it:
 *   A. nanosleep(5 s)                  -1 EINTR, remaining time 2.5..5 s (load)
 *   B. clock_nanosleep(MONOTONIC, 5 s)  EINTR, remaining time 2.5..5 s (load)
 *   C. clock_nanosleep(TIMER_ABSTIME)   EINTR
 *   D. usleep(5 s)                     -1 EINTR
 *   E. pause()                         -1 EINTR
 *   F. sigsuspend(empty set) while T blocks SIGUSR1 otherwise: -1 EINTR
 *   G. pthread_cond_wait: the handler runs on T while it still waits
 * and with SIGUSR2 blocked in every thread:
 *   H. sigwait / sigwaitinfo / sigtimedwait in T return SIGUSR2 (si_pid
 *      is this process);
 *   I. sigpending() in any thread shows a SIGUSR2 nobody waits for, and a
 *      later sigwait takes it.
 * Dispositions:
 *   J. SIGUSR1 ignored: T's 200 ms sleep is not cut short;
 *   K. SIGTERM default in a forked child whose only thread not blocking it
 *      sleeps: the child dies of SIGTERM (not a hang).
 *   L. 200 signals one after another (each waited for) to a T that sleeps
 *      and waits on a condvar in turn: all handled on T.
 *   M. 5 real-time signals sent at once to a sleeping T: all 5 handled
 *      (they queue).
 * Thread-directed odds and ends:
 *   N. raise() of a signal the thread blocks: pending (sigpending) across
 *      blocking points, handled on it when it unblocks it;
 *   O. pthread_kill to a thread that has exited but is not joined: 0;
 *   P. sigprocmask in a thread changes that thread's mask only.
 */
#include "prog.h"
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/wait.h>

static _Atomic int handled, rt_handled;
static _Atomic(pthread_t) handler_self;
static sem_t handled_sem;

static void on_sig(int sig)
{
	(void)sig;
	atomic_store(&handler_self, pthread_self());
	atomic_fetch_add(&handled, 1);
	sem_post(&handled_sem);
}

static void on_rt(int sig)
{
	(void)sig;
	if (pthread_equal(pthread_self(), atomic_load(&handler_self)))
		atomic_fetch_add(&rt_handled, 1);
}

static void install(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void mask(int how, int sig)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, sig);
	pthread_sigmask(how, &s, NULL);
}

static int blocks(int sig)
{
	sigset_t s;

	pthread_sigmask(SIG_BLOCK, NULL, &s);
	return sigismember(&s, sig);
}

/* ---- one target thread in one call ------------------------------------- */
enum op { NANOSLEEP, CLOCK_REL, CLOCK_ABS, USLEEP, PAUSE, SIGSUSPEND, COND };

struct target {
	enum op op;
	_Atomic int in;        /* about to enter the call */
	long ret;              /* -errno or result */
	double left_s;         /* remaining time reported */
	int handled_at_return;
	int handler_was_me;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cond_go;

static void *target(void *arg)
{
	struct target *t = arg;
	struct timespec req = { 5, 0 }, rem = { 0, 0 }, abs;
	sigset_t none;

	if (t->op != SIGSUSPEND)
		mask(SIG_UNBLOCK, SIGUSR1);
	atomic_store(&handler_self, (pthread_t)0);
	atomic_store(&t->in, 1);
	switch (t->op) {
	case NANOSLEEP:
		t->ret = ERR(nanosleep(&req, &rem));
		break;
	case CLOCK_REL:
		t->ret = -clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
		break;
	case CLOCK_ABS:
		clock_gettime(CLOCK_MONOTONIC, &abs);
		abs.tv_sec += 5;
		t->ret = -clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
		break;
	case USLEEP:
		t->ret = ERR(usleep(5000000));
		break;
	case PAUSE:
		t->ret = ERR(pause());
		break;
	case SIGSUSPEND:
		sigemptyset(&none);
		t->ret = ERR(sigsuspend(&none));
		break;
	case COND:
		pthread_mutex_lock(&mu);
		while (!cond_go)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		t->ret = 0;
		break;
	}
	t->left_s = rem.tv_sec + rem.tv_nsec / 1e9;
	t->handled_at_return = atomic_load(&handled);
	t->handler_was_me = pthread_equal(atomic_load(&handler_self), pthread_self());
	return NULL;
}

static void run_target(enum op op, const char *what)
{
	struct target t = { .op = op };
	pthread_t th;
	double t0;

	stage(what);
	atomic_store(&handled, 0);
	pthread_create(&th, NULL, target, &t);
	while (!atomic_load(&t.in))
		sleep_ms(1);
	sleep_ms(50);
	t0 = now_ms();
	kill(getpid(), SIGUSR1);
	if (op == COND) {
		int ok;

		/* handled on T while it still waits */
		while (atomic_load(&handled) == 0 && now_ms() - t0 < 3000)
			sleep_ms(1);
		ok = atomic_load(&handled) == 1 &&
		     pthread_equal(atomic_load(&handler_self), th);
		pthread_mutex_lock(&mu);
		cond_go = 1;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		pthread_join(th, NULL);
		cond_go = 0;
		check(ok && t.handler_was_me, what, "handled %d time(s), on the waiter %d",
		      atomic_load(&handled), t.handler_was_me);
		return;
	}
	pthread_join(th, NULL);
	note("%s: %ld after %.1f ms", what, t.ret, now_ms() - t0);
	if (op == NANOSLEEP || op == CLOCK_REL)
		check(t.ret == -EINTR && t.handled_at_return == 1 && t.handler_was_me &&
		      t.left_s > 2.5 && t.left_s <= 5.0,
		      what, "returned %ld (%s), handled %d time(s), on it %d, %.3f s left",
		      t.ret, errname(t.ret), t.handled_at_return, t.handler_was_me, t.left_s);
	else
		check(t.ret == -EINTR && t.handled_at_return == 1 && t.handler_was_me, what,
		      "returned %ld (%s), handled %d time(s), on it %d",
		      t.ret, errname(t.ret), t.handled_at_return, t.handler_was_me);
}

/* ---- H, I: sigwait family, sigpending ---------------------------------- */
enum wop { SIGWAIT, SIGWAITINFO, SIGTIMEDWAIT };
struct waiter { enum wop op; _Atomic int in; int sig; pid_t pid; long err; };

static void *waiter(void *arg)
{
	struct waiter *w = arg;
	sigset_t s;
	siginfo_t si;
	struct timespec ts = { 5, 0 };

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	memset(&si, 0, sizeof si);
	atomic_store(&w->in, 1);
	switch (w->op) {
	case SIGWAIT:
		if (sigwait(&s, &w->sig))
			w->sig = -1;
		w->pid = getpid();
		break;
	case SIGWAITINFO:
		w->err = ERR(sigwaitinfo(&s, &si));
		w->sig = (int)w->err;
		w->pid = si.si_pid;
		break;
	case SIGTIMEDWAIT:
		w->err = ERR(sigtimedwait(&s, &si, &ts));
		w->sig = (int)w->err;
		w->pid = si.si_pid;
		break;
	}
	return NULL;
}

static void run_waiter(enum wop op, const char *what)
{
	struct waiter w = { .op = op };
	pthread_t th;

	stage(what);
	pthread_create(&th, NULL, waiter, &w);
	while (!atomic_load(&w.in))
		sleep_ms(1);
	sleep_ms(50);
	kill(getpid(), SIGUSR2);
	pthread_join(th, NULL);
	check(w.sig == SIGUSR2 && w.pid == getpid(), what, "returned %d (%s), si_pid %d", w.sig,
	      errname(w.err), (int)w.pid);
}

static void *pending_checker(void *arg)
{
	sigset_t p;

	(void)arg;
	sigpending(&p);
	return (void *)(intptr_t)sigismember(&p, SIGUSR2);
}

static void test_pending(void)
{
	pthread_t th;
	void *seen;
	sigset_t s, p;
	int sig = 0;

	stage("I: sigpending");
	kill(getpid(), SIGUSR2);
	sleep_ms(20);
	pthread_create(&th, NULL, pending_checker, NULL);
	pthread_join(th, &seen);
	sigpending(&p);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigwait(&s, &sig);
	sigpending(&p);
	check(seen == (void *)1 && sig == SIGUSR2 && !sigismember(&p, SIGUSR2),
	      "I. process-pending SIGUSR2: in sigpending() of a thread, taken by sigwait",
	      "seen %p, sigwait %d, still pending %d", seen, sig, sigismember(&p, SIGUSR2));
}

/* ---- J: ignored --------------------------------------------------------- */
static void *short_sleeper(void *arg)
{
	struct timespec d = { 0, 200 * 1000 * 1000 };

	mask(SIG_UNBLOCK, SIGUSR1);
	atomic_store((_Atomic int *)arg, 1);
	return (void *)ERR(nanosleep(&d, NULL));
}

static void test_ignored(void)
{
	_Atomic int in = 0;
	pthread_t th;
	void *r;

	stage("J: SIG_IGN");
	install(SIGUSR1, (void (*)(int))SIG_IGN);
	pthread_create(&th, NULL, short_sleeper, (void *)&in);
	while (!atomic_load(&in))
		sleep_ms(1);
	sleep_ms(20);
	kill(getpid(), SIGUSR1);
	pthread_join(th, &r);
	check(r == NULL, "J. SIGUSR1 ignored: the sleeping thread's nanosleep completes",
	      "returned %ld", (long)(intptr_t)r);
	install(SIGUSR1, on_sig);
}

/* ---- K: default action in a child ---------------------------------------- */
static void *term_sleeper(void *arg)
{
	(void)arg;
	mask(SIG_UNBLOCK, SIGTERM);
	for (;;)
		sleep_ms(10000);
	return NULL;
}

static void test_default(void)
{
	pid_t pid;
	int st = 0, p[2];
	char c;

	stage("K: SIGTERM default in a child");
	if (pipe(p))
		abort();
	pid = fork();
	if (pid == 0) {
		pthread_t th;
		struct timespec d = { 10, 0 };

		mask(SIG_BLOCK, SIGTERM);
		pthread_create(&th, NULL, term_sleeper, NULL);
		if (write(p[1], "x", 1) != 1)
			_exit(5);
		nanosleep(&d, NULL);
		_exit(4);   /* not killed */
	}
	if (read(p[0], &c, 1) != 1)
		abort();
	sleep_ms(50);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	close(p[0]);
	close(p[1]);
	check(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
	      "K. SIGTERM (default action) to a process whose one accepting thread sleeps: dies of it",
	      "status 0x%x", st);
}

/* ---- L: many, one after another ----------------------------------------- */
static _Atomic int l_stop;

static void *busy_target(void *arg)
{
	(void)arg;
	mask(SIG_UNBLOCK, SIGUSR1);
	atomic_store(&handler_self, pthread_self());
	while (!atomic_load(&l_stop)) {
		struct timespec d = { 0, 2 * 1000 * 1000 }, ts;

		nanosleep(&d, NULL);
		pthread_mutex_lock(&mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 2 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000)
			ts.tv_sec++, ts.tv_nsec -= 1000000000;
		pthread_cond_timedwait(&cv, &mu, &ts);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

static void test_many(void)
{
	pthread_t th;
	int on_it = 0, done = 0;
	struct timespec lim;

	stage("L: 200 signals");
	atomic_store(&handled, 0);
	while (sem_trywait(&handled_sem) == 0)
		;
	atomic_store(&handler_self, (pthread_t)0);
	pthread_create(&th, NULL, busy_target, NULL);
	while (!pthread_equal(atomic_load(&handler_self), th))
		sleep_ms(1);
	for (int i = 0; i < 200; i++) {
		atomic_store(&handler_self, (pthread_t)0);
		kill(getpid(), SIGUSR1);
		clock_gettime(CLOCK_REALTIME, &lim);
		lim.tv_sec += 3;
		while (sem_timedwait(&handled_sem, &lim) != 0 && errno == EINTR)
			;
		done++;
		on_it += pthread_equal(atomic_load(&handler_self), th);
	}
	atomic_store(&l_stop, 1);
	pthread_join(th, NULL);
	check(on_it == 200 && atomic_load(&handled) == 200,
	      "L. 200 kill(getpid()) one after another: each handled on the sleeping/waiting thread",
	      "%d of %d on it, %d handled", on_it, done, atomic_load(&handled));
}

/* ---- M: real-time signals queue ------------------------------------------ */
static void *rt_target(void *arg)
{
	struct timespec d = { 0, 300 * 1000 * 1000 };

	mask(SIG_UNBLOCK, SIGRTMIN);
	atomic_store(&handler_self, pthread_self());
	atomic_store((_Atomic int *)arg, 1);
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
	return NULL;
}

static void test_rt(void)
{
	_Atomic int in = 0;
	pthread_t th;

	stage("M: real-time signals");
	install(SIGRTMIN, on_rt);
	mask(SIG_BLOCK, SIGRTMIN);
	pthread_create(&th, NULL, rt_target, (void *)&in);
	while (!atomic_load(&in))
		sleep_ms(1);
	sleep_ms(20);
	for (int i = 0; i < 5; i++)
		kill(getpid(), SIGRTMIN);
	pthread_join(th, NULL);
	check(atomic_load(&rt_handled) == 5,
	      "M. 5 SIGRTMIN to a sleeping thread: all 5 handled on it",
	      "%d handled", atomic_load(&rt_handled));
}

/* ---- N, O, P -------------------------------------------------------------- */
static void *raiser(void *arg)
{
	sigset_t p;
	int ok = 1;

	(void)arg;
	atomic_store(&handled, 0);
	raise(SIGUSR1);   /* blocked here (inherited from main) */
	for (int i = 0; i < 20; i++)
		sched_yield(), sleep_ms(1);
	sigpending(&p);
	ok &= sigismember(&p, SIGUSR1) == 1 && atomic_load(&handled) == 0;
	mask(SIG_UNBLOCK, SIGUSR1);
	ok &= atomic_load(&handled) == 1 &&
	      pthread_equal(atomic_load(&handler_self), pthread_self());
	mask(SIG_BLOCK, SIGUSR1);
	return (void *)(intptr_t)ok;
}

static void *quick(void *arg)
{
	atomic_store((_Atomic int *)arg, 1);
	return NULL;
}

static void *masker(void *arg)
{
	(void)arg;
	sigprocmask(SIG_BLOCK, &(sigset_t){ { 1ul << (SIGWINCH - 1) } }, NULL);
	return (void *)(intptr_t)blocks(SIGWINCH);
}

static void test_thread_directed(void)
{
	pthread_t th;
	void *ok;
	_Atomic int ran = 0;
	int r;

	stage("N: raise blocked");
	pthread_create(&th, NULL, raiser, NULL);
	pthread_join(th, &ok);
	check(ok != NULL, "N. raise() of a blocked signal: pending across blocking points, handled on unblock",
	      "no");

	stage("O: pthread_kill exited");
	pthread_create(&th, NULL, quick, (void *)&ran);
	while (!atomic_load(&ran))
		sleep_ms(1);
	sleep_ms(50);
	r = pthread_kill(th, 0);
	int r2 = pthread_kill(th, SIGUSR1);
	pthread_join(th, NULL);
	check(r == 0 && r2 == 0, "O. pthread_kill to an exited, unjoined thread: 0",
	      "%d %d", r, r2);

	stage("P: sigprocmask per thread");
	pthread_create(&th, NULL, masker, NULL);
	pthread_join(th, &ok);
	check(ok == (void *)1 && !blocks(SIGWINCH),
	      "P. sigprocmask in a thread: that thread's mask only", "thread %p main %d", ok,
	      blocks(SIGWINCH));
}

int main(void)
{
	watchdog(20);
	sem_init(&handled_sem, 0, 0);
	install(SIGUSR1, on_sig);
	mask(SIG_BLOCK, SIGUSR1);
	mask(SIG_BLOCK, SIGUSR2);

	run_target(NANOSLEEP, "A. nanosleep: -1 EINTR, time left, handler once on the sleeper");
	run_target(CLOCK_REL, "B. clock_nanosleep: EINTR, time left, handler once on the sleeper");
	run_target(CLOCK_ABS, "C. clock_nanosleep(TIMER_ABSTIME): EINTR, handler once on the sleeper");
	run_target(USLEEP, "D. usleep: -1 EINTR, handler once on the sleeper");
	run_target(PAUSE, "E. pause: -1 EINTR, handler once on it");
	run_target(SIGSUSPEND, "F. sigsuspend(empty): -1 EINTR, handler once on it");
	run_target(COND, "G. pthread_cond_wait: handler on the waiter while it waits");
	run_waiter(SIGWAIT, "H1. sigwait: returns the process-directed SIGUSR2");
	run_waiter(SIGWAITINFO, "H2. sigwaitinfo: returns it, si_pid this process");
	run_waiter(SIGTIMEDWAIT, "H3. sigtimedwait: returns it, si_pid this process");
	test_pending();
	test_ignored();
	test_default();
	test_many();
	test_rt();
	test_thread_directed();
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
