/* Parallel pread of one regular file: <threads> threads read it in 64 KiB
 * blocks.
 *
 * The file (<mib> MiB) is created in $BENCH_FILE_DIR, else $TMPDIR, else
 * /tmp, written, fsync'd and unlinked at once (the open descriptors keep
 * it alive).  Two phases, each timed from the moment the first reader
 * leaves the start barrier to the moment the last one finishes (measured
 * by the readers themselves: main may wake from the barrier late):
 *
 *   warm    the file is in the page cache (just written, then read once
 *           by main): <warm_mib> MiB in all, split evenly between the
 *           threads (by default each reads the file 4 times over).
 *           Dropping the cache needs root, so there is no cold-cache
 *           figure; the next phase reaches the disk instead.
 *   direct  the same reads through an O_DIRECT descriptor, which bypass
 *           the page cache: <direct_mib> MiB in all, split evenly.
 *           Skipped, with a message on stderr, where the file system
 *           refuses O_DIRECT (direct=unsupported), or when direct_mib is 0
 *           (direct=off).  Note tmpfs accepts O_DIRECT since Linux 6.6,
 *           but that is still memory, not a disk.
 *
 * mode seq: thread i reads blocks in order from block i x blocks / threads,
 * wrapping at the end of the file, so the threads spread over the file;
 * mode rand: each thread picks blocks at random (its own xorshift).
 * Every read must return a whole block, and the first 8 bytes of each
 * block are checked against the pattern written at that offset.
 *
 *   bench_fileread [mib=64] [threads=16] [seq|rand] [warm_mib=4096] [direct_mib=256]
 * prints: RESULT name=file-read file_mib=M threads=T mode=seq
 *         warm_mib=X warm_ms=Y warm_mib_s=Z
 *         direct_mib=X direct_ms=Y direct_mib_s=Z | direct=unsupported
 *         maxrss_kib=K */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (64 * 1024)
#define ALIGN 4096              /* O_DIRECT buffer alignment */

struct reader {
    pthread_t tid;
    int id;
    int fd;
    long blocks;                /* how many blocks to read */
    long bad;                   /* short reads + pattern mismatches */
    double done_ms;             /* when it finished (now_ms) */
};

static long nblocks;            /* blocks in the file */
static int nthreads;
static int random_mode;
static pthread_barrier_t start_barrier;   /* readers + main */
static _Atomic double t0_ms;    /* start of the phase; 0 until a reader starts */

static void fail(const char *what, int err)
{
    fprintf(stderr, "bench_fileread: %s: %s\n", what, strerror(err));
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The 8-byte word stored at file offset off (a multiple of 8). */
static uint64_t pattern(uint64_t off)
{
    return (off / 8) * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995deadbeefull;
}

static void *reader_fn(void *arg)
{
    struct reader *r = arg;
    void *buf;
    if (posix_memalign(&buf, ALIGN, BLOCK) != 0)
        fail("posix_memalign", ENOMEM);
    uint64_t rng = 0x2545f4914f6cdd1dull * (uint64_t)(r->id + 1);
    long blk = (long)((int64_t)r->id * nblocks / nthreads);

    pthread_barrier_wait(&start_barrier);
    double t0 = 0, now = now_ms();
    atomic_compare_exchange_strong(&t0_ms, &t0, now);   /* the first one sets it */
    for (long k = 0; k < r->blocks; k++) {
        if (random_mode) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            blk = (long)(rng % (uint64_t)nblocks);
        }
        off_t off = (off_t)blk * BLOCK;
        ssize_t n = pread(r->fd, buf, BLOCK, off);
        uint64_t first;
        memcpy(&first, buf, sizeof first);
        if (n != BLOCK || first != pattern((uint64_t)off))
            r->bad++;
        if (!random_mode && ++blk == nblocks)
            blk = 0;
    }
    r->done_ms = now_ms();
    free(buf);
    return NULL;
}

/* Run one phase: every thread reads blocks_each blocks from fd.  Returns
 * the elapsed ms from the first reader's start to the last one's end. */
