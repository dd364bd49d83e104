/* Regular files: writes, syncs and reads that wait for the disk.
 *
 * Under gshim fsync, fdatasync and sync_file_range go through io_uring
 * while the calling G is parked; a write that would block the file system
 * (pwritev2 RWF_NOWAIT -> EAGAIN: an O_DIRECT write that extends the
 * file, say) is an io_uring writev, and a read that misses the page cache
 * an io_uring readv.  What the program sees must be what the kernel gives
 * it natively:
 *
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
 * Temporary files live in $TMPDIR (or /tmp) and are unlinked at the end.
 *
 * Part 2 of file_sync.c's numbering (parts 1, 3 and 4 are in file_sync.c).
 * As there, a thread that waits on a condition variable (keeper) stays
 * alive beside the part; helpers shared in file_sync.h. */
#include "file_sync.h"

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

int main(void)
{
	pthread_t keep;
	double t0 = now_ms();

	watchdog(25);
	signal(SIGPIPE, SIG_IGN);
	keep = keeper_start();
	test_threads();
	keeper_stop(keep);
	note("file_sync_threads: %.0f ms in all", now_ms() - t0);
	return failures ? 1 : 0;
}
