/* arch/real.h - the one place the runtime reaches libc's own versions of
 * the symbols gshim interposes: REAL(name) is libc's name, from a table
 * resolved as a whole with dlsym(RTLD_NEXT) on first use (real_init:
 * a library constructor that runs before ours may already call into
 * gshim, which must then reach libc), one load and a branch after that.
 * A NULL entry (libc lacks the symbol) is fatal at the point of use only
 * if that function is actually needed.  A new interposed name that needs
 * its original goes into REAL_SYMBOLS; nothing resolves libc's names any
 * other way. */
#ifndef GSHIM_ARCH_REAL_H
#define GSHIM_ARCH_REAL_H

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct mmsghdr;
struct sembuf;

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
	X(int, pthread_key_create, (pthread_key_t *, void (*)(void *))) \
	X(int, pthread_key_delete, (pthread_key_t)) \
	X(void *, pthread_getspecific, (pthread_key_t)) \
	X(int, pthread_setspecific, (pthread_key_t, const void *)) \
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
	X(int, pthread_mutex_init, (pthread_mutex_t *, const pthread_mutexattr_t *)) \
	X(int, pthread_mutex_destroy, (pthread_mutex_t *)) \
	X(int, pthread_mutex_lock, (pthread_mutex_t *)) \
	X(int, pthread_mutex_trylock, (pthread_mutex_t *)) \
	X(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *)) \
	X(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t, const struct timespec *)) \
	X(int, pthread_mutex_unlock, (pthread_mutex_t *)) \
	X(int, pthread_mutex_consistent, (pthread_mutex_t *)) \
	X(int, pthread_mutex_getprioceiling, (const pthread_mutex_t *, int *)) \
	X(int, pthread_mutex_setprioceiling, (pthread_mutex_t *, int, int *)) \
	X(int, pthread_cond_init, (pthread_cond_t *, const pthread_condattr_t *)) \
	X(int, pthread_cond_destroy, (pthread_cond_t *)) \
	X(int, pthread_cond_signal, (pthread_cond_t *)) \
	X(int, pthread_cond_broadcast, (pthread_cond_t *)) \
	X(int, pthread_cond_wait, (pthread_cond_t *, pthread_mutex_t *)) \
	X(int, pthread_cond_timedwait, (pthread_cond_t *, pthread_mutex_t *, const struct timespec *)) \
	X(int, pthread_cond_clockwait, (pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *)) \
	X(int, pthread_rwlock_init, (pthread_rwlock_t *, const pthread_rwlockattr_t *)) \
	X(int, pthread_rwlock_destroy, (pthread_rwlock_t *)) \
	X(int, pthread_rwlock_rdlock, (pthread_rwlock_t *)) \
	X(int, pthread_rwlock_tryrdlock, (pthread_rwlock_t *)) \
	X(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t *, const struct timespec *)) \
	X(int, pthread_rwlock_clockrdlock, (pthread_rwlock_t *, clockid_t, const struct timespec *)) \
	X(int, pthread_rwlock_wrlock, (pthread_rwlock_t *)) \
	X(int, pthread_rwlock_trywrlock, (pthread_rwlock_t *)) \
	X(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t *, const struct timespec *)) \
	X(int, pthread_rwlock_clockwrlock, (pthread_rwlock_t *, clockid_t, const struct timespec *)) \
	X(int, pthread_rwlock_unlock, (pthread_rwlock_t *)) \
	X(int, pthread_barrier_init, (pthread_barrier_t *, const pthread_barrierattr_t *, unsigned)) \
	X(int, pthread_barrier_destroy, (pthread_barrier_t *)) \
	X(int, pthread_barrier_wait, (pthread_barrier_t *)) \
	X(int, pthread_spin_lock, (pthread_spinlock_t *)) \
	X(int, sem_init, (sem_t *, int, unsigned)) \
	X(int, sem_destroy, (sem_t *)) \
	X(int, sem_wait, (sem_t *)) \
	X(int, sem_trywait, (sem_t *)) \
	X(int, sem_timedwait, (sem_t *, const struct timespec *)) \
	X(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *)) \
	X(int, sem_post, (sem_t *)) \
	X(int, sem_getvalue, (sem_t *, int *)) \
	X(int, sched_yield, (void)) \
	/* syscall_wrap/ */ \
	X(int, recvmmsg, (int, struct mmsghdr *, unsigned int, int, struct timespec *)) \
	X(int, sendmmsg, (int, struct mmsghdr *, unsigned int, int)) \
	X(int, semop, (int, struct sembuf *, size_t)) \
	X(int, semtimedop, (int, struct sembuf *, size_t, const struct timespec *)) \
	X(ssize_t, splice, (int, __off64_t *, int, __off64_t *, size_t, unsigned int)) \
	X(ssize_t, tee, (int, int, size_t, unsigned int)) \
	X(ssize_t, sendfile, (int, int, __off_t *, size_t)) \
	X(ssize_t, sendfile64, (int, int, __off64_t *, size_t)) \
	X(ssize_t, copy_file_range, (int, __off64_t *, int, __off64_t *, size_t, unsigned int)) \
	X(int, sigsuspend, (const sigset_t *)) \
	X(int, fcntl, (int, int, ...)) \
	X(int, fcntl64, (int, int, ...)) \
	X(long, syscall, (long, ...)) \
	X(int, nanosleep, (const struct timespec *, struct timespec *)) \
	X(int, clock_nanosleep, (clockid_t, int, const struct timespec *, struct timespec *)) \
	X(int, usleep, (__useconds_t)) \
	X(unsigned int, sleep, (unsigned int)) \
	X(int, system, (const char *)) \
	/* shim/xid.c */ \
	X(int, setuid, (uid_t)) \
	X(int, setgid, (gid_t)) \
	X(int, seteuid, (uid_t)) \
	X(int, setegid, (gid_t)) \
	X(int, setreuid, (uid_t, uid_t)) \
	X(int, setregid, (gid_t, gid_t)) \
	X(int, setresuid, (uid_t, uid_t, uid_t)) \
	X(int, setresgid, (gid_t, gid_t, gid_t)) \
	X(int, setgroups, (size_t, const gid_t *)) \
	X(int, initgroups, (const char *, gid_t)) \
	/* shim/dl.c */ \
	X(void *, dlopen, (const char *, int)) \
	X(int, dlclose, (void *))

#define REAL_DECL(ret, name, args) extern ret (*real_##name) args;
REAL_SYMBOLS(REAL_DECL)
#undef REAL_DECL

/* Resolve the table (once; any thread, any time, idempotent). */
void real_resolve(void);
extern int real_done;

static inline void real_init(void)
{
	if (__builtin_expect(!__atomic_load_n(&real_done, __ATOMIC_ACQUIRE), 0))
		real_resolve();
}

/* libc's original of an interposed name, e.g. REAL(pthread_join)(t, r). */
#define REAL(name) (real_init(), real_##name)

#endif
