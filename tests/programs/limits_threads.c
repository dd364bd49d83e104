/* Thread limits (issue 11, item 3): threads blocked in calls that hold a
 * kernel thread while the process cannot get more kernel threads.
 *
 *   flock-nproc  RLIMIT_NPROC 12 as an unprivileged uid; 30 threads
 *                block in flock(LOCK_EX) while main holds the lock; each
 *                holder sleeps 1 ms inside
 *   ofd-nproc    the same with F_OFD_SETLKW record locks
 *   pipe-nproc   RLIMIT_NPROC 12 and GSHIM_IO=syscall: 30 threads block
 *                in read() on a pipe whose writer is another thread that
 *                writes only after 50 ms
 *   pipe-maxm    GSHIM_MAXM=2 and GSHIM_IO=syscall, 10 readers (the
 *                issue's case)
 *   flock-maxm   GSHIM_MAXM=2 (default I/O), 30 threads in flock
 *   wait-maxm    GSHIM_MAXM=2: 2 threads in waitpid for children that
 *                live 1.5 s (a call with no non-blocking twin), a third
 *                thread must run meanwhile: under gshim it waits for a
 *                waitpid to return, with one report on stderr naming the
 *                blocked threads - late, but no hang
 *
 * Natively each blocked thread is a kernel thread: pthread_create fails
 * with EAGAIN at the limit, and the program (like real ones) then lets go
 * of what it holds and retries; the blocked threads finish one by one.
 * Under gshim creation does not fail (threads are G's), but every G
 * blocked in one of these calls holds an M, and no M can be created for
 * the thread that would release them: before issue 11 the process hung
 * after "cannot create an OS thread for an M".
 *
 * Every case runs in a process of its own, exec'd from this one with its
 * limit set (the GSHIM_* variables are read at start-up; RLIMIT_NPROC is
 * not enforced for root, so those cases switch to a fresh uid first, with
 * raw system calls in the single-threaded child, and are skipped with a
 * message when not run as root).  The parent kills a case that does not
 * end in 20 s and reports the hang. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "prog.h"

#define NPROC_LIMIT 12
#define CASE_SECS 20

static char path[64];
static atomic_int inside, overlap, done, got;
static atomic_long sum;
static int pfd[2];
static int kind;   /* 0 flock, 1 ofd */

static void *locker(void *arg)
{
	int fd = open(path, O_RDWR);

	(void)arg;
	if (fd < 0) {
		note("open %s: %s", path, strerror(errno));
		return (void *)1;
	}
	if (kind == 0) {
		while (flock(fd, LOCK_EX) != 0)
			if (errno != EINTR) {
				note("flock: %s", strerror(errno));
				close(fd);
				return (void *)1;
			}
	} else {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

		while (fcntl(fd, F_OFD_SETLKW, &fl) != 0)
			if (errno != EINTR) {
				note("F_OFD_SETLKW: %s", strerror(errno));
				close(fd);
				return (void *)1;
			}
	}
	if (atomic_fetch_add(&inside, 1) != 0)
		atomic_fetch_add(&overlap, 1);
	sleep_ms(1);   /* the holder must run again to let go */
	atomic_fetch_sub(&inside, 1);
	atomic_fetch_add(&done, 1);
	if (kind == 0) {
		flock(fd, LOCK_UN);
	} else {
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

		fcntl(fd, F_OFD_SETLK, &fl);
	}
	close(fd);
	return NULL;
}

static void *reader(void *arg)
{
	long v;

	(void)arg;
	for (;;) {
		ssize_t r = read(pfd[0], &v, sizeof v);

		if (r == (ssize_t)sizeof v)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		note("read: %zd %s", r, r < 0 ? strerror(errno) : "short");
		return (void *)1;
	}
	atomic_fetch_add(&got, 1);
	atomic_fetch_add(&sum, v);
	return NULL;
}

static void *writer(void *arg)
{
	long n = (long)arg;

	sleep_ms(50);   /* every reader that could start is blocked by now */
	for (long i = 1; i <= n; i++)
		if (write(pfd[1], &i, sizeof i) != (ssize_t)sizeof i) {
			note("write: %s", strerror(errno));
			return (void *)1;
		}
	return NULL;
}

