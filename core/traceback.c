/* core/traceback.c - a report of every thread: Go's SIGQUIT traceback.
 *
 * Purpose.  gdb sees the few kernel threads; the program's threads are
 * G's, most of them parked with no kernel thread at all.  This prints,
 * for each live G, its id, pthread_t, name, state and what it waits for,
 * and a symbolized backtrace, then the scheduler's schedtrace line:
 *   - on SIGQUIT, when SIGQUIT was at its default action at start-up
 *     (traceback_init installs a handler then; a program that installs
 *     its own later replaces it), after which the process dies of
 *     SIGQUIT as it would have (GSHIM_TRACEBACK=crash: of SIGABRT);
 *   - on GSHIM_DEBUG=dumpsignal=<sig>, likewise installed only over the
 *     default action, after which the program goes on;
 *   - on every "gshim: fatal:" (rt_fatal), before the abort.
 * GSHIM_TRACEBACK says how much, with GOTRACEBACK's meanings: none,
 * single (the G that hit the signal or the fatal error; the main G when
 * that is no G), all, crash (all, then abort to dump core).  Unset:
 * all for the signals, single for fatal errors (Go's defaults).
 * GSHIM_DUMP=json:<path> writes the same report as one JSON object to
 * <path> (replaced at each dump) instead of stderr.
 *
 * Protocol.  The dump only reads.  It walks the G slabs without the
 * registry lock (g_foreach_nolock: a fatal error may come with it held),
 * reads each G's status, wait kind/object and saved context racily, and
 * unwinds only stacks nobody runs: the dumping G's own (from the signal
 * context, or from here), and the saved context of a parked or runnable
 * G (arch_ctx_ucontext), after checking that its saved stack pointer lies
 * in the G's stack.  A G running on another M, or blocked in a system
 * call on its M, is listed with its state and "no stack" (its registers
 * live in another kernel thread; signalling those M's to report is
 * issue 14's next step).  A G that starts running while it is unwound
 * can send the unwinder through garbage: a fault on the dumping thread
 * comes back here (traceback_fault, from core/segv.c's handler) and ends
 * that G's backtrace with "(unreadable)".  Output is formatted into
 * static buffers and written with raw write(2): no malloc, no stdio, no
 * runtime lock.  One dump at a time (tb_owner); a dump that faults or
 * fails on its own thread does not dump again.
 *
 * The wait reasons cost the parking paths two plain stores into the G
 * (g_wait_note, rt.h) on their slow path, and gfutex_wait one store to
 * clear the kind; there is no timestamp (a clock read per park would be
 * measurable on a condvar ping-pong), except for system calls, whose
 * start core/syscall.c records already.
 *
 * Backtraces come from libunwind (the project's unwinder), reached with
 * dlopen(RTLD_LOCAL) at the first dump caused by a signal (a
 * process-directed one is dumped on the signal receiver's thread, which
 * holds no lock of the program's), never linked.  Never at a fatal error:
 * dlopen takes the loader's lock and mallocs, and the code that failed
 * may hold malloc's lock (a program's own allocator calls
 * pthread_mutex_lock), so loading there could turn an abort into a hang;
 * a fatal error's dump uses libunwind only if an earlier dump loaded it,
 * else the frame-pointer walk.  Left: a thread-directed SIGQUIT that
 * interrupts malloc on an M, with libunwind not yet loaded, could block
 * in dlopen.  Linked in, its
 * _Unwind_* would interpose on libgcc_s's (meson.build).  Its caching is
 * turned off (the global cache takes a lock; the per-thread one uses TLS
 * that a G's TCB may lack).  Without libunwind, a frame-pointer walk
 * bounded by the G's stack.  Names: libunwind's get_proc_name (reads
 * .symtab, so static functions are named), else dladdr.
 *
 * Rejected: stopping the world first (a stuck program is exactly when the
 * dump is wanted; a racy best-effort dump cannot make things worse);
 * backtrace(3) (it mallocs on first use and unwinds only the caller);
 * printing from a thread of its own started at the signal (the receiver
 * of process-directed signals already is one: it dumps there).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include "internal.h"
#include "sched_int.h"
#include "arch/real.h"

#define MAX_FRAMES 64

/* ---- libunwind, by dlopen ------------------------------------------------ */

