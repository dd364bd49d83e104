/* core/syscall.c - G's in calls that hold their M (Go's entersyscall /
 * exitsyscall, handoffp's callers), sysmon's retake of their P's, and
 * what happens when M's run out.
 *
 * Purpose.  A G that makes a call the runtime cannot park (a wrapped
 * system call, a lock wait in the kernel, a process-shared object) keeps
 * its M for the call.  Its P must not sit idle meanwhile.  Two brackets:
 *   g_block_enter/g_block_exit - the call is known to block: the P is
 *     handed off at once (handoffp, core/sched.c) and one is taken back
 *     after, waiting for one if none is free;
 *   g_syscall_enter/g_syscall_exit - the call may well be short: the P
 *     stays with the M, marked P_SYSCALL, and sysmon takes it only if the
 *     call lasts (p_retake_syscall); a G that looks stuck in the kernel in
 *     a call gshim does not wrap loses its P the same way
 *     (p_retake_running).
 *
 * Invariants.  The P's status word decides who owns a P in a call:
 * exactly one of exitsyscall (CAS P_SYSCALL -> P_RUNNING) and sysmon (CAS
 * P_SYSCALL -> P_IDLE) wins.  P_RETAKING is sysmon's claim on a running
 * P; it backs off if the G is inside the runtime (rtdepth), which is a
 * Dekker pair with rt_check_p.  A G inside a bracket is G_SYSCALL and
 * counts as inside the runtime, so signal handlers defer their wake-ups.
 *
 * Rejected: Go's exitsyscall slow path, which queues the G and parks the
 * M (here the G stays on its M: glibc identifies the owner of a process-
 * shared object by kernel thread id, see g_block_exit); handing the P off
 * on every system call (a short call would cost two futex wakes).  What
 * is done when no M can be created, and what was rejected there, is the
 * essay "running out of M's" below.
 */
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"
#include "sched_int.h"

/* ---- blocking calls that cannot park ----------------------------------- */

void g_block_enter(void)
{
	g_t *g = getcurg();
	m_t *m;

	if (!g)
		return;
	/* A signal handler that interrupted this G inside a blocking call
	 * or in the middle of a switch (g->m already cleared): the outer
	 * state stays; the matching g_block_exit does nothing either. */
	if (!g->m || atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING) {
		g->block_skip++;
		return;
	}
	if (__builtin_expect(atomic_load_explicit(&g->m->preempt, memory_order_relaxed), 0))
		preempt_drain(g->m);
	rt_enter();
	m = g->m;
	g->scnr = SCNR_WAIT;
	casgstatus(g, G_RUNNING, G_SYSCALL);
	/* Dekker with preempt_request, as in g_syscall_enter. */
	atomic_thread_fence(memory_order_seq_cst);
	if (__builtin_expect(atomic_load_explicit(&m->preempt, memory_order_relaxed), 0))
		preempt_drain(m);
	handoffp(releasep(m));
	rt_exit(g);
}

void g_block_exit(void)
{
	g_t *g = getcurg();
	struct switch_req req = { .kind = SW_TOGLOBAL };
	m_t *m;
	p_t *p;

	if (!g)
		return;
	if (g->block_skip) {
		g->block_skip--;
		return;
	}
	rt_enter();
	m = g->m;
	/* Fast path: an idle P (often the one we gave away). */
	lock_acquire(&sched.lock);
	p = pidle_get();
	lock_release(&sched.lock);
	if (p) {
		acquirep(m, p);
		casgstatus(g, G_SYSCALL, G_RUNNING);
		rt_exit(g);
		return;
	}
	/* Slow path.  Go queues the G and parks the M; we keep the G on this
	 * M and let the M wait for the next P that frees up.  Process-shared
	 * objects in glibc identify their owner by kernel thread id, so a G
	 * that holds one must not change M here (and no wake-up of the G is
	 * needed when a P frees up: the M simply carries on). */
	(void)req;
	lock_acquire(&sched.lock);
	p = pidle_get();
	if (!p) {
		m->schedlink = sched.pwait;
		sched.pwait = m;
	}
	lock_release(&sched.lock);
	if (!p) {
		note_sleep(&m->park);
		note_clear(&m->park);
		p = m->nextp;
		m->nextp = NULL;
	}
	acquirep(m, p);
	casgstatus(g, G_SYSCALL, G_RUNNING);
	rt_exit(g);
}

