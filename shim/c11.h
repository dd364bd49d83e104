/* shim/c11.h - what the C11 threads files (c11.c: thrd_*, tss_*;
 * c11_sync.c: mtx_*, cnd_*) share: glibc's thrd_err_map, a pthread
 * error number as the thrd_* result C11 defines. */
#ifndef GSHIM_SHIM_C11_H
#define GSHIM_SHIM_C11_H

#include <errno.h>
#include <threads.h>

static inline int map_err(int err)
{
	switch (err) {
	case 0: return thrd_success;
	case ENOMEM: return thrd_nomem;
	case ETIMEDOUT: return thrd_timedout;
	case EBUSY: return thrd_busy;
	default: return thrd_error;
	}
}

#endif