typedef struct { uint64_t w[ARCH_UNW_CURSOR_WORDS + 8]; } unw_cursor_buf;

static struct {
	_Atomic int state;            /* 0 untried, 1 loaded, 2 unavailable */
	int (*init_local2)(unw_cursor_buf *, ucontext_t *, int);
	int (*step)(unw_cursor_buf *);
	int (*get_reg)(unw_cursor_buf *, int, uintptr_t *);
	int (*get_proc_name)(unw_cursor_buf *, char *, size_t, uintptr_t *);
	int (*getcontext)(ucontext_t *);
} unw;

/* Loaded at the first dump a signal causes; never at a fatal error's
 * (the essay: the failing code may hold malloc's lock). */
static void unw_load(bool fatal)
{
	void *h, *as;
	int (*policy)(void *, int);

	if (atomic_load(&unw.state) != 0)
		return;
	/* Not at a fatal error: the code that failed may hold malloc's lock
	 * (the essay). */
	if (fatal)
		return;
	h = REAL(dlopen) ? REAL(dlopen)(ARCH_UNW_LIB, RTLD_LOCAL | RTLD_NOW) : NULL;
	if (!h) {
		atomic_store(&unw.state, 2);
		return;
	}
	unw.init_local2 = dlsym(h, ARCH_UNW_PFX "init_local2");
	unw.step = dlsym(h, ARCH_UNW_PFX "step");
	unw.get_reg = dlsym(h, ARCH_UNW_PFX "get_reg");
	unw.get_proc_name = dlsym(h, ARCH_UNW_PFX "get_proc_name");
	unw.getcontext = dlsym(h, ARCH_UNW_GETCONTEXT);
	policy = dlsym(h, ARCH_UNW_PFX "set_caching_policy");
	as = dlsym(h, ARCH_UNW_PFX "local_addr_space");
	if (!unw.init_local2 || !unw.step || !unw.get_reg || !unw.get_proc_name ||
	    !unw.getcontext || !policy || !as) {
		atomic_store(&unw.state, 2);
		return;
	}
	policy(*(void **)as, 0 /* UNW_CACHE_NONE */);
	if (!fatal)
		tls_modules_changed();   /* its TLS block, for per-G TCBs (shim/dl.c) */
	atomic_store(&unw.state, 1);
}

/* ---- output: text to fd 2 or JSON to a file, from static buffers -------- */

static struct {
	int fd;
	bool json;
	size_t len;
	char buf[8192];
} W;

static void w_flush(void)
{
	if (W.len)
		os_write_all(W.fd, W.buf, W.len);
	W.len = 0;
}

static void w_mem(const char *s, size_t n)
{
	while (n) {
		size_t k = sizeof W.buf - W.len;

		if (k == 0) {
			w_flush();
			continue;
		}
		if (k > n)
			k = n;
		memcpy(W.buf + W.len, s, k);
		W.len += k;
		s += k;
		n -= k;
	}
}

static void w_str(const char *s) { w_mem(s, strlen(s)); }

static void w_u64(unsigned long long n)
{
	char b[24];

	w_mem(b, os_fmt_u64(b, n));
}

static void w_hex(uintptr_t v)
{
	char b[20] = { '0', 'x' };

	w_mem(b, 2 + os_fmt_hex(b + 2, v, 1));
}

/* A JSON string (quoted, escaped), or the text as it is. */
static void w_jstr(const char *s, size_t max)
{
	size_t i;

	if (!W.json) {
		w_mem(s, strnlen(s, max));
		return;
	}
	w_mem("\"", 1);
	for (i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			w_mem(e, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			char e[6] = { '\\', 'u', '0', '0' };

			w_mem(e, 4 + os_fmt_hex(e + 4, c, 2));
		} else {
			w_mem((const char *)&c, 1);
		}
	}
	w_mem("\"", 1);
}

/* ---- one dump at a time -------------------------------------------------- */

static _Atomic pid_t tb_owner;
static sigjmp_buf tb_jmp;
static volatile int tb_jmp_armed;

