/* Regular files: writes, syncs and reads that wait for the disk.
 *
 * Under gshim fsync, fdatasync and sync_file_range go through io_uring
 * while the calling G is parked; a write that would block the file system
 * (pwritev2 RWF_NOWAIT -> EAGAIN: an O_DIRECT write that extends the
 * file, say) is an io_uring writev, and a read that misses the page cache
 * an io_uring readv.  What the program sees must be what the kernel gives
 * it natively:
 *
 *  1. errors, first (the first calls that reach the poller, with one other
 *     thread alive so that gshim uses it): fdatasync on a descriptor just
 *     closed -> EBADF, fsync(-1) -> EBADF, fsync/fdatasync of a pipe or a
 *     socket -> EINVAL, sync_file_range with an unknown flag (0x100), a
 *     negative offset or length -> EINVAL, of a pipe -> ESPIPE,
 *     pread/pwrite with a negative offset -> EINVAL, of a pipe -> ESPIPE,
 *     pwrite past the file system's largest file -> EFBIG, write to a
 *     read-only descriptor / read from a write-only one -> EBADF, fsync of
 *     an O_PATH descriptor -> EBADF; fsync of a read-only descriptor or a
 *     directory, sync_file_range of a directory -> 0.
 *  2. 8 threads, each with its own temporary file: write() in varying
 *     sizes (one range first written wrong, then fixed by pwritev),
 *     writev() with up to 5 scattered pieces, pwrite() from the end
 *     backwards (the first one leaves a hole), lseek(SEEK_END) + write():
 *     every call returns the full count and the file position after each
 *     is checked (lseek SEEK_CUR; pwrite leaves it alone).  Then fsync,
 *     fdatasync, sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER) on parts,
 *     on the whole file (length 0) and on 5 GiB (longer than an io_uring
 *     request's 32-bit length), each after dirtying pages again -> 0;
 *     fstat size.  Read back after POSIX_FADV_DONTNEED (pages not in the
 *     page cache): pread in varying sizes, pread across / beyond the end
 *     of file, preadv with 100 iovecs, a long pread and a readv when only
 *     the first pages are cached (a read that stops where the cache does
 *     must be completed, as the kernel's blocking read is), read() to the
 *     end of file with the position after each; every byte is compared
 *     with a pattern that depends on thread, file and offset.
 *     Each thread also fills an O_APPEND file by write(), writev() and
 *     pwrite() (which appends on Linux, and leaves the file position
 *     alone), and all 8 append 200 records each to one shared O_APPEND
 *     file, then fsync it at the same time: every record whole, each
 *     thread's in order.
 *  3. O_DIRECT (skipped, with the same "ok" lines, where the file system
 *     refuses it with EINVAL): 4 MiB in 64 KiB aligned blocks by write(),
 *     pwrite() and writev(), each extending the file; misaligned buffer /
 *     length -> EINVAL where statx reports an alignment; read back through
 *     another O_DIRECT descriptor by pread, read() and readv.
 *  4. progress: a thread that only counts (no calls, no yields) must
 *     advance while another thread makes 20 rounds of pwrite 1 MiB +
 *     fsync; at GOMAXPROCS=1 under an M:N runtime the counter runs only
 *     if a thread waiting in fsync does not hold the only P.
 *
 * Temporary files live in $TMPDIR (or /tmp) and are unlinked at the end. */
#include "prog.h"
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define NTHREADS 8

/* ---- patterns and sizes --------------------------------------------------- */
static uint64_t mix(uint64_t x) /* splitmix64's finaliser */
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* the stream of one file: thread, file number (and round) in the seed */
static uint64_t file_seed(int thread, int file)
{
	return ((uint64_t)(thread + 1) << 48) ^ ((uint64_t)(file + 1) << 40);
}

static inline uint8_t pat(uint64_t seed, uint64_t off)
{
	return (uint8_t)(mix(seed ^ (off >> 3)) >> ((off & 7) * 8));
}

static void fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pat(seed, off + i);
}

/* -1, or the file offset of the first byte of buf that is not the pattern */
static long first_bad(uint64_t seed, uint64_t off, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != pat(seed, off + i))
			return (long)(off + i);
	return -1;
}

static size_t next_size(uint64_t *state, size_t max)
{
	return 1 + (size_t)(mix((*state)++) % max);
}

static const char *tmpdir(void)
{
	const char *d = getenv("TMPDIR");

	return d && *d ? d : "/tmp";
}

/* mkstemp in tmpdir(); the path in path[] (PATH_MAX) */
static int make_temp(char *path, const char *tag)
{
	snprintf(path, PATH_MAX, "%s/gshim-file_sync-%s.XXXXXX", tmpdir(), tag);
	return mkstemp(path);
}

static long fsize(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? -(long)errno : (long)st.st_size;
}

/* drop the file's (clean) pages from the page cache */
static void evict(int fd)
{
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

#define SFR_ALL (SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)

/* ---- a thread that keeps the program multi-threaded ------------------------ */
/* gshim makes the plain blocking call when a program has one thread (no
 * one to run meanwhile): parts 1 and 3 run in main with this one parked
 * on a condition variable (which does not touch the poller). */
static pthread_mutex_t keep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t keep_cv = PTHREAD_COND_INITIALIZER;
static int keep_done;

static void *keeper(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&keep_mu);
	while (!keep_done)
		pthread_cond_wait(&keep_cv, &keep_mu);
	pthread_mutex_unlock(&keep_mu);
	return NULL;
}

