/* core/sched.c - the scheduler: M's running G's on P's (Go's proc.go).
 *
 * Switching
 * ---------
 * A G gives up the CPU in switch_out.  While still on its own stack it
 * picks the next G from its own P (runnext, the ring, the global queue
 * every 61st tick or when the ring is empty) and, if there is one, switches
 * to it directly: one register switch, no detour through the M's g0.  Only
 * when its P has nothing does it switch to g0, which runs find_runnable
 * (stealing, dropping the P, sleeping the M).  The direct switch
 * matters (docs/design.md, "Thread identity"): with a TCB per G every
 * switch costs a thread pointer write (3.4 us with arch_prctl on a VM
 * without FSGSBASE), so G -> g0 -> G would pay twice.
 *
 * The G being left cannot publish its own new state (G_WAITING on a wait
 * queue, G_RUNNABLE on a run queue, G_DEAD on a free list) before its
 * registers are saved: another M could pick it up and run on its stack
 * while we are still using it.  So it describes what must happen in a
 * switch_req on its own stack, and whoever runs next on this M calls
 * switch_finish(req) as the first thing after the switch returns - the
 * finish_task_switch pattern of the Linux scheduler.  The req stays valid
 * until finish publishes the G, and finish copies what it needs first.
 *
 * Go gets the same guarantee by running park_m/goexit0 on g0 (mcall); we
 * get it without the second switch.
 *
 * Spinning M's (Go's "Worker thread parking/unparking")
 * -----------------------------------------------------
 * Goal: keep enough M's running to use the P's when there is work, but
 * park M's quickly when there is none, without a central lock on the
 * readying path.  An M is "spinning" when it is out of local work and is
 * looking in global queues and other P's.  At most about half the busy P's
 * spin.  When a G is readied (g_ready, g_spawn), wakep starts a new spinning
 * M only if there is an idle P and no M is spinning already: the spinner is
 * the one that will find it.  A spinning M that finds work stops spinning
 * and calls wakep, so a new spinner takes over the search (work may come in
 * bursts).  A spinning M that finds nothing puts its P on the idle list,
 * decrements nmspinning, and THEN looks at every run queue again.  A
 * readier stores its G in a queue and THEN reads nmspinning.  With both
 * orders sequentially consistent (the #StoreLoad pair), either the spinner
 * sees the new G, or the readier sees nmspinning == 0 and wakes an M.
 * Without it a G can sit runnable while every P sleeps.
 *
 * Rejected alternatives: waking an M for every readied G (thundering herd
 * of futex wakes on the hot path; Go 1.0 did this), and a central run
 * queue under one lock (Go 1.0 again: collapses beyond a few cores).
 *
 * Around the scheduler
 * --------------------
 * This file is the loop (schedule, find_runnable, switch_out and
 * switch_finish), park/ready, wakep/startm and handing P's off.  M's
 * are started and parked in core/m.c (also sched_init); calls that hold
 * an M, sysmon's retake of their P's and running out of M's in
 * core/syscall.c; the deadlock check and thread-exhaustion report in
 * core/deadlock.c; the stack overflow handler in core/segv.c; fork in
 * core/fork.c; signal delivery to G's in core/signal.c.  What they
 * share, hot helpers included (static inline), is core/sched_int.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"
#include "sched_int.h"

__thread void *gshim_tls_g __attribute__((tls_model("initial-exec")));

struct sched sched = { .lock = LOCK_INIT(RANK_SCHED), .gflock = LOCK_INIT(RANK_GFREE) };
struct rt_cfg rt_cfg = { .gomaxprocs = 0, .traceback = TB_UNSET };

/* ---- small helpers --------------------------------------------------- */

/* Make g the context whose TLS is current on m.  Shared TLS: rewrite the
 * runtime's slot in the M's TCB.  Per-G TLS: load g's thread pointer
 * (each TCB's slot names its own G), once per change of TCB.  Must run
 * before the register switch, after the last TLS access of the context
 * being left. */
static inline void enter_tls(m_t *m, g_t *g)
{
	if (rt_tls_per_g()) {
		void *tp = g->tcb;

		if (tp != m->cur_tp)
			m_set_tp(m, tp);
	} else {
		setg(g);
	}
}


int sched_gomaxprocs(void)
{
	return sched.nprocs;
}