static bool tb_begin(int64_t wait_ns)
{
	pid_t me = (pid_t)arch_syscall(SYS_gettid, 0, 0, 0), z = 0;
	int64_t until = os_nanotime() + wait_ns;

	if (atomic_load(&tb_owner) == me)
		return false;   /* a fault or fatal error inside a dump */
	while (!atomic_compare_exchange_weak(&tb_owner, &z, me)) {
		z = 0;
		if (os_nanotime() > until)
			return false;
		struct timespec d = { 0, 1000000 };
		arch_syscall(SYS_nanosleep, (long)&d, 0, 0);
	}
	return true;
}

static void tb_end(void)
{
	atomic_store(&tb_owner, 0);
}

void traceback_fault(void)
{
	if (tb_jmp_armed &&
	    atomic_load(&tb_owner) == (pid_t)arch_syscall(SYS_gettid, 0, 0, 0)) {
		tb_jmp_armed = 0;
		siglongjmp(tb_jmp, 1);
	}
}

/* ---- one G --------------------------------------------------------------- */

struct tb_run {
	g_t *self;                    /* the dumping G, or NULL */
	g_t *skip;                    /* printed already */
	void *uc;                     /* its signal context, or NULL */
	int level;
	bool fatal;
	int nth;                      /* G's printed (JSON commas) */
};

static const char *const kind_names[WK_MAX] = {
	[WK_NONE] = NULL, [WK_MUTEX] = "mutex", [WK_COND] = "cond",
	[WK_RWLOCK] = "rwlock", [WK_SEM] = "semaphore", [WK_BARRIER] = "barrier",
	[WK_ONCE] = "once", [WK_JOIN] = "join", [WK_SLEEP] = "sleep",
	[WK_IO_READ] = "I/O wait read", [WK_IO_WRITE] = "I/O wait write",
	[WK_POLL] = "poll",
};

/* The owner of a pthread mutex, as shim/mutex.c records it (glibc's
 * __owner: the holder's id, g_fake_tid for a G): its goid, 0 if none. */
static uint64_t mutex_owner(uintptr_t obj)
{
	int o = __atomic_load_n(&((pthread_mutex_t *)obj)->__data.__owner, __ATOMIC_RELAXED);

	return ((uint32_t)o & 0xe0000000u) == 0x20000000u ? (uint32_t)o & 0x1fffffffu : 0;
}

static void one_frame(int n, uintptr_t pc, unw_cursor_buf *cur)
{
	static char name[256];
	uintptr_t off = 0, look = n ? pc - 1 : pc;
	const char *fn = NULL, *lib = NULL;
	Dl_info di;

	if (cur && unw.get_proc_name(cur, name, sizeof name, &off) == 0) {
		name[sizeof name - 1] = 0;
		fn = name;
	}
	if (dladdr((void *)look, &di)) {
		lib = di.dli_fname;
		if (!fn && di.dli_sname) {
			fn = di.dli_sname;
			off = pc - (uintptr_t)di.dli_saddr;
		}
	}
	if (lib) {
		const char *sl = strrchr(lib, '/');
		if (sl && !W.json)
			lib = sl + 1;
	}
	if (W.json) {
		w_str(n ? ",{\"pc\":\"" : "{\"pc\":\"");
		w_hex(pc);
		w_str("\",\"func\":");
		w_jstr(fn ? fn : "", 256);
		w_str(",\"off\":");
		w_u64(off);
		w_str(",\"lib\":");
		w_jstr(lib ? lib : "", 4096);
		w_str("}");
		return;
	}
	w_str("\t#");
	w_u64((unsigned)n);
	w_str(n < 10 ? "  " : " ");
	w_hex(pc);
	w_str(" in ");
	w_str(fn ? fn : "??");
	if (fn) {
		w_str("+");
		w_hex(off);
	}
	if (lib) {
		w_str(" (");
		w_str(lib);
		w_str(")");
	}
	w_str("\n");
}

/* Unwind from uc (a copy we may change); [lo, hi): the stack, 0 if not
 * known (the frames are then not bounded). */
