/* Thread-per-connection TCP echo, server and clients in one process.
 *
 * The server listens on 127.0.0.1 (port 0: the kernel picks one); an
 * acceptor thread accepts exactly <conns> connections and starts one
 * server thread per connection, which echoes 64-byte messages until EOF.
 * <conns> client threads each connect, wait on a barrier until every
 * client is connected and every server thread started, then do 64-byte
 * request/response round trips (blocking write, blocking read of the full
 * reply, reply checked byte for byte) for <secs> seconds.  So 2 x conns
 * threads are blocked in socket reads most of the time: natively each is
 * a kernel thread; under gshim it shows how many OS threads (M's) carry
 * them.  All threads get 256 KiB stacks.
 *
 * Timing does not rely on main getting a CPU: natively, with 2000 threads
 * waking each other, a sleeping main thread was seen to wake seconds late.
 * The first thread through the barrier fixes the start (t0) and so the
 * deadline; each client checks the clock (vDSO) after every round trip and
 * stops at the deadline, recording when it stopped.  wall_ms runs from t0
 * to the last client's stop; the first client past half time counts the
 * kernel threads.
 *
 *   bench_echo [conns=1000] [secs=3]
 * prints: RESULT name=echo conns=N secs=S round_trips=R wall_ms=W
 *         req_per_s=X tasks=T maxrss_kib=K min_conn_rt=A max_conn_rt=B
 * tasks: kernel threads (Threads: in /proc/self/status) half way through
 * the run, while every connection is busy (-1 if that could not be done);
 * min_conn_rt / max_conn_rt: the fewest and most round trips made by one
 * connection (a connection starved by the scheduler shows in the first).
 * RLIMIT_NOFILE is raised to its hard limit; if that still cannot hold
 * 2 x conns descriptors, conns is clamped (said on stderr; the RESULT line
 * shows the number used).  A watchdog alarm kills the process if the run
 * hangs (secs + 60 s). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64               /* bytes per request and per reply */
#define STACK (256 * 1024)   /* stack size of every thread */
#define SPARE_FDS 64         /* descriptors kept free for stdio, listener, /proc */

struct client {
    pthread_t tid;
    int id;
    long round_trips;        /* written by the client when it stops */
    double stopped_ms;       /* when it stopped (now_ms) */
};

static int listen_fd;
static struct sockaddr_in server_addr;
static int nconns;
static pthread_t *servers;   /* one per accepted connection, joined by main */
static pthread_attr_t attr;  /* every thread: 256 KiB stack */
static pthread_barrier_t start_barrier;   /* clients + server threads + main */
static double run_secs;
static _Atomic double t0_ms; /* start of the timed run; 0 until the barrier opens */
static atomic_int counting;  /* set by the client that counts the kernel threads */
static int tasks = -1;       /* kernel threads half way through the run */

static void fail(const char *what, int err)
{
    fprintf(stderr, "bench_echo: %s: %s\n", what, strerror(err));
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Read exactly n bytes.  Returns n, 0 on EOF before any byte, -1 on error
 * or on EOF in the middle of a message. */
static ssize_t read_full(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 && got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return (ssize_t)n;
}

static int write_full(int fd, const char *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = write(fd, buf + put, n - put);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        put += (size_t)r;
    }
    return 0;
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Server side: echo whole messages back until the client closes. */
static void *server_fn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[MSG];
    ssize_t r;
    pthread_barrier_wait(&start_barrier);
    while ((r = read_full(fd, buf, MSG)) == MSG)
        if (write_full(fd, buf, MSG) != 0)
            break;
    close(fd);
    return r == 0 ? NULL : (void *)1;   /* clean EOF or not */
}

/* Accept exactly nconns connections, one server thread each. */
static void *acceptor_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < nconns; i++) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                i--;
                continue;
            }
            fail("accept", errno);
        }
        set_nodelay(fd);
        int err = pthread_create(&servers[i], &attr, server_fn, (void *)(intptr_t)fd);
        if (err)
            fail("pthread_create (server)", err);
    }
    return NULL;
}

/* The request of round trip `seq` on connection `id`: bytes that differ
 * between connections and between consecutive round trips, so a reply
 * meant for another connection or a stale one is caught. */
static void fill(char *buf, int id, long seq)
{
    uint64_t x = ((uint64_t)id << 32) ^ (uint64_t)seq ^ 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < MSG; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (char)(x >> 56);
    }
}

/* Kernel threads in this process: the Threads: line of /proc/self/status,
 * read with one read() so it is a snapshot even if this thread is
 * descheduled half way (walking /proc/self/task can take seconds then). */
static int count_tasks(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY), n = -1;
    if (fd < 0)
        return -1;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return -1;
    buf[len] = 0;
    char *p = strstr(buf, "\nThreads:");
    if (p)
        n = atoi(p + strlen("\nThreads:"));
    return n;
}

/* The start of the timed run: set by the first thread out of the barrier. */
static double start_time(void)
{
    double t0 = 0, now = now_ms();
    if (atomic_compare_exchange_strong(&t0_ms, &t0, now))
        return now;
    return t0;
}