/* ---- 1: errors ------------------------------------------------------------ */
static void expect(long r, long want, const char *what)
{
	check(r == want, what, "returned %ld (%s), native gives %ld (%s)", r < 0 ? -1L : r,
	      errname(r), want < 0 ? -1L : want, errname(want));
}

static void test_errors(void)
{
	char path[PATH_MAX], buf[64] = { 0 };
	int p[2], s[2], fd, rd, wr, dir, opath;
	long closed;

	stage("errors");
	/* the very first sync: whatever gshim opens for its poller must not
	 * take the number the program just closed */
	fd = open("/dev/null", O_RDONLY);
	close(fd);
	expect(ERR(fdatasync(fd)), -EBADF, "fdatasync(descriptor just closed) -> EBADF");
	expect(ERR(fsync(-1)), -EBADF, "fsync(-1) -> EBADF");

	if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		abort();
	expect(ERR(fsync(p[0])), -EINVAL, "fsync(pipe read end) -> EINVAL");
	expect(ERR(fsync(p[1])), -EINVAL, "fsync(pipe write end) -> EINVAL");
	expect(ERR(fdatasync(p[1])), -EINVAL, "fdatasync(pipe) -> EINVAL");
	expect(ERR(fsync(s[0])), -EINVAL, "fsync(socket) -> EINVAL");
	expect(ERR(sync_file_range(p[1], 0, 0, SFR_ALL)), -ESPIPE,
	       "sync_file_range(pipe) -> ESPIPE");
	expect(ERR(pwrite(p[1], buf, 8, 0)), -ESPIPE, "pwrite(pipe) -> ESPIPE");
	expect(ERR(pread(p[0], buf, 8, 0)), -ESPIPE, "pread(pipe) -> ESPIPE");

	fd = make_temp(path, "err");
	if (fd < 0) {
		perror("file_sync: mkstemp");
		exit(2);
	}
	if (write(fd, buf, sizeof buf) != sizeof buf)
		abort();
	expect(ERR(sync_file_range(fd, 0, 0, 0x100)), -EINVAL,
	       "sync_file_range(flags 0x100) -> EINVAL");
	expect(ERR(sync_file_range(fd, -4096, 4096, SFR_ALL)), -EINVAL,
	       "sync_file_range(offset -4096) -> EINVAL");
	expect(ERR(sync_file_range(fd, 4096, -1, SFR_ALL)), -EINVAL,
	       "sync_file_range(length -1) -> EINVAL");
	expect(ERR(pwrite(fd, buf, 8, -1)), -EINVAL, "pwrite(offset -1) -> EINVAL");
	expect(ERR(pread(fd, buf, 8, -5)), -EINVAL, "pread(offset -5) -> EINVAL");
	expect(ERR(pwrite(fd, buf, 8, (off_t)1 << 62)), -EFBIG,
	       "pwrite(offset 2^62) -> EFBIG");
	expect(fsize(fd), (long)sizeof buf, "file size unchanged by the failed calls");

	rd = open(path, O_RDONLY);
	wr = open(path, O_WRONLY);
	dir = open(tmpdir(), O_RDONLY | O_DIRECTORY);
	opath = open(path, O_PATH);
	if (rd < 0 || wr < 0 || dir < 0 || opath < 0)
		abort();
	expect(ERR(write(rd, buf, 8)), -EBADF, "write(read-only descriptor) -> EBADF");
	expect(ERR(read(wr, buf, 8)), -EBADF, "read(write-only descriptor) -> EBADF");
	expect(ERR(fsync(opath)), -EBADF, "fsync(O_PATH descriptor) -> EBADF");
	expect(ERR(fsync(rd)), 0, "fsync(read-only descriptor) -> 0");
	expect(ERR(fdatasync(rd)), 0, "fdatasync(read-only descriptor) -> 0");
	expect(ERR(fsync(dir)), 0, "fsync(directory) -> 0");
	expect(ERR(sync_file_range(dir, 0, 0, SFR_ALL)), 0, "sync_file_range(directory) -> 0");

	/* a closed number again, now that the poller is up; a high one */
	closed = 1000;
	close((int)closed);
	expect(ERR(fdatasync((int)closed)), -EBADF, "fdatasync(closed descriptor 1000) -> EBADF");
	expect(ERR(sync_file_range((int)closed, 0, 0, SFR_ALL)), -EBADF,
	       "sync_file_range(closed descriptor) -> EBADF");

	close(opath);
	close(dir);
	close(wr);
	close(rd);
	close(fd);
	unlink(path);
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
}

/* ---- 2: 8 threads, files of their own --------------------------------------- */
#define WSZ (192u << 10)                 /* [0, WSZ): write() */
#define VSZ (256u << 10)                 /* then writev() */
#define PSZ (128u << 10)                 /* then pwrite(), backwards */
#define TAIL 3000u                       /* then lseek(SEEK_END) + write() */
#define FSIZE (WSZ + VSZ + PSZ + TAIL)
#define BAD0 40000u                      /* [BAD0, BAD0 + BADN): written wrong, */
#define BADN 5000u                       /* then fixed by pwritev */
#define PCHUNK 9000u
#define BUFSZ (1u << 20)
#define NIOV 100                         /* preadv with more than 64 iovecs */
#define APPENDS 60                       /* pieces of the O_APPEND file */
#define RECS 200                         /* records per thread, shared log */
#define RECSZ 256

