/* core/trace.c - GSHIM_DEBUG=schedtrace=N: one line every N ms, in the
 * shape of Go's GODEBUG=schedtrace, written with raw write(2) from a
 * thread of its own (no P), so it keeps printing while the program is
 * stuck.  scheddetail=1 adds a line per P. */
#include <string.h>
#include <sys/prctl.h>
#include "internal.h"

static int64_t start_ns;

static size_t put(char *buf, size_t len, const char *s)
{
	size_t l = strlen(s);

	memcpy(buf + len, s, l);
	return len + l;
}

static size_t putn(char *buf, size_t len, long long n)
{
	if (n < 0) {
		buf[len++] = '-';
		n = -n;
	}
	return len + os_fmt_u64(buf + len, (unsigned long long)n);
}

/* The schedtrace line (and scheddetail's per-P lines) into buf, which
 * holds 4096 bytes; returns the length.  Also the last line of a
 * traceback (core/traceback.c): reads only, no locks. */
size_t trace_fmt(char *buf)
{
	size_t len = 0;
	int idlep, threads, spinning, idlem, globq, i;

	sched_snapshot(&idlep, &threads, &spinning, &idlem, &globq);
	len = put(buf, len, "SCHED ");
	len = putn(buf, len, (os_nanotime() - start_ns) / 1000000);
	len = put(buf, len, "ms: gomaxprocs=");
	len = putn(buf, len, sched.nprocs);
	len = put(buf, len, " idleprocs=");
	len = putn(buf, len, idlep);
	len = put(buf, len, " threads=");
	len = putn(buf, len, threads);
	len = put(buf, len, " spinningthreads=");
	len = putn(buf, len, spinning);
	len = put(buf, len, " idlethreads=");
	len = putn(buf, len, idlem);
	len = put(buf, len, " runqueue=");
	len = putn(buf, len, globq);
	len = put(buf, len, " gs=");
	len = putn(buf, len, (long long)atomic_load(&sched.ngs));
	if (rt_tls_per_g()) {
		/* Thread pointer writes against G runs since start: the
		 * writes per switch (~3.5 us each where it is arch_prctl). */
		unsigned long long ticks = 0, writes = 0;

		for (i = 0; i < sched.nprocs; i++)
			ticks += __atomic_load_n(&sched.allp[i].schedtick, __ATOMIC_RELAXED);
		for (m_t *m = atomic_load_explicit(&sched.allm, memory_order_acquire); m;
		     m = m->alllink)
			writes += atomic_load_explicit(&m->tpwrites, memory_order_relaxed);
		len = put(buf, len, " schedticks=");
		len = putn(buf, len, (long long)ticks);
		len = put(buf, len, " tpwrites=");
		len = putn(buf, len, (long long)writes);
	}
	len = put(buf, len, " [");
	for (i = 0; i < sched.nprocs && len < TRACE_BUF - 64; i++) {
		if (i)
			buf[len++] = ' ';
		len = putn(buf, len, runq_len(&sched.allp[i]));
	}
	len = put(buf, len, "]\n");
	if (rt_cfg.scheddetail) {
		for (i = 0; i < sched.nprocs && len < TRACE_BUF - 128; i++) {
			p_t *p = &sched.allp[i];
			m_t *m = p->m;
			len = put(buf, len, "  P");
			len = putn(buf, len, i);
			len = put(buf, len, ": status=");
			len = putn(buf, len, atomic_load(&p->status));
			len = put(buf, len, " schedtick=");
			len = putn(buf, len, p->schedtick);
			len = put(buf, len, " m=");
			len = putn(buf, len, m ? (long long)m->id : -1);
			len = put(buf, len, " runqsize=");
			len = putn(buf, len, runq_len(p));
			len = put(buf, len, " gfreecnt=");
			len = putn(buf, len, p->ngfree);
			buf[len++] = '\n';
		}
	}
	return len;
}

void trace_line(void)
{
	char buf[TRACE_BUF];

	os_write_all(2, buf, trace_fmt(buf));
}

static void *trace_thread(void *arg)
{
	int64_t period = (int64_t)rt_cfg.schedtrace_ms * 1000000;
	uint32_t never = 0;

	(void)arg;
	os_block_all_signals();
	prctl(PR_SET_NAME, "gshim-trace", 0, 0, 0);   /* visible in ps -L, top -H */
	for (;;) {
		os_futex_wait(&never, 0, period);
		trace_line();
	}
	return NULL;
}

void trace_start(void)
{
	start_ns = os_nanotime();
	if (rt_cfg.schedtrace_ms > 0 &&
	    rt_thread_start(trace_thread, NULL, 64 * 1024) != 0)
		rt_warn("cannot start the schedtrace thread");
}
