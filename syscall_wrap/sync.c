/* syscall_wrap/sync.c - fsync, fdatasync, sync_file_range.
 *
 * The protocol: through io_uring (IORING_OP_FSYNC, SYNC_FILE_RANGE)
 * with the G parked while the disk works; the plain call under
 * entersyscall when there is no poller or io_uring refuses the
 * descriptor.  Cancellation points at entry; not interruptible.
 */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "park.h"

/* ---- syncs --------------------------------------------------------------------- */

/* fsync, fdatasync, sync_file_range wait for the disk: through io_uring
 * the G parks and its M runs others.  Not interruptible, as natively. */
enum sync_kind { SYNC_FULL, SYNC_DATA, SYNC_RANGE };

static int do_sync(enum sync_kind k, int fd, off64_t off, off64_t n, unsigned fl)
{
	g_t *g = getcurg();
	long r;

	if (!poller_off(g)) {
		cancel_point(g);
		r = k == SYNC_RANGE ? netpoll_sync_range(fd, off, n, fl) :
		                      netpoll_sync(fd, k == SYNC_DATA);
		/* EINVAL from io_uring for a descriptor the kernel would
		 * take (a pipe, a socket, a bad range): let it say so. */
		if (r != -ENOSYS && r != -EINVAL)
			return (int)set_err(r);
	}
	r = k == SYNC_RANGE ? sc_call_cp(SYS_sync_file_range, fd, off, n, fl, 0, 0) :
	    sc_call_cp(k == SYNC_DATA ? SYS_fdatasync : SYS_fsync, fd, 0, 0, 0, 0, 0);
	return (int)set_err(r);
}

WRAP_EXPORT int fsync(int fd)
{
	return do_sync(SYNC_FULL, fd, 0, 0, 0);
}

WRAP_EXPORT int fdatasync(int fd)
{
	return do_sync(SYNC_DATA, fd, 0, 0, 0);
}

WRAP_EXPORT int sync_file_range(int fd, off64_t off, off64_t n, unsigned int fl)
{
	return do_sync(SYNC_RANGE, fd, off, n, fl);
}