enum cat {
	C_WRITE, C_POS, C_SYNC, C_SIZE, C_READ_ALL, C_READ_EOF, C_PREADV, C_PARTIAL,
	C_READ_SEQ, C_APPEND, C_LOG, NCAT
};
static const char *const cat_what[NCAT] = {
	"8 threads: write, writev, pwrite, pwritev return the full count",
	"8 threads: file position after each write, writev, pwrite, lseek(SEEK_END)",
	"8 threads: fsync, fdatasync, sync_file_range (part, whole, 5 GiB) return 0",
	"8 threads: file size after the writes",
	"8 threads: pread of the evicted file in varying sizes, every byte as written",
	"8 threads: pread across and beyond the end of file",
	"8 threads: preadv with 100 iovecs, only the first pages cached",
	"8 threads: pread of 300000 bytes and readv, only the first pages cached",
	"8 threads: read() to the end of file, position after each, every byte",
	"8 threads: O_APPEND file by write, writev, pwrite: positions, size, bytes",
	"8 threads: fsync of the shared O_APPEND file returns 0",
};

struct worker {
	int id;
	char err[NCAT][200];    /* first failure of each kind, or "" */
	double ms;
};

static struct worker workers[NTHREADS];
static int logfd = -1;          /* the shared O_APPEND file */
static char log_path[PATH_MAX];

__attribute__((format(printf, 3, 4)))
static void fail(struct worker *w, enum cat c, const char *fmt, ...)
{
	va_list ap;

	if (w->err[c][0])
		return;
	va_start(ap, fmt);
	vsnprintf(w->err[c], sizeof w->err[c], fmt, ap);
	va_end(ap);
	if (!w->err[c][0])
		strcpy(w->err[c], "?");
}

static void pos_is(struct worker *w, int fd, long want, const char *after)
{
	long cur = ERR(lseek(fd, 0, SEEK_CUR));

	if (cur != want)
		fail(w, C_POS, "after %s: lseek(SEEK_CUR) = %ld, want %ld", after, cur, want);
}

/* the full count, or a failure of kind C_WRITE: 0 on success */
static int wrote(struct worker *w, long r, size_t n, const char *call, long off)
{
	if (r == (long)n)
		return 0;
	fail(w, C_WRITE, "%s(%zu bytes) at %ld returned %ld (%s)", call, n, off, r < 0 ? -1L : r,
	     errname(r));
	return -1;
}

static void sync_ok(struct worker *w, long r, const char *call)
{
	if (r != 0)
		fail(w, C_SYNC, "%s returned %ld (%s)", call, r < 0 ? -1L : r, errname(r));
}

/* one record of the shared log: thread, sequence number, pattern */
static void make_record(uint8_t *rec, int id, int seq)
{
	uint64_t seed = file_seed(id, 100 + seq);

	memcpy(rec, &id, sizeof id);
	memcpy(rec + 4, &seq, sizeof seq);
	fill(seed, 8, rec + 8, RECSZ - 8);
}

static void append_records(struct worker *w, uint8_t *rec, int from, int to)
{
	for (int k = from; k < to; k++) {
		long r;

		make_record(rec, w->id, k);
		if (k % 2) {
			struct iovec v[2] = { { rec, 8 }, { rec + 8, RECSZ - 8 } };

			r = ERR(writev(logfd, v, 2));
		} else {
			r = ERR(write(logfd, rec, RECSZ));
		}
		if (r != RECSZ)
			fail(w, C_WRITE, "shared log: record %d: %ld (%s)", k, r, errname(r));
	}
}

