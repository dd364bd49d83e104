/* stdio from many threads while one thread holds flockfile(stdout) across a
 * blocking call.
 *
 * A holder thread takes flockfile(stdout), prints the start of a line,
 * waits on a semaphore that a poster thread posts after a delay, finishes
 * the line and unlocks: ROUNDS times.  Meanwhile PRINTERS threads printf
 * whole lines (and pass tokens round a condvar ring between lines, so
 * they block and wake each other).  stdout has a tiny buffer, so writes
 * happen in the middle of lines.  stdout goes to a temporary file during
 * the run; afterwards every line is checked: intact, each printer's lines
 * complete and in order, the holder's lines not split by anyone.  Only the
 * verdict goes to the real stdout.
 *
 * Under an M:N scheduler the holder parks with glibc's stdio lock held; a
 * printer that then calls printf waits on glibc's internal lock, inside
 * libc, where the scheduler cannot park it: its kernel thread blocks.
 *
 *   stdio_lock [printers]     (default 8) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PRINTERS 64
#define LINES 300
#define ROUNDS 5
#define PAYLOAD "abcdefghijklmnopqrstuvwxyz0123456789"

static int printers = 8;
static sem_t go, held;
static atomic_int holder_round = -1;

/* condvar ring among the printers (equal number of passes each) */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv[MAX_PRINTERS];
static int tokens[MAX_PRINTERS];

static void ring_pass(int id)
{
	pthread_mutex_lock(&mu);
	tokens[(id + 1) % printers]++;
	pthread_cond_signal(&cv[(id + 1) % printers]);
	while (tokens[id] == 0)
		pthread_cond_wait(&cv[id], &mu);
	tokens[id]--;
	pthread_mutex_unlock(&mu);
}

static void *holder(void *arg)
{
	(void)arg;
	for (int r = 0; r < ROUNDS; r++) {
		flockfile(stdout);
		printf("holder round %d: begin ...", r);
		atomic_store(&holder_round, r);
		sem_post(&held);
		sem_wait(&go); /* blocks with the stream locked */
		printf(" end of holder round %d\n", r);
		funlockfile(stdout);
		sched_yield();
	}
	return NULL;
}

static void *poster(void *arg)
{
	(void)arg;
	for (int r = 0; r < ROUNDS; r++) {
		sem_wait(&held);   /* the holder has the lock */
		usleep(20000);     /* let printers pile up on it */
		sem_post(&go);
	}
	return NULL;
}

static void *printer(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int i = 0; i < LINES; i++) {
		printf("printer %02d line %03d: %s %s\n", id, i, PAYLOAD, PAYLOAD);
		if (i % 10 == 9)
			ring_pass(id);
	}
	return NULL;
}

static int check(FILE *f)
{
	char line[512];
	int next[MAX_PRINTERS] = {0}, holder_next = 0, bad = 0, n = 0;
	char want[512];

	while (fgets(line, sizeof line, f)) {
		int id, i, r;
		n++;
		if (sscanf(line, "printer %d line %d:", &id, &i) == 2 && id >= 0 &&
		    id < printers) {
			snprintf(want, sizeof want, "printer %02d line %03d: %s %s\n", id,
				 i, PAYLOAD, PAYLOAD);
			if (strcmp(line, want) != 0 || i != next[id]) {
				if (bad++ < 5)
					fprintf(stderr, "bad line %d: %s", n, line);
			}
			next[id] = i + 1;
		} else if (sscanf(line, "holder round %d:", &r) == 1) {
			snprintf(want, sizeof want,
				 "holder round %d: begin ... end of holder round %d\n", r, r);
			if (strcmp(line, want) != 0 || r != holder_next) {
				if (bad++ < 5)
					fprintf(stderr, "bad line %d: %s", n, line);
			}
			holder_next = r + 1;
		} else {
			if (bad++ < 5)
				fprintf(stderr, "bad line %d: %s", n, line);
		}
	}
	for (int p = 0; p < printers; p++)
		if (next[p] != LINES)
			bad++;
	if (holder_next != ROUNDS)
		bad++;
	if (n != printers * LINES + ROUNDS)
		bad++;
	printf("%d printers x %d lines + %d held lines: %d lines, %s\n", printers,
	       LINES, ROUNDS, n, bad ? "INTERLEAVED or LOST" : "all intact");
	return bad;
}

int main(int argc, char **argv)
{
	static char tiny[61];
	pthread_t h, p, t[MAX_PRINTERS];

	if (argc > 1)
		printers = atoi(argv[1]);
	if (printers < 1 || printers > MAX_PRINTERS)
		return 2;
	for (int i = 0; i < printers; i++)
		pthread_cond_init(&cv[i], NULL);
	sem_init(&go, 0, 0);
	sem_init(&held, 0, 0);

	fflush(stdout);
	int saved = dup(1);
	FILE *tmp = tmpfile();
	if (saved < 0 || !tmp || dup2(fileno(tmp), 1) < 0)
		return 2;
	setvbuf(stdout, tiny, _IOFBF, sizeof tiny);

	pthread_create(&p, NULL, poster, NULL);
	pthread_create(&h, NULL, holder, NULL);
	while (atomic_load(&holder_round) < 0) /* printers start while it is held */
		sched_yield();
	for (intptr_t i = 0; i < printers; i++)
		pthread_create(&t[i], NULL, printer, (void *)i);
	for (int i = 0; i < printers; i++)
		pthread_join(t[i], NULL);
	pthread_join(h, NULL);
	pthread_join(p, NULL);

	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	rewind(tmp);
	int bad = check(tmp);
	fclose(tmp);
	printf("%s\n", bad ? "FAILED" : "ok");
	return bad ? 1 : 0;
}
