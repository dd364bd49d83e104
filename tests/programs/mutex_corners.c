/* mutex_corners: the corners of pthread mutexes that conformance suites
 * (glibc's tst-mutex*, tst-robust*, tst-mutexpi/pp*, Open POSIX's
 * pthread_mutex_* assertions) look at, printed so that the native run and
 * the gshim runs can be compared line by line:
 *   - pthread_mutex_init on every attribute combination (type x robust x
 *     protocol x pshared), then trylock and a timed lock from another
 *     thread while the creator holds it (EBUSY / ETIMEDOUT, every kind)
 *   - mutexattr setters and getters with bad values; prioceiling calls
 *   - robust mutexes whose owner returned, exited detached, or was
 *     cancelled while holding them, with waiters already queued (they must
 *     wake: the next one gets EOWNERDEAD), consistent, ENOTRECOVERABLE;
 *     private and process-shared
 *   - process-shared robust and recursive mutexes across fork: a child
 *     that dies holding one (EOWNERDEAD in the parent, also for a parent
 *     already waiting), a child that finds the parent's lock held (EBUSY)
 */
#include "prog.h"
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* ---- every attribute combination ---------------------------------------- */

static void *try_other(void *arg)
{
	pthread_mutex_t *m = arg;
	struct timespec ts = in_ms(CLOCK_REALTIME, 20);
	static char buf[64];

	int t = pthread_mutex_trylock(m);
	int l = pthread_mutex_timedlock(m, &ts);
	snprintf(buf, sizeof buf, "trylock %s timedlock %s", ename(t), ename(l));
	return buf;
}

static void combos(void)
{
	static const char *tn[] = { "normal", "recursive", "errorcheck", "adaptive" };
	static const char *pn[] = { "none", "inherit", "protect" };

	stage("attribute combinations");
	for (int type = 0; type < 4; type++)
	for (int robust = 0; robust < 2; robust++)
	for (int proto = 0; proto < 3; proto++)
	for (int psh = 0; psh < 2; psh++) {
		pthread_mutexattr_t a;
		pthread_mutex_t m;
		pthread_t th;
		void *res;
		int r;

		pthread_mutexattr_init(&a);
		pthread_mutexattr_settype(&a, type);
		pthread_mutexattr_setrobust(&a, robust);
		pthread_mutexattr_setprotocol(&a, proto);
		if (proto == PTHREAD_PRIO_PROTECT)
			pthread_mutexattr_setprioceiling(&a, sched_get_priority_min(SCHED_FIFO) + 1);
		pthread_mutexattr_setpshared(&a, psh);
		memset(&m, 0, sizeof m);
		r = pthread_mutex_init(&m, &a);
		printf("init %s robust=%d proto=%s pshared=%d: %s", tn[type], robust,
		       pn[proto], psh, ename(r));
		pthread_mutexattr_destroy(&a);
		if (r) {
			putchar('\n');
			continue;
		}
		/* Locking a priority-protect mutex raises the thread to the
		 * ceiling: natively that needs privileges; gshim has no kernel
		 * priorities to raise.  Init results only. */
		if (proto == PTHREAD_PRIO_PROTECT) {
			printf(", destroy %s\n", ename(pthread_mutex_destroy(&m)));
			continue;
		}
		r = pthread_mutex_lock(&m);
		printf(", lock %s", ename(r));
		pthread_create(&th, NULL, try_other, &m);
		pthread_join(th, &res);
		printf(", other: %s", (char *)res);
		r = pthread_mutex_trylock(&m);
		printf(", own trylock %s", ename(r));
		if (r == 0)
			pthread_mutex_unlock(&m);
		r = pthread_mutex_unlock(&m);
		printf(", unlock %s", ename(r));
		/* A normal mutex does not check (undefined, glibc's destroy
		 * then says EBUSY). */
		if (type == 1 || type == 2 || robust)
			printf(", unlock again %s", ename(pthread_mutex_unlock(&m)));
		r = pthread_mutex_destroy(&m);
		printf(", destroy %s\n", ename(r));
	}
}

/* ---- attribute setters, getters, ceilings ---------------------------------- */