/* Schedule some M to run p (or an idle P if p is NULL).  Go's startm. */
static void startm(p_t *p, bool spinning)
{
	m_t *nm;
	bool brk;

	lock_acquire(&sched.lock);
	if (!p) {
		p = pidle_get();
		if (!p) {
			lock_release(&sched.lock);
			if (spinning && atomic_fetch_sub_explicit(&sched.nmspinning, 1,
			        memory_order_seq_cst) <= 0)
				rt_fatal("startm: negative nmspinning");
			return;
		}
	}
	nm = midle_get();
	brk = nm && nm->in_netpoll;
	lock_release(&sched.lock);
	if (!nm) {
		newm(p, spinning, false);
		return;
	}
	if (nm->spinning || nm->nextp)
		rt_fatal("startm: m is spinning or has a P");
	nm->spinning = spinning;
	nm->nextp = p;
	note_wakeup(&nm->park);
	if (brk)
		netpoll_break();
}

/* Try to add one more spinning M because there may be work (Go's wakep).
 * Called after a G was put on a run queue. */
static void wakep(void)
{
	int zero = 0;

	/* #StoreLoad with the spinning M's decrement + recheck (see essay):
	 * our run queue store must be visible before we read nmspinning. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&sched.npidle, memory_order_seq_cst) == 0)
		return;
	if (atomic_load_explicit(&sched.nmspinning, memory_order_seq_cst) != 0 ||
	    !atomic_compare_exchange_strong_explicit(&sched.nmspinning, &zero, 1,
	        memory_order_seq_cst, memory_order_seq_cst))
		return;
	startm(NULL, true);
}

void sched_wake_idle(void)
{
	if (sched_ready())
		wakep();
}

/* A spinning M found work: stop spinning and let another M take over
 * the search (Go's resetspinning). */
static void reset_spinning(m_t *m)
{
	m->spinning = false;
	if (atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst) <= 0)
		rt_fatal("reset_spinning: negative nmspinning");
	wakep();
}

/* ---- finding work ------------------------------------------------------ */

/* Non-blocking search of the M's own P and the global queue.  Safe on a
 * G's stack: it only takes short locks.  Owner of p. */
static g_t *pick_local(p_t *p)
{
	g_t *g;

	/* Every 61st tick look at the global queue first, so that a pair of
	 * G's readying each other through runnext cannot starve it - past
	 * the urgent G's at its head first (below), so that a flood of I/O
	 * events cannot starve preempted or yielded G's either.  61 is Go's
	 * choice: prime, so it does not fall into step with periodic program
	 * behaviour. */
	if (p->schedtick % 61 == 0) {
		if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
			bool plain;

			lock_acquire(&sched.lock);
			g = globrunq_get_plain();
			plain = g != NULL;
			if (!g)
				g = globrunq_get(p, 1);
			lock_release(&sched.lock);
			/* A plain G (preempted, yielded, spawned) joins the
			 * ring's tail rather than jumping it: the ring's G's
			 * mostly came from the global queue before it, and
			 * running it first would hand it a slice out of turn
			 * each time the 61st tick finds it at the head - with
			 * CPU-bound G's at GOMAXPROCS=1 that was always the
			 * same one (4 spinners: one got 4% more slices).  It
			 * still cannot starve: the ring head runs below. */
			if (g && plain && !runq_empty(p)) {
				runq_put(p, g, false);
				g = NULL;
			}
			if (g)
				return g;
		}
		/* Likewise the ring: Go relies on sysmon preempting a pair
		 * that hands the P back and forth through runnext; without
		 * preemption, a G at the ring head would wait forever. */
		g = runq_get_ring(p);
		if (g)
			return g;
	}
	/* G's readied from outside the scheduler (a sleep's timer expiry, a
	 * descriptor turning ready) run next, as Go's timers run by the P
	 * and its netpoll results do - except every 4th tick, so a flood of
	 * events cannot starve the local ring. */
	if (__builtin_expect(atomic_load_explicit(&sched.nurgent, memory_order_relaxed) > 0, 0) &&
	    (p->schedtick & 3) != 0) {
		lock_acquire(&sched.lock);
		g = globrunq_get(p, 1);
		lock_release(&sched.lock);
		if (g)
			return g;
	}
	g = runq_get(p);
	if (g)
		return g;
	if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
		/* The ring is empty here, so globrunq_get may fill it. */
		lock_acquire(&sched.lock);
		g = globrunq_get(p, 0);
		lock_release(&sched.lock);
	}
	return g;
}

