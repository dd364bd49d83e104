/* shim/shim.h - the interposed POSIX/C11 thread API over core/.
 *
 * shim/ translates each POSIX contract (argument checks, errno values as
 * glibc documents them) into core calls; it owns what is per thread but
 * not scheduling: keys, names, scheduling attributes, the start routine.
 * That state lives in the area core reserves after each G (g_ext).
 */
#ifndef GSHIM_SHIM_H
#define GSHIM_SHIM_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include "core/rt.h"
#include "arch/real.h"

#define SHIM_KEYS_MAX 1024       /* PTHREAD_KEYS_MAX on glibc */
#define SHIM_KEY_BLOCK 32

struct key_slot {
	void *val;
	uintptr_t seq;
};

struct once_node {
	_Atomic uint32_t *st;
	struct once_node *prev;
};

struct thread {
	void *(*start)(void *);
	void *arg;
	char name[16];
	bool named;
	int policy;                   /* sched.c: as the program set it */
	struct sched_param param;
	bool explicit_sched;          /* created with PTHREAD_EXPLICIT_SCHED */
	size_t req_stacksize;         /* attr.c: the sizes pthread_create was */
	size_t req_guard;             /* asked for, reported back as glibc does */
	bool keys_used;
	struct once_node *onces;      /* once.c: initialisers running */
	/* cancel.c (the cancellation flags are core's, on the G) */
	bool lock_cancellable;        /* mutex.c: in pthread_mutex_lock, async type */
	__pthread_unwind_buf_t *cleanup;  /* pthread_cleanup_push chain */
	/* cancel.c: glibc's view of the G (its TCB's cleanup_jmp_buf) ends in
	 * this buffer in thread_entry; NULL where that view is not kept. */
	__pthread_unwind_buf_t *_Atomic base;
	pthread_mutex_t *robust;      /* mutex.c: robust mutexes held */
	/* thread.c: pthread_exit/cancellation unwind C++ frames (forced
	 * unwinding) and land back in thread_entry. */
	jmp_buf exit_jb;
	bool exit_jb_set;
	void *exit_value;
	char unwind_exc[64] __attribute__((aligned(16)));   /* _Unwind_Exception */
	pthread_mutex_t *pheld[8];    /* mutex.c: pshared owner-checked held */
	struct key_slot key1[SHIM_KEY_BLOCK];                    /* keys 0..31 */
	struct key_slot *keyblk[SHIM_KEYS_MAX / SHIM_KEY_BLOCK]; /* [0] unused */
};

static inline struct thread *thread_of(g_t *g) { return g_ext(g); }

/* Bring the runtime up if it is not (library constructors of other
 * libraries may call us before our own constructor ran).  Returns false
 * if the calling thread cannot be served by gshim (a thread created
 * behind our back): the caller then falls back to libc. */
bool shim_init(void);

/* The calling G; NULL on a thread that is not a G, and on the main
 * thread before the runtime is up.  Only thread creation and the
 * constructor bring the runtime up (shim/init.c explains why a mutex or
 * key call must not). */
static inline g_t *shim_self(void)
{
	return getcurg();
}

/* The main thread before the runtime is up (constructors that ran before
 * ours, a replacement malloc called from our own initialisation). */
static inline bool shim_booting_main(void)
{
	return !sched_ready() && os_gettid() == getpid();
}

/* Is t a pthread_t that gshim handed out?  Otherwise it belongs to libc
 * (a thread created behind gshim's back) and calls go to libc. */
static inline bool shim_is_g(pthread_t t)
{
	if (__builtin_expect(!sched_ready(), 0))
		return false;   /* the caller goes to libc's original */
	return g_valid((void *)t);
}

/* t is a G that has ended but is not joined yet: glibc's calls that
 * check the kernel tid (cleared by the kernel at exit) say ESRCH for it
 * (getschedparam & co., getcpuclockid), the /proc-based names ENOENT;
 * pthread_kill and pthread_cancel say 0. */
static inline bool shim_g_ended(pthread_t t)
{
	g_t *g = (g_t *)t;

	return atomic_load_explicit(&g->exited, memory_order_acquire) ||
	       atomic_load_explicit(&g->status, memory_order_acquire) == G_DEAD;
}

/* A pthread_t naming a G that has exited and been freed (joining a
 * detached thread, a kill after join): never glibc's code, which would
 * take it for one of its descriptors.  Join and detach say ESRCH after
 * a join, EINVAL after a detached exit (shim/join.c); the rest ESRCH. */
static inline bool shim_is_stale_g(pthread_t t)
{
	return sched_ready() && g_in_slab((void *)t);
}


/* An owner id for lock words (mutex __owner, rwlock __cur_writer): unique
 * among live threads, never 0.  G's get ids above the kernel's pid range
 * (pid_max <= 2^22) but inside FUTEX_TID_MASK; a thread that is not a G
 * uses its kernel tid. */
static inline int shim_owner_id(g_t *g)
{
	if (g)
		return g_fake_tid(g);
	/* The main thread before init owns locks as the main G will, so a
	 * lock taken by an early constructor can be released after. */
	return shim_booting_main() ? g_main_fake_tid() : (int)os_gettid();
}

/* A call into glibc's process-shared object code (see tls_tid_enter);
 * libc's originals are resolved before glibc's view of the tid changes. */
#define PSHARED(call) ({                                                \
	real_init();                                                     \
	int pshared_old__ = tls_tid_enter();                             \
	__typeof__(call) pshared_r__ = (call);                           \
	tls_tid_leave(pshared_old__);                                    \
	pshared_r__; })

