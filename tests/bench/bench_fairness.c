/* Scheduling fairness and timer latency under CPU-bound load.
 *
 * Four CPU-bound threads spin in a pure arithmetic loop, counting
 * iterations; a ticker thread sleeps 1 ms at a time (relative
 * clock_nanosleep) and records the longest gap between two wake-ups.
 * Meant for GOMAXPROCS=1 (and 2) under gshim: with fewer P's than
 * runnable threads, only preemption lets every spinner and the ticker run.
 * Natively the kernel's scheduler time-slices them (run it under
 * `taskset -c 0` for the one-CPU equivalent of GOMAXPROCS=1).
 *
 * Stopping must not depend on the scheduler being fair: main sleeps to
 * the deadline and then sets the stop flag, but if main never gets a CPU
 * (one P, a spinner that is never preempted), the spinners stop anyway:
 * each checks the flag every iteration and CLOCK_MONOTONIC (vDSO, no
 * system call) every 2^18 iterations (well under a millisecond), and the
 * ticker checks the clock after each sleep.  So a run ends about <secs>
 * after it starts however badly the threads are scheduled; a starved
 * ticker shows up as one gap about as long as the run.
 *
 *   bench_fairness [secs=2]
 * prints: RESULT name=fairness secs=S spinners=4 wall_ms=W max_gap_ms=G
 *         ticks=N share0=P ... share3=P max_dev_pct=D miter_per_s=M
 * share<i>: spinner i's iterations as a percentage of all iterations;
 * max_dev_pct: the largest |share - 25| in percentage points;
 * miter_per_s: all iterations per second, in millions. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPINNERS 4
#define CLOCK_EVERY (1u << 18)   /* iterations between deadline checks */
#define TICK_NS 1000000L         /* the ticker's sleep: 1 ms */

struct spinner {
    pthread_t tid;
    uint64_t iters;
    uint64_t sink;               /* the loop's result, so it is not optimised away */
    char pad[64];                /* keep spinners' fields off each other's cache line */
};

static struct spinner spinners[SPINNERS];
static atomic_int stop;
static int64_t start_ns, deadline_ns;   /* CLOCK_MONOTONIC; set by main before the barrier */
static pthread_barrier_t start_barrier;   /* spinners + ticker + main */

static int64_t ticks;
static int64_t max_gap_ns;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *spin_fn(void *arg)
{
    struct spinner *s = arg;
    uint64_t x = (uint64_t)(uintptr_t)arg, n = 0;

    pthread_barrier_wait(&start_barrier);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        x ^= x >> 29;
        if (++n % CLOCK_EVERY == 0 && now_ns() >= deadline_ns)
            break;
    }
    s->iters = n;
    s->sink = x;
    return NULL;
}

static void *tick_fn(void *arg)
{
    (void)arg;
    struct timespec one_ms = { 0, TICK_NS };

    pthread_barrier_wait(&start_barrier);
    int64_t prev = start_ns;      /* a ticker that starts late has a gap already */
    for (;;) {
        int err = clock_nanosleep(CLOCK_MONOTONIC, 0, &one_ms, NULL);
        if (err && err != EINTR) {
            fprintf(stderr, "bench_fairness: clock_nanosleep: %s\n", strerror(err));
            exit(1);
        }
        int64_t t = now_ns();
        if (t - prev > max_gap_ns)
            max_gap_ns = t - prev;    /* counted even past the deadline: starvation */
        prev = t;
        if (atomic_load_explicit(&stop, memory_order_relaxed) || t >= deadline_ns)
            break;
        ticks++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2;
    if (secs <= 0)
        secs = 2;
    pthread_t ticker;
    int err;

    pthread_barrier_init(&start_barrier, NULL, SPINNERS + 2);
    for (int i = 0; i < SPINNERS; i++)
        if ((err = pthread_create(&spinners[i].tid, NULL, spin_fn, &spinners[i])))
            goto create_failed;
    if ((err = pthread_create(&ticker, NULL, tick_fn, NULL)))
        goto create_failed;

    start_ns = now_ns();
    deadline_ns = start_ns + (int64_t)(secs * 1e9);
    pthread_barrier_wait(&start_barrier);   /* publishes deadline_ns */
    struct timespec dl = { (time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL) == EINTR)
        ;
    atomic_store_explicit(&stop, 1, memory_order_relaxed);

    uint64_t total = 0;
    for (int i = 0; i < SPINNERS; i++) {
        pthread_join(spinners[i].tid, NULL);
        total += spinners[i].iters;
    }
    pthread_join(ticker, NULL);
    double wall_ms = (double)(now_ns() - start_ns) / 1e6;

    printf("RESULT name=fairness secs=%g spinners=%d wall_ms=%.1f max_gap_ms=%.2f ticks=%lld",
           secs, SPINNERS, wall_ms, (double)max_gap_ns / 1e6, (long long)ticks);
    double max_dev = 0;
    for (int i = 0; i < SPINNERS; i++) {
        double share = total ? 100.0 * (double)spinners[i].iters / (double)total : 0;
        printf(" share%d=%.1f", i, share);
        double dev = share > 100.0 / SPINNERS ? share - 100.0 / SPINNERS
                                              : 100.0 / SPINNERS - share;
        if (dev > max_dev)
            max_dev = dev;
    }
    printf(" max_dev_pct=%.1f miter_per_s=%.1f\n", max_dev,
           (double)total / (wall_ms / 1e3) / 1e6);
    return 0;

create_failed:
    fprintf(stderr, "bench_fairness: pthread_create: %s\n", strerror(err));
    return 1;
}
