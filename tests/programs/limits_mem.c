/* Thread creation under a memory limit (issue 11 item 1): RLIMIT_AS set to
 * what the process uses now + 200 MiB, then up to 10,000 threads with
 * 64 KiB stacks.  Natively some thousands are created and the rest get
 * EAGAIN; under gshim the same must hold - never an abort ("gshim: fatal:
 * cannot start the timer thread" was the old answer at GOMAXPROCS=1) or a
 * hang - and every thread created must run: wait at a gate, sleep,
 * time out in pthread_cond_timedwait, poll a pipe with a timeout.  Their
 * timed waits come when the address space is full, so under gshim the
 * runtime's helpers (timer thread, M's) may fail to start and its timer
 * heaps may fail to grow: the waits must still end on time.
 *
 * First two child processes (fork) fill their address space with
 * PROT_NONE ballast, leaving 1 MiB or 64 KiB, before they create any
 * thread: runtime threads (new M's and the timer thread; with 64 KiB
 * sysmon and the signal thread too) are then refused, and the threads
 * that can be created must still sleep, time out and be joined; after the
 * ballast is unmapped creation works again.
 *
 * Only verdicts go to stdout (the counts differ from native: gshim's
 * runtime uses address space too); counts go to stderr. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include "prog.h"

enum { MAX_THREADS = 10000, STACK = 64 << 10 };

static pthread_t tids[MAX_THREADS];
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static atomic_int finished, timed_out, bad;
static int pipefd[2];

static void *worker(void *arg)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct timespec d = { 0, 1000000 }, dl;
	struct pollfd pfd = { pipefd[0], POLLIN, 0 };
	int r;

	if (arg) {   /* flood threads wait until every creation is done */
		pthread_mutex_lock(&gate_mu);
		while (!gate_open)
			pthread_cond_wait(&gate_cv, &gate_mu);
		pthread_mutex_unlock(&gate_mu);
	}
	r = nanosleep(&d, NULL);
	if (r != 0) {
		fprintf(stderr, "nanosleep: %d %s\n", r, strerror(errno));
		atomic_fetch_add(&bad, 1);
	}
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_nsec += 2000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&mu);
	r = pthread_cond_timedwait(&cv, &mu, &dl);
	pthread_mutex_unlock(&mu);
	if (r == ETIMEDOUT)
		atomic_fetch_add(&timed_out, 1);
	r = poll(&pfd, 1, 1);
	if (r != 0) {   /* nothing is ever written */
		fprintf(stderr, "poll: %d %s\n", r, strerror(errno));
		atomic_fetch_add(&bad, 1);
	}
	usleep(500);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

/* Create up to n threads; counts of successes and EAGAINs. */
static int create_many(int n, size_t stack, void *arg, int *eagain, int *other)
{
	pthread_attr_t a;
	int ok = 0;

	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, stack);
	*eagain = *other = 0;
	for (int i = 0; i < n; i++) {
		int e = pthread_create(&tids[ok], &a, worker, arg);

		if (e == 0)
			ok++;
		else if (e == EAGAIN)
			(*eagain)++;
		else
			(*other)++;
	}
	pthread_attr_destroy(&a);
	return ok;
}

static void join_all(int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
}

/* ---- the flood ------------------------------------------------------------ */
static void flood(void)
{
	int ok, eagain, other, fin, tmo;

	stage("creating 10,000 threads under RLIMIT_AS");
	atomic_store(&finished, 0);
	atomic_store(&timed_out, 0);
	ok = create_many(MAX_THREADS, STACK, (void *)1, &eagain, &other);
	note("flood: created %d, EAGAIN %d, other %d", ok, eagain, other);
	check(ok >= 100 && eagain > 0 && other == 0, "flood: some created, the rest EAGAIN",
	      "created %d, EAGAIN %d, other errors %d", ok, eagain, other);
	stage("opening the gate");
	pthread_mutex_lock(&gate_mu);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	stage("joining the flood");
	join_all(ok);
	fin = atomic_load(&finished);
	tmo = atomic_load(&timed_out);
	check(fin == ok && tmo == ok && atomic_load(&bad) == 0,
	      "flood: every thread slept, timed out, polled and was joined",
	      "%d of %d finished, %d timed out, %d bad sleeps/polls", fin, ok, tmo,
	      atomic_load(&bad));

	stage("creating after the flood");
	ok = create_many(100, STACK, NULL, &eagain, &other);
	join_all(ok);
	check(ok == 100, "after the flood: 100 threads created and joined",
	      "created %d, EAGAIN %d, other %d", ok, eagain, other);
}

