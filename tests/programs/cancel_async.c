/* Cancellation states and types, cleanup handlers, exit values, as glibc
 * (its tst-cancel-self*, tst-cleanup*, tst-cancel{1,3,5,6,9} ...):
 *  - asynchronous cancellation of a thread computing in its own code, of
 *    one calling into libc in a loop, of one blocked in a read, and of
 *    itself; held while disabled and acted on when enabled
 *  - pthread_setcancelstate/settype give the old values, reject others
 *  - deferred self-cancel acts only at the next cancellation point
 *  - pthread_cleanup_push_defer_np: deferred inside, async restored after
 *  - cleanup handlers: order and count at cancel and at pthread_exit,
 *    pop(1)/pop(0), pthread_exit from a handler (the outer handlers still
 *    run, join gets its value)
 *  - pthread_cancel of a thread that exited but was not joined: 0; join
 *    gives its own value; a second join ESRCH
 * Built twice: plain C (the cleanup macros' setjmp buffers) and with
 * -fexceptions as cancel_asyncx (cleanup attributes run by forced
 * unwinding - from the signal handler, for asynchronous cancellation).
 * Under gshim asynchronous cancellation used to act like deferred: the
 * computing thread never ended (a hang, caught by the watchdog). */
#include "prog.h"
#include <pthread.h>
#include <stdatomic.h>

static atomic_int ready, go, reached, notreached, cl_count;
static volatile unsigned long spins;
static char order[32];
static atomic_int norder;
static int fds[2];

static void cl(void *a)
{
	cl_count++;
	order[norder++] = *(const char *)a;
}

static void reset(void)
{
	ready = go = reached = notreached = cl_count = 0;
	norder = 0;
	memset(order, 0, sizeof order);
}

/* ---- asynchronous ----------------------------------------------------- */
static void *async_loop(void *a)
{
	int old = -1;

	(void)a;
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
	pthread_cleanup_push(cl, "A");
	ready = 1;
	for (;;)
		spins++;   /* no call at all: only an asynchronous stop ends it */
	pthread_cleanup_pop(0);
	return NULL;
}

static char buf[4096];
static void *async_libc_loop(void *a)
{
	(void)a;
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	pthread_cleanup_push(cl, "L");
	ready = 1;
	for (;;) {
		memset(buf, (int)spins, sizeof buf);   /* libc, then our code */
		spins += (unsigned char)buf[17] + 1;
	}
	pthread_cleanup_pop(0);
	return NULL;
}

static void *async_disabled(void *a)
{
	int oldtype = -1, oldstate = -1, st = -1;

	(void)a;
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &oldtype);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &oldstate);
	pthread_cleanup_push(cl, "D");
	ready = 1;
	while (!go)
		spins++;   /* cancelled meanwhile, but disabled */
	reached = oldtype == PTHREAD_CANCEL_DEFERRED && oldstate == PTHREAD_CANCEL_ENABLE ? 1 : 2;
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &st);   /* acts here */
	notreached = 1;
	pthread_cleanup_pop(0);
	return NULL;
}

static void *async_read(void *a)
{
	char c;

	(void)a;
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	pthread_cleanup_push(cl, "R");
	ready = 1;
	read(fds[0], &c, 1);
	notreached = 1;
	pthread_cleanup_pop(0);
	return NULL;
}

/* glibc acts anywhere in asynchronous mode, also in a mutex wait
 * (tst-cancel1: not async-cancel-safe by POSIX, relied upon anyway) */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static void *async_mutex(void *a)
{
	(void)a;
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	pthread_cleanup_push(cl, "M");
	ready = 1;
	pthread_mutex_lock(&held);
	notreached = 1;
	pthread_cleanup_pop(0);
	return NULL;
}

static void *async_self(void *a)
{
	(void)a;
	pthread_cleanup_push(cl, "S");
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	pthread_cancel(pthread_self());
	notreached = 1;
	pthread_cleanup_pop(0);
	return NULL;
}

/* pending request, then switching to asynchronous acts at once */
static void *async_switch(void *a)
{
	(void)a;
	pthread_cleanup_push(cl, "W");
	pthread_cancel(pthread_self());   /* deferred: returns */
	reached = 1;
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	notreached = 1;
	pthread_cleanup_pop(0);
	return NULL;
}