/* Write the file; 0 if every write returned its full count. */
static int write_file(struct worker *w, int fd, uint64_t seed, uint8_t *buf)
{
	uint64_t sizes = 1000 + (uint64_t)w->id;
	long pos = 0, r;

	/* write(), with [BAD0, BAD0 + BADN) inverted */
	while (pos < (long)WSZ) {
		size_t n = next_size(&sizes, 16384);

		if (n > WSZ - (size_t)pos)
			n = WSZ - (size_t)pos;
		fill(seed, (uint64_t)pos, buf, n);
		for (long i = pos; i < pos + (long)n; i++)
			if (i >= (long)BAD0 && i < (long)(BAD0 + BADN))
				buf[i - pos] ^= 0xff;
		if (wrote(w, ERR(write(fd, buf, n)), n, "write", pos))
			return -1;
		pos += (long)n;
		pos_is(w, fd, pos, "write()");
	}
	/* writev(): 1 to 5 pieces, 64 KiB apart in memory */
	while (pos < (long)(WSZ + VSZ)) {
		struct iovec v[5];
		int cnt = (int)next_size(&sizes, 5);
		size_t total = 0;

		for (int i = 0; i < cnt && pos + (long)total < (long)(WSZ + VSZ); i++) {
			size_t n = next_size(&sizes, 20000);

			if (n > WSZ + VSZ - (size_t)pos - total)
				n = WSZ + VSZ - (size_t)pos - total;
			v[i] = (struct iovec){ buf + (size_t)i * 65536, n };
			fill(seed, (uint64_t)pos + total, v[i].iov_base, n);
			total += n;
			cnt = i + 1;
		}
		if (wrote(w, ERR(writev(fd, v, cnt)), total, "writev", pos))
			return -1;
		pos += (long)total;
		pos_is(w, fd, pos, "writev()");
	}
	/* pwrite(), last chunk first: a hole, then filled; the position stays */
	for (long k = (PSZ + PCHUNK - 1) / PCHUNK - 1; k >= 0; k--) {
		long off = (long)(WSZ + VSZ) + k * (long)PCHUNK;
		size_t n = PCHUNK;

		if (off + (long)n > (long)(WSZ + VSZ + PSZ))
			n = (size_t)((long)(WSZ + VSZ + PSZ) - off);
		fill(seed, (uint64_t)off, buf, n);
		if (wrote(w, ERR(pwrite(fd, buf, n, off)), n, "pwrite", off))
			return -1;
		pos_is(w, fd, pos, "pwrite()");
	}
	/* pwritev() puts the inverted range right, in two pieces */
	{
		struct iovec v[2] = { { buf, 2000 }, { buf + 100000, BADN - 2000 } };

		fill(seed, BAD0, v[0].iov_base, v[0].iov_len);
		fill(seed, BAD0 + 2000, v[1].iov_base, v[1].iov_len);
		if (wrote(w, ERR(pwritev(fd, v, 2, BAD0)), BADN, "pwritev", BAD0))
			return -1;
		pos_is(w, fd, pos, "pwritev()");
	}
	/* the end of the file, then write() there */
	r = ERR(lseek(fd, 0, SEEK_END));
	if (r != (long)(WSZ + VSZ + PSZ))
		fail(w, C_POS, "lseek(SEEK_END) = %ld, want %u", r, WSZ + VSZ + PSZ);
	fill(seed, WSZ + VSZ + PSZ, buf, TAIL);
	if (wrote(w, ERR(write(fd, buf, TAIL)), TAIL, "write", r))
		return -1;
	pos_is(w, fd, FSIZE, "the last write()");
	return 0;
}

/* rewrite n bytes at off as they are: dirty pages for the next sync */
static void redirty(struct worker *w, int fd, uint64_t seed, uint8_t *buf, long off, size_t n)
{
	fill(seed, (uint64_t)off, buf, n);
	wrote(w, ERR(pwrite(fd, buf, n, off)), n, "pwrite (again)", off);
}

static void sync_file(struct worker *w, int fd, uint64_t seed, uint8_t *buf)
{
	sync_ok(w, ERR(fsync(fd)), "fsync");
	redirty(w, fd, seed, buf, 0, 65536);
	sync_ok(w, ERR(fdatasync(fd)), "fdatasync");
	redirty(w, fd, seed, buf, WSZ, 65536);
	sync_ok(w, ERR(sync_file_range(fd, WSZ, 65536, SFR_ALL)), "sync_file_range(part)");
	redirty(w, fd, seed, buf, 100000, 200000);
	sync_ok(w, ERR(sync_file_range(fd, 0, 0, SFR_ALL)), "sync_file_range(length 0)");
	redirty(w, fd, seed, buf, 300000, 100000);
	sync_ok(w, ERR(sync_file_range(fd, 0, 5ll << 30, SFR_ALL)), "sync_file_range(5 GiB)");
	redirty(w, fd, seed, buf, 4096, 8192);
	sync_ok(w, ERR(sync_file_range(fd, 0, FSIZE, SYNC_FILE_RANGE_WRITE)),
		"sync_file_range(WRITE)");
	sync_ok(w, ERR(sync_file_range(fd, 0, FSIZE, SYNC_FILE_RANGE_WAIT_AFTER)),
		"sync_file_range(WAIT_AFTER)");
	redirty(w, fd, seed, buf, FSIZE - 5000, 5000);
	sync_ok(w, ERR(fsync(fd)), "fsync (last)");
}

/* pread [off, off + n) and compare; the kind of failure is c */
static void read_check(struct worker *w, enum cat c, int fd, uint64_t seed, uint8_t *buf,
		       long off, size_t n, long want, const char *how)
{
	long r = ERR(pread(fd, buf, n, off)), bad;

	if (r != want) {
		fail(w, c, "%s: pread(%zu bytes at %ld) returned %ld (%s), want %ld", how, n, off,
		     r < 0 ? -1L : r, errname(r), want);
		return;
	}
	if ((bad = first_bad(seed, (uint64_t)off, buf, (size_t)r)) >= 0)
		fail(w, c, "%s: wrong byte at offset %ld", how, bad);
}

/* only the first `cached` bytes of the file in the page cache (readahead
 * off, POSIX_FADV_RANDOM, is set by the caller) */
static void cache_first(int fd, uint8_t *buf, size_t cached)
{
	evict(fd);
	if (pread(fd, buf, cached, 0) != (ssize_t)cached)
		abort();
}

