/* Producer/consumer over three kinds of descriptor at once - a pipe, a
 * UNIX socketpair and a FIFO - while a CPU-bound thread spins beside them.
 *
 * Each channel carries 4 MiB of a pseudo-random byte stream (a known
 * function of the channel and the offset), written in sizes from 1 byte
 * to 256 KiB (the big ones exceed the pipe / socket buffer, so a write
 * blocks part-way) and read in other varying sizes; the consumer checks
 * every byte against the stream and the total against 4 MiB, then EOF.
 * The FIFO is created in a mkdtemp directory and opened blocking by both
 * sides, each in its own thread: each open waits for the other side.
 *
 * The spinner never blocks or yields: at GOMAXPROCS=1 under an M:N
 * runtime the transfers finish only if a thread blocked on a descriptor
 * does not hold the only P (poller) and the spinner is preempted so that
 * the readied producers and consumers get to run. */
#include "prog.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define TOTAL (4u << 20)  /* bytes per channel */
#define MAXIO (256u << 10) /* largest write or read */

enum { PIPE, SOCKETPAIR, FIFO, NCHAN };
static const char *const chan_name[NCHAN] = { "pipe", "socketpair", "fifo" };

struct chan {
	int kind;
	int rfd, wfd;             /* pipe / socketpair: opened by main */
	char dir[64], path[80];   /* fifo: opened by the threads */
	/* results */
	long written, wr_err;     /* producer: bytes, -errno of a failed call */
	long got, rd_err;         /* consumer: bytes before EOF, -errno */
	long bad_at;              /* offset of the first wrong byte, or -1 */
	long open_err;            /* fifo: -errno of a failed open */
};

static struct chan chans[NCHAN];

/* ---- the byte stream and the size sequences ---------------------------- */
static uint64_t mix(uint64_t x) /* splitmix64's finaliser */
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* byte `off` of channel `kind`'s stream */
static inline uint8_t stream_byte(int kind, uint64_t off)
{
	return (uint8_t)(mix(((uint64_t)kind << 56) ^ (off >> 3)) >> ((off & 7) * 8));
}

static void fill(int kind, uint64_t off, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = stream_byte(kind, off + i);
}

/* I/O sizes: mostly 1..64 KiB, every 8th 64 KiB..256 KiB (more than a
 * pipe holds), a few tiny ones; seeded per channel and side */
static size_t next_size(uint64_t *state)
{
	uint64_t r = mix((*state)++);

	if (r % 8 == 0)
		return 65536 + (size_t)(r >> 8) % (MAXIO - 65536 + 1);
	if (r % 8 == 1)
		return 1 + (size_t)(r >> 8) % 16;
	return 1 + (size_t)(r >> 8) % 65536;
}

/* ---- the spinner ------------------------------------------------------- */
static _Atomic int transfers_done, spinner_started;
static _Atomic uint64_t spin_iters; /* published now and then */
static volatile uint64_t spin_sink; /* keeps the work from being optimised out */

static void *spinner(void *arg)
{
	uint64_t x = 1, n = 0;

	(void)arg;
	atomic_store(&spinner_started, 1);
	while (!atomic_load_explicit(&transfers_done, memory_order_relaxed)) {
		for (int i = 0; i < 256; i++) /* real work: no calls, no yields */
			x = mix(x);
		if ((++n & 63) == 0)
			atomic_store_explicit(&spin_iters, n, memory_order_relaxed);
	}
	atomic_store(&spin_iters, n);
	spin_sink = x;
	return NULL;
}

/* ---- producer and consumer --------------------------------------------- */
static int open_fifo(struct chan *c, int flags)
{
	long fd = ERR(open(c->path, flags)); /* blocks until the other side opens */

	if (fd < 0)
		c->open_err = fd;
	return (int)fd;
}

