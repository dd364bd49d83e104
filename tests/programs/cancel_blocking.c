/* pthread_cancel of a thread blocked in a cancellation point, for calls
 * gshim makes as plain blocking system calls (waitpid, pause, sigwait,
 * poll/select on more than 64 descriptors, ppoll/pselect/epoll_pwait with
 * a signal mask) and for calls it parks (read on a pipe, accept): the
 * thread is cancelled at once (its cleanup handler runs) natively and
 * under gshim.  Plain calls are interrupted through SIGCANCEL and the
 * cancellable system call of shim/cancel.c; before that they stayed
 * blocked until their descriptor or child woke them. */
#include "prog.h"
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define NFD 100

static pid_t child;
static int rd[NFD], wrfd[NFD], lsock, ep;
static _Atomic int cleaned;

static void cleanup(void *a)
{
	(void)a;
	cleaned++;
}

#define BODY(call)                                  \
	do {                                        \
		long r_;                            \
		pthread_cleanup_push(cleanup, NULL); \
		r_ = (long)(call);                  \
		pthread_cleanup_pop(0);             \
		return (void *)r_;                  \
	} while (0)

static void *c_waitpid(void *a) { int st; (void)a; BODY(waitpid(child, &st, 0)); }
static void *c_pause(void *a) { (void)a; BODY(pause()); }
static void *c_sigwait(void *a)
{
	sigset_t s;
	int sig;

	(void)a;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	BODY(sigwait(&s, &sig));
}
static void *c_poll_many(void *a)
{
	static struct pollfd pf[NFD];

	(void)a;
	for (int i = 0; i < NFD; i++)
		pf[i] = (struct pollfd){ .fd = rd[i], .events = POLLIN };
	BODY(poll(pf, NFD, -1));
}
static void *c_select_many(void *a)
{
	fd_set s;

	(void)a;
	FD_ZERO(&s);
	for (int i = 0; i < NFD; i++)
		FD_SET(rd[i], &s);
	BODY(select(rd[NFD - 1] + 1, &s, NULL, NULL, NULL));
}
static void *c_ppoll_mask(void *a)
{
	struct pollfd pf = { .fd = rd[0], .events = POLLIN };
	sigset_t m;

	(void)a;
	sigemptyset(&m);
	BODY(ppoll(&pf, 1, NULL, &m));
}
static void *c_pselect_mask(void *a)
{
	fd_set s;
	sigset_t m;

	(void)a;
	FD_ZERO(&s);
	FD_SET(rd[0], &s);
	sigemptyset(&m);
	BODY(pselect(rd[0] + 1, &s, NULL, NULL, NULL, &m));
}
static void *c_epoll_mask(void *a)
{
	struct epoll_event ev;
	sigset_t m;

	(void)a;
	sigemptyset(&m);
	BODY(epoll_pwait(ep, &ev, 1, -1, &m));
}
static void *c_read(void *a)
{
	char c;

	(void)a;
	BODY(read(rd[0], &c, 1));
}
static void *c_accept(void *a) { (void)a; BODY(accept(lsock, NULL, NULL)); }

struct kase {
	const char *name;
	void *(*fn)(void *);
};

int main(void)
{
	static const struct kase k[] = {
		{ "waitpid", c_waitpid }, { "pause", c_pause }, { "sigwait", c_sigwait },
		{ "poll on 100 pipes", c_poll_many }, { "select on 100 pipes", c_select_many },
		{ "ppoll with a mask", c_ppoll_mask }, { "pselect with a mask", c_pselect_mask },
		{ "epoll_pwait with a mask", c_epoll_mask }, { "read on a pipe", c_read },
		{ "accept", c_accept },
	};
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t s;

	watchdog(25);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	for (int i = 0; i < NFD; i++) {
		int p[2];

		if (pipe(p))
			return 2;
		rd[i] = p[0];
		wrfd[i] = p[1];
	}
	lsock = socket(AF_INET, SOCK_STREAM, 0);
	ep = epoll_create1(0);
	if (lsock < 0 || ep < 0 || bind(lsock, (struct sockaddr *)&sa, sizeof sa) ||
	    listen(lsock, 4) || epoll_ctl(ep, EPOLL_CTL_ADD, rd[0], &ev))
		return 2;
	child = fork();
	if (child == 0) {
		sleep(20);
		_exit(0);
	}
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
		pthread_t t;
		void *r;
		double t0;
		int before = cleaned;

		stage(k[i].name);
		pthread_create(&t, NULL, k[i].fn, NULL);
		sleep_ms(50);
		t0 = now_ms();
		pthread_cancel(t);
		pthread_join(t, &r);
		note("%s: joined %.1f ms after pthread_cancel", k[i].name, now_ms() - t0);
		char what[96];

		snprintf(what, sizeof what, "cancel while blocked in %s", k[i].name);
		check(r == PTHREAD_CANCELED && cleaned == before + 1 && now_ms() - t0 < 2000, what,
		      "result %p, cleanup ran %d times, %.0f ms", r, cleaned - before, now_ms() - t0);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return failures != 0;
}
