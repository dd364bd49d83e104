/* core/preempt.c - asynchronous preemption (Go 1.14's, minus the stack maps).
 *
 * Purpose.  A G that computes for a long time without calling into the
 * runtime would keep its P forever; at GOMAXPROCS=1 every other thread
 * would starve.  sysmon notices a P whose schedtick has not moved for
 * PREEMPT_NS (10 ms, Go's forcePreemptNS) while other G's wait, and asks
 * its M to switch: a signal (SIGURG, Go's choice: programs rarely use it,
 * and restartable calls restart after it).
 *
 * Protocol.
 *   sysmon: m->preempt = DECIDING (seq_cst); re-check that the same G
 *           still runs user code on that P and that the kernel thread is
 *           running (state R: never signal an M blocked in the kernel,
 *           whose call would see EINTR); then either m->preempt = 0, or
 *           m->preempt = SENT and tgkill(M, SIGURG).
 *   handler (sig_kick in signal.c -> preempt_handle): exchange m->preempt
 *           to 0; if it was set and this is a safe point, yield the P from
 *           inside the handler (g_yield).  The G's interrupted state stays
 *           in the kernel's signal frame on the G's own stack; whichever
 *           M resumes the G returns from the handler there, and
 *           rt_sigreturn restores every register and the signal mask.
 *   entering a blocking call (g_syscall_enter, g_block_enter): if a
 *           request is in flight, wait (bounded) for the handler to take
 *           it first, so the signal never lands while the M sleeps in the
 *           kernel.  The look comes after the G's status change, with a
 *           fence: a Dekker pair with sysmon's store of m->preempt and
 *           re-check of the status, so either sysmon sees G_SYSCALL and
 *           sends nothing, or the call sees the request and waits.
 *
 * Safe points.  The interrupted PC must be in the program's own code: not
 * in libc, ld.so, libgcc_s, libstdc++, libunwind or gshim (their locks and
 * per-kernel-thread state are not ours to move: a G preempted inside
 * malloc with an arena lock held would be fine for correctness, but one
 * inside ld.so's lazy binder or gshim's own fast paths would not).  The G
 * must be outside every runtime section (rtdepth 0), own its P in
 * P_RUNNING, and the handler must be running on the G's stack with room
 * left.  Anything else: return, sysmon retries in RETRY_NS.
 *
 * The unsafe code ranges are read from dl_iterate_phdr by sysmon (never
 * by the handler, which only scans a published array), rebuilt when the
 * loader's add/remove counters move.
 *
 * Migration details the kernel does not handle: rt_sigreturn also loads
 * the sigaltstack recorded in the frame (uc_stack), which was the first
 * M's; a G resumed on another M rewrites it with the current M's before
 * returning, or two M's would share one alternate stack.  The handler is
 * installed with SA_NODEFER and no SA_ONSTACK: the signal mask during the
 * handler is the G's own (so the scheduler's per-M mask bookkeeping stays
 * true while the handler switches away) and the frame is on the G's stack,
 * not on a per-M alternate stack that the next G of this M would reuse.
 *
 * The program's own SIGURG.  If the program installs a handler for SIGURG
 * (sysmon and g_signal check the installed handler with one raw
 * rt_sigaction before signalling), gshim steps aside for good: no more
 * preemption signals or kicks; the program's G's are then preempted only
 * cooperatively.  While gshim owns SIGURG it keeps it unblocked in the
 * kernel mask of every M, whatever the G's mask says (sigmask_apply), so a
 * G that blocks every signal can still be preempted; the G's own mask
 * still reports SIGURG blocked.
 *
 * Rejected: injecting a call to an assembly stub (Go's asyncPreempt,
 * which needs to know which registers hold pointers - we do not care) -
 * switching inside the handler does the same with the kernel's frame as
 * the save area; a timer signal per M (setitimer/timer_create: would tick
 * M's that run fine and interrupt kernel calls); preempting at every
 * sysmon tick regardless of waiters (a lone CPU-bound G gains nothing).
 */
#include <link.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include "internal.h"

/* m->preempt */
enum { PREEMPT_DECIDING = 1, PREEMPT_SENT = 2 };

#define MAX_RANGES 128
#define STACK_MARGIN (16 * 1024)   /* the scheduler's needs on the G stack */

struct ranges {
	int n;
	uintptr_t lo[MAX_RANGES], hi[MAX_RANGES];
};

static struct ranges rbuf[2];
static _Atomic(struct ranges *) rcur;
static unsigned long long seen_adds = ~0ull, seen_subs = ~0ull;
static _Atomic int sig_foreign;    /* the program owns SIGURG */
static void (*kick_handler)(int, siginfo_t *, void *);

static const char *const unsafe_libs[] = {
	"libc.so", "ld-linux", "ld64.so", "libgcc_s", "libstdc++", "libunwind",
	"libpthread", "libdl.so", "librt.so", "libgshim", "linux-vdso",
	"liburing",   /* the poller's ring is used under its lock */
};

