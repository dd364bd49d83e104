/* shim/mutex.h - what the two halves of the mutex code share: mutex.c
 * (private mutexes, every kind: the lock word, the robust list per G,
 * the entry points) and mutex_pshared.c (process-shared mutexes:
 * glibc's code with gshim's owner fix-ups).  The object's layout is
 * described at the top of mutex.c. */
#ifndef GSHIM_SHIM_MUTEX_H
#define GSHIM_SHIM_MUTEX_H

#include <limits.h>
#include "shim.h"

enum {
	MX_TYPE_MASK = 3,
	MX_ROBUST = 16,
	MX_PRIO_INHERIT = 32,
	MX_PRIO_PROTECT = 64,
	MX_PSHARED = 128,
	MX_INCONSISTENT = 1,          /* in __nusers */
	MX_CVUSER = 2,                /* in __nusers: one condvar wait */
	MX_OWNER_NOTRECOVERABLE = INT_MAX - 1,   /* glibc's value */
	MX_SPIN = 100,                /* pause loops before parking */
};

#define MX(m) (&(m)->__data)

static inline _Atomic uint32_t *lockword(pthread_mutex_t *m)
{
	return (_Atomic uint32_t *)&MX(m)->__lock;
}

static inline int kind_of(const pthread_mutex_t *m)
{
	return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
}

/* m leaves t's robust list (mutex.c). */
static inline void robust_remove(struct thread *t, pthread_mutex_t *m)
{
	pthread_mutex_t *prev = (pthread_mutex_t *)MX(m)->__list.__prev;
	pthread_mutex_t *next = (pthread_mutex_t *)MX(m)->__list.__next;

	if (prev)
		MX(prev)->__list.__next = (struct __pthread_internal_list *)next;
	else if (t->robust == m)
		t->robust = next;
	if (next)
		MX(next)->__list.__prev = (struct __pthread_internal_list *)prev;
	MX(m)->__list.__prev = MX(m)->__list.__next = NULL;
}

/* mutex_pshared.c */
int pshared_lock(pthread_mutex_t *m, bool try_only, clockid_t clk,
                 const struct timespec *abst);
int pshared_unlock(pthread_mutex_t *m);
void forget_held(pthread_mutex_t *m);

#endif