static void backtrace_uc(ucontext_t *uc, bool signal_frame, uintptr_t lo, uintptr_t hi)
{
	static unw_cursor_buf cur;
	static int n;
	uintptr_t pc, sp, fp;

	n = 0;
	if (sigsetjmp(tb_jmp, 0)) {
		if (!W.json)
			w_str("\t(unreadable)\n");
		return;
	}
	tb_jmp_armed = 1;
	if (atomic_load(&unw.state) == 1 &&
	    unw.init_local2(&cur, uc, signal_frame ? 1 /* UNW_INIT_SIGNAL_FRAME */ : 0) == 0) {
		do {
			if (unw.get_reg(&cur, ARCH_UNW_REG_IP, &pc) != 0 || pc == 0)
				break;
			if (unw.get_reg(&cur, ARCH_UNW_REG_SP, &sp) != 0 ||
			    (hi && (sp < lo || sp > hi)))
				break;
			one_frame(n, pc, &cur);
		} while (++n < MAX_FRAMES && unw.step(&cur) > 0);
	} else {
		arch_uc_regs(uc, &pc, &sp, &fp);
		if (!hi) {
			lo = sp;
			hi = sp + (1 << 20);
		}
		do
			one_frame(n, pc, NULL);
		while (++n < MAX_FRAMES && arch_fp_step(&pc, &fp, lo, hi));
	}
	tb_jmp_armed = 0;
}

static void print_state(struct tb_run *r, g_t *g, uint32_t st, bool *stack)
{
	m_t *m = __atomic_load_n(&g->m, __ATOMIC_RELAXED);
	p_t *p = m ? __atomic_load_n(&m->p, __ATOMIC_RELAXED) : NULL;
	uint32_t kind = __atomic_load_n(&g->waitkind, __ATOMIC_RELAXED);
	uintptr_t obj = __atomic_load_n(&g->waitobj, __ATOMIC_RELAXED);
	const char *state = "waiting", *wait = NULL;
	uint64_t owner = 0;
	long nr = 0;
	bool has_obj = false, is_fd = false;

	*stack = false;
	switch (st) {
	case G_RUNNING:
		state = "running";
		*stack = g == r->self;
		break;
	case G_RUNNABLE:
		state = "runnable";
		*stack = true;
		break;
	case G_SYSCALL:
		state = "syscall";
		nr = __atomic_load_n(&g->scnr, __ATOMIC_RELAXED);
		wait = nr ? deadlock_sc_name(nr) : NULL;
		if (!wait)
			wait = nr > 0 ? "system call" : "blocking call";
		break;
	case G_WAITING:
		*stack = true;
		if (kind > WK_NONE && kind < WK_MAX) {
			wait = kind_names[kind];
			has_obj = kind != WK_SLEEP;
			is_fd = kind == WK_IO_READ || kind == WK_IO_WRITE || kind == WK_POLL;
			if (kind == WK_MUTEX && obj)
				owner = mutex_owner(obj);
			if (kind == WK_JOIN) {
				owner = g_valid((void *)obj) ? ((g_t *)obj)->goid : 0;
				has_obj = owner != 0;
			}
		} else {
			obj = (uintptr_t)atomic_load_explicit(&g->waitaddr, memory_order_relaxed);
			wait = "futex";
			has_obj = obj != 0;
		}
		break;
	}
	if (W.json) {
		w_str(",\"state\":\"");
		w_str(state);
		w_str("\"");
		if (m) {
			w_str(",\"m\":");
			w_u64(m->id);
		}
		if (p && st == G_RUNNING) {
			w_str(",\"p\":");
			w_u64(p->id);
		}
		if (wait) {
			w_str(",\"wait\":");
			w_jstr(wait, 64);
		}
		if (has_obj && kind == WK_JOIN) {
			w_str(",\"join\":");
			w_u64(owner);
		} else if (has_obj && is_fd) {
			w_str(kind == WK_POLL ? ",\"nfds\":" : ",\"fd\":");
			w_u64(obj);
		} else if (has_obj) {
			w_str(",\"object\":\"");
			w_hex(obj);
			w_str("\"");
		}
		if (kind == WK_MUTEX && owner) {
			w_str(",\"owner\":");
			w_u64(owner);
		}
		if (nr) {
			w_str(",\"syscall\":");
			w_u64((unsigned long long)nr);
		}
		return;
	}
	w_str(" [");
	if (st == G_RUNNING) {
		w_str("running on M ");
		w_u64(m ? m->id : 0);
		if (p) {
			w_str(" / P ");
			w_u64(p->id);
		}
	} else if (st == G_RUNNABLE) {
		w_str("runnable");
	} else if (st == G_SYSCALL) {
		int64_t since = __atomic_load_n(&g->scsince, __ATOMIC_RELAXED);

		w_str("syscall ");
		w_str(wait);
		if (nr > 0 && nr != SYS_wait4 && nr != SYS_waitid) {
			long a0 = __atomic_load_n(&g->sca0, __ATOMIC_RELAXED);
			if (a0 >= 0) {
				w_str(" fd ");
				w_u64((unsigned long long)a0);
			}
		}
		w_str(" on M ");
		w_u64(m ? m->id : 0);
		if (nr && since > 0) {
			int64_t ms = (os_nanotime() - since) / 1000000;
			if (ms >= 0) {
				w_str(", ");
				w_u64((unsigned long long)ms);
				w_str(" ms");
			}
		}
	} else {
		w_str(wait);
		if (kind == WK_JOIN && has_obj) {
			w_str(" thread ");
			w_u64(owner);
		} else if (is_fd && has_obj) {
			w_str(kind == WK_POLL ? " " : " fd ");
			w_u64(obj);
			if (kind == WK_POLL)
				w_str(" fds");
		} else if (has_obj) {
			w_str(" ");
			w_hex(obj);
		}
		if (kind == WK_MUTEX && owner) {
			w_str(" held by thread ");
			w_u64(owner);
		}
	}
	w_str("]");
}