static void read_file(struct worker *w, int fd, uint64_t seed, uint8_t *buf)
{
	uint64_t sizes = 2000 + (uint64_t)w->id;
	struct iovec v[NIOV];
	long off, r, bad;

	/* everything, in varying sizes, none of it cached */
	evict(fd);
	for (off = 0; off < (long)FSIZE;) {
		size_t n = next_size(&sizes, 65536);

		if (n > FSIZE - (size_t)off)
			n = FSIZE - (size_t)off;
		read_check(w, C_READ_ALL, fd, seed, buf, off, n, (long)n, "whole file");
		off += (long)n;
	}
	/* the end of file */
	evict(fd);
	read_check(w, C_READ_EOF, fd, seed, buf, FSIZE - 1000, 10000, 1000, "across EOF");
	read_check(w, C_READ_EOF, fd, seed, buf, FSIZE, 100, 0, "at EOF");
	read_check(w, C_READ_EOF, fd, seed, buf, FSIZE + 100000, 100, 0, "beyond EOF");

	/* a read that stops where the page cache does must go on */
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	cache_first(fd, buf, 16384);
	for (int i = 0; i < NIOV; i++) /* 4 KiB each, 5 KiB apart */
		v[i] = (struct iovec){ buf + (size_t)i * 5120, 4096 };
	r = ERR(preadv(fd, v, NIOV, 0));
	if (r != NIOV * 4096) {
		fail(w, C_PREADV, "preadv(%d x 4096 at 0) returned %ld (%s), want %d", NIOV,
		     r < 0 ? -1L : r, errname(r), NIOV * 4096);
	} else {
		for (int i = 0; i < NIOV; i++)
			if ((bad = first_bad(seed, (uint64_t)i * 4096, v[i].iov_base, 4096)) >= 0) {
				fail(w, C_PREADV, "wrong byte at offset %ld", bad);
				break;
			}
	}
	cache_first(fd, buf, 8192);
	read_check(w, C_PARTIAL, fd, seed, buf, 0, 300000, 300000, "8 KiB cached");
	cache_first(fd, buf, 4096);
	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	{
		struct iovec rv[3] = { { buf, 100000 }, { buf + 200000, 50000 },
				       { buf + 300000, 123456 } };

		r = ERR(readv(fd, rv, 3));
		if (r != 273456)
			fail(w, C_PARTIAL, "readv(3 iovecs, 273456 bytes) returned %ld (%s)",
			     r < 0 ? -1L : r, errname(r));
		else if ((bad = first_bad(seed, 0, buf, 100000)) >= 0 ||
			 (bad = first_bad(seed, 100000, buf + 200000, 50000)) >= 0 ||
			 (bad = first_bad(seed, 150000, buf + 300000, 123456)) >= 0)
			fail(w, C_PARTIAL, "readv: wrong byte at offset %ld", bad);
		r = ERR(lseek(fd, 0, SEEK_CUR));
		if (r != 273456)
			fail(w, C_PARTIAL, "after readv: lseek(SEEK_CUR) = %ld, want 273456", r);
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL);

	/* read() to the end of file */
	evict(fd);
	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	for (off = 0;;) {
		long want = FSIZE - off < 50000 ? (long)FSIZE - off : 50000;

		r = ERR(read(fd, buf, 50000));
		if (r != want) {
			fail(w, C_READ_SEQ, "read(50000) at %ld returned %ld (%s), want %ld", off,
			     r < 0 ? -1L : r, errname(r), want);
			break;
		}
		if (r == 0)
			break;
		if ((bad = first_bad(seed, (uint64_t)off, buf, (size_t)r)) >= 0) {
			fail(w, C_READ_SEQ, "read(): wrong byte at offset %ld", bad);
			break;
		}
		off += r;
		r = ERR(lseek(fd, 0, SEEK_CUR));
		if (r != off) {
			fail(w, C_READ_SEQ, "after read(): lseek(SEEK_CUR) = %ld, want %ld", r, off);
			break;
		}
	}
}

/* An O_APPEND file: write(), writev() and pwrite() (offset 0: appends all
 * the same on Linux, and does not move the file position). */