/* ---- system calls (Go's entersyscall / exitsyscall) ---------------------
 * The P stays with the M, marked P_SYSCALL, so a short call costs two
 * stores and a CAS.  If the call lasts, sysmon takes the P (CAS
 * P_SYSCALL -> P_IDLE, exactly one of sysmon and exitsyscall wins) and
 * hands it to another M; exitsyscall then finds its P gone and gets
 * another the way g_block_exit does.  The G counts as inside the runtime
 * meanwhile (rtdepth), so a signal handler's wake-ups wait for the call
 * to return instead of touching a P that sysmon may be handing away. */
bool g_syscall_enter(void)
{
	g_t *g = getcurg();
	p_t *p;

	/* Already in a call (we are a signal handler inside it), or between
	 * P's in g_block_exit: the outer call does the accounting. */
	if (!g || atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING ||
	    !g->m || !g->m->p || g->rtdepth != 0)
		return false;
	if (__builtin_expect(atomic_load_explicit(&g->m->preempt, memory_order_relaxed), 0))
		preempt_drain(g->m);
	sysmon_start();
	g->rtdepth++;
	rt_check_p(g);   /* may have been taken during an unwrapped call */
	p = g->m->p;
	p->syscalltick++;
	g->scnr = 0;   /* the wrapper names its call after this */
	casgstatus(g, G_RUNNING, G_SYSCALL);
	/* Release: sysmon's acquire of the status sees the syscalltick. */
	p_owner_set(p, P_SYSCALL);
	/* Dekker with preempt_request, which stores m->preempt and then
	 * reads the G's and the P's status: a request made before it saw
	 * ours is seen here, and its signal lands before the call sleeps
	 * (a ppoll cut short by SIGURG would return EINTR to the program;
	 * the look above, before the stores, leaves that window open). */
	atomic_thread_fence(memory_order_seq_cst);
	if (__builtin_expect(atomic_load_explicit(&g->m->preempt, memory_order_relaxed), 0))
		preempt_drain(g->m);
	return true;
}

void g_syscall_exit(void)
{
	g_t *g = getcurg();
	m_t *m;
	p_t *p;
	uint32_t st = P_SYSCALL;
	int saved;

	m = g->m;
	p = m->p;
	/* Fast path: our P is still in a call.  As in Go, a P in P_SYSCALL
	 * is free for the taking: sysmon may have handed it to another M that
	 * is itself in a call with it now; then we take it over, and that M
	 * finds it gone when its call returns. */
	if (atomic_compare_exchange_strong_explicit(&p->status, &st, P_RUNNING,
	        memory_order_acq_rel, memory_order_acquire)) {
		__atomic_store_n(&p->m, m, __ATOMIC_RELEASE);
		casgstatus(g, G_SYSCALL, G_RUNNING);
		rt_exit(g);
		return;
	}
	/* sysmon gave it away: we hold no P. */
	saved = *errno_loc();
	m->p = NULL;
	g_block_exit();
	*errno_loc() = saved;
	rt_exit(g);
}

/* The G's M lost its P to sysmon (rt_check_p): wait until sysmon has
 * decided, and if the P is gone get one back like a returning call. */
void m_reacquire_p(g_t *g)
{
	m_t *m = g->m;
	p_t *p = m->p;

	while (atomic_load_explicit(&p->status, memory_order_acquire) == P_RETAKING)
		arch_relax();
	if (atomic_load_explicit(&p->status, memory_order_acquire) == P_RUNNING &&
	    __atomic_load_n(&p->m, __ATOMIC_ACQUIRE) == m)
		return;   /* sysmon changed its mind */
	m->p = NULL;
	casgstatus(g, G_RUNNING, G_SYSCALL);
	g_block_exit();
}

/* sysmon: take p from its M, which runs g and looks blocked in the kernel
 * in a call gshim does not wrap.  The claim (P_RETAKING) and g's rtdepth
 * form a Dekker pair with rt_check_p: if g is inside the runtime (or
 * about to be), it keeps its P. */
