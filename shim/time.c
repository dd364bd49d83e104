/* shim/time.c - absolute timeouts of the POSIX API -> runtime deadlines. */
#include <errno.h>
#include <time.h>
#include "shim.h"

/* Convert an absolute time on clk to a CLOCK_MONOTONIC deadline.  A
 * CLOCK_REALTIME deadline is converted once, at the start of the wait: a
 * later jump of the wall clock does not move it (documented deviation). */
int shim_deadline(clockid_t clk, const struct timespec *abst, int64_t *out)
{
	int64_t now_clk, now_mono, t;

	if (!rt_ts_ok(abst))
		return EINVAL;
	if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
		return EINVAL;
	now_mono = os_nanotime();
	now_clk = clk == CLOCK_MONOTONIC ? now_mono : os_clock_ns(clk);
	if (abst->tv_sec < 0) {
		*out = now_mono;   /* already expired */
		return 0;
	}
	if (abst->tv_sec > (INT64_MAX / RT_NS_PER_S) - 2) {
		*out = -1;         /* effectively forever */
		return 0;
	}
	t = rt_ts_ns(abst);
	*out = now_mono + (t - now_clk);
	if (*out < now_mono)
		*out = now_mono;
	return 0;
}