static void append_file(struct worker *w, uint8_t *buf)
{
	char path[PATH_MAX];
	uint64_t seed = file_seed(w->id, 1), sizes = 3000 + (uint64_t)w->id;
	int rfd = make_temp(path, "app"), fd;
	long len = 0, pos = 0, r, bad;

	if (rfd < 0) {
		fail(w, C_APPEND, "mkstemp: %s", strerror(errno));
		return;
	}
	fd = open(path, O_WRONLY | O_APPEND);
	unlink(path);
	if (fd < 0) {
		fail(w, C_APPEND, "open(O_APPEND): %s", strerror(errno));
		close(rfd);
		return;
	}
	for (int k = 0; k < APPENDS; k++) {
		size_t n = next_size(&sizes, 8000);
		const char *call = k % 3 == 0 ? "write" : k % 3 == 1 ? "writev" : "pwrite";

		fill(seed, (uint64_t)len, buf, n);
		if (k % 3 == 0) {
			r = ERR(write(fd, buf, n));
		} else if (k % 3 == 1) {
			struct iovec v[2] = { { buf, n / 2 }, { buf + n / 2, n - n / 2 } };

			r = ERR(writev(fd, v, 2));
		} else {
			r = ERR(pwrite(fd, buf, n, 0));
		}
		if (r != (long)n) {
			fail(w, C_APPEND, "%s(%zu bytes) returned %ld (%s)", call, n, r < 0 ? -1L : r,
			     errname(r));
			break;
		}
		len += (long)n;
		if (k % 3 != 2)
			pos = len;
		r = ERR(lseek(fd, 0, SEEK_CUR));
		if (r != pos) {
			fail(w, C_APPEND, "after %s() #%d: lseek(SEEK_CUR) = %ld, want %ld", call, k, r,
			     pos);
			break;
		}
	}
	r = ERR(fdatasync(fd));
	if (r != 0)
		fail(w, C_APPEND, "fdatasync returned %ld (%s)", r, errname(r));
	if ((r = fsize(rfd)) != len)
		fail(w, C_APPEND, "size %ld, want %ld", r, len);
	evict(rfd);
	r = ERR(pread(rfd, buf, BUFSZ, 0));
	if (r != len)
		fail(w, C_APPEND, "pread: %ld (%s), want %ld", r < 0 ? -1L : r, errname(r), len);
	else if ((bad = first_bad(seed, 0, buf, (size_t)r)) >= 0)
		fail(w, C_APPEND, "wrong byte at offset %ld", bad);
	close(fd);
	close(rfd);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = file_seed(w->id, 0);
	uint8_t *buf = NULL, rec[RECSZ];
	char path[PATH_MAX];
	double t0 = now_ms();
	long r;
	int fd;

	if (posix_memalign((void **)&buf, 4096, BUFSZ))
		abort();
	append_records(w, rec, 0, RECS / 2);
	fd = make_temp(path, "w");
	if (fd < 0) {
		fail(w, C_WRITE, "mkstemp: %s", strerror(errno));
		goto out;
	}
	if (write_file(w, fd, seed, buf) == 0) {
		append_records(w, rec, RECS / 2, RECS);
		sync_file(w, fd, seed, buf);
		if ((r = fsize(fd)) != (long)FSIZE)
			fail(w, C_SIZE, "fstat size %ld, want %u", r, FSIZE);
		read_file(w, fd, seed, buf);
	}
	close(fd);
	unlink(path);
	append_file(w, buf);
	r = ERR(fsync(logfd));
	if (r != 0)
		fail(w, C_LOG, "fsync returned %ld (%s)", r, errname(r));
out:
	free(buf);
	w->ms = now_ms() - t0;
	return NULL;
}

/* every record of the shared log whole, each thread's in order */
static void check_log(void)
{
	long want = (long)NTHREADS * RECS * RECSZ, size = fsize(logfd), r;
	int next[NTHREADS] = { 0 }, bad_rec = -1;
	uint8_t *buf = malloc((size_t)want), rec[RECSZ];
	int rfd = open(log_path, O_RDONLY);

	if (!buf || rfd < 0)
		abort();
	evict(rfd);
	r = ERR(pread(rfd, buf, (size_t)want, 0));
	for (long i = 0; r == want && i < NTHREADS * RECS && bad_rec < 0; i++) {
		int id, seq;

		memcpy(&id, buf + i * RECSZ, sizeof id);
		memcpy(&seq, buf + i * RECSZ + 4, sizeof seq);
		if (id < 0 || id >= NTHREADS || seq != next[id]) {
			bad_rec = (int)i;
			break;
		}
		make_record(rec, id, seq);
		if (memcmp(rec, buf + i * RECSZ, RECSZ))
			bad_rec = (int)i;
		next[id]++;
	}
	check(size == want && r == want && bad_rec < 0,
	      "shared O_APPEND file: 8 x 200 records, each whole, each thread's in order",
	      "size %ld, read %ld (%s), want %ld; first bad record %d", size, r < 0 ? -1L : r,
	      errname(r), want, bad_rec);
	close(rfd);
	free(buf);
}

static void test_threads(void)
{
	pthread_t t[NTHREADS];
	double t0 = now_ms(), slowest = 0;

	stage("8 threads writing, syncing and reading their files");
	logfd = make_temp(log_path, "log");
	if (logfd < 0) {
		perror("file_sync: mkstemp");
		exit(2);
	}
	close(logfd);
	logfd = open(log_path, O_WRONLY | O_APPEND);
	if (logfd < 0)
		abort();
	for (int i = 0; i < NTHREADS; i++) {
		workers[i] = (struct worker){ .id = i };
		pthread_create(&t[i], NULL, worker_main, &workers[i]);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < NTHREADS; i++)
		if (workers[i].ms > slowest)
			slowest = workers[i].ms;
	note("file_sync: 8 threads took %.0f ms (slowest thread %.0f ms)", now_ms() - t0, slowest);
	for (int c = 0; c < NCAT; c++) {
		int first = -1;

		for (int i = 0; i < NTHREADS && first < 0; i++)
			if (workers[i].err[c][0])
				first = i;
		check(first < 0, cat_what[c], "thread %d: %s", first, first < 0 ? "" : workers[first].err[c]);
	}
	check_log();
	close(logfd);
	unlink(log_path);
}

/* ---- 3: O_DIRECT ------------------------------------------------------------ */
#define DSZ (4u << 20)
#define DBLK (64u << 10)

static const char *const direct_what[] = {
	"O_DIRECT: 4 MiB in 64 KiB blocks by write, pwrite, writev, each extending the file",
	"O_DIRECT: file position after each write and writev",
	"O_DIRECT: fsync returns 0, size 4 MiB",
	"O_DIRECT: misaligned buffer or length -> EINVAL, file unchanged",
	"O_DIRECT: read back by pread, read and readv, every byte as written",
};
enum { D_WRITE, D_POS, D_SYNC, D_ALIGN, D_READ, ND };

