/* fork() from a thread that has moved between kernel threads, while other
 * threads are parked in read() and one spins; each child creates and joins
 * a thread of its own.  Natively every child exits 0.  Under gshim with
 * per-G TLS this caught glibc's fork child caching the forking M's own
 * pthread stack as free (its "self" was the G's TCB), so the child's
 * first new M ran on the stack the child was still using (SIGSEGV in
 * 0-31 of 50 children at GOMAXPROCS=2). */
#include "prog.h"
#include <pthread.h>
#include <sys/wait.h>

#define ROUNDS 40

static int p[2];
static volatile int stop;

static void *spin(void *a)
{
	while (!stop)
		;
	return a;
}

static void *quick(void *a)
{
	usleep(1000);
	return a;
}

static void *reader(void *a)
{
	char c;

	return (void *)(long)read(*(int *)a, &c, 1);
}

int main(void)
{
	pthread_t by, sp;
	int bad = 0, st;

	watchdog(25);
	if (pipe(p))
		return 2;
	pthread_create(&by, NULL, reader, &p[0]);   /* parked for the whole run */
	pthread_create(&sp, NULL, spin, NULL);
	stage("forking");
	for (int i = 0; i < ROUNDS; i++) {
		pthread_t qs[20];
		pid_t pid;

		/* The forking thread parks and resumes, on whichever M. */
		for (int j = 0; j < 20; j++)
			pthread_create(&qs[j], NULL, quick, NULL);
		for (int j = 0; j < 20; j++)
			pthread_join(qs[j], NULL);
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			return 2;
		if (pid == 0) {
			pthread_t t;

			pthread_create(&t, NULL, quick, NULL);
			pthread_join(t, NULL);
			_exit(0);
		}
		st = 0;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			bad++;
			note("round %d: child %s %d", i, WIFSIGNALED(st) ? "killed by signal" : "exit",
			     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		}
	}
	stop = 1;
	pthread_join(sp, NULL);
	if (write(p[1], "x", 1) != 1)
		return 2;
	pthread_join(by, NULL);
	check(bad == 0, "children of a thread that moved between kernel threads run threads",
	      "%d of %d children failed", bad, ROUNDS);
	return failures != 0;
}