static void dump_g(g_t *g, void *arg)
{
	struct tb_run *r = arg;
	uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire);
	const char *name = rt_cfg.g_name ? rt_cfg.g_name(g) : NULL;
	uintptr_t lo = g->stack.lo, hi = g->stack.hi;
	static ucontext_t uc;
	bool stack;

	if (st == G_IDLE || st == G_DEAD || g == r->skip)
		return;
	if (W.json) {
		w_str(r->nth++ ? ",\n{\"id\":" : "\n{\"id\":");
		w_u64(g->goid);
		w_str(",\"pthread\":\"");
		w_hex((uintptr_t)g);
		w_str("\",\"name\":");
		w_jstr(name ? name : "", 16);
		if (g->is_main)
			w_str(",\"main\":true");
		if (g == r->self)
			w_str(",\"current\":true");
	} else {
		w_str("thread ");
		w_u64(g->goid);
		if (name && *name) {
			w_str(" \"");
			w_jstr(name, 16);
			w_str("\"");
		}
		if (g->is_main)
			w_str(" (main)");
	}
	print_state(r, g, st, &stack);
	if (W.json) {
		w_str(",\"frames\":[");
	} else {
		w_str(": pthread ");
		w_hex((uintptr_t)g);
		w_str(g == r->self ? " (this thread)\n" : "\n");
	}
	if (g == r->self && stack) {
		if (r->uc) {
			/* not bounded by the G's stack: the handler may run on
			 * the M's alternate stack (a stack overflow's report) */
			memcpy(&uc, r->uc, sizeof uc);
			backtrace_uc(&uc, true, 0, 0);
		} else if (atomic_load(&unw.state) == 1 && unw.getcontext(&uc) == 0) {
			backtrace_uc(&uc, false, 0, 0);
		} else {
			uintptr_t pc = (uintptr_t)__builtin_return_address(0);
			uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
			int n = 0;

			do
				one_frame(n, pc, NULL);
			while (++n < MAX_FRAMES && arch_fp_step(&pc, &fp, lo, hi));
		}
	} else if (stack) {
		uintptr_t sp = __atomic_load_n(&g->ctx.sp, __ATOMIC_RELAXED);

		if (hi > lo && sp >= lo && sp + ARCH_CTX_FRAME <= hi) {
			arch_ctx_ucontext(sp, &uc);
			backtrace_uc(&uc, false, lo, hi);
		} else if (!W.json) {
			w_str("\t(no stack: saved context outside the stack)\n");
		}
	} else if (!W.json) {
		w_str(st == G_RUNNING ? "\t(no stack: running on another M)\n"
		                      : "\t(no stack: in a call on its M)\n");
	}
	w_str(W.json ? "]}" : "\n");
}

static void dump_if_main(g_t *g, void *arg)
{
	if (g->is_main)
		dump_g(g, arg);
}

/* ---- the report ---------------------------------------------------------- */

