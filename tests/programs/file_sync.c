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
 * Temporary files live in $TMPDIR (or /tmp) and are unlinked at the end.
 *
 * Part 2 (8 threads with files of their own, a shared O_APPEND file) is
 * the program file_sync_threads.c; helpers shared with it in file_sync.h. */
#include "file_sync.h"

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
	keep = keeper_start();
	test_errors();
	test_direct();
	keeper_stop(keep);
	test_progress();
	note("file_sync: %.0f ms in all", now_ms() - t0);
	return failures ? 1 : 0;
}