/* attr.c: glibc's default attributes into *attr (to be destroyed), if
 * the program changed them; false: use gshim's defaults. */
bool shim_default_attr(pthread_attr_t *attr);

/* config.c */
/* glibc's struct pthread_attr begins with the scheduling parameters, the
 * policy and a flags word (its layout has been the same since glibc 2.3).
 * The API reads the values but not whether they were set, which decides
 * where an explicitly scheduled thread takes them from: read the flags,
 * cross-checked against what the API says, else take both as set.  The
 * stack size is read raw too: 0 means "the default", which the API
 * reports as glibc's copy of it, not gshim's (GSHIM_STACK_SIZE). */
struct glibc_attr_head {
	struct sched_param schedparam;
	int schedpolicy;
	int flags;
	size_t guardsize;
	void *stackaddr;
	size_t stacksize;
	void *extension;   /* CPU set and signal mask, if either was set */
};
#define GATTR_NOTINHERITSCHED 0x0002
#define GATTR_SCHED_SET       0x0020
#define GATTR_POLICY_SET      0x0040

void config_load(void);
size_t config_default_stack(void);
size_t config_default_guard(void);
void config_set_default_attr(size_t stacksize, size_t guard);
extern char shim_default_name[16];
const char *shim_g_name(g_t *g);     /* misc.c: rt_cfg.g_name */

/* key.c */
void key_run_destructors(struct thread *t);
void key_adopt_boot(struct thread *t);   /* keys set during shim_init */

/* mutex.c: release the robust mutexes of an exiting thread. */
void mutex_robust_exit(struct thread *t);
/* mutex.c: the process-shared owner-checked mutexes of an exiting thread
 * (robust ones are marked as the kernel would); a forked child's. */
void mutex_pshared_exit(struct thread *t);
void mutex_fork_child(void);
/* mutex.c, for cond.c: re-take m after a wait; unlock it; a condvar wait
 * starts (delta 1) or ends (-1) using m; around glibc's condvar wait on a
 * process-shared robust or owner-checked m (the held list). */
int mutex_relock(pthread_mutex_t *m);
int mutex_unlock(pthread_mutex_t *m);
void mutex_cv_use(pthread_mutex_t *m, int delta);
void mutex_pshared_cond_before(g_t *g, pthread_mutex_t *m, void *dummy[2]);
void mutex_pshared_cond_after(g_t *g, pthread_mutex_t *m, int r);

/* once.c: reset (to "never called", waiters woken) the onces whose
 * initialiser the thread is leaving by unwinding: all of them
 * (once_abandon, at exit), or those whose pthread_once frame lies below
 * stack address limit (once_unwound: the unwinding has reached limit). */
void once_abandon(struct thread *t);
void once_unwound(struct thread *t, uintptr_t limit);

/* time.c: absolute time abst on clock clk (REALTIME or MONOTONIC) ->
 * CLOCK_MONOTONIC ns deadline for core (-1 = never).  EINVAL for a bad
 * clock or tv_nsec, as glibc. */
int shim_deadline(clockid_t clk, const struct timespec *abst, int64_t *out);

/* cancel.c: start-up (after core's cancel_init): glibc's TCB offsets. */
void shim_cancel_init(void);
/* thread.c -> cancel.c: a G starts (base: its buffer in thread_entry);
 * glibc's unwinding landed in base: the thread was cancelled. */
void cancel_thread_start(g_t *g, __pthread_unwind_buf_t *base);
void cancel_glibc_landed(g_t *g);
/* cancel.c: run the LinuxThreads-style cleanup buffers (glibc's list in
 * the G's TCB) that lie below stack address limit. */
void cancel_old_cleanups(g_t *g, uintptr_t limit);
/* cancel.c: core's rt_cfg.cancel_exit - glibc's view of the G follows
 * its flags, then cleanup_unwind with PTHREAD_CANCELED. */
_Noreturn void shim_cancel_exit(g_t *g);

/* cancel.c: run the cleanup handlers of the calling thread and exit it
 * with thread_of(g)->exit_value (= thread_unwind_exit).  cleanup_jump:
 * pop the innermost C cleanup buffer (there must be one) and longjmp
 * into it (its handler runs, then __pthread_unwind_next goes on). */
_Noreturn void cleanup_unwind(g_t *g);
_Noreturn void cleanup_jump(g_t *g);

/* sched.c */
int shim_sched_check(int policy, const struct sched_param *param);
int shim_sched_perm(int cur_policy, int cur_prio, int policy, int prio);
int shim_sched_explicit(struct thread *t, const struct thread *parent,
                        int policy, const struct sched_param *param);
void shim_sched_init_main(struct thread *t);

/* dl.c: make G stacks executable if a loaded object asks for it. */
void shim_execstack_check(void);

/* init.c: the program's main thread (set once the runtime is up). */
extern g_t *shim_main_g;
/* init.c: glibc's descriptor of the main thread (0 until known). */
extern pthread_t shim_main_desc;

/* thread.c: end the calling thread as pthread_exit does: unwind its
 * frames (C++ destructors, C++ cleanup handlers) when it can, then exit. */
_Noreturn void thread_unwind_exit(g_t *g, void *retval);

/* thread.c */
_Noreturn void thread_exit(g_t *g, void *retval);
int thread_create(pthread_t *th, const pthread_attr_t *attr,
                  void *(*fn)(void *), void *arg);

#define SHIM_EXPORT RT_EXPORT

#endif