/* pthread_create, retried while the kernel says EAGAIN (the limit); the
 * first EAGAIN calls release().  Returns 0 or the other error. */
static int create_retry(pthread_t *t, void *(*fn)(void *), void *arg, void (*release)(void),
                        int *eagains)
{
	int e;

	while ((e = pthread_create(t, NULL, fn, arg)) == EAGAIN) {
		if (release)
			release();
		++*eagains;
		sleep_ms(1);
	}
	return e;
}

static int main_fd = -1;

static void main_unlock(void)
{
	if (main_fd < 0)
		return;
	if (kind == 0) {
		flock(main_fd, LOCK_UN);
	} else {
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

		fcntl(main_fd, F_OFD_SETLK, &fl);
	}
	close(main_fd);
	main_fd = -1;
}

static int run_locks(const char *name, int n)
{
	pthread_t t[64];
	int eagains = 0, bad = 0, i, e;

	snprintf(path, sizeof path, "/tmp/gshim-limits.%d", (int)getpid());
	main_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (main_fd < 0) {
		printf("%s: FAILED: open %s: %s\n", name, path, strerror(errno));
		return 1;
	}
	if (kind == 0) {
		flock(main_fd, LOCK_EX);
	} else {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

		fcntl(main_fd, F_OFD_SETLK, &fl);
	}
	stage("creating lockers");
	for (i = 0; i < n; i++)
		if ((e = create_retry(&t[i], locker, NULL, main_unlock, &eagains)) != 0) {
			printf("%s: FAILED: pthread_create: %s\n", name, strerror(e));
			n = i;
			bad = 1;
			break;
		}
	main_unlock();
	stage("joining lockers");
	for (i = 0; i < n; i++) {
		void *r;

		pthread_join(t[i], &r);
		bad |= r != NULL;
	}
	unlink(path);
	note("%s: %d EAGAINs from pthread_create", name, eagains);
	check(!bad && atomic_load(&done) == n && atomic_load(&overlap) == 0, name,
	      "%d of %d took the lock, %d overlaps", atomic_load(&done), n,
	      atomic_load(&overlap));
	return failures;
}

static int run_pipe(const char *name, int n)
{
	pthread_t w, t[64];
	int eagains = 0, bad = 0, i, e;
	void *r;

	if (pipe(pfd) != 0) {
		printf("%s: FAILED: pipe: %s\n", name, strerror(errno));
		return 1;
	}
	stage("creating the writer and readers");
	if ((e = create_retry(&w, writer, (void *)(long)n, NULL, &eagains)) != 0) {
		printf("%s: FAILED: pthread_create: %s\n", name, strerror(e));
		return 1;
	}
	for (i = 0; i < n; i++)
		if ((e = create_retry(&t[i], reader, NULL, NULL, &eagains)) != 0) {
			printf("%s: FAILED: pthread_create: %s\n", name, strerror(e));
			n = i;
			bad = 1;
			break;
		}
	stage("joining readers");
	for (i = 0; i < n; i++) {
		pthread_join(t[i], &r);
		bad |= r != NULL;
	}
	pthread_join(w, &r);
	bad |= r != NULL;
	note("%s: %d EAGAINs from pthread_create", name, eagains);
	check(!bad && atomic_load(&got) == n && atomic_load(&sum) == (long)n * (n + 1) / 2, name,
	      "%d of %d reads, sum %ld", atomic_load(&got), n, atomic_load(&sum));
	return failures;
}

static atomic_int third_ran;

static void *waiter(void *arg)
{
	pid_t pid = fork();
	int st = 0;

	(void)arg;
	if (pid == 0) {
		sleep_ms(1500);
		_exit(7);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
		return (void *)1;
	return NULL;
}

static void *third(void *arg)
{
	(void)arg;
	sleep_ms(20);
	atomic_store(&third_ran, 1);
	return NULL;
}

static int run_wait(const char *name)
{
	pthread_t t[3];
	void *r;
	int bad = 0;

	stage("waiters and a third thread");
	pthread_create(&t[0], NULL, waiter, NULL);
	pthread_create(&t[1], NULL, waiter, NULL);
	pthread_create(&t[2], NULL, third, NULL);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], &r);
		bad |= r != NULL;
	}
	check(!bad && atomic_load(&third_ran), name, "bad %d, third ran %d", bad,
	      atomic_load(&third_ran));
	return failures;
}

