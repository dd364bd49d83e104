/* Readiness waits with timeouts, TCP between threads, and a blocking
 * write bigger than the socket buffer:
 *
 *  1. poll(), select() and epoll_wait() on an empty pipe with a 100 ms
 *     timeout return 0 after >= 100 ms (and < 1 s); select clears the set.
 *  2. poll() on a pipe with data in it returns 1 / POLLIN at once.
 *  3. TCP on 127.0.0.1 (port 0, getsockname): an acceptor thread starts a
 *     handler thread per connection; 100 client threads connect at once
 *     and each makes 10 request/response round trips of 64 bytes (send /
 *     recv); every response is checked (the server transforms the
 *     request, the client computes the answer it expects).
 *  4. one write() of 1 MiB into a blocking socketpair while the reader
 *     takes 7 KiB at a time, slowly: write returns 1 MiB, and all of it
 *     arrives, in order. */
#include "prog.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>

#define TIMEOUT_MS 100
#define CLIENTS 100
#define ROUNDS 10
#define MSG 64
#define BIG (1 << 20)
#define CHUNK (7 << 10)

/* ---- 1, 2: timeouts ------------------------------------------------------- */
static int timed_out_ok(long r, double took)
{
	return r == 0 && took >= TIMEOUT_MS - 1 && took < 1000;
}

static void test_timeouts(void)
{
	struct pollfd pfd;
	struct timeval tv = { 0, TIMEOUT_MS * 1000 };
	struct epoll_event ev = { .events = EPOLLIN }, out;
	fd_set rd;
	double t0, took;
	long r;
	int p[2], ep;

	stage("poll/select/epoll_wait timeouts");
	if (pipe(p) || (ep = epoll_create1(0)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev))
		abort();

	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	t0 = now_ms();
	r = ERR(poll(&pfd, 1, TIMEOUT_MS));
	took = now_ms() - t0;
	note("poll timeout: %ld after %.1f ms", r, took);
	check(timed_out_ok(r, took) && pfd.revents == 0, "poll(empty pipe, 100 ms) times out",
	      "returned %ld (%s) after %.1f ms, revents 0x%x", r, errname(r), took, pfd.revents);

	FD_ZERO(&rd);
	FD_SET(p[0], &rd);
	t0 = now_ms();
	r = ERR(select(p[0] + 1, &rd, NULL, NULL, &tv));
	took = now_ms() - t0;
	note("select timeout: %ld after %.1f ms", r, took);
	check(timed_out_ok(r, took) && !FD_ISSET(p[0], &rd), "select(empty pipe, 100 ms) times out",
	      "returned %ld (%s) after %.1f ms, fd still set: %d", r, errname(r), took,
	      FD_ISSET(p[0], &rd) != 0);

	t0 = now_ms();
	r = ERR(epoll_wait(ep, &out, 1, TIMEOUT_MS));
	took = now_ms() - t0;
	note("epoll_wait timeout: %ld after %.1f ms", r, took);
	check(timed_out_ok(r, took), "epoll_wait(empty pipe, 100 ms) times out",
	      "returned %ld (%s) after %.1f ms", r, errname(r), took);

	if (write(p[1], "x", 1) != 1)
		abort();
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	t0 = now_ms();
	r = ERR(poll(&pfd, 1, 5000));
	took = now_ms() - t0;
	check(r == 1 && pfd.revents == POLLIN && took < 50, "poll(pipe with data) returns POLLIN at once",
	      "returned %ld (%s) after %.1f ms, revents 0x%x", r, errname(r), took, pfd.revents);

	close(ep);
	close(p[0]);
	close(p[1]);
}

/* ---- 3: TCP request/response -------------------------------------------- */
/* send or receive exactly n bytes (a stream socket may split them) */
static long full_io(int fd, void *buf, size_t n, int sending)
{
	size_t done = 0;

	while (done < n) {
		long r = sending ? ERR(send(fd, (char *)buf + done, n - done, 0))
				 : ERR(recv(fd, (char *)buf + done, n - done, 0));
		if (r <= 0)
			return done ? (long)done : r;
		done += (size_t)r;
	}
	return (long)done;
}

/* the server's answer to a request: every byte + 1 and reversed */
static void transform(const uint8_t *req, uint8_t *resp)
{
	for (int i = 0; i < MSG; i++)
		resp[MSG - 1 - i] = (uint8_t)(req[i] + 1);
}

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t req[MSG], resp[MSG];

	while (full_io(fd, req, MSG, 0) == MSG) { /* until the client closes */
		transform(req, resp);
		if (full_io(fd, resp, MSG, 1) != MSG)
			break;
	}
	close(fd);
	return NULL;
}

static int listener;
static _Atomic int accepted, accept_err;

