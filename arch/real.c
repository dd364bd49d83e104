/* arch/real.c - resolve libc's originals once (see real.h). */
#include <dlfcn.h>
#include "real.h"

#define REAL_DEF(ret, name, args) ret (*real_##name) args;
REAL_SYMBOLS(REAL_DEF)
#undef REAL_DEF

int real_done;

void real_resolve(void)
{
	if (__atomic_load_n(&real_done, __ATOMIC_ACQUIRE))
		return;
	/* RTLD_NEXT from libgshim finds libc's default version of each
	 * symbol.  dlsym allocates only for dlerror state on failure. */
#define REAL_GET(ret, name, args) \
	real_##name = (ret (*) args)dlsym(RTLD_NEXT, #name);
	REAL_SYMBOLS(REAL_GET)
#undef REAL_GET
	__atomic_store_n(&real_done, 1, __ATOMIC_RELEASE);
}
