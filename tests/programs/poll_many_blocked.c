/* poll, ppoll, select and pselect on several descriptors.  Each answer is
 * what Linux gives natively (under gshim they park on the poller and ask
 * the kernel again after every wake-up):
 *
 *  4. SIGUSR1 (handler installed WITH SA_RESTART) sent with pthread_kill
 *     to a thread blocked on an empty pipe: poll, ppoll, select and pselect
 *     return -1 EINTR at the signal (never restarted: data written 50 ms
 *     later is not waited for), the handler ran once, on that thread;
 *     select writes the time left back then too.
 *  5. pthread_cancel of a thread blocked in poll(-1) / select(NULL): the
 *     thread is cancelled (join: PTHREAD_CANCELED) promptly.
 *  6. 300 threads each poll two pipes of their own (infinite timeout)
 *     beside a thread that spins; the main thread writes one byte into one
 *     of each thread's pipes; each sees exactly that one ready and reads
 *     its byte.  Under gshim (with a poller, and GSHIM_IO=epoll takes the
 *     plain call for more than one descriptor) the process has < 50 kernel
 *     threads while the 300 wait.
 * A thread waits in read() the whole time: under gshim a program with a
 * single thread makes the plain calls, so every call here has company.
 *
 * Parts 4 to 6 of poll_many.c's numbering (parts 1-3, 7 and 8 are in
 * poll_many.c); helpers shared with it in poll_many.h. */
#include "poll_many.h"

/* ---- 4: a signal handler interrupts the wait ---------------------------------- */
static _Atomic int handled;
static _Atomic(pthread_t) handler_self;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&handler_self, pthread_self());
	atomic_fetch_add(&handled, 1);
}

struct blocked {
	enum call call;
	int fd;
	_Atomic int entering, finished;
	long ret;
	double t0, took_ms; /* now_ms() before the call; how long it lasted */
	int handled_at_return, handler_was_me;
	struct timeval tv;  /* select's, after the call */
	struct timespec ts; /* ppoll's and pselect's, after the call */
	short revents;
};

/* the call on b->fd (POLLIN / read set); timeout: 5 s for select, ppoll
 * and pselect; poll: none, or 5 s if finite */
static long blocked_call(struct blocked *b, int finite)
{
	struct pollfd pf = { .fd = b->fd, .events = POLLIN };
	fd_set rd;
	long r;

	b->tv = (struct timeval){ 5, 0 };
	b->ts = (struct timespec){ 5, 0 };
	FD_ZERO(&rd);
	FD_SET(b->fd, &rd);
	switch (b->call) {
	case C_POLL: r = ERR(poll(&pf, 1, finite ? 5000 : -1)); break;
	case C_PPOLL: r = ERR(ppoll(&pf, 1, finite ? &b->ts : NULL, NULL)); break;
	case C_SELECT: r = ERR(select(b->fd + 1, &rd, NULL, NULL, finite ? &b->tv : NULL)); break;
	default: r = ERR(pselect(b->fd + 1, &rd, NULL, NULL, finite ? &b->ts : NULL, NULL)); break;
	}
	b->revents = pf.revents;
	return r;
}

static void *eintr_main(void *arg)
{
	struct blocked *b = arg;

	b->t0 = now_ms();
	atomic_store(&b->entering, 1);
	b->ret = blocked_call(b, b->call != C_POLL);
	b->took_ms = now_ms() - b->t0;
	b->handled_at_return = atomic_load(&handled);
	b->handler_was_me = pthread_equal(atomic_load(&handler_self), pthread_self());
	return NULL;
}