bool p_retake_running(p_t *p, m_t *m, g_t *g, uint32_t tick)
{
	uint32_t st = P_RUNNING;

	if (!atomic_compare_exchange_strong_explicit(&p->status, &st, P_RETAKING,
	        memory_order_seq_cst, memory_order_relaxed))
		return false;
	atomic_thread_fence(memory_order_seq_cst);
	if (__atomic_load_n(&g->rtdepth, __ATOMIC_RELAXED) != 0 ||
	    __atomic_load_n(&m->curg, __ATOMIC_RELAXED) != g ||
	    __atomic_load_n(&p->m, __ATOMIC_RELAXED) != m ||
	    __atomic_load_n(&p->schedtick, __ATOMIC_RELAXED) != tick ||
	    atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING) {
		atomic_store_explicit(&p->status, P_RUNNING, memory_order_release);
		return false;
	}
	__atomic_store_n(&p->m, NULL, __ATOMIC_RELAXED);
	atomic_store_explicit(&p->status, P_IDLE, memory_order_release);
	handoffp(p);
	return true;
}

bool p_retake_syscall(p_t *p)
{
	uint32_t st = P_SYSCALL;

	if (!atomic_compare_exchange_strong_explicit(&p->status, &st, P_IDLE,
	        memory_order_acq_rel, memory_order_acquire))
		return false;
	p->m = NULL;
	handoffp(p);
	return true;
}

/* ---- running out of M's -------------------------------------------------
 *
 * Every G in a call that holds an M (entersyscall: flock, a lock wait,
 * waitpid, a read with GSHIM_IO=syscall ...) is a kernel thread, as it
 * would be natively.  When the kernel refuses another (RLIMIT_NPROC,
 * cgroup pids.max, threads-max) or GSHIM_MAXM is reached, newm fails and
 * the P it was for goes idle.  Go stops there ("thread exhaustion", fatal)
 * and otherwise lets runnable G's wait for an M to come back from its
 * call.  Here that wait can be forever where natively it is not: the
 * native program's pthread_create fails instead, it copes (lets go of a
 * lock, retries), and the threads it did create each have a kernel
 * thread - including the one that holds the lock or will write to the
 * pipe the others read.  Under gshim creation succeeds, every M is taken
 * by a G blocked on something that only a runnable G with no M would
 * end: a deadlock the program did not write.
 *
 * What gshim does instead:
 *   - newm records the failure (mshort_until, MSHORT_NS ahead) and backs
 *     off: no clone until mretry_at (1 ms doubling to 64 ms), so a
 *     program that readies G's quickly does not call clone for each.
 *   - While M's are short, calls that have a non-blocking twin (flock ->
 *     LOCK_NB, F_SETLKW -> F_SETLK, a read of a pipe or socket with
 *     GSHIM_IO=syscall -> poll without waiting, then the read) make the
 *     twin and park the G on a timer between tries (100 us doubling to
 *     10 ms: syscall_wrap, sc_call_twin) instead of holding an M.
 *   - sysmon (sched_mstarve) watches for starvation: G's on the global
 *     queue, an idle P, no idle or spinning M, M's short.  It retries the
 *     clone when the backoff allows; failing that it evicts one M per
 *     round from a call with a twin that has lasted EVICT_AFTER_NS: sets
 *     g->evict and sends SIGCANCEL, whose handler (core/cancel.c) moves
 *     the PC out of the call as for a cancellation; the wrapper sees the
 *     eviction and goes on with the twin, and the M, back in the
 *     scheduler, runs the starved G's.
 *   - Starved for REPORT_NS with nothing to evict (every M is in a call
 *     without a twin: waitpid, sigwait, a process-shared wait ...):
 *     progress depends on those calls returning, which may be never.
 *     sysmon says so once, naming each blocked thread and its call
 *     (Go's thread-exhaustion report, without the exit: the calls may
 *     still return, another process may release the lock); with
 *     GSHIM_DEBUG=deadlock=1 the report is fatal (exit 2).
 *
 * Rejected: always using the twins (a polled lock is not queued in the
 * kernel - a waiter may lose to later ones - and wakes up to 10 ms late;
 * natively and while M's are plentiful the plain call is exact and
 * free); making pthread_create fail with EAGAIN when no M can be had (a
 * G needs no M until it runs, and G's blocked in parkable waits need
 * none at all: the 100,000-thread programs would fail); a reserve M
 * kept idle for emergencies (one reserve is taken by the next blocking
 * call like any other M).
 *
 * The eviction signal races with the call's return: sysmon picks a G in
 * its call and signals that G's M; if the G left the call meanwhile, the
 * handler finds evict unset (or evictable clear) on what runs now and
 * does nothing, and the M's current call, if any, restarts (SA_RESTART)
 * - except calls the kernel never restarts (poll, select, epoll_wait,
 * sigsuspend): the signal names g, so the handler marks it stray for the
 * G it interrupts, and the plain-call wrapper makes that call again
 * instead of returning EINTR (syscall_wrap/wrap.h).  Calls younger than
 * EVICT_AFTER_NS are never picked, which makes the window small. */