static void test_direct(void)
{
	char path[PATH_MAX], err[ND][200] = { { 0 } };
	uint64_t seed = file_seed(NTHREADS, 2);
	uint8_t *buf;
	int tmp = make_temp(path, "direct"), fd, rfd;
	long r, bad, off;
	double t0, t_write, t_read;
	struct statx stx;
	uint32_t align[2] = { 0, 0 }; /* stx_dio_mem_align, stx_dio_offset_align */

#define DFAIL(k, ...) do { if (!err[k][0]) snprintf(err[k], sizeof err[k], __VA_ARGS__); } while (0)
	stage("O_DIRECT writes and reads");
	if (tmp < 0 || posix_memalign((void **)&buf, 4096, 2 * DBLK)) {
		perror("file_sync: mkstemp");
		exit(2);
	}
	close(tmp);
	fd = (int)ERR(open(path, O_RDWR | O_DIRECT));
	if (fd == -EINVAL) {
		note("file_sync: %s refuses O_DIRECT (EINVAL): O_DIRECT part skipped", tmpdir());
		for (int k = 0; k < ND; k++)
			check(1, direct_what[k], " ");
		unlink(path);
		free(buf);
		return;
	}
	if (fd < 0) {
		fprintf(stderr, "file_sync: open O_DIRECT: %s\n", errname(fd));
		exit(2);
	}
	t0 = now_ms();
	for (off = 0; off < (long)DSZ; off += DBLK) {
		long n = DBLK;

		fill(seed, (uint64_t)off, buf, DBLK);
		if (off < (long)DSZ / 2) {
			r = ERR(write(fd, buf, DBLK));
		} else if (off < (long)DSZ * 3 / 4) {
			r = ERR(pwrite(fd, buf, DBLK, off));
		} else { /* the block in two aligned pieces, 64 KiB apart */
			struct iovec v[2] = { { buf, DBLK / 2 }, { buf + DBLK, DBLK / 2 } };

			memcpy(buf + DBLK, buf + DBLK / 2, DBLK / 2);
			if (lseek(fd, off, SEEK_SET) != off)
				abort();
			r = ERR(writev(fd, v, 2));
		}
		if (r != n) {
			DFAIL(D_WRITE, "block at %ld: %ld (%s)", off, r < 0 ? -1L : r, errname(r));
			break;
		}
		r = ERR(lseek(fd, 0, SEEK_CUR));
		/* pwrite leaves the position where the last write() put it */
		if (r != (off < (long)DSZ / 2 || off >= (long)DSZ * 3 / 4 ? off + n : (long)DSZ / 2))
			DFAIL(D_POS, "after the block at %ld: lseek(SEEK_CUR) = %ld", off, r);
	}
	r = ERR(fsync(fd));
	t_write = now_ms() - t0;
	if (r != 0)
		DFAIL(D_SYNC, "fsync returned %ld (%s)", r, errname(r));
	if ((r = fsize(fd)) != (long)DSZ)
		DFAIL(D_SYNC, "size %ld, want %u", r, DSZ);

	/* misaligned, where the kernel says what it needs */
#ifdef STATX_DIOALIGN /* <linux/stat.h> of Linux 6.1 and later */
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
		align[0] = stx.stx_dio_mem_align;
		align[1] = stx.stx_dio_offset_align;
	}
#else
	(void)stx;
#endif
	note("file_sync: O_DIRECT alignment: memory %u, offset %u", align[0], align[1]);
	if (align[0] > 1) {
		r = ERR(pwrite(fd, buf + 1, 4096, DSZ));
		if (r != -EINVAL)
			DFAIL(D_ALIGN, "buffer + 1: %ld (%s)", r < 0 ? -1L : r, errname(r));
	}
	if (align[1] > 100) {
		r = ERR(pwrite(fd, buf, 100, DSZ));
		if (r != -EINVAL)
			DFAIL(D_ALIGN, "100 bytes: %ld (%s)", r < 0 ? -1L : r, errname(r));
	}
	if ((r = fsize(fd)) != (long)DSZ)
		DFAIL(D_ALIGN, "size %ld after the misaligned writes, want %u", r, DSZ);

	/* read back: pread, read(), readv */
	t0 = now_ms();
	rfd = open(path, O_RDONLY | O_DIRECT);
	if (rfd < 0) {
		DFAIL(D_READ, "open(O_RDONLY | O_DIRECT): %s", strerror(errno));
	} else {
		for (off = 0; off < (long)DSZ; off += DBLK) {
			if (off < (long)DSZ / 2) {
				r = ERR(pread(rfd, buf, DBLK, off));
			} else if (off < (long)DSZ * 3 / 4) {
				if (off == (long)DSZ / 2 && lseek(rfd, off, SEEK_SET) != off)
					abort();
				r = ERR(read(rfd, buf, DBLK));
			} else {
				struct iovec v[2] = { { buf, DBLK / 2 }, { buf + DBLK, DBLK / 2 } };

				r = ERR(preadv(rfd, v, 2, off));
				memcpy(buf + DBLK / 2, buf + DBLK, DBLK / 2);
			}
			if (r != (long)DBLK) {
				DFAIL(D_READ, "block at %ld: %ld (%s)", off, r < 0 ? -1L : r, errname(r));
				break;
			}
			if ((bad = first_bad(seed, (uint64_t)off, buf, DBLK)) >= 0) {
				DFAIL(D_READ, "wrong byte at offset %ld", bad);
				break;
			}
		}
		r = ERR(pread(rfd, buf, DBLK, DSZ));
		if (r != 0)
			DFAIL(D_READ, "pread at EOF: %ld (%s)", r < 0 ? -1L : r, errname(r));
		close(rfd);
	}
	t_read = now_ms() - t0;
	note("file_sync: O_DIRECT: 4 MiB written + fsync in %.0f ms, read in %.0f ms", t_write, t_read);
	for (int k = 0; k < ND; k++)
		check(!err[k][0], direct_what[k], "%s", err[k]);
	close(fd);
	unlink(path);
	free(buf);
