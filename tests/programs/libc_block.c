/* Threads blocked inside libc, in calls that a preload library cannot
 * wrap (glibc calls its internal __read / __waitpid), must not stop the
 * others - also at GOMAXPROCS=1:
 *   - one thread runs system("sleep 0.3; echo hi > /dev/null"),
 *   - one reads a line with popen("sleep 0.2; echo line", "r") + fgets,
 *   - one increments a counter in a sched_yield loop.
 * Main samples the counter twice, 20 ms and 150 ms after both libc calls
 * began (system() at least is still blocked then): it must have grown
 * by MIN_PROGRESS in between.
 * Then: system() returned 0, fgets got "line\n" after >= 200 ms, pclose
 * returned 0. */
#include "prog.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define MIN_PROGRESS 100 /* increments in the 130 ms between the samples */

static _Atomic int system_state, popen_state; /* 0, 1 = in the call, 2 = returned */
static int system_ret;

static void *run_system(void *arg)
{
	(void)arg;
	atomic_store(&system_state, 1);
	system_ret = system("sleep 0.3; echo hi > /dev/null");
	atomic_store(&system_state, 2);
	return NULL;
}

static char line[64];
static int got_line, pclose_ret = -1;
static double fgets_ms;

static void *run_popen(void *arg)
{
	FILE *f;
	double t0 = now_ms();

	(void)arg;
	atomic_store(&popen_state, 1);
	f = popen("sleep 0.2; echo line", "r");
	if (f) {
		got_line = fgets(line, sizeof line, f) != NULL;
		fgets_ms = now_ms() - t0;
		pclose_ret = pclose(f);
	}
	atomic_store(&popen_state, 2);
	return NULL;
}

static _Atomic int stop;
static _Atomic unsigned long counter;

static void *count(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
		sched_yield();
	}
	return NULL;
}

int main(void)
{
	pthread_t ts, tp, tc;
	unsigned long c1, c2;
	int sys_at_c2, popen_at_c2;
	double t0;

	watchdog(15);
	stage("starting the counter");
	pthread_create(&tc, NULL, count, NULL);
	stage("system() and popen() blocking");
	pthread_create(&ts, NULL, run_system, NULL);
	pthread_create(&tp, NULL, run_popen, NULL);
	while (!atomic_load(&system_state) || !atomic_load(&popen_state))
		sleep_ms(1);
	t0 = now_ms();
	sleep_ms(20);
	c1 = atomic_load(&counter);
	sleep_ms(130);
	c2 = atomic_load(&counter);
	sys_at_c2 = atomic_load(&system_state);
	popen_at_c2 = atomic_load(&popen_state);
	note("libc_block: counter +%lu between the samples (%.0f ms after the start)", c2 - c1,
	     now_ms() - t0);

	stage("joining");
	pthread_join(ts, NULL);
	pthread_join(tp, NULL);
	atomic_store(&stop, 1);
	pthread_join(tc, NULL);
	note("libc_block: fgets returned after %.0f ms", fgets_ms);

	/* the counter thread ran while threads sat in libc (the second sample
	 * taken while system() was still blocked, or the check means nothing;
	 * popen's shorter call may have ended on a loaded machine) */
	check(sys_at_c2 == 1 && c2 - c1 >= MIN_PROGRESS,
	      "counter grows while system() and popen() block",
	      "+%lu (want >= %d) between the samples; at the second sample system() %s, popen() %s",
	      c2 - c1, MIN_PROGRESS, sys_at_c2 == 1 ? "blocked" : "had returned",
	      popen_at_c2 == 1 ? "blocked" : "had returned");
	check(WIFEXITED(system_ret) && WEXITSTATUS(system_ret) == 0, "system() returns 0",
	      "status 0x%x", system_ret);
	check(got_line && !strcmp(line, "line\n") && fgets_ms >= 195, "popen + fgets reads \"line\"",
	      "got %s \"%s\" after %.0f ms", got_line ? "line" : "nothing", line, fgets_ms);
	check(pclose_ret == 0, "pclose() returns 0", "status 0x%x", pclose_ret);
	return failures ? 1 : 0;
}