static double phase(const char *name, int fd, long blocks_each)
{
    struct reader *rs = calloc((size_t)nthreads, sizeof *rs);
    if (!rs)
        fail("calloc", ENOMEM);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_barrier_init(&start_barrier, NULL, (unsigned)nthreads + 1);
    atomic_store(&t0_ms, 0.0);
    for (int i = 0; i < nthreads; i++) {
        rs[i] = (struct reader){ .id = i, .fd = fd, .blocks = blocks_each };
        int err = pthread_create(&rs[i].tid, &attr, reader_fn, &rs[i]);
        if (err)
            fail("pthread_create", err);
    }
    pthread_barrier_wait(&start_barrier);
    long bad = 0;
    double end = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(rs[i].tid, NULL);
        bad += rs[i].bad;
        if (rs[i].done_ms > end)
            end = rs[i].done_ms;
    }
    double ms = end - atomic_load(&t0_ms);
    pthread_barrier_destroy(&start_barrier);
    pthread_attr_destroy(&attr);
    free(rs);
    if (bad) {
        fprintf(stderr, "bench_fileread: %s: %ld blocks short or with wrong contents\n",
                name, bad);
        exit(1);
    }
    return ms;
}

/* Create, fill and fsync the file; returns a buffered descriptor and,
 * in *dfd, an O_DIRECT one (-1 if refused).  The file is unlinked. */
static int make_file(long mib, int *dfd)
{
    const char *dir = getenv("BENCH_FILE_DIR");
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/gshim-fileread.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        fail(path, errno);
    *dfd = open(path, O_RDONLY | O_DIRECT);
    int derr = errno;
    unlink(path);
    if (*dfd < 0)
        fprintf(stderr, "bench_fileread: O_DIRECT refused in %s (%s): skipping the direct phase\n",
                dir, strerror(derr));

    uint64_t *chunk = malloc(1 << 20);
    if (!chunk)
        fail("malloc", ENOMEM);
    for (long m = 0; m < mib; m++) {
        uint64_t base = (uint64_t)m << 20;
        for (size_t i = 0; i < (1 << 20) / 8; i++)
            chunk[i] = pattern(base + 8 * i);
        ssize_t n = pwrite(fd, chunk, 1 << 20, (off_t)base);
        if (n != 1 << 20)
            fail("pwrite", n < 0 ? errno : ENOSPC);
    }
    free(chunk);
    if (fsync(fd) != 0)   /* the direct phase must read the disk, not wait on writeback */
        fail("fsync", errno);
    return fd;
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? atol(argv[1]) : 64;
    nthreads = argc > 2 ? atoi(argv[2]) : 16;
    const char *mode = argc > 3 ? argv[3] : "seq";
    long warm_total_mib = argc > 4 ? atol(argv[4]) : 4096;
    long direct_mib = argc > 5 ? atol(argv[5]) : 256;
    if (mib < 1)
        mib = 1;
    if (nthreads < 1)
        nthreads = 1;
    if (strcmp(mode, "seq") != 0 && strcmp(mode, "rand") != 0) {
        fprintf(stderr, "bench_fileread: mode must be seq or rand\n");
        return 1;
    }
    random_mode = mode[0] == 'r';
    nblocks = mib * (1024 * 1024 / BLOCK);

    int dfd, fd = make_file(mib, &dfd);
    static char warm_buf[BLOCK];                    /* every page in the cache */
    for (long b = 0; b < nblocks; b++)
        if (pread(fd, warm_buf, BLOCK, (off_t)b * BLOCK) != BLOCK)
            fail("pread (warm-up)", errno ? errno : EIO);

    long warm_blocks = warm_total_mib * (1024 * 1024 / BLOCK) / nthreads;   /* per thread */
    if (warm_blocks < 1)
        warm_blocks = 1;
    double warm_ms = phase("warm", fd, warm_blocks);
    double warm_mib = (double)warm_blocks * nthreads * BLOCK / (1 << 20);
    printf("RESULT name=file-read file_mib=%ld threads=%d mode=%s warm_mib=%.0f warm_ms=%.1f "
           "warm_mib_s=%.0f", mib, nthreads, mode, warm_mib, warm_ms, warm_mib / (warm_ms / 1e3));

    if (dfd >= 0 && direct_mib > 0) {
        long direct_blocks = direct_mib * (1024 * 1024 / BLOCK) / nthreads;
        if (direct_blocks < 1)
            direct_blocks = 1;
        double direct_ms = phase("direct", dfd, direct_blocks);
        double dmib = (double)direct_blocks * nthreads * BLOCK / (1 << 20);
        printf(" direct_mib=%.0f direct_ms=%.1f direct_mib_s=%.0f",
               dmib, direct_ms, dmib / (direct_ms / 1e3));
    } else {
        printf(" direct=%s", dfd >= 0 ? "off" : "unsupported");
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf(" maxrss_kib=%ld\n", ru.ru_maxrss);
    return 0;
}