/* Work appeared after we gave up our P: take an idle P back and spin
 * again.  false if every P is busy (their M's will find the work). */
static bool take_idle_p_spinning(m_t *m)
{
	p_t *p;

	lock_acquire(&sched.lock);
	p = pidle_get();
	lock_release(&sched.lock);
	if (!p)
		return false;
	acquirep(m, p);
	m->spinning = true;
	atomic_fetch_add_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
	return true;
}

/* Find a runnable G, stealing or sleeping as needed (Go's findrunnable).
 * Runs on g0.  Returns with m->p set. */
static g_t *find_runnable(m_t *m)
{
	g_t *g;
	p_t *p;
	int i, k, procs;

top:
	p = m->p;
	g = pick_local(p);
	if (g)
		return g;
	if (timer_due() && timer_run_expired() > 0 && (g = pick_local(p)) != NULL)
		return g;
	/* I/O events that arrived while we were busy: their G's on our P. */
	if (netpoll_poll(false) > 0 && (g = pick_local(p)) != NULL)
		return g;

	/* Steal.  Limit spinners to half the busy P's: beyond that they burn
	 * CPU without finding more. */
	procs = sched.nprocs;
	if (m->spinning || 2 * atomic_load(&sched.nmspinning) <
	        procs - atomic_load(&sched.npidle)) {
		if (!m->spinning) {
			m->spinning = true;
			atomic_fetch_add_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
		}
		for (i = 0; i < 4; i++) {
			uint32_t off = m_rand(m);
			for (k = 0; k < procs; k++) {
				p_t *v = &sched.allp[(off + (uint32_t)k) % (uint32_t)procs];
				if (v == p)
					continue;
				/* runnext only in the last round: its owner is
				 * probably about to run it. */
				g = runq_steal(p, v, i == 3);
				if (g)
					return g;
			}
		}
	}

	/* Nothing: give up the P. */
	lock_acquire(&sched.lock);
	if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
		g = globrunq_get(p, 0);
		lock_release(&sched.lock);
		return g;
	}
	releasep(m);
	pidle_put(p);
	lock_release(&sched.lock);

	/* The delicate dance: stop spinning, then look again (see essay). */
	if (m->spinning) {
		m->spinning = false;
		if (atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst) <= 0)
			rt_fatal("find_runnable: negative nmspinning");
		bool work = atomic_load_explicit(&sched.runqsize, memory_order_seq_cst) > 0;

		for (k = 0; k < procs && !work; k++)
			work = !runq_empty(&sched.allp[k]);
		if (work && take_idle_p_spinning(m))
			goto top;
	}
	stopm(m);
	goto top;
}

/* ---- switching --------------------------------------------------------- */

/* Carry out what the G we just left asked for.  Runs on the new context
 * of the same M, first thing after the switch.  See the essay. */