static bool lib_unsafe(const char *path, const struct dl_phdr_info *info)
{
	const char *base = strrchr(path, '/');
	uintptr_t self = (uintptr_t)&lib_unsafe;

	base = base ? base + 1 : path;
	for (size_t i = 0; i < sizeof unsafe_libs / sizeof *unsafe_libs; i++)
		if (strncmp(base, unsafe_libs[i], strlen(unsafe_libs[i])) == 0)
			return true;
	/* gshim itself under another file name (a test binary linking the
	 * core statically is the program, and is left preemptible). */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && self >= lo && self < lo + ph->p_memsz)
			return *path != 0;
	}
	return false;
}

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct ranges *r = arg;
	const char *name = info->dlpi_name ? info->dlpi_name : "";

	(void)size;
	seen_adds = info->dlpi_adds;
	seen_subs = info->dlpi_subs;
	if (!lib_unsafe(name, info))
		return 0;
	for (int i = 0; i < info->dlpi_phnum && r->n < MAX_RANGES; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		r->lo[r->n] = info->dlpi_addr + ph->p_vaddr;
		r->hi[r->n] = r->lo[r->n] + ph->p_memsz;
		r->n++;
	}
	return 0;
}

static int probe(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	*(bool *)arg = info->dlpi_adds != seen_adds || info->dlpi_subs != seen_subs;
	return 1;   /* the counters are the same in every entry */
}

/* sysmon: (re)build the unsafe ranges if the set of objects changed. */
static void ranges_refresh(void)
{
	struct ranges *cur = atomic_load_explicit(&rcur, memory_order_relaxed);
	struct ranges *next = cur == &rbuf[0] ? &rbuf[1] : &rbuf[0];
	bool changed = true;

	if (cur)
		dl_iterate_phdr(probe, &changed);
	if (!changed)
		return;
	next->n = 0;
	dl_iterate_phdr(collect, next);
	atomic_store_explicit(&rcur, next, memory_order_release);
}

static bool pc_unsafe(uintptr_t pc)
{
	struct ranges *r = atomic_load_explicit(&rcur, memory_order_acquire);

	if (!r)
		return true;
	for (int i = 0; i < r->n; i++)
		if (pc >= r->lo[i] && pc < r->hi[i])
			return true;
	return false;
}

void preempt_set_handler(void (*h)(int, siginfo_t *, void *))
{
	kick_handler = h;
}

/* Does gshim still own SIGURG?  Once the program installed its own
 * handler, never again (a kick in flight may reach it: see the essay). */
bool preempt_sig_ours(void)
{
	struct os_ksigaction ka;

	if (atomic_load_explicit(&sig_foreign, memory_order_relaxed))
		return false;
	if (!os_sigaction_get(SIGURG, &ka))
		return true;
	if (ka.handler == (void *)kick_handler)
		return true;
	atomic_store_explicit(&sig_foreign, 1, memory_order_relaxed);
	return false;
}

uint64_t preempt_kmask_clear(void)
{
	return atomic_load_explicit(&sig_foreign, memory_order_relaxed) ? 0 :
	       1ull << (SIGURG - 1);
}

/* sysmon: ask m (running g on p at schedtick tick) to yield.  true if a
 * signal was sent. */
bool preempt_request(p_t *p, m_t *m, g_t *g, uint32_t tick)
{
	if (!rt_cfg.preempt || !preempt_sig_ours())
		return false;
	if (__atomic_load_n(&g->sigmask, __ATOMIC_RELAXED) & (1ull << (SIGURG - 1)) &&
	    !preempt_kmask_clear())
		return false;
	ranges_refresh();
	atomic_store_explicit(&m->preempt, PREEMPT_DECIDING, memory_order_seq_cst);
	if (__atomic_load_n(&p->m, __ATOMIC_RELAXED) != m ||
	    __atomic_load_n(&m->curg, __ATOMIC_RELAXED) != g ||
	    __atomic_load_n(&p->schedtick, __ATOMIC_RELAXED) != tick ||
	    atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING ||
	    atomic_load_explicit(&p->status, memory_order_relaxed) != P_RUNNING ||
	    rtfd_thread_state(m->tid) != 'R') {
		atomic_store_explicit(&m->preempt, 0, memory_order_release);
		return false;
	}
	atomic_store_explicit(&m->preempt, PREEMPT_SENT, memory_order_release);
	arch_syscall(SYS_tgkill, arch_syscall(SYS_getpid, 0, 0, 0), m->tid, SIGURG);
	return true;
}

/* A blocking call is about to enter the kernel on m: let a preemption
 * signal in flight land first (the handler refuses: the PC is in gshim).
 * While sysmon is still deciding, wait for its decision (it runs a few
 * microseconds, but on a loaded machine it may be descheduled in between:
 * a bounded spin alone let its signal land in the call, EINTR); once the
 * signal is sent, wait a bounded time for the handler, in case it cannot
 * be delivered (blocked). */