static void test_eintr(enum call c)
{
	struct sigaction sa;
	struct blocked b = { .call = c };
	pthread_t t;
	double left, kill_at, write_at;
	int p[2], ok;
	char what[160];

	stage("4: a signal handler (SA_RESTART) interrupts the wait");
	mkpipe(p);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	atomic_store(&handled, 0);
	atomic_store(&handler_self, (pthread_t)0);
	b.fd = p[0];
	pthread_create(&t, NULL, eintr_main, &b);
	while (!atomic_load(&b.entering))
		sleep_ms(1);
	sleep_ms(KICK_MS);
	kill_at = now_ms() - b.t0;
	pthread_kill(t, SIGUSR1);
	/* data after the signal: a call restarted by mistake returns it
	 * (and fails the check) instead of hanging */
	sleep_ms(KICK_MS);
	write_at = now_ms() - b.t0;
	if (write(p[1], "z", 1) != 1)
		abort();
	pthread_join(t, NULL);
	left = b.tv.tv_sec + b.tv.tv_usec / 1e6;
	note("%s interrupted: %ld (%s) after %.1f ms (signal sent at %.1f ms, data at %.1f ms), handler ran %d time(s), timeval left %.6f s, timespec {%ld, %ld}",
	     call_name[c], b.ret, errname(b.ret), b.took_ms, kill_at, write_at,
	     atomic_load(&handled), left, (long)b.ts.tv_sec, b.ts.tv_nsec);
	/* returns at the signal, not later (at the data) */
	ok = b.ret == -EINTR && b.took_ms >= kill_at && b.took_ms < kill_at + SLACK_MS &&
	     b.handled_at_return == 1 && b.handler_was_me && atomic_load(&handled) == 1;
	/* What is left is what the wait did not use: 5 s less the time
	 * until the signal (however late a loaded machine delivers it),
	 * within 50 ms of what the caller measured. */
	if (c == C_SELECT)
		ok = ok && left < 5.0 && left > 5.0 - b.took_ms / 1e3 - 0.05 &&
		     left < 5.0 - b.took_ms / 1e3 + 0.05;
	if (c == C_PPOLL || c == C_PSELECT)
		ok = ok && b.ts.tv_sec == 5 && b.ts.tv_nsec == 0;
	snprintf(what, sizeof what,
		 "%s(empty pipe), SIGUSR1 with SA_RESTART at 50 ms: -1 EINTR, handler once on the caller%s",
		 call_name[c],
		 c == C_SELECT ? ", time left written back" :
		 c == C_POLL ? "" : ", timespec unchanged");
	check(ok, what,
	      "returned %ld (%s) after %.1f ms, signal sent at %.1f ms, data at %.1f ms; handler seen %d time(s) at return, %d in all, on the caller: %d; timeval {%ld, %ld}, timespec {%ld, %ld}",
	      b.ret, errname(b.ret), b.took_ms, kill_at, write_at, b.handled_at_return,
	      atomic_load(&handled),
	      b.handler_was_me, (long)b.tv.tv_sec, (long)b.tv.tv_usec, (long)b.ts.tv_sec,
	      b.ts.tv_nsec);
	close(p[0]);
	close(p[1]);
}

/* ---- 5: pthread_cancel while blocked ------------------------------------------ */
static void cancel_cleanup(void *arg)
{
	atomic_store(&((struct blocked *)arg)->finished, 1);
}

static void *cancel_main(void *arg)
{
	struct blocked *b = arg;

	pthread_cleanup_push(cancel_cleanup, b);
	atomic_store(&b->entering, 1);
	b->ret = blocked_call(b, 0); /* no timeout */
	atomic_store(&b->finished, 2);
	pthread_cleanup_pop(0);
	return (void *)(intptr_t)1;
}

static void test_cancel(enum call c)
{
	struct blocked b = { .call = c };
	pthread_t t;
	void *res = NULL;
	double t0, took;
	int p[2], released = 0;
	char what[160];

	stage("5: pthread_cancel of a blocked thread");
	mkpipe(p);
	b.fd = p[0];
	pthread_create(&t, NULL, cancel_main, &b);
	while (!atomic_load(&b.entering))
		sleep_ms(1);
	sleep_ms(KICK_MS);
	t0 = now_ms();
	pthread_cancel(t);
	while (!atomic_load(&b.finished) && now_ms() - t0 < 2000)
		sleep_ms(1);
	took = now_ms() - t0;
	if (!atomic_load(&b.finished)) { /* not cancelled: let it return */
		released = 1;
		if (write(p[1], "w", 1) != 1)
			abort();
	}
	pthread_join(t, &res);
	note("cancel in %s: %s after %.1f ms", call_name[c],
	     res == PTHREAD_CANCELED ? "cancelled" : "returned", took);
	snprintf(what, sizeof what, "pthread_cancel of a thread in %s(empty pipe, no timeout): cancelled at once",
		 call_name[c]);
	check(res == PTHREAD_CANCELED && atomic_load(&b.finished) == 1 && !released &&
	      took < 1000, what,
	      "join: %s, finished %d after %.1f ms%s; the call returned %ld (%s)",
	      res == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled",
	      atomic_load(&b.finished), took, released ? " (released by writing)" : "",
	      b.ret, errname(b.ret));
	close(p[0]);
	close(p[1]);
}

/* ---- 6: many waiters ---------------------------------------------------------- */
struct waiter {
	int id, a[2], b[2];
	long ret, rd;
	short ra, rb;
	int got;
};