static void switch_finish(struct switch_req *req)
{
	g_t *prev = req->prev;
	enum switch_kind kind = req->kind;
	bool (*unlockf)(g_t *, void *) = req->unlockf;
	void *arg = req->arg;
	m_t *m;

	/* Wakes a signal handler deferred onto prev (it interrupted prev's
	 * runtime section) would otherwise wait for prev to run again -
	 * forever if prev is parking on the very thing they wake.  prev is off
	 * the CPU, so no handler adds to its list now: move them here (we are
	 * inside the runtime too, so they are deferred again and done when
	 * this context's section ends). */
	if (__builtin_expect(atomic_load_explicit(&prev->ndefer, memory_order_acquire) !=
	                     atomic_load_explicit(&prev->dhead, memory_order_relaxed), 0)) {
		uint32_t *addr;

		while ((addr = rt_defer_pop(prev)) != NULL)
			gfutex_wake_async((_Atomic uint32_t *)addr);
	}
	/* req lives on prev's stack: from here on only the copies. */
	switch (kind) {
	case SW_NONE:
		break;
	case SW_PARK:
		casgstatus(prev, G_RUNNING, G_WAITING);
		if (unlockf && !unlockf(prev, arg)) {
			casgstatus(prev, G_WAITING, G_RUNNABLE);
			m = getm();
			runq_put(m->p, prev, true);
			break;
		}
		/* A signal made pending on prev while it was still running
		 * (g_signal saw G_RUNNING and kicked its M, but the kick found
		 * it inside the runtime, or found it gone) must not sleep
		 * with it: interrupt the wait, as g_signal does for a G it
		 * sees waiting.  Dekker with g_signal: it sets sigpending,
		 * then reads the status; we set the status, then read
		 * sigpending (seq_cst both). */
		atomic_thread_fence(memory_order_seq_cst);
		if (__builtin_expect(atomic_load_explicit(&prev->sigpending, memory_order_seq_cst) &
		                     ~prev->sigmask, 0) && !prev->sighold_nointr)
			gfutex_interrupt(prev);
		break;
	case SW_YIELD:
		/* Behind everything that waits, as under Go's Gosched: the
		 * global queue's tail while anything waits there, else this
		 * P's ring (where it keeps its M, and with per-G TLS its
		 * thread pointer).  The ring alone let two G's yielding to
		 * each other take 61 turns (pick_local's global check) for
		 * each G waiting in the global queue: threads_100k's wait
		 * loops. */
		casgstatus(prev, G_RUNNING, G_RUNNABLE);
		m = getm();
		if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
			lock_acquire(&sched.lock);
			globrunq_put(prev);
			lock_release(&sched.lock);
		} else {
			runq_put(m->p, prev, false);
		}
		/* An idle P may take it (a stealing spinner): two G's yielding
		 * to each other then each keep a P and a TCB of their own, and
		 * their yields return at once instead of switching (a thread
		 * pointer write each, ~3.4 us where it is arch_prctl). */
		wakep();
		break;
	case SW_EXIT:
		casgstatus(prev, G_RUNNING, G_DEAD);
		g_exited_publish(prev);   /* off its CPU and stack now (g_exit) */
		g_unref(prev);
		break;
	case SW_PREEMPT:
		/* Preempted (Go's gopreempt_m): the global queue's tail, so
		 * CPU-bound G's rotate over every P, not just their own. */
		casgstatus(prev, G_RUNNING, G_RUNNABLE);
		lock_acquire(&sched.lock);
		globrunq_put(prev);
		lock_release(&sched.lock);
		break;
	case SW_TOGLOBAL:
		/* g_block_exit found no P: the G waits for one on the global
		 * queue, and this M (on g0, P-less) goes to sleep. */
		casgstatus(prev, G_SYSCALL, G_RUNNABLE);
		lock_acquire(&sched.lock);
		globrunq_put(prev);
		lock_release(&sched.lock);
		wakep();
		break;
	}
}

/* Make g the running G of m.  g came off a run queue (G_RUNNABLE). */
static inline void execute_prep(m_t *m, g_t *g)
{
	casgstatus(g, G_RUNNABLE, G_RUNNING);
	g->m = m;
	m->curg = g;
	m->p->schedtick++;
	enter_tls(m, g);
}

/* Leave the current G as req says; returns when the G runs again. */
static void switch_out(g_t *cur, struct switch_req *req)
{
	m_t *m = cur->m;
	struct switch_req *back;
	g_t *next;

	if (!stack_canary_ok(&cur->stack))
		rt_fatal_num("stack overflow in thread ", cur->goid);
	cur->saved_errno = *errno_loc();
	/* An M waits in g_block_exit for a P (its G must stay on it): give it
	 * ours when we yield or are preempted, and every 61st tick, so it
	 * cannot starve behind G's that keep this P busy (Go gets this from
	 * the global queue). */
	if (m->p && __atomic_load_n(&sched.pwait, __ATOMIC_RELAXED) &&
	    (req->kind == SW_YIELD || req->kind == SW_PREEMPT || m->p->schedtick % 61 == 0))
		m->handoff = true;
	next = m->p && !m->handoff ? pick_local(m->p) : NULL;
	cur->m = NULL;
	if (next) {
		/* From cur's kernel mask straight to next's: what next blocks
		 * and cur does not must be blocked before the switch, or a
		 * signal could land in between and run its handler on next
		 * (glibc tst-signal3 saw one on a thread that blocks it).
		 * next narrows it to its own once it runs (sigmask_apply). */
		if (__builtin_expect(next->sigmask & ~m->cur_mask, 0)) {
			uint64_t both = m->cur_mask | next->sigmask;

			m_setmask(both & ~preempt_kmask_clear());
			m->cur_mask = both;
		}
		execute_prep(m, next);
		back = arch_switch(&cur->ctx, &next->ctx, req);
	} else {
		/* Before g0 runs: a signal for a G must not land there. */
		m_mask_idle(m);
		m->curg = NULL;
		enter_tls(m, &m->g0);
		back = arch_switch(&cur->ctx, &m->g0.ctx, req);
	}
	/* Running again, possibly on another M. */
	switch_finish(back);
	sigmask_apply(cur);
	if (__builtin_expect(atomic_load_explicit(&cur->sigpending,
	        memory_order_relaxed) != 0, 0))
		deliver_pending(cur);
	*errno_loc() = cur->saved_errno;
}