void preempt_drain(m_t *m)
{
	int64_t until = 0;

	for (int i = 0, sent = 0; sent < 20000; i++) {
		uint32_t v = atomic_load_explicit(&m->preempt, memory_order_acquire);

		if (v == 0)
			return;
		if (v == PREEMPT_SENT) {
			sent++;
			arch_relax();
			continue;
		}
		/* Deciding: 100 ms covers any scheduling delay of sysmon
		 * (and a request left over by a fork, whose sysmon is gone). */
		if (i < 1000) {
			arch_relax();
			continue;
		}
		if (!until)
			until = os_nanotime() + 100000000;
		else if (os_nanotime() > until)
			break;
		os_sched_yield();
	}
	atomic_store_explicit(&m->preempt, 0, memory_order_relaxed);
}

/* ---- asynchronous signals ----------------------------------------------
 * Asynchronous cancellation must stop a G that computes in its own code
 * and calls nothing: the same problem as preemption, with the same
 * answer.  The canceller signals the M running the G; the handler
 * (core/cancel.c) acts only at a safe point (preempt_pc_safe, rtdepth 0),
 * which the G may not be at: it may run gshim or libc code, or not run at
 * all (preempted, queued).  So the request stays on the G (asyncsig) and
 * sysmon signals its M again at every round in which the G runs, until
 * the handler took it (preempt_async_clear).  nasync keeps sysmon's rounds
 * short (round_ns) and its scan free while nobody has one. */
static _Atomic int nasync;

bool preempt_async_pending(void)
{
	return atomic_load_explicit(&nasync, memory_order_relaxed) > 0;
}

/* Signal g's M if g runs there now (a kernel thread asleep in a call is
 * left alone, as for preemption: it would see EINTR). */
static void async_kick(g_t *g, int sig)
{
	m_t *m = __atomic_load_n(&g->m, __ATOMIC_ACQUIRE);

	if (!m || __atomic_load_n(&m->curg, __ATOMIC_ACQUIRE) != g ||
	    atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING ||
	    rtfd_thread_state(m->tid) != 'R')
		return;
	arch_syscall(SYS_tgkill, arch_syscall(SYS_getpid, 0, 0, 0), m->tid, sig);
}

void preempt_async_set(g_t *g, int sig)
{
	uint32_t zero = 0;

	if (atomic_compare_exchange_strong_explicit(&g->asyncsig, &zero, (uint32_t)sig,
	        memory_order_seq_cst, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&nasync, 1, memory_order_relaxed);
		sysmon_kick();   /* leave a 10 ms back-off now */
	}
	async_kick(g, sig);
}

void preempt_async_clear(g_t *g)
{
	if (atomic_exchange_explicit(&g->asyncsig, 0, memory_order_relaxed))
		atomic_fetch_sub_explicit(&nasync, 1, memory_order_relaxed);
}

void preempt_async_kicks(void)
{
	if (!preempt_async_pending())
		return;
	ranges_refresh();
	for (int i = 0; i < sched.nprocs; i++) {
		p_t *p = &sched.allp[i];
		m_t *m = __atomic_load_n(&p->m, __ATOMIC_ACQUIRE);
		g_t *g = m ? __atomic_load_n(&m->curg, __ATOMIC_ACQUIRE) : NULL;
		uint32_t sig;

		if (g && (sig = atomic_load_explicit(&g->asyncsig, memory_order_relaxed)) != 0)
			async_kick(g, (int)sig);
	}
}

bool preempt_pc_safe(uintptr_t pc)
{
	return !pc_unsafe(pc);
}

/* From the SIGURG handler: yield here if this is a safe point. */
void preempt_handle(void *ucv)
{
	ucontext_t *uc = ucv;
	g_t *g = getcurg();
	m_t *m = g ? g->m : NULL;
	p_t *p;
	uintptr_t sp = (uintptr_t)&uc;

	if (!m || !atomic_exchange_explicit(&m->preempt, 0, memory_order_acq_rel))
		return;
	p = m->p;
	if (g->rtdepth != 0)
		atomic_store_explicit(&g->preempt_coop, 1, memory_order_relaxed);
	if (g->rtdepth != 0 || !p ||
	    atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING ||
	    atomic_load_explicit(&p->status, memory_order_relaxed) != P_RUNNING ||
	    __atomic_load_n(&p->m, __ATOMIC_RELAXED) != m)
		return;
	if (pc_unsafe((uintptr_t)uc->uc_mcontext.gregs[REG_RIP])) {
		/* In a library: yield at the next safe synchronisation call
		 * instead (g_coop_yield, rt.h). */
		atomic_store_explicit(&g->preempt_coop, 1, memory_order_relaxed);
		return;
	}
	if (g->stack.hi && (sp >= g->stack.hi || sp < g->stack.lo + STACK_MARGIN))
		return;
	g_preempt_yield();
	if (g->m != m) {
		/* Resumed on another M: its alternate stack, not the first
		 * M's, is what rt_sigreturn must load. */
		stack_t ss;

		if (arch_syscall(SYS_sigaltstack, 0, (long)&ss, 0) == 0)
			uc->uc_stack = ss;
	}
}