static _Atomic int waiting;
static _Atomic int spin_stop;
static _Atomic long spins;

static void *spinner(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
		atomic_fetch_add_explicit(&spins, 1, memory_order_relaxed);
	return NULL;
}

static uint8_t waiter_byte(int id)
{
	return (uint8_t)(id * 7 + 1);
}

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct pollfd pf[2] = { { .fd = w->a[0], .events = POLLIN },
				{ .fd = w->b[0], .events = POLLIN } };
	uint8_t c = 0;

	atomic_fetch_add(&waiting, 1);
	w->ret = ERR(poll(pf, 2, -1));
	w->ra = pf[0].revents;
	w->rb = pf[1].revents;
	w->rd = ERR(read(w->id & 1 ? w->b[0] : w->a[0], &c, 1));
	w->got = c;
	return NULL;
}

static void test_many_waiters(void)
{
	static struct waiter w[WAITERS];
	static pthread_t t[WAITERS];
	pthread_t spin;
	double t0, took, deadline;
	int nthreads, good = 0, first_bad = -1;

	stage("6: 300 threads poll two pipes each, beside a spinning thread");
	pthread_create(&spin, NULL, spinner, NULL);
	for (int i = 0; i < WAITERS; i++) {
		w[i].id = i;
		mkpipe(w[i].a);
		mkpipe(w[i].b);
	}
	for (int i = 0; i < WAITERS; i++)
		pthread_create(&t[i], NULL, waiter_main, &w[i]);
	deadline = now_ms() + 10000;
	while (atomic_load(&waiting) < WAITERS && now_ms() < deadline)
		sleep_ms(1);
	note("300 pollers started and inside poll after %.1f ms", now_ms() - (deadline - 10000));
	sleep_ms(100); /* all inside poll by now */
	nthreads = kernel_threads();
	note("300 pollers blocked (%d entered): %d kernel threads", atomic_load(&waiting), nthreads);
	check(!parks_without_thread(2) || (nthreads > 0 && nthreads < 50),
	      "300 pollers park without a kernel thread each",
	      "%d kernel threads while %d threads wait in poll", nthreads, atomic_load(&waiting));

	stage("6: writing into one pipe of each of 300 pollers");
	t0 = now_ms();
	for (int i = 0; i < WAITERS; i++) {
		uint8_t c = waiter_byte(i);

		if (write(i & 1 ? w[i].b[1] : w[i].a[1], &c, 1) != 1)
			abort();
	}
	for (int i = 0; i < WAITERS; i++)
		pthread_join(t[i], NULL);
	took = now_ms() - t0;
	atomic_store(&spin_stop, 1);
	pthread_join(spin, NULL);
	for (int i = 0; i < WAITERS; i++) {
		int odd = i & 1;

		if (w[i].ret == 1 && w[i].ra == (odd ? 0 : POLLIN) && w[i].rb == (odd ? POLLIN : 0) &&
		    w[i].rd == 1 && w[i].got == waiter_byte(i))
			good++;
		else if (first_bad < 0)
			first_bad = i;
	}
	note("300 pollers: %d right, all woken and joined %.1f ms after the first write; spinner: %ld increments",
	     good, took, atomic_load(&spins));
	check(good == WAITERS && took < 5000,
	      "300 pollers beside a spinning thread: each sees its one ready pipe and reads its byte",
	      "%d of %d right (first wrong: #%d returned %ld (%s), revents 0x%x 0x%x, read %ld, byte %d) in %.1f ms",
	      good, WAITERS, first_bad, first_bad >= 0 ? w[first_bad].ret : 0,
	      errname(first_bad >= 0 ? w[first_bad].ret : 0), first_bad >= 0 ? w[first_bad].ra : 0,
	      first_bad >= 0 ? w[first_bad].rb : 0, first_bad >= 0 ? w[first_bad].rd : 0,
	      first_bad >= 0 ? w[first_bad].got : 0, took);
	for (int i = 0; i < WAITERS; i++) {
		close(w[i].a[0]);
		close(w[i].a[1]);
		close(w[i].b[0]);
		close(w[i].b[1]);
	}
}

int main(void)
{
	pthread_t by;

	watchdog(25);
	by = bystander_start();
	for (enum call c = C_POLL; c <= C_PSELECT; c++)
		test_eintr(c);
	test_cancel(C_POLL);
	test_cancel(C_SELECT);
	test_many_waiters();
	bystander_stop(by);
	return failures ? 1 : 0;
}
