/* tests/programs/poll_many.h - what poll_many.c and poll_many_blocked.c
 * share: pipes, another thread that writes or closes a little later, the
 * calls compared (poll, ppoll, select, pselect) and the bystander thread
 * that waits in read() the whole time.  Static, marked unused where a
 * program does not take them all. */
#ifndef GSHIM_TESTS_POLL_MANY_H
#define GSHIM_TESTS_POLL_MANY_H

#include "prog.h"
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>

#define KICK_MS 50.0   /* the other thread acts this long after the call starts */
#define EARLY_MS 40.0  /* "after ~50 ms": at least this */
#define SLACK_MS 40.0  /* "at once": less than this */
#define WAITERS 300
#define MANY 100       /* > 64 descriptors */

static __attribute__((unused)) void mkpipe(int p[2])
{
	if (pipe(p)) {
		perror("poll_many: pipe");
		exit(2);
	}
}

/* ---- another thread acts a little later ------------------------------------- */
enum act { ACT_WRITE, ACT_CLOSE };

struct later {
	enum act act;
	int fd;
	double ms;
	pthread_t t;
};

static __attribute__((unused)) void *later_main(void *arg)
{
	struct later *l = arg;

	sleep_ms(l->ms);
	if (l->act == ACT_WRITE) {
		if (write(l->fd, "x", 1) != 1)
			perror("poll_many: write");
	} else {
		close(l->fd);
	}
	return NULL;
}

static __attribute__((unused)) void later_start(struct later *l, enum act act, int fd, double ms)
{
	l->act = act;
	l->fd = fd;
	l->ms = ms;
	pthread_create(&l->t, NULL, later_main, l);
}

static __attribute__((unused)) void later_join(struct later *l)
{
	pthread_join(l->t, NULL);
}

/* ---- the calls compared ------------------------------------------------------ */
enum call { C_POLL, C_PPOLL, C_SELECT, C_PSELECT };
static const char *const call_name[] = { "poll", "ppoll", "select", "pselect" };

/* A thread that waits the whole time: under gshim a program with one
 * thread makes the plain calls, so every call here is made beside it. */
static int bystander_pipe[2];

static void *bystander(void *arg)
{
	char c;

	(void)arg;
	return (void *)(intptr_t)read(bystander_pipe[0], &c, 1);
}

static pthread_t bystander_start(void)
{
	pthread_t by;

	mkpipe(bystander_pipe);
	pthread_create(&by, NULL, bystander, NULL);
	return by;
}

static void bystander_stop(pthread_t by)
{
	close(bystander_pipe[1]);
	pthread_join(by, NULL);
}

#endif