static void *deferred_self(void *a)
{
	(void)a;
	pthread_cleanup_push(cl, "F");
	if (pthread_cancel(pthread_self()) == 0)
		reached = 1;
	spins++;
	pthread_testcancel();
	notreached = 1;
	pthread_cleanup_pop(0);
	return NULL;
}

/* push_defer_np: deferred inside the region, the old type after it */
static void *defer_np(void *a)
{
	int type = -1, type_in = -1;

	(void)a;
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	pthread_cleanup_push_defer_np(cl, "N");
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type_in);
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);   /* keep it deferred */
	pthread_cleanup_pop_restore_np(0);
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type);
	reached = (type_in == PTHREAD_CANCEL_DEFERRED) + 2 * (type == PTHREAD_CANCEL_ASYNCHRONOUS);
	return NULL;
}

/* ---- cleanup handlers --------------------------------------------------- */
static void *nested_cancel(void *a)
{
	(void)a;
	pthread_cleanup_push(cl, "1");
	pthread_cleanup_push(cl, "2");
	pthread_cleanup_push(cl, "x");
	pthread_cleanup_pop(0);        /* not run */
	pthread_cleanup_push(cl, "3");
	pthread_cleanup_push(cl, "p");
	pthread_cleanup_pop(1);        /* run now */
	ready = 1;
	for (;;)
		pthread_testcancel();
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
	return NULL;
}

static void *nested_exit(void *a)
{
	(void)a;
	pthread_cleanup_push(cl, "1");
	pthread_cleanup_push(cl, "2");
	pthread_cleanup_push(cl, "3");
	pthread_exit((void *)7);
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
	return NULL;
}

#ifdef __EXCEPTIONS
static void exit_from_handler(void *a)
{
	order[norder++] = *(const char *)a;
	cl_count++;
	pthread_exit((void *)42);
}

static void *exit_in_handler(void *a)
{
	int cancel = a != NULL;

	pthread_cleanup_push(cl, "o");
	pthread_cleanup_push(exit_from_handler, "E");
	pthread_cleanup_push(cl, "i");
	if (cancel)
		pthread_cancel(pthread_self());
	pthread_testcancel();
	pthread_exit((void *)5);
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
	pthread_cleanup_pop(0);
	return NULL;
}
#endif

static void *returns(void *a) { return a; }

/* The cleanup handler of a region that makes no call that may throw (no
 * call at all, or only functions glibc declares nothrow, like memset and
 * pthread_mutex_lock): with -fexceptions the compiler gives such a region
 * no unwind landing pad, so forced unwinding skips it: the thread ends
 * cancelled without running it, natively too. */
#ifdef __EXCEPTIONS
#define NOCALL_CL(x) ""
#else
#define NOCALL_CL(x) x
#endif

/* ---- main ----------------------------------------------------------------- */
static void run_cancel(const char *what, void *(*fn)(void *), int wait_ready, int pre_ms,
                       void *want, const char *want_order, int want_reached)
{
	pthread_t t;
	void *r = NULL;
	double t0;
	int err = 0;

	reset();
	stage(what);
	pthread_create(&t, NULL, fn, NULL);
	if (wait_ready)
		while (!ready)
			sleep_ms(1);
	sleep_ms(pre_ms);
	t0 = now_ms();
	if (wait_ready)
		err = pthread_cancel(t);
	if (fn == async_disabled) {
		sleep_ms(20);
		go = 1;
	}
	pthread_join(t, &r);
	note("%s: joined after %.1f ms", what, now_ms() - t0);
	check(err == 0 && r == want && !strcmp(order, want_order) && reached == want_reached &&
	      !notreached && now_ms() - t0 < 1500, what,
	      "cancel %d, result %p, cleanup order \"%s\" (want \"%s\"), reached %d (want %d), "
	      "not-reached %d, %.0f ms", err, r, order, want_order, reached, want_reached,
	      notreached, now_ms() - t0);
}