static void attrs(void)
{
	pthread_mutexattr_t a;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	int v = -7, old = -7;
	int lo = sched_get_priority_min(SCHED_FIFO), hi = sched_get_priority_max(SCHED_FIFO);

	stage("attributes");
	pthread_mutexattr_init(&a);
	printf("settype 99: %s\n", ename(pthread_mutexattr_settype(&a, 99)));
	printf("settype -1: %s\n", ename(pthread_mutexattr_settype(&a, -1)));
	printf("setprotocol 99: %s\n", ename(pthread_mutexattr_setprotocol(&a, 99)));
	printf("setrobust 99: %s\n", ename(pthread_mutexattr_setrobust(&a, 99)));
	printf("setpshared 99: %s\n", ename(pthread_mutexattr_setpshared(&a, 99)));
	printf("setprioceiling min-1: %s\n", ename(pthread_mutexattr_setprioceiling(&a, lo - 1)));
	printf("setprioceiling max+1: %s\n", ename(pthread_mutexattr_setprioceiling(&a, hi + 1)));
	printf("setprioceiling max: %s\n", ename(pthread_mutexattr_setprioceiling(&a, hi)));
	pthread_mutexattr_getprioceiling(&a, &v);
	printf("getprioceiling: %d\n", v == hi);
	pthread_mutexattr_gettype(&a, &v);
	printf("gettype: %d\n", v);
	pthread_mutexattr_getprotocol(&a, &v);
	printf("getprotocol: %d\n", v);
	pthread_mutexattr_getrobust(&a, &v);
	printf("getrobust: %d\n", v);
	pthread_mutexattr_destroy(&a);

	printf("getprioceiling non-PP: %s\n", ename(pthread_mutex_getprioceiling(&m, &v)));
	printf("setprioceiling non-PP: %s\n", ename(pthread_mutex_setprioceiling(&m, lo, &old)));
	printf("consistent non-robust: %s\n", ename(pthread_mutex_consistent(&m)));

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_PROTECT);
	pthread_mutexattr_setprioceiling(&a, lo + 2);
	printf("init PP: %s\n", ename(pthread_mutex_init(&m, &a)));
	printf("getprioceiling PP: %s", ename(pthread_mutex_getprioceiling(&m, &v)));
	printf(" %d\n", v - lo);
	printf("setprioceiling PP max+1: %s\n", ename(pthread_mutex_setprioceiling(&m, hi + 1, &old)));
	printf("setprioceiling PP min-1: %s\n", ename(pthread_mutex_setprioceiling(&m, lo - 1, &old)));
	printf("setprioceiling PP: %s", ename(pthread_mutex_setprioceiling(&m, lo + 3, &old)));
	printf(" old %d\n", old - lo);
	pthread_mutex_getprioceiling(&m, &v);
	printf("getprioceiling PP after: %d\n", v - lo);
	pthread_mutex_destroy(&m);
	pthread_mutexattr_destroy(&a);
}

/* ---- robust: the owner goes away holding it --------------------------------- */

static pthread_mutex_t *rm;
static pthread_barrier_t rbar;

static void *hold_and_return(void *arg)
{
	pthread_mutex_lock(rm);
	if (arg) {
		pthread_barrier_wait(&rbar);   /* held */
		pthread_barrier_wait(&rbar);   /* waiters queued */
	}
	return NULL;
}

static void *hold_and_exit(void *arg)
{
	(void)arg;
	pthread_mutex_lock(rm);
	pthread_barrier_wait(&rbar);
	pthread_exit(NULL);
}

static void *hold_and_wait_cancel(void *arg)
{
	(void)arg;
	pthread_mutex_lock(rm);
	pthread_barrier_wait(&rbar);
	for (;;)
		pause();
	return NULL;
}

static _Atomic int nowner_dead, nok;

static void *waiter(void *arg)
{
	int r;

	(void)arg;
	r = pthread_mutex_lock(rm);
	if (r == EOWNERDEAD) {
		nowner_dead++;
		pthread_mutex_consistent(rm);
		r = 0;
	}
	if (r == 0) {
		nok++;
		pthread_mutex_unlock(rm);
	}
	return NULL;
}