#undef DFAIL
}

/* ---- 4: progress while syncing ------------------------------------------------ */
#define ROUNDS 20
#define MIB (1u << 20)

static _Atomic uint64_t counter;
static _Atomic int counter_stop, counter_started;

static void *count(void *arg)
{
	(void)arg;
	atomic_store(&counter_started, 1);
	while (!atomic_load_explicit(&counter_stop, memory_order_relaxed))
		atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
	return NULL;
}

static struct {
	uint64_t before, after;
	int moved;              /* fsyncs the counter advanced across */
	char err[200];
	double ms, sync_ms;
} prog;

static void *syncer(void *arg)
{
	char path[PATH_MAX];
	uint8_t *buf = malloc(MIB);
	int fd = make_temp(path, "sync");
	double t0, t1;
	long r, bad;

	(void)arg;
	if (fd < 0 || !buf) {
		snprintf(prog.err, sizeof prog.err, "mkstemp: %s", strerror(errno));
		free(buf);
		return NULL;
	}
	t0 = now_ms();
	prog.before = atomic_load(&counter);
	for (int round = 0; round < ROUNDS && !prog.err[0]; round++) {
		uint64_t c0;

		fill(file_seed(NTHREADS + 1, round), 0, buf, MIB);
		r = ERR(pwrite(fd, buf, MIB, 0));
		if (r != (long)MIB) {
			snprintf(prog.err, sizeof prog.err, "round %d: pwrite returned %ld (%s)", round,
				 r < 0 ? -1L : r, errname(r));
			break;
		}
		c0 = atomic_load(&counter);
		t1 = now_ms();
		r = ERR(fsync(fd));
		prog.sync_ms += now_ms() - t1;
		prog.moved += atomic_load(&counter) != c0;
		if (r != 0)
			snprintf(prog.err, sizeof prog.err, "round %d: fsync returned %ld (%s)", round,
				 r, errname(r));
	}
	prog.after = atomic_load(&counter);
	prog.ms = now_ms() - t0;
	/* the file holds the last round's bytes */
	evict(fd);
	r = ERR(pread(fd, buf, MIB, 0));
	if (!prog.err[0] && r != (long)MIB)
		snprintf(prog.err, sizeof prog.err, "pread returned %ld (%s)", r < 0 ? -1L : r,
			 errname(r));
	else if (!prog.err[0] && (bad = first_bad(file_seed(NTHREADS + 1, ROUNDS - 1), 0, buf, MIB)) >= 0)
		snprintf(prog.err, sizeof prog.err, "wrong byte at offset %ld", bad);
	close(fd);
	unlink(path);
	free(buf);
	return NULL;
}

static void test_progress(void)
{
	pthread_t c, s;

	stage("starting the counter");
	pthread_create(&c, NULL, count, NULL);
	while (!atomic_load(&counter_started))
		sleep_ms(1);
	stage("20 x (pwrite 1 MiB + fsync) beside the counter");
	pthread_create(&s, NULL, syncer, NULL);
	pthread_join(s, NULL);
	stage("stopping the counter");
	atomic_store(&counter_stop, 1);
	pthread_join(c, NULL);
	note("file_sync: 20 x (pwrite 1 MiB + fsync) took %.0f ms (%.0f ms in fsync); "
	     "counter +%llu, moved during %d of 20 fsyncs",
	     prog.ms, prog.sync_ms, (unsigned long long)(prog.after - prog.before), prog.moved);
	check(!prog.err[0], "20 x (pwrite 1 MiB + fsync) beside a counting thread, file as written",
	      "%s", prog.err);
	check(prog.after > prog.before, "counting thread advanced during the 20 fsyncs",
	      "counter %llu before and after", (unsigned long long)prog.before);
}

int main(void)
{
	pthread_t keep;
	double t0 = now_ms();

	watchdog(25);
	signal(SIGPIPE, SIG_IGN);
	pthread_create(&keep, NULL, keeper, NULL);
	test_errors();
	test_threads();
	test_direct();
	pthread_mutex_lock(&keep_mu);
	keep_done = 1;
	pthread_cond_signal(&keep_cv);
	pthread_mutex_unlock(&keep_mu);
	pthread_join(keep, NULL);
	test_progress();
	note("file_sync: %.0f ms in all", now_ms() - t0);
	return failures ? 1 : 0;
}