struct tcase {
	const char *name;
	bool nproc;            /* RLIMIT_NPROC as a fresh uid: root only */
	const char *env[3];    /* for gshim, read at its start-up */
};

static const struct tcase cases[] = {
	{ "flock-nproc", true, { NULL } },
	{ "ofd-nproc", true, { NULL } },
	{ "pipe-nproc", true, { "GSHIM_IO=syscall", NULL } },
	{ "pipe-maxm", false, { "GSHIM_MAXM=2", "GSHIM_IO=syscall", NULL } },
	{ "flock-maxm", false, { "GSHIM_MAXM=2", NULL } },
	{ "wait-maxm", false, { "GSHIM_MAXM=2", NULL } },
};

static int run_case(const char *name)
{
	watchdog(CASE_SECS + 5);   /* the parent's limit comes first */
	if (!strcmp(name, "flock-nproc") || !strcmp(name, "flock-maxm"))
		return run_locks(name, 30);
	if (!strcmp(name, "ofd-nproc")) {
		kind = 1;
		return run_locks(name, 30);
	}
	if (!strcmp(name, "pipe-nproc"))
		return run_pipe(name, 30);
	if (!strcmp(name, "pipe-maxm"))
		return run_pipe(name, 10);
	if (!strcmp(name, "wait-maxm"))
		return run_wait(name);
	printf("unknown case %s\n", name);
	return 1;
}

static volatile sig_atomic_t expired;

static void on_alarm(int sig)
{
	(void)sig;
	expired = 1;
}

/* In the forked child, single-threaded: a uid of its own (so no other
 * process counts against the limit), then the limit, then exec. */
static void child(const struct tcase *c, const char *self)
{
	char *argv[] = { (char *)self, (char *)c->name, NULL };

	if (c->nproc) {
		uid_t id = 40000 + (uid_t)(getpid() % 20000);
		struct rlimit rl = { NPROC_LIMIT, NPROC_LIMIT };

		/* A container without CAP_SETUID: the same skip natively
		 * and under gshim. */
		if (syscall(SYS_setgroups, 0, NULL) != 0 ||
		    syscall(SYS_setresgid, id, id, id) != 0 ||
		    syscall(SYS_setresuid, id, id, id) != 0 ||
		    setrlimit(RLIMIT_NPROC, &rl) != 0) {
			printf("%s: skipped (cannot become an unprivileged uid with RLIMIT_NPROC %d)\n",
			       c->name, NPROC_LIMIT);
			_exit(0);
		}
	}
	for (int i = 0; c->env[i]; i++)
		putenv((char *)c->env[i]);
	execv("/proc/self/exe", argv);
	printf("%s: FAILED: exec: %s\n", c->name, strerror(errno));
	_exit(1);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	int fails = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1)
		return run_case(argv[1]) ? 1 : 0;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;   /* no SA_RESTART: waitpid returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct tcase *c = &cases[i];
		double t0;
		int st = 0;
		pid_t pid;

		if (c->nproc && geteuid() != 0) {
			printf("%s: skipped (RLIMIT_NPROC is tested as a fresh uid: needs root)\n",
			       c->name);
			continue;
		}
		fflush(stdout);
		pid = fork();
		if (pid < 0) {
			printf("%s: FAILED: fork: %s\n", c->name, strerror(errno));
			fails++;
			continue;
		}
		if (pid == 0)
			child(c, argv[0]);
		expired = 0;
		t0 = now_ms();
		alarm(CASE_SECS);
		while (waitpid(pid, &st, 0) < 0) {
			if (errno == EINTR && expired) {
				printf("%s: FAILED: no end after %d s (hang)\n", c->name, CASE_SECS);
				kill(pid, SIGKILL);
				expired = 0;
			} else if (errno != EINTR) {
				break;
			}
		}
		alarm(0);
		note("%s: %.0f ms", c->name, now_ms() - t0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (WIFSIGNALED(st))
				printf("%s: FAILED: killed by signal %d\n", c->name, WTERMSIG(st));
			fails++;
		}
	}
	return fails ? 1 : 0;
}