static void dump(int level, const char *why, int sig, void *uc, bool fatal)
{
	struct tb_run r = { .self = getcurg(), .uc = uc, .level = level, .fatal = fatal };
	static char sched_line[TRACE_BUF];
	uint64_t unblock = (1ull << (SIGSEGV - 1)) | (1ull << (SIGBUS - 1)), old;
	size_t sl;

	unw_load(fatal);
	/* Faults while unwinding must reach segv.c's handler */
	arch_syscall6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&unblock, (long)&old, 8, 0, 0);
	W.len = 0;
	W.fd = 2;
	W.json = false;
	if (rt_cfg.dump_json[0] && !fatal) {
		long fd = arch_syscall6(SYS_openat, AT_FDCWD, (long)rt_cfg.dump_json,
		                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, 0, 0);
		if (fd >= 0) {
			W.fd = (int)fd;
			W.json = true;
		}
	}
	if (W.json) {
		w_str("{\"gshim\":\"traceback\",\"reason\":");
		w_jstr(why, 64);
		if (sig) {
			w_str(",\"signal\":");
			w_u64((unsigned)sig);
		}
		w_str(",\"pid\":");
		w_u64((unsigned long long)arch_syscall(SYS_getpid, 0, 0, 0));
		w_str(",\"threads\":[");
	} else {
		w_str("gshim: ");
		w_str(why);
		w_str(level == TB_SINGLE ? ": traceback of the current thread\n\n"
		                         : ": traceback of every thread\n\n");
	}
	if (level == TB_SINGLE) {
		if (r.self)
			dump_g(r.self, &r);
		else
			g_foreach_nolock(dump_if_main, &r);
	} else {
		/* the dumping G first, as Go does */
		if (r.self)
			dump_g(r.self, &r);
		r.skip = r.self;
		g_foreach_nolock(dump_g, &r);
	}
	sl = trace_fmt(sched_line);
	if (sl && sched_line[sl - 1] == '\n')
		sl--;
	if (W.json) {
		w_str("\n],\"sched\":");
		sched_line[sl] = 0;
		w_jstr(sched_line, sl);
		w_str("}\n");
		w_flush();
		arch_syscall(SYS_close, W.fd, 0, 0);
		W.fd = 2;
		W.json = false;
		w_str("gshim: ");
		w_str(why);
		w_str(": traceback written to ");
		w_str(rt_cfg.dump_json);
		w_str("\n");
	} else {
		w_mem(sched_line, sl);
		w_str("\n");
	}
	w_flush();
	arch_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8, 0, 0);
}

static int level_for(int dflt)
{
	return rt_cfg.traceback == TB_UNSET ? dflt : rt_cfg.traceback;
}

void traceback_sighandler(int sig, siginfo_t *si, void *uc)
{
	int saved = *errno_loc();
	int level = level_for(TB_ALL);
	char why[32];
	size_t n;

	(void)si;
	if (level != TB_NONE && tb_begin(2 * RT_NS_PER_S)) {
		if (sig == SIGQUIT) {
			dump(level, "SIGQUIT", sig, uc, false);
		} else {
			memcpy(why, "signal ", 7);
			n = 7 + os_fmt_u64(why + 7, (unsigned)sig);
			why[n] = 0;
			dump(level, why, sig, uc, false);
		}
		tb_end();
	}
	if (level == TB_CRASH)
		rt_die_of(SIGABRT);   /* GSHIM_TRACEBACK=crash: a core */
	if (sig == SIGQUIT)
		rt_die_of(SIGQUIT);
	*errno_loc() = saved;
}

void traceback_fatal(void)
{
	int level = level_for(TB_SINGLE);

	if (level == TB_NONE || !sched.inited || !tb_begin(RT_NS_PER_S))
		return;
	dump(level, "fatal error", 0, NULL, true);
	tb_end();
}

static void install(int sig)
{
	struct sigaction sa, old;

	if (sigaction(sig, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
	    old.sa_handler != SIG_DFL)
		return;   /* the program's (or inherited SIG_IGN): leave it */
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = traceback_sighandler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

void traceback_init(void)
{
	if (rt_cfg.traceback != TB_NONE)
		install(SIGQUIT);
	if (rt_cfg.dumpsig > 0 && rt_cfg.dumpsig < 65 && rt_cfg.dumpsig != SIGQUIT)
		install(rt_cfg.dumpsig);
}