/* Give m's P, run queue and all, to an M waiting in g_block_exit. */
static void p_to_waiter(m_t *m)
{
	m_t *w;

	lock_acquire(&sched.lock);
	w = sched.pwait;
	if (w) {
		sched.pwait = w->schedlink;
		w->schedlink = NULL;
		w->nextp = releasep(m);
		note_wakeup(&w->park);
	}
	lock_release(&sched.lock);
}

/* The scheduler loop on g0: never returns.  Go's schedule(). */
void schedule(m_t *m)
{
	for (;;) {
		struct switch_req req = { .prev = &m->g0, .kind = SW_NONE };
		struct switch_req *back;
		g_t *g;

		rt_defer_drain(&m->g0);
		m_mask_idle(m);
		if (!m->p) {
			p_t *p;

			lock_acquire(&sched.lock);
			p = pidle_get();
			lock_release(&sched.lock);
			if (p)
				acquirep(m, p);
			else
				stopm(m);
		}
		g = find_runnable(m);

		if (m->spinning)
			reset_spinning(m);
		execute_prep(m, g);
		back = arch_switch(&m->g0.ctx, &g->ctx, &req);
		if (!rt_tls_per_g())
			setg(&m->g0);   /* per-g: whoever switched to us loaded our TCB */
		switch_finish(back);
		if (m->handoff) {
			m->handoff = false;
			p_to_waiter(m);
		}
	}
}

/* First code on a fresh G's stack. */
static void g_start(void *from_switch, void *data)
{
	g_t *g = data;

	switch_finish(from_switch);
	rt_exit(g);   /* g_start_new entered it for us: finish touched the P */
	sigmask_apply(g);
	if (rt_tls_per_g())
		tls_first_run();
	*errno_loc() = 0;
	if (atomic_load_explicit(&g->sigpending, memory_order_relaxed))
		deliver_pending(g);
	g->fn(g->fnarg);
	g_exit(NULL);
}

/* First code on M0's g0 (M0's g0 needs a stack of its own, since the
 * main thread's stack belongs to the main G). */
void g0_start(void *from_switch, void *data)
{
	m_t *m = data;

	if (rt_tls_per_g())
		tls_first_run();   /* a fresh TCB, see sched_init */
	else
		setg(&m->g0);
	switch_finish(from_switch);
	schedule(m);
}

/* ---- public operations ------------------------------------------------- */

void g_ready(g_t *g)
{
	m_t *m = getm();

	casgstatus(g, G_WAITING, G_RUNNABLE);
	if (m && m->p) {
		runq_put(m->p, g, true);
	} else {
		/* From the timer thread, sysmon's reaping of I/O events, an
		 * idle M's or a foreign thread: an event from outside the
		 * scheduler runs next, as an expiry run by a P's own scheduler
		 * would (runnext in Go). */
		lock_acquire(&sched.lock);
		globrunq_put_head(g);
		lock_release(&sched.lock);
		if (atomic_load(&sched.npidle) == 0)
			sysmon_kick();
	}
	wakep();
}

void g_park(bool (*unlockf)(g_t *, void *), void *arg, enum waitreason why)
{
	g_t *g = getcurg();
	struct switch_req req = { .kind = SW_PARK, .unlockf = unlockf, .arg = arg };

	if (!g)
		rt_fatal("g_park: not on a G");
	req.prev = g;
	g->waitreason = why;
	switch_out(g, &req);
	g->waitreason = WAIT_NONE;
}

/* Leave the P to other runnable G's, if there are any, as kind says
 * (SW_YIELD: this P's ring; SW_PREEMPT: the global queue).  Expired
 * timers are run first: their sleepers run next (core/timer.c). */
