/* arch/real.h - the one place the runtime reaches libc's own versions of
 * the symbols gshim interposes.  Resolved once by real_init() with
 * dlsym(RTLD_NEXT), before anything else runs; a NULL entry is fatal at
 * the point of use only if that function is actually needed. */
#ifndef GSHIM_ARCH_REAL_H
#define GSHIM_ARCH_REAL_H

#include <pthread.h>
#include <sched.h>

#define REAL_SYMBOLS(X) \
	X(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)) \
	X(int, pthread_join, (pthread_t, void **)) \
	X(int, pthread_tryjoin_np, (pthread_t, void **)) \
	X(int, pthread_timedjoin_np, (pthread_t, void **, const struct timespec *)) \
	X(int, pthread_clockjoin_np, (pthread_t, void **, clockid_t, const struct timespec *)) \
	X(int, pthread_detach, (pthread_t)) \
	X(void, pthread_exit, (void *)) \
	X(pthread_t, pthread_self, (void)) \
	X(int, pthread_getattr_np, (pthread_t, pthread_attr_t *)) \
	X(int, pthread_setname_np, (pthread_t, const char *)) \
	X(int, pthread_getname_np, (pthread_t, char *, size_t)) \
	X(int, pthread_kill, (pthread_t, int)) \
	X(int, pthread_getattr_default_np, (pthread_attr_t *)) \
	X(int, pthread_setattr_default_np, (const pthread_attr_t *)) \
	X(int, pthread_getschedparam, (pthread_t, int *, struct sched_param *)) \
	X(int, pthread_setschedparam, (pthread_t, int, const struct sched_param *)) \
	X(int, pthread_setschedprio, (pthread_t, int)) \
	X(int, pthread_getaffinity_np, (pthread_t, size_t, cpu_set_t *)) \
	X(int, pthread_setaffinity_np, (pthread_t, size_t, const cpu_set_t *)) \
	X(int, pthread_getcpuclockid, (pthread_t, clockid_t *)) \
	X(int, pthread_cancel, (pthread_t)) \
	X(int, pthread_setcancelstate, (int, int *)) \
	X(int, pthread_setcanceltype, (int, int *)) \
	X(void, pthread_testcancel, (void)) \
	X(void, __pthread_register_cancel, (__pthread_unwind_buf_t *)) \
	X(void, __pthread_unregister_cancel, (__pthread_unwind_buf_t *)) \
	X(void, __pthread_unwind_next, (__pthread_unwind_buf_t *)) \
	X(void, __pthread_register_cancel_defer, (__pthread_unwind_buf_t *)) \
	X(void, __pthread_unregister_cancel_restore, (__pthread_unwind_buf_t *)) \
	X(int, sched_yield, (void))

#define REAL_DECL(ret, name, args) extern ret (*real_##name) args;
REAL_SYMBOLS(REAL_DECL)
#undef REAL_DECL

void real_init(void);

#endif