int main(void)
{
	int old, err;
	pthread_t t;
	void *r;

	watchdog(20);
	if (pipe(fds))
		return 2;

	run_cancel("async cancel of a busy loop", async_loop, 1, 5, PTHREAD_CANCELED, NOCALL_CL("A"), 0);
	run_cancel("async cancel of a busy loop at once", async_loop, 1, 0, PTHREAD_CANCELED, NOCALL_CL("A"), 0);
	run_cancel("async cancel of a loop calling libc", async_libc_loop, 1, 5, PTHREAD_CANCELED, NOCALL_CL("L"), 0);
	run_cancel("async cancel disabled, then enabled", async_disabled, 1, 0, PTHREAD_CANCELED, "D", 1);
	run_cancel("async cancel blocked in read", async_read, 1, 10, PTHREAD_CANCELED, "R", 0);
	pthread_mutex_lock(&held);
	run_cancel("async cancel blocked in pthread_mutex_lock", async_mutex, 1, 10, PTHREAD_CANCELED, NOCALL_CL("M"), 0);
	pthread_mutex_unlock(&held);
	run_cancel("async self-cancel", async_self, 0, 0, PTHREAD_CANCELED, "S", 0);
	run_cancel("pending, then switch to async", async_switch, 0, 0, PTHREAD_CANCELED, "W", 1);
	run_cancel("deferred self-cancel", deferred_self, 0, 0, PTHREAD_CANCELED, "F", 1);
	run_cancel("push_defer_np/pop_restore_np", defer_np, 0, 0, NULL, "", 3);
	run_cancel("cleanup order at cancel", nested_cancel, 1, 2, PTHREAD_CANCELED, "p321", 0);
	run_cancel("cleanup order at pthread_exit", nested_exit, 0, 0, (void *)7, "321", 0);

#ifdef __EXCEPTIONS
	/* pthread_exit from a cleanup handler, in a cancel and in an exit.
	 * Only with -fexceptions (cancel_asyncx): glibc's handlers without
	 * it (setjmp buffers) crash natively when a handler exits. */
	for (int c = 0; c < 2; c++) {
		const char *what = c ? "pthread_exit from a handler during cancel" :
		                       "pthread_exit from a handler during pthread_exit";
		reset();
		stage(what);
		pthread_create(&t, NULL, exit_in_handler, c ? (void *)1 : NULL);
		pthread_join(t, &r);
		check(r == (void *)42 && !strcmp(order, "iEo") && cl_count == 3, what,
		      "result %p, order \"%s\"", r, order);
	}
#endif

	/* states and types: old values, bad values */
	stage("states and types");
	err = pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	printf("setcancelstate(DISABLE): %d, old %s\n", err, old == PTHREAD_CANCEL_ENABLE ? "ENABLE" : "?");
	err = pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
	printf("setcancelstate(ENABLE): %d, old %s\n", err, old == PTHREAD_CANCEL_DISABLE ? "DISABLE" : "?");
	err = pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
	printf("setcanceltype(ASYNCHRONOUS): %d, old %s\n", err, old == PTHREAD_CANCEL_DEFERRED ? "DEFERRED" : "?");
	err = pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
	printf("setcanceltype(DEFERRED): %d, old %s\n", err, old == PTHREAD_CANCEL_ASYNCHRONOUS ? "ASYNCHRONOUS" : "?");
	old = 77;
	printf("setcancelstate(99): %s, old untouched %d\n",
	       pthread_setcancelstate(99, &old) == EINVAL ? "EINVAL" : "?", old == 77);
	printf("setcanceltype(99): %s, old untouched %d\n",
	       pthread_setcanceltype(99, &old) == EINVAL ? "EINVAL" : "?", old == 77);
	printf("setcancelstate(ENABLE, NULL): %d\n", pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL));

	/* a thread that exited, not joined; then joined twice */
	stage("cancel after exit");
	pthread_create(&t, NULL, returns, (void *)9);
	sleep_ms(20);
	err = pthread_cancel(t);
	printf("cancel of an exited thread: %d\n", err);
	err = pthread_join(t, &r);
	printf("join: %d, value %ld (not PTHREAD_CANCELED: %d)\n", err, (long)r, r != PTHREAD_CANCELED);
	err = pthread_join(t, &r);
	printf("second join: %s\n", err == ESRCH ? "ESRCH" : strerror(err));
	return failures != 0;
}
