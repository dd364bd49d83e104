/* syscall_wrap/park.c - the park every poller family shares (park.h):
 * wait_fds hands the G to the poller until a descriptor may be ready,
 * a deadline passes, a signal's handler ran or a cancellation came,
 * and turns what ended the wait into what the call does next - try
 * again, return -errno (EAGAIN for a timeout, EINTR), or make the
 * plain call (-ENOSYS: no poller for this descriptor). */
#undef _FILE_OFFSET_BITS
#include "park.h"

/* Park g until one of fd[0..n) may be ready for its ev[i] (n == 1: any
 * poller; more, or none: io_uring only).  0: try again; <0: -errno to
 * return (-EAGAIN timeout, -EINTR signal), or -ENOSYS: use the plain
 * call. */
int wait_fds(g_t *g, const int *fd, const uint32_t *ev, int n, int64_t deadline,
             bool restartable)
{
	_Atomic uint32_t *intr = cancel_intr(g);
	int r;

	g_sig_outcome_reset(g);
	for (;;) {
		r = n == 1 ? netpoll_wait(fd[0], ev[0], deadline, intr) :
		             netpoll_wait_many(fd, ev, n, deadline, intr);
		if (r == -EINTR) {
			cancel_point(g);   /* acts on the cancellation */
			continue;
		}
		if (r == -ETIMEDOUT)
			return -EAGAIN;
		if (r == -EAGAIN) {   /* woken for a signal */
			switch (g_sig_outcome(g, restartable)) {
			case SIG_NONE: continue;
			case SIG_EINTR: return -EINTR;
			default: return 0;   /* restart: try the call again */
			}
		}
		return r;
	}
}