static void *acceptor(void *arg)
{
	pthread_attr_t detached;

	(void)arg;
	pthread_attr_init(&detached);
	pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < CLIENTS; i++) {
		long fd = ERR(accept(listener, NULL, NULL));
		pthread_t t;

		if (fd < 0) {
			atomic_store(&accept_err, (int)fd);
			break;
		}
		atomic_fetch_add(&accepted, 1);
		pthread_create(&t, &detached, serve_conn, (void *)(intptr_t)fd);
	}
	return NULL;
}

static struct sockaddr_in server_addr;
static _Atomic int rounds_ok, connect_err, io_err, wrong_resp;

static void *client(void *arg)
{
	int id = (int)(intptr_t)arg, fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	uint8_t req[MSG], resp[MSG], want[MSG];
	long r;

	r = ERR(connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr));
	if (r < 0) {
		atomic_store(&connect_err, (int)r);
		close(fd);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < MSG; i++)
			req[i] = (uint8_t)(id * 31 + round * 7 + i * 13);
		if (full_io(fd, req, MSG, 1) != MSG || full_io(fd, resp, MSG, 0) != MSG) {
			atomic_fetch_add(&io_err, 1);
			break;
		}
		transform(req, want);
		if (memcmp(resp, want, MSG))
			atomic_fetch_add(&wrong_resp, 1);
		else
			atomic_fetch_add(&rounds_ok, 1);
	}
	close(fd);
	return NULL;
}

static void test_tcp(void)
{
	socklen_t len = sizeof server_addr;
	pthread_t acc, cl[CLIENTS];
	double t0 = now_ms();

	stage("TCP: 100 clients x 10 round trips");
	listener = socket(AF_INET, SOCK_STREAM, 0);
	server_addr = (struct sockaddr_in){ .sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (listener < 0 || bind(listener, (struct sockaddr *)&server_addr, sizeof server_addr) ||
	    listen(listener, CLIENTS) ||
	    getsockname(listener, (struct sockaddr *)&server_addr, &len)) {
		perror("poll_timeouts: listen");
		exit(2);
	}
	pthread_create(&acc, NULL, acceptor, NULL);
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&cl[i], NULL, client, (void *)(intptr_t)i);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(cl[i], NULL);
	pthread_join(acc, NULL);
	close(listener);
	note("tcp: %d round trips in %.0f ms", atomic_load(&rounds_ok), now_ms() - t0);
	check(atomic_load(&rounds_ok) == CLIENTS * ROUNDS && atomic_load(&accepted) == CLIENTS,
	      "TCP: 100 clients x 10 round trips of 64 bytes, every response right",
	      "%d of %d round trips right, %d wrong, %d I/O errors; %d accepted (%s), connect: %s",
	      atomic_load(&rounds_ok), CLIENTS * ROUNDS, atomic_load(&wrong_resp),
	      atomic_load(&io_err), atomic_load(&accepted), errname(atomic_load(&accept_err)),
	      errname(atomic_load(&connect_err)));
}

/* ---- 4: one big blocking write ------------------------------------------ */
static uint8_t *big;
static int big_fd;
static long big_written;

static void *big_writer(void *arg)
{
	(void)arg;
	big_written = ERR(write(big_fd, big, BIG)); /* one call */
	close(big_fd);
	return NULL;
}

static void test_big_write(void)
{
	uint8_t *got = malloc(BIG + CHUNK);
	long total = 0, r, chunks = 0;
	pthread_t t;
	int s[2];

	stage("1 MiB write into a socketpair, read 7 KiB at a time");
	big = malloc(BIG);
	if (!big || !got || socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		abort();
	for (long i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	big_fd = s[1];
	pthread_create(&t, NULL, big_writer, NULL);
	/* slowly: a pause now and then, so the writer blocks on a full buffer */
	while ((r = ERR(read(s[0], got + total, CHUNK))) > 0) {
		total += r;
		if (++chunks % 8 == 0)
			sleep_ms(2);
	}
	pthread_join(t, NULL);
	close(s[0]);
	check(big_written == BIG && r == 0 && total == BIG && !memcmp(got, big, BIG),
	      "one write() of 1 MiB to a blocking socketpair: all of it, intact",
	      "write returned %ld (%s); read %ld bytes, then %ld (%s); content %s", big_written,
	      errname(big_written), total, r, errname(r),
	      total == BIG && !memcmp(got, big, BIG) ? "same" : "differs");
	free(big);
	free(got);
}

int main(void)
{
	watchdog(15);
	signal(SIGPIPE, SIG_IGN); /* a peer that gave up: EPIPE, not death */
	test_timeouts();
	test_tcp();
	test_big_write();
	return failures ? 1 : 0;
}