static void robust_init(pthread_mutex_t *m, int pshared, int type)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutexattr_setpshared(&a, pshared);
	pthread_mutexattr_settype(&a, type);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

static void robust(int pshared, int type)
{
	pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_t th, w[4];
	pthread_attr_t det;
	char what[96];
	int r;

	rm = m;
	stage("robust owner gone");
	/* 1: owner returns from its start routine */
	robust_init(m, pshared, type);
	pthread_create(&th, NULL, hold_and_return, NULL);
	pthread_join(th, NULL);
	r = pthread_mutex_lock(m);
	snprintf(what, sizeof what, "robust pshared=%d type=%d: owner returned", pshared, type);
	check(r == EOWNERDEAD, what, "lock gave %s", ename(r));
	r = pthread_mutex_unlock(m);
	snprintf(what, sizeof what, "robust pshared=%d type=%d: unlock without consistent", pshared, type);
	check(r == 0, what, "%s", ename(r));
	r = pthread_mutex_lock(m);
	snprintf(what, sizeof what, "robust pshared=%d type=%d: not recoverable", pshared, type);
	check(r == ENOTRECOVERABLE, what, "%s", ename(r));
	r = pthread_mutex_trylock(m);
	snprintf(what, sizeof what, "robust pshared=%d type=%d: trylock not recoverable", pshared, type);
	check(r == ENOTRECOVERABLE, what, "%s", ename(r));
	pthread_mutex_destroy(m);

	/* 2: a detached owner calls pthread_exit */
	robust_init(m, pshared, type);
	pthread_barrier_init(&rbar, NULL, 2);
	pthread_attr_init(&det);
	pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED);
	pthread_create(&th, &det, hold_and_exit, NULL);
	pthread_attr_destroy(&det);
	pthread_barrier_wait(&rbar);
	r = 0;
	for (int i = 0; i < 10000; i++) {
		r = pthread_mutex_trylock(m);
		if (r != EBUSY)
			break;
		sleep_ms(1);
	}
	snprintf(what, sizeof what, "robust pshared=%d type=%d: detached owner exited", pshared, type);
	check(r == EOWNERDEAD, what, "trylock gave %s", ename(r));
	pthread_barrier_destroy(&rbar);
	r = pthread_mutex_consistent(m);
	snprintf(what, sizeof what, "robust pshared=%d type=%d: consistent", pshared, type);
	check(r == 0, what, "%s", ename(r));
	r = pthread_mutex_consistent(m);
	snprintf(what, sizeof what, "robust pshared=%d type=%d: consistent again", pshared, type);
	check(r == EINVAL, what, "%s", ename(r));
	pthread_mutex_unlock(m);
	r = pthread_mutex_lock(m);
	snprintf(what, sizeof what, "robust pshared=%d type=%d: lock after consistent", pshared, type);
	check(r == 0, what, "%s", ename(r));
	pthread_mutex_unlock(m);
	pthread_mutex_destroy(m);

	/* 3: cancelled while holding it, 4 waiters queued meanwhile */
	robust_init(m, pshared, type);
	nowner_dead = nok = 0;
	pthread_barrier_init(&rbar, NULL, 2);
	pthread_create(&th, NULL, hold_and_wait_cancel, NULL);
	pthread_barrier_wait(&rbar);
	for (int i = 0; i < 4; i++)
		pthread_create(&w[i], NULL, waiter, NULL);
	sleep_ms(30);
	pthread_cancel(th);
	pthread_join(th, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(w[i], NULL);
	snprintf(what, sizeof what, "robust pshared=%d type=%d: cancelled owner, queued waiters", pshared, type);
	check(nowner_dead == 1 && nok == 4, what, "owner dead %d, ok %d", nowner_dead, nok);
	pthread_barrier_destroy(&rbar);
	pthread_mutex_destroy(m);

	/* 4: waiters queued when the owner returns */
	robust_init(m, pshared, type);
	nowner_dead = nok = 0;
	pthread_barrier_init(&rbar, NULL, 2);
	pthread_create(&th, NULL, hold_and_return, &rbar);
	pthread_barrier_wait(&rbar);
	for (int i = 0; i < 4; i++)
		pthread_create(&w[i], NULL, waiter, NULL);
	sleep_ms(30);
	pthread_barrier_wait(&rbar);
	pthread_join(th, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(w[i], NULL);
	snprintf(what, sizeof what, "robust pshared=%d type=%d: owner returned, queued waiters", pshared, type);
	check(nowner_dead == 1 && nok == 4, what, "owner dead %d, ok %d", nowner_dead, nok);
	pthread_barrier_destroy(&rbar);
	pthread_mutex_destroy(m);
	munmap(m, 4096);
}

/* ---- across fork -------------------------------------------------------- */

static void forks(void)
{
	pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_mutexattr_t a;
	pid_t pid;
	int st, r;

	stage("fork: child dies holding a robust pshared mutex");
	robust_init(&m[0], PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_NORMAL);
	pid = fork();
	if (pid == 0) {
		pthread_mutex_lock(&m[0]);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	r = pthread_mutex_lock(&m[0]);
	check(r == EOWNERDEAD, "fork: child exited holding robust pshared", "%s", ename(r));
	pthread_mutex_consistent(&m[0]);
	pthread_mutex_unlock(&m[0]);

	stage("fork: parent waits while the child dies holding it");
	volatile int *held = (volatile int *)&m[8];
	*held = 0;
	pid = fork();
	if (pid == 0) {
		pthread_mutex_lock(&m[0]);
		*held = 1;
		sleep_ms(50);
		_exit(0);
	}
	while (!*held)
		sleep_ms(1);
	r = pthread_mutex_lock(&m[0]);
	check(r == EOWNERDEAD, "fork: parent queued when the child died", "%s", ename(r));
	pthread_mutex_consistent(&m[0]);
	pthread_mutex_unlock(&m[0]);
	waitpid(pid, &st, 0);
	pthread_mutex_destroy(&m[0]);

	stage("fork: recursive pshared held by the parent");
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&m[1], &a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&m[2], &a);
	pthread_mutexattr_destroy(&a);
	pthread_mutex_lock(&m[1]);
	pthread_mutex_lock(&m[2]);
	robust_init(&m[3], PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_NORMAL);
	pthread_mutex_lock(&m[3]);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct timespec ts = in_ms(CLOCK_REALTIME, 20);
		int t1 = pthread_mutex_trylock(&m[1]), u1 = pthread_mutex_unlock(&m[1]);
		int t2 = pthread_mutex_trylock(&m[2]), u2 = pthread_mutex_unlock(&m[2]);
		int t3 = pthread_mutex_trylock(&m[3]);
		int l3 = pthread_mutex_timedlock(&m[3], &ts);
		/* re-initialise a copy the child owns and use it */
		pthread_mutex_t mine;
		pthread_mutexattr_init(&a);
		pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
		pthread_mutex_init(&mine, &a);
		int l4 = pthread_mutex_lock(&mine);
		printf("child: recursive trylock %s unlock %s, errorcheck trylock %s unlock %s, "
		       "robust trylock %s timedlock %s, fresh errorcheck lock %s\n",
		       ename(t1), ename(u1), ename(t2), ename(u2), ename(t3), ename(l3), ename(l4));
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork: child of a holder", "status %#x", st);
	r = pthread_mutex_unlock(&m[1]);
	check(r == 0, "fork: parent unlocks recursive", "%s", ename(r));
	r = pthread_mutex_unlock(&m[2]);
	check(r == 0, "fork: parent unlocks errorcheck", "%s", ename(r));
	r = pthread_mutex_unlock(&m[3]);
	check(r == 0, "fork: parent unlocks robust", "%s", ename(r));
	munmap(m, 4096);
}

int main(void)
{
	watchdog(20);
	combos();
	attrs();
	for (int psh = 0; psh < 2; psh++)
		for (int type = 0; type < 3; type++)
			robust(psh, type);
	forks();
	printf("failures: %d\n", failures);
	return failures != 0;
}
