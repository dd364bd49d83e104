/* core/fork.c - fork(): the runtime's pthread_atfork handlers
 * (shim/init.c registers them), and the M's own TCB, which fork and
 * setxid need loaded.
 *
 * Purpose.  After fork only the calling kernel thread exists in the
 * child: one M, running the G that called fork.  sched_fork_child makes
 * the runtime's state say so: that M is the only one on allm, every other
 * P is idle with an empty run queue, the global queue is empty, one G
 * lives, and every lock is re-initialised (another M may have held it at
 * the fork).  Each core part resets its own state (stack_, g_, gfutex_,
 * timer_, netpoll_, sig_, sysmon_fork_child); the helper threads (sysmon,
 * the timer thread, the signal receiver) did not survive and are started
 * again when next needed.
 *
 * Invariants.  shim/init.c registers these handlers first, so the child
 * handler runs before any of the program's (which may create threads)
 * and the prepare handler after them; until the child handler is done
 * nothing in the child may park.  With per-G TLS the fork must happen with this M's own TCB loaded
 * (see below); prepare loads it and both the parent and the child
 * restore the G's.
 *
 * Rejected: re-running sched_init in the child (M0 and the main G are
 * the parent's; the forking G may be any G on any M); keeping the
 * parent's G's as if they could be run (their M's and kernel state are
 * gone).
 */
#include "internal.h"
#include "sched_int.h"

/* Per-g TLS and glibc's own view of threads.  glibc knows the kernel
 * threads it created (the M's, the runtime's helpers) and the main
 * thread, each by its TCB; a G's TCB is in none of its lists.  Code that
 * walks those lists and skips "self" (the TCB the thread pointer names)
 * must run with this M's own TCB loaded:
 *   fork  - the child reclaims the stacks of every listed thread but
 *           self: with a G's TCB loaded, the M's own stack (the g0 stack
 *           this M keeps running on in the child) would be cached as free
 *           and handed to the child's next M: two threads on one stack.
 *   setxid - setuid & co. signal every listed thread but self and wait
 *           for each to change its credentials (core/signal.c).
 * M0's g0 TCB is one of ours; M0's glibc TCB is the main thread's, which
 * belongs to the main G: if the main G runs here it is loaded already, and
 * another G on M0 keeps its own (fork: the main thread's stack is never
 * reclaimed; setxid: glibc signals M0 as the main thread, its own kernel
 * thread, and the relay handles that).  Contract: a G, which does not
 * park until sched_own_tcb_leave. */
void *sched_own_tcb_enter(void)
{
	g_t *g = getcurg();
	m_t *m = g ? g->m : NULL;
	void *tp;

	if (!rt_tls_per_g() || !m || m == &m0 || m->cur_tp == m->g0.tcb)
		return NULL;
	tp = m->cur_tp;
	m_set_tp(m, m->g0.tcb);
	return tp;
}

void sched_own_tcb_leave(void *tp)
{
	m_t *m = getm();

	if (m && tp)
		m_set_tp(m, tp);
}

void sched_fork_prepare(void)
{
	m_t *m = getm();
	void *tp = sched_own_tcb_enter();

	if (tp)
		m->fork_tp = tp;
	rtfd_fork_prepare();
}

static void fork_restore_tp(void)
{
	m_t *m = getm();

	if (m && m->fork_tp) {
		sched_own_tcb_leave(m->fork_tp);
		m->fork_tp = NULL;
	}
}

void sched_fork_parent(void)
{
	rtfd_fork_parent();
	fork_restore_tp();
}

void sched_fork_child(void)
{
	g_t *self;
	m_t *m;
	int i;

	fork_restore_tp();
	self = getg();
	m = getm();
	rtfd_fork_child();

	if (!sched_ready() || !m)
		return;   /* forked from a thread that is not an M: nothing runs */
	lock_init(&sched.lock, RANK_SCHED);
	lock_init(&init_lock, RANK_LEAF);
	stack_fork_child();
	g_fork_child();
	gfutex_fork_child();
	timer_fork_child();
	netpoll_fork_child();

	m->tid = os_gettid();
	/* The parent's G's hold the mutexes on the list, not this process. */
	rt_robust.list = &rt_robust.list;
	rt_robust.pending = NULL;
	rt_robust_register();
	m->alllink = NULL;
	m->schedlink = NULL;
	m->spinning = false;
	m->nextp = NULL;
	note_clear(&m->park);
	atomic_store(&sched.allm, m);
	atomic_store(&sched.mcount, 1);
	/* The spare M is on the parent's allm only; the child has made no
	 * attempt to create an M yet. */
	atomic_store(&mspare, NULL);
	atomic_store(&mshort_until, 0);
	atomic_store(&mretry_at, 0);
	atomic_store(&mretry_ns, MRETRY_MIN_NS);
	sched.midle = NULL;
	sched.nmidle = 0;
	sched.pwait = NULL;
	atomic_store(&sched.nmspinning, 0);

	/* Every P but ours is idle and empty: the G's queued there belonged
	 * to other threads. */
	sched.pidle = NULL;
	atomic_store(&sched.npidle, 0);
	for (i = sched.nprocs - 1; i >= 0; i--) {
		p_t *p = &sched.allp[i];

		if (p == m->p)
			continue;
		atomic_store(&p->runqhead, 0);
		atomic_store(&p->runqtail, 0);
		atomic_store(&p->runnext, NULL);
		p->m = NULL;
		atomic_store(&p->status, P_IDLE);
		pidle_put(p);
	}
	if (m->p) {
		atomic_store(&m->p->runqhead, 0);
		atomic_store(&m->p->runqtail, 0);
		atomic_store(&m->p->runnext, NULL);
	}
	sched.runqhead = sched.runqtail = NULL;
	sched.urgtail = NULL;
	atomic_store(&sched.nurgent, 0);
	atomic_store(&sched.runqsize, 0);
	atomic_store(&sched.ngs, self && !self->is_g0 ? 1 : 0);
	sig_fork_child(self);
	trace_start();
	sysmon_fork_child();
}