#define EVICT_AFTER_NS 1000000      /* in its call this long: may be evicted */
#define REPORT_NS      1000000000   /* starved this long, nothing to evict */

bool sched_mshort(void)
{
	int64_t u = atomic_load_explicit(&mshort_until, memory_order_relaxed);

	return u != 0 && os_nanotime() < u;
}

/* Evict one M from a call with a twin (see the essay).  sysmon. */
static bool m_evict(int64_t now)
{
	pid_t pid = (pid_t)arch_syscall(SYS_getpid, 0, 0, 0);

	for (m_t *m = atomic_load_explicit(&sched.allm, memory_order_acquire); m;
	     m = m->alllink) {
		g_t *g = __atomic_load_n(&m->curg, __ATOMIC_ACQUIRE);

		if (!g || !m->tid || atomic_load_explicit(&g->status, memory_order_acquire) != G_SYSCALL ||
		    !atomic_load_explicit(&g->evictable, memory_order_acquire) ||
		    now - __atomic_load_n(&g->scsince, __ATOMIC_RELAXED) < EVICT_AFTER_NS)
			continue;
		/* Before the signal: the handler looks at it (a G already
		 * evicted but still in its call is signalled again: the
		 * first signal may have come before the call). */
		atomic_store_explicit(&g->evict, 1, memory_order_seq_cst);
		/* Named for g: if g left its call meanwhile, the call the
		 * signal interrupts is another G's, which takes it as stray
		 * and makes its call again (core/cancel.c, sigstray) instead
		 * of returning EINTR from a poll or select. */
		siginfo_t si;

		memset(&si, 0, sizeof si);
		si.si_signo = SIGCANCEL;
		si.si_code = SI_QUEUE;
		si.si_pid = pid;
		si.si_value.sival_ptr = g;
		si.si_errno = SIGCANCEL_EVICT_TAG;
		arch_syscall6(SYS_rt_tgsigqueueinfo, pid, m->tid, SIGCANCEL, (long)&si, 0, 0);
		return true;
	}
	return false;
}

bool sched_mstarve(int64_t now)
{
	static int64_t since;     /* sysmon only: starved since then */
	static bool reported;

	if (!atomic_load_explicit(&mshort_until, memory_order_relaxed) ||
	    atomic_load_explicit(&sched.runqsize, memory_order_relaxed) == 0 ||
	    atomic_load_explicit(&sched.npidle, memory_order_relaxed) == 0 ||
	    atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) != 0 ||
	    __atomic_load_n(&sched.nmidle, __ATOMIC_RELAXED) != 0) {
		since = 0;
		return false;
	}
	if (!since) {
		since = now;   /* maybe a moment between wakep and startm */
		return true;
	}
	if (now >= atomic_load_explicit(&mretry_at, memory_order_relaxed)) {
		p_t *p;

		lock_acquire(&sched.lock);
		p = pidle_get();
		lock_release(&sched.lock);
		if (p && newm(p, false, true)) {
			since = 0;
			return false;
		}
	}
	if (m_evict(now))
		return true;
	if (!reported && now - since >= REPORT_NS) {
		reported = true;
		starve_report();
	}
	return true;
}