static void *client_fn(void *arg)
{
    struct client *c = arg;
    char req[MSG], rep[MSG];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fail("socket (client)", errno);
    while (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0)
        if (errno != EINTR)
            fail("connect", errno);
    set_nodelay(fd);
    pthread_barrier_wait(&start_barrier);
    double t0 = start_time(), now = t0;
    double half = t0 + run_secs * 1e3 / 2, deadline = t0 + run_secs * 1e3;

    long n = 0;
    for (; now < deadline; now = now_ms()) {
        if (now >= half && !atomic_load_explicit(&counting, memory_order_relaxed) &&
            !atomic_exchange(&counting, 1))
            tasks = count_tasks();   /* read by main after joining this thread */
        fill(req, c->id, n);
        if (write_full(fd, req, MSG) != 0)
            fail("write (client)", errno);
        if (read_full(fd, rep, MSG) != MSG)
            fail("read (client): short reply", errno);
        if (memcmp(req, rep, MSG) != 0) {
            fprintf(stderr, "bench_echo: connection %d, round trip %ld: wrong reply\n",
                    c->id, n);
            exit(1);
        }
        n++;
    }
    c->round_trips = n;
    c->stopped_ms = now;
    close(fd);                  /* the server thread sees EOF and exits */
    return NULL;
}

/* Raise the soft descriptor limit to the hard one; clamp conns if even
 * that cannot hold a client and a server descriptor per connection. */
static void fit_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t need = 2 * (rlim_t)nconns + SPARE_FDS;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        int fit = rl.rlim_cur > SPARE_FDS + 2 ? (int)((rl.rlim_cur - SPARE_FDS) / 2) : 1;
        fprintf(stderr, "bench_echo: RLIMIT_NOFILE is %llu: clamping %d connections to %d\n",
                (unsigned long long)rl.rlim_cur, nconns, fit);
        nconns = fit;
    }
}

int main(int argc, char **argv)
{
    nconns = argc > 1 ? atoi(argv[1]) : 1000;
    double secs = argc > 2 ? atof(argv[2]) : 3;
    if (nconns < 1)
        nconns = 1;
    if (secs <= 0)
        secs = 3;
    run_secs = secs;
    fit_fd_limit();
    alarm((unsigned)secs + 60);   /* watchdog: SIGALRM's default action ends a hung run */

    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0)
        fail("socket", errno);
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    server_addr.sin_port = 0;
    socklen_t alen = sizeof server_addr;
    if (bind(listen_fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0 ||
        getsockname(listen_fd, (struct sockaddr *)&server_addr, &alen) != 0)
        fail("bind", errno);
    /* a backlog as large as the number of clients (the kernel caps it at
     * net.core.somaxconn); connects do not wait on a slow acceptor */
    if (listen(listen_fd, nconns > 128 ? nconns : 128) != 0)
        fail("listen", errno);

    pthread_attr_init(&attr);
    if (pthread_attr_setstacksize(&attr, STACK) != 0)
        fail("pthread_attr_setstacksize", EINVAL);
    servers = calloc((size_t)nconns, sizeof *servers);
    struct client *clients = calloc((size_t)nconns, sizeof *clients);
    if (!servers || !clients)
        fail("calloc", ENOMEM);
    pthread_barrier_init(&start_barrier, NULL, 2 * (unsigned)nconns + 1);

    pthread_t acceptor;
    int err = pthread_create(&acceptor, &attr, acceptor_fn, NULL);
    if (err)
        fail("pthread_create (acceptor)", err);
    for (int i = 0; i < nconns; i++) {
        clients[i].id = i;
        if ((err = pthread_create(&clients[i].tid, &attr, client_fn, &clients[i])))
            fail("pthread_create (client)", err);
    }
    /* the run starts when every client is connected and every server
     * thread started; from there main only waits */
    pthread_barrier_wait(&start_barrier);
    double t0 = start_time();
    pthread_join(acceptor, NULL);

    long total = 0, min_rt = -1, max_rt = 0;
    double end = t0;
    for (int i = 0; i < nconns; i++) {
        pthread_join(clients[i].tid, NULL);
        long n = clients[i].round_trips;
        total += n;
        if (min_rt < 0 || n < min_rt)
            min_rt = n;
        if (n > max_rt)
            max_rt = n;
        if (clients[i].stopped_ms > end)
            end = clients[i].stopped_ms;
    }
    double wall = end - t0;
    int bad = 0;
    for (int i = 0; i < nconns; i++) {
        void *rv;
        pthread_join(servers[i], &rv);
        bad += rv != NULL;
    }
    if (bad) {
        fprintf(stderr, "bench_echo: %d server threads ended without a clean EOF\n", bad);
        return 1;
    }
    close(listen_fd);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT name=echo conns=%d secs=%g round_trips=%ld wall_ms=%.1f req_per_s=%.0f "
           "tasks=%d maxrss_kib=%ld min_conn_rt=%ld max_conn_rt=%ld\n",
           nconns, secs, total, wall, (double)total / (wall / 1e3), tasks, ru.ru_maxrss,
           min_rt, max_rt);
    return 0;
}