static void yield_as(g_t *g, enum switch_kind kind)
{
	struct switch_req req = { .prev = g, .kind = kind };

	rt_enter();
	timer_run_expired();
	/* Nothing else to run here or globally: like sched_yield on an idle
	 * CPU, return at once.  Other P's queues are their own M's business. */
	if (sched_work_waiting(g->m->p))
		switch_out(g, &req);
	rt_exit(g);
}

void g_yield(void)
{
	g_t *g = getcurg();

	/* The common idle case without entering the runtime. */
	if (g && (timer_due() || sched_work_waiting(g->m->p)))
		yield_as(g, SW_YIELD);
}

_Noreturn void g_exit(void *retval)
{
	g_t *g = getcurg();
	struct switch_req req = { .kind = SW_EXIT };

	if (!g)
		rt_fatal("g_exit: not on a G");
	rt_enter();   /* never left: the G ends inside the runtime */
	g->retval = retval;
	/* glibc's rule: the last thread to exit ends the process with
	 * exit(0), running atexit handlers. */
	if (atomic_fetch_sub_explicit(&sched.ngs, 1, memory_order_acq_rel) == 1) {
		exit(0);
	}
	/* Joiners hear of the exit only once we are off this CPU (the exit
	 * is published in switch_finish): a handler of a process-directed
	 * signal landing on this M meanwhile must not run as a thread whose
	 * join has returned (glibc tst-tls3 saw it), and the program may
	 * free a stack it supplied the moment join returns.  Waking the
	 * joiner now puts it on our run queue, so the switch below goes
	 * straight to it; if another M runs it first it finds `exited` still
	 * 0 and waits again for the wake in switch_finish. */
	gfutex_wake(&g->exited, 1);
	req.prev = g;
	switch_out(g, &req);
	rt_fatal("g_exit: dead G resumed");
}

void g_preempt_yield(void)
{
	yield_as(getcurg(), SW_PREEMPT);
}

/* Make g (fresh from g_alloc, stack set) runnable.  Go's newproc1 tail. */
void g_start_new(g_t *g, void (*fn)(void *), void *arg)
{
	g_t *self = rt_enter();
	m_t *m = getm();

	sysmon_start();   /* a program with threads gets its monitor */
	sig_receiver_start();   /* ... and its signal thread */
	timer_start();   /* ... and its timer thread, before M's use up a
	                    thread limit (core/timer.c) */
	sig_note_mask(g->sigmask);

	g->fn = fn;
	g->fnarg = arg;
	g->rtdepth = 1;   /* g_start runs switch_finish before leaving it */
	arch_ctx_make(&g->ctx, g->stack.hi, g_start, g);
	stack_canary_set(&g->stack);
	atomic_fetch_add_explicit(&sched.ngs, 1, memory_order_relaxed);
	atomic_store_explicit(&g->status, G_RUNNABLE, memory_order_release);
	if (m && m->p) {
		runq_put(m->p, g, true);
	} else {
		lock_acquire(&sched.lock);
		globrunq_put(g);
		lock_release(&sched.lock);
	}
	wakep();
	rt_exit(self);
}

/* ---- P handoff ---------------------------------------------------------- */

/* Give p away because its M is about to block (Go's handoffp). */
void handoffp(p_t *p)
{
	int zero = 0;

	/* Local or global work: an M must run it now. */
	if (!runq_empty(p) || atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
		startm(p, false);
		return;
	}
	/* Nobody spinning and no idle P: somebody must look for work that
	 * may appear, so this P becomes a spinning M's. */
	if (atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) == 0 &&
	    atomic_compare_exchange_strong(&sched.nmspinning, &zero, 1)) {
		startm(p, true);
		return;
	}
	lock_acquire(&sched.lock);
	/* Recheck under the lock: a G readied onto the global queue since
	 * the look above would otherwise wait beside an idle P. */
	if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
		lock_release(&sched.lock);
		startm(p, false);
		return;
	}
	pidle_put(p);
	lock_release(&sched.lock);
}

/* For schedtrace and tests. */
void sched_snapshot(int *idleprocs, int *threads, int *spinning, int *idlem,
                    int *globq)
{
	*idleprocs = atomic_load(&sched.npidle);
	*threads = atomic_load(&sched.mcount);
	*spinning = atomic_load(&sched.nmspinning);
	lock_acquire(&sched.lock);
	*idlem = sched.nmidle;
	lock_release(&sched.lock);
	*globq = atomic_load(&sched.runqsize);
}