/* ---- a child whose address space is full from the start ------------------ */
static struct { void *p; size_t len; } ballast[256];
static int nballast;

/* Map PROT_NONE ballast until the limit is reached, then give back
 * `leave` bytes. */
static void fill(size_t leave)
{
	for (size_t sz = (size_t)1 << 36; sz >= 4096 && nballast < 256;) {
		void *p = mmap(NULL, sz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		               -1, 0);

		if (p == MAP_FAILED) {
			sz /= 2;
			continue;
		}
		ballast[nballast].p = p;
		ballast[nballast++].len = sz;
	}
	for (int i = 0; i < nballast && leave; i++) {
		size_t n = ballast[i].len < leave ? ballast[i].len : leave;

		munmap(ballast[i].p, n);
		ballast[i].p = (char *)ballast[i].p + n;
		ballast[i].len -= n;
		leave -= n;
	}
}

static void unfill(void)
{
	for (int i = 0; i < nballast; i++)
		if (ballast[i].len)
			munmap(ballast[i].p, ballast[i].len);
	nballast = 0;
}

static int full_child(size_t leave)
{
	int ok, eagain, other, fin;

	watchdog(20);   /* alarms do not survive fork */
	stage("child: filling the address space");
	fill(leave);
	stage("child: creating threads with the address space full");
	atomic_store(&finished, 0);
	atomic_store(&timed_out, 0);
	ok = create_many(200, 16 << 10, NULL, &eagain, &other);
	stage("child: joining");
	join_all(ok);
	fin = atomic_load(&finished);
	fprintf(stderr, "full child (%zu KiB left): created %d, EAGAIN %d, other %d, "
	        "finished %d\n", leave >> 10, ok, eagain, other, fin);
	if (other || fin != ok || atomic_load(&timed_out) != ok || atomic_load(&bad))
		return 1;
	stage("child: sleeping with the address space full");
	sleep_ms(5);
	unfill();
	stage("child: creating after the ballast is gone");
	ok = create_many(20, STACK, NULL, &eagain, &other);
	join_all(ok);
	if (ok != 20) {
		fprintf(stderr, "full child: after unmapping, %d of 20 created\n", ok);
		return 2;
	}
	return 0;
}

int main(void)
{
	struct rlimit rl;
	size_t limit;
	pid_t pid;
	int status;

	watchdog(50);
	if (pipe(pipefd) != 0)
		return 1;
	limit = vm_size() + ((size_t)200 << 20);
	getrlimit(RLIMIT_AS, &rl);
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > limit) {
		rl.rlim_cur = limit;
		if (setrlimit(RLIMIT_AS, &rl) != 0) {
			printf("setrlimit failed\n");
			return 1;
		}
	}
	/* The child first: after the flood the parent's address space stays
	 * full under gshim (idle chunk stacks stay mapped for reuse), and
	 * the child would have no ballast to give back. */
	for (int i = 0; i < 2; i++) {
		/* 1 MiB: some threads fit, the timer thread and new M's do
		 * not; 64 KiB: under gshim sysmon, the signal and timer
		 * threads cannot start either. */
		size_t leave = i == 0 ? 1 << 20 : 64 << 10;

		stage("waiting for a child with a full address space");
		fflush(stdout);
		pid = fork();
		if (pid == 0)
			_exit(full_child(leave));
		status = -1;
		waitpid(pid, &status, 0);
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      i == 0 ? "child with 1 MiB of address space left: threads created or "
		               "EAGAIN, all ran and were joined"
		             : "child with 64 KiB of address space left: threads created or "
		               "EAGAIN, all ran and were joined",
		      "status 0x%x", status);
	}

	flood();
	return failures ? 1 : 0;
}