static void *producer(void *arg)
{
	struct chan *c = arg;
	uint8_t *buf = malloc(MAXIO);
	uint64_t sizes = 1000 + (uint64_t)c->kind;
	int fd = c->kind == FIFO ? open_fifo(c, O_WRONLY) : c->wfd;

	if (fd < 0 || !buf)
		goto out;
	if (c->kind == FIFO) {
		/* both sides are open now: the name is no longer needed (and is
		 * not left behind if the watchdog ends the run) */
		unlink(c->path);
		rmdir(c->dir);
	}
	while (c->written < TOTAL) {
		size_t n = next_size(&sizes), done = 0;

		if (n > (size_t)(TOTAL - c->written))
			n = (size_t)(TOTAL - c->written);
		fill(c->kind, (uint64_t)c->written, buf, n);
		while (done < n) { /* a blocking write may still come back short */
			long w = ERR(write(fd, buf + done, n - done));

			if (w <= 0) {
				c->wr_err = w < 0 ? w : -EIO;
				goto out;
			}
			done += (size_t)w;
			c->written += w;
		}
	}
out:
	if (fd >= 0)
		close(fd); /* the consumer's EOF */
	free(buf);
	return NULL;
}

static void *consumer(void *arg)
{
	struct chan *c = arg;
	uint8_t *buf = malloc(MAXIO);
	uint64_t sizes = 2000 + (uint64_t)c->kind;
	int fd = c->kind == FIFO ? open_fifo(c, O_RDONLY) : c->rfd;

	if (fd < 0 || !buf)
		goto out;
	for (;;) {
		long r = ERR(read(fd, buf, next_size(&sizes)));

		if (r == 0)
			break; /* EOF: the producer closed its end */
		if (r < 0) {
			c->rd_err = r;
			break;
		}
		for (long i = 0; i < r && c->bad_at < 0; i++)
			if (buf[i] != stream_byte(c->kind, (uint64_t)(c->got + i)))
				c->bad_at = c->got + i;
		c->got += r;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/* ---- main ---------------------------------------------------------------- */
static int setup(void)
{
	struct chan *f = &chans[FIFO];
	int p[2], s[2];

	for (int k = 0; k < NCHAN; k++)
		chans[k] = (struct chan){ .kind = k, .rfd = -1, .wfd = -1, .bad_at = -1 };
	if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		return -1;
	chans[PIPE].rfd = p[0], chans[PIPE].wfd = p[1];
	chans[SOCKETPAIR].rfd = s[0], chans[SOCKETPAIR].wfd = s[1];
	strcpy(f->dir, "/tmp/gshim-io_prodcons.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/fifo", f->dir);
	return mkfifo(f->path, 0600);
}

static void report(const struct chan *c)
{
	char what[64];

	snprintf(what, sizeof what, "%s: %u bytes, every byte as written", chan_name[c->kind], TOTAL);
	check(c->written == TOTAL && c->got == TOTAL && c->bad_at < 0 && !c->wr_err &&
	      !c->rd_err && !c->open_err, what,
	      "wrote %ld (%s), read %ld before EOF (%s), first wrong byte at %ld, open: %s",
	      c->written, errname(c->wr_err), c->got, errname(c->rd_err), c->bad_at,
	      errname(c->open_err));
}

int main(void)
{
	pthread_t spin, prod[NCHAN], cons[NCHAN];
	uint64_t iters_before, iters_during;
	double t0;

	watchdog(15);
	signal(SIGPIPE, SIG_IGN); /* a reader that gave up: EPIPE, not death */
	if (setup()) {
		perror("io_prodcons: setup");
		return 2;
	}
	stage("starting the spinner");
	pthread_create(&spin, NULL, spinner, NULL);
	while (!atomic_load(&spinner_started))
		sleep_ms(1);

	stage("transferring (pipe, socketpair, fifo)");
	t0 = now_ms();
	iters_before = atomic_load(&spin_iters);
	for (int k = 0; k < NCHAN; k++) {
		pthread_create(&cons[k], NULL, consumer, &chans[k]);
		pthread_create(&prod[k], NULL, producer, &chans[k]);
	}
	for (int k = 0; k < NCHAN; k++) {
		pthread_join(prod[k], NULL);
		pthread_join(cons[k], NULL);
	}
	iters_during = atomic_load(&spin_iters) - iters_before;
	note("io_prodcons: transfers took %.0f ms; spinner did %llu rounds meanwhile",
	     now_ms() - t0, (unsigned long long)iters_during);

	stage("stopping the spinner");
	atomic_store(&transfers_done, 1);
	pthread_join(spin, NULL);
	unlink(chans[FIFO].path); /* if the producer did not get that far */
	rmdir(chans[FIFO].dir);

	for (int k = 0; k < NCHAN; k++)
		report(&chans[k]);
	/* the spinner really ran beside the transfers (not starved by them) */
	check(iters_during > 0, "spinner ran during the transfers", "0 rounds");
	return failures ? 1 : 0;
}
