/* core/tls.c - a thread control block (TCB) and TLS block per G.
 *
 * Why.  Compiled code caches TLS addresses across calls (&errno from the
 * const __errno_location, &some___thread_var), so a G that blocks on M1
 * and resumes on M2 keeps using M1's TLS while another G uses it there.
 * Only a TLS block per G, with the thread pointer (FS base) switched on
 * every G switch, keeps those addresses right (docs/design.md, "Thread
 * identity").
 *
 * What a TCB is here.  ld.so's _dl_allocate_tls(NULL) gives a zeroed
 * struct pthread with a DTV and every static TLS block initialised from
 * its module's image: exactly what glibc gives a new thread before
 * start_thread runs.  tls_setup then fills in what start_thread would:
 * the self pointers, multiple_threads, the stack/pointer guards and CET
 * word copied from the creator (they must be identical in every thread:
 * setjmp/longjmp and atexit mangle pointers with them), an empty thread
 * list node, a unique fake tid (above the kernel's pid range, inside
 * FUTEX_TID_MASK: glibc's internal recursive locks identify owners by
 * tid), an empty robust list, specific[0] -> the inline key block, the
 * stack bounds (glibc's alloca cut-off reads them), __resp -> its own
 * resolver state, and the rseq area marked unregistered (cpu_id -2, so
 * sched_getcpu falls back to the vDSO instead of reading a stale CPU).
 * The first code run on the TCB calls __ctype_init (isalpha() crashes
 * without it); the last runs C++ thread_local destructors and resets the
 * thread's locale.
 *
 * Offsets.  struct pthread is private to glibc and moves between
 * releases (2.37 added a field behind the resolver state, 2.41 moved the
 * rseq area out of it into static TLS and added the getrandom state,
 * 2.42 widened a flag and shifted everything behind it).  tls_layout_find
 * locates each field gshim writes at start-up, on the thread that brings
 * the runtime up (a thread glibc set up itself), from three sources:
 *  - what libc exports for debuggers and rseq users: the _thread_db_*
 *    descriptors (size in bits, count, offset) of list, tid,
 *    cancelhandling, specific, schedparam, schedpolicy, nextevent, the
 *    DTV pointer and sizeof(struct pthread); __rseq_offset/__rseq_size;
 *  - the calling thread's own TCB: the robust list head it registered
 *    with the kernel (get_robust_list) and the futex offset in it,
 *    specific[0] -> the inline key block, the TLS addresses of __resp,
 *    errno and h_errno.  Its tid field must equal gettid(), its self
 *    pointers itself, and on the main thread stackblock must be NULL and
 *    stackblock_size __libc_stack_end (glibc's start-up sets both);
 *  - a table row per glibc release for the fields nothing exports
 *    (cleanup_jmp_buf, specific_used, stackblock, stackblock_size,
 *    guardsize, reported_guardsize, res).  Each row was read off the
 *    release's nptl/descr.h, confirmed with gdb's ptype /o on the
 *    distributions' debug builds (Debian 12: 2.36, Ubuntu 24.04: 2.39,
 *    Debian 13: 2.41) and by tests/core/test_tls.c, which reads
 *    the fields of a live glibc thread (pthread_getattr_np, __resp,
 *    pthread_setspecific, pthread_cleanup_push).  At start-up each row is
 *    also checked against its exported neighbours: cleanup_jmp_buf sits
 *    between robust_head and cancelhandling, specific_used right after
 *    specific[], stackblock..res after nextevent and inside the struct.
 * The TCB header (tcbhead_t) is ABI and stays constant: TLS variant II
 * puts the thread pointer at %fs:0, GCC's stack protector reads %fs:0x28,
 * the CET unwinder %fs:0x48, and glibc static-asserts the rest.
 *
 * A glibc release without a row gets shared mode and a one-line warning,
 * even when every exported value is plausible.  The unexported fields sit
 * between exported ones, and nothing exported tells when a release adds
 * or widens a field among them: every check would stay green while gshim
 * writes a stack address over some other field, memory corruption that
 * shows up far away - worse than the known limits of shared mode.  A new
 * release costs one row, checked by tests/core/test_tls.c and the suite
 * run on it.
 *
 * Reuse.  A TCB stays with its G on the free list (a fresh one per
 * thread leaked ~1.7 KB through glibc's per-thread malloc cache, which
 * lives in libc's TLS).  On reuse every module's static TLS block is
 * reset from its image, except libc's (it holds that malloc cache), whose
 * per-thread state is reset field by field (errno, h_errno, locale);
 * dynamic TLS blocks of dlopen'd modules are reset through the DTV.
 * Since 2.41 struct pthread also holds the thread's vDSO getrandom state
 * (glibc hands one out on a thread's first getrandom and takes it back
 * when its thread exits): it stays with the TCB like the malloc cache,
 * so no two G's ever use one at the same time.
 *
 * The cost is one FS write per switch: ~3.4 us with arch_prctl on this
 * VM, ~25 ns with wrfsbase (docs/benchmarks.md).  The scheduler writes it
 * only when the TCB changes.
 *
 * Rejected: copying TLS contents in and out of one TCB per M on each
 * switch - it fixes values but not addresses (the reason for all this),
 * nor dlopen'd TLS, nor anything keyed on the TCB address.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <locale.h>
#include <linux/futex.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <bits/types/res_state.h>   /* struct __res_state, without resolv.h's macros */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include "internal.h"

/* tcbhead_t: the same in every glibc on x86_64 (see Offsets above). */
enum {
	TCB_SELF0 = 0x00, TCB_DTV = 0x08, TCB_SELF = 0x10, TCB_MULTI = 0x18,
	TCB_SYSINFO = 0x20, TCB_STACK_GUARD = 0x28, TCB_POINTER_GUARD = 0x30,
	TCB_FEATURE_1 = 0x48,
};

/* struct pthread in this process (tls_init). */
static struct tls_layout L;

#define AT(tp, off, type) (*(type *)((char *)(tp) + (off)))

struct tls_module {
	intptr_t off;           /* block address - tp (negative: static TLS) */
	const void *image;
	size_t filesz, memsz;
	size_t modid;
	bool is_libc;
	bool dead;              /* unloaded (dlclose): its image is gone */
};

static struct {
	void *(*allocate)(void *);
	void (*deallocate)(void *, bool);
	void (*ctype_init)(void);
	void (*call_tls_dtors)(void);
	size_t static_size;
	intptr_t resp_off, slot_off, errno_off, herrno_off;
	struct tls_module mods[64];
	int nmods;
	_Atomic int dlopen_seen;
	bool ok;
} tls;

static const uint32_t *tdb(const char *name)
{
	return dlsym(RTLD_DEFAULT, name);
}

/* The fields nothing exports, per glibc release (x86_64).  Verified as
 * the essay says; all three releases agree, 2.42 would not (its rows
 * from stackblock on move by 8). */
static const struct layout_row {
	const char *glibc;
	uint16_t cleanup_jmp_buf, specific_used, stackblock, stackblock_size,
	         guardsize, reported_guardsize, res;
} layout_rows[] = {
	{ "2.36", 0x300, 0x610, 0x690, 0x698, 0x6a0, 0x6a8, 0x6b8 },  /* Debian 12 */
	{ "2.39", 0x300, 0x610, 0x690, 0x698, 0x6a0, 0x6a8, 0x6b8 },  /* Ubuntu 24.04 */
	{ "2.41", 0x300, 0x610, 0x690, 0x698, 0x6a0, 0x6a8, 0x6b8 },  /* Debian 13 */
};

/* A field's offset, and its size in bytes, from its _thread_db_
 * descriptor. */
static bool tdb_field(const char *name, uint32_t *off, uint32_t *bytes)
{
	const uint32_t *d = tdb(name);

	if (!d)
		return false;
	*off = d[2];
	if (bytes)
		*bytes = d[0] / 8 * (d[1] ? d[1] : 1);
	return true;
}

const char *tls_layout_find(struct tls_layout *l)
{
	static char why[200];
	const struct layout_row *row = NULL;
	const uint32_t *sz, *l2sz;
	const unsigned int *rseq_size;
	const ptrdiff_t *rseq_off;
	void (*static_info)(size_t *, size_t *);
	void **stack_end;
	uint32_t dtv, nextevent, specific_bytes;
	size_t static_size = 0, align, i, len = 0;
	char *tp = arch_tp(), *head = NULL, *first;
	const char *ver = gnu_get_libc_version();
	int tid;

	memset(l, 0, sizeof *l);
	for (i = 0; i < sizeof layout_rows / sizeof layout_rows[0]; i++)
		if (strcmp(ver, layout_rows[i].glibc) == 0)
			row = &layout_rows[i];
	if (!row) {
		char known[64] = "";

		for (i = 0; i < sizeof layout_rows / sizeof layout_rows[0]; i++) {
			strcat(known, i ? ", " : "");
			strcat(known, layout_rows[i].glibc);
		}
		snprintf(why, sizeof why, "per-g TLS knows the thread layout of glibc "
		         "%s, not of this glibc %s", known, ver);
		return why;
	}
	l->row = row->glibc;

	/* Exported: descriptors and the rseq symbols. */
	sz = tdb("_thread_db_sizeof_pthread");
	l2sz = tdb("_thread_db_sizeof_pthread_key_data_level2");
	rseq_off = dlsym(RTLD_DEFAULT, "__rseq_offset");
	rseq_size = dlsym(RTLD_DEFAULT, "__rseq_size");
	static_info = dlvsym(RTLD_DEFAULT, "_dl_get_tls_static_info", "GLIBC_PRIVATE");
	if (!sz || !l2sz || !rseq_off || !rseq_size || !static_info ||
	    !tdb_field("_thread_db_pthread_dtvp", &dtv, NULL) ||
	    !tdb_field("_thread_db_pthread_list", &l->list, NULL) ||
	    !tdb_field("_thread_db_pthread_tid", &l->tid, NULL) ||
	    !tdb_field("_thread_db_pthread_cancelhandling", &l->cancelhandling, NULL) ||
	    !tdb_field("_thread_db_pthread_specific", &l->specific, &specific_bytes) ||
	    !tdb_field("_thread_db_pthread_schedparam_sched_priority", &l->schedparam, NULL) ||
	    !tdb_field("_thread_db_pthread_schedpolicy", &l->schedpolicy, NULL) ||
	    !tdb_field("_thread_db_pthread_nextevent", &nextevent, NULL))
		return "per-g TLS needs libc's _thread_db_* descriptors and __rseq_offset, "
		       "which this libc does not export";
	static_info(&static_size, &align);
	l->size = *sz;
	l->nspecific = specific_bytes / sizeof(void *);
	l->rseq = *rseq_off;
	l->rseq_len = *rseq_size > 32 ? *rseq_size : 32;   /* 32: the syscall's minimum */

	/* The table row. */
	l->cleanup_jmp_buf = row->cleanup_jmp_buf;
	l->specific_used = row->specific_used;
	l->stackblock = row->stackblock;
	l->stackblock_size = row->stackblock_size;
	l->guardsize = row->guardsize;
	l->reported_guardsize = row->reported_guardsize;
	l->res = row->res;

	/* Live: the calling thread's TCB, which glibc set up. */
	if (AT(tp, TCB_SELF0, char *) != tp || AT(tp, TCB_SELF, char *) != tp ||
	    dtv != TCB_DTV || !AT(tp, TCB_DTV, void *))
		return "per-g TLS: the thread pointer does not point at a glibc TCB";
	tid = (int)arch_syscall(SYS_gettid, 0, 0, 0);
	if (AT(tp, l->tid, int) != tid)
		return "per-g TLS: the tid in this thread's TCB is not its kernel tid";
	if (arch_syscall(SYS_get_robust_list, 0, (long)&head, (long)&len) == 0 &&
	    head && len == sizeof(struct robust_list_head))
		l->robust_head = (uint32_t)(head - tp);
	else   /* none registered (seccomp, old kernel): robust_prev follows tid */
		l->robust_head = (l->tid + sizeof(int) + 7) / 8 * 8 + sizeof(void *);
	l->robust_prev = l->robust_head - sizeof(void *);
	/* glibc's value: pthread_mutex_t's __lock from its __list.__next */
	l->robust_futex_offset = (long)offsetof(pthread_mutex_t, __data.__lock) -
	                         (long)offsetof(pthread_mutex_t, __data.__list.__next);
	first = AT(tp, l->specific, char *);
	l->specific_1st = (uint32_t)(first - tp);

	/* Each value against its neighbours. */
	if ((size_t)l->robust_head + sizeof(struct robust_list_head) > l->size ||
	    l->robust_head <= l->tid ||
	    AT(tp, l->robust_head + sizeof(void *), long) != l->robust_futex_offset ||
	    (AT(tp, l->robust_head, char *) == tp + l->robust_head &&
	     AT(tp, l->robust_prev, char *) != tp + l->robust_head))
		return "per-g TLS: the robust list head is not where expected";
	if (first < tp || l->specific_1st + *l2sz != l->specific)
		return "per-g TLS: specific[0] does not point at the inline key block";
	if (l->cleanup_jmp_buf != l->robust_head + sizeof(struct robust_list_head) + sizeof(void *) ||
	    l->cleanup_jmp_buf + sizeof(void *) != l->cancelhandling ||
	    l->specific_used != l->specific + specific_bytes ||
	    l->stackblock < nextevent + sizeof(void *) || l->res < l->reported_guardsize ||
	    (size_t)l->res + sizeof(struct __res_state) > l->size)
		goto mismatch;
	if (tid == (int)arch_syscall(SYS_getpid, 0, 0, 0)) {
		/* the main thread: glibc's start-up set both */
		stack_end = dlsym(RTLD_DEFAULT, "__libc_stack_end");
		if (!stack_end || AT(tp, l->stackblock, void *) != NULL ||
		    AT(tp, l->stackblock_size, void *) != *stack_end)
			goto mismatch;
	} else {
		/* another glibc thread: the stack we run on */
		char *sp = __builtin_frame_address(0), *lo = AT(tp, l->stackblock, char *);

		if (sp < lo || sp >= lo + AT(tp, l->stackblock_size, size_t))
			goto mismatch;
	}
	if (l->rseq > 0 ? (size_t)l->rseq < (size_t)l->res + sizeof(struct __res_state) ||
	                  l->rseq + l->rseq_len > l->size
	                : l->rseq == 0 || (size_t)-l->rseq > static_size)
		return "per-g TLS: __rseq_offset is outside the thread's TLS";
	return NULL;

mismatch:
	snprintf(why, sizeof why, "per-g TLS: this glibc %s does not match gshim's "
	         "table of its thread layout", ver);
	return why;
}

/* Offset of module modid's static TLS block below the thread pointer
 * (x86_64 puts static TLS below the TCB), from the link map's private
 * l_tls_offset, located through libc's _thread_db descriptors; 0 if the
 * module's TLS is dynamic. */
static size_t module_static_offset(size_t modid)
{
	static const uint32_t *d_modid, *d_off;
	struct link_map *lm;

	if (!d_modid) {
		d_modid = tdb("_thread_db_link_map_l_tls_modid");
		d_off = tdb("_thread_db_link_map_l_tls_offset");
		if (!d_modid || !d_off)
			return 0;
	}
	for (lm = _r_debug.r_map; lm; lm = lm->l_next) {
		if (AT(lm, d_modid[2], size_t) != modid)
			continue;
		size_t off = AT(lm, d_off[2], size_t);
		/* 0: not allocated; (size_t)-1 and -2: forced dynamic/none */
		if (off == 0 || off > tls.static_size)
			return 0;
		return off;
	}
	return 0;
}

static int scan_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	int i;

	(void)size;
	(void)arg;
	if (!info->dlpi_tls_modid || tls.nmods == (int)(sizeof tls.mods / sizeof tls.mods[0]))
		return 0;
	for (i = 0; i < tls.nmods; i++)
		if (tls.mods[i].modid == info->dlpi_tls_modid && !tls.mods[i].dead)
			return 0;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		struct tls_module *mod;
		size_t off;

		if (ph->p_type != PT_TLS)
			continue;
		off = module_static_offset(info->dlpi_tls_modid);
		if (!off)
			return 0;   /* dynamic TLS: reset through the DTV */
		mod = &tls.mods[tls.nmods++];
		mod->off = -(intptr_t)off;
		mod->image = (const char *)info->dlpi_addr + ph->p_vaddr;
		mod->filesz = ph->p_filesz;
		mod->memsz = ph->p_memsz;
		mod->modid = info->dlpi_tls_modid;
		mod->is_libc = info->dlpi_name && strstr(info->dlpi_name, "/libc.so");
		mod->dead = false;
		return 0;
	}
	return 0;
}

/* Modules dlopen'd after start.  Their dynamic TLS needs nothing from us
 * (each TCB has its own DTV; __tls_get_addr allocates per TCB).  Static
 * TLS (initial-exec modules) is initialised by glibc only in the threads
 * it knows, the M's: a fresh TCB from _dl_allocate_tls gets it, but a
 * reused TCB and a G that already existed at the dlopen do not.  gshim
 * checks after every dlopen (shim/dl.c) and whenever it hands out a TCB
 * (the link map list grew): G's that had not seen the module get its
 * image, once (g->tls_nmods). */
static size_t link_maps_seen;

static size_t count_link_maps(void)
{
	struct link_map *lm;
	size_t n = 0;

	for (lm = _r_debug.r_map; lm; lm = lm->l_next)
		n++;
	return n;
}

/* Initialise in g's TCB the static TLS blocks of modules it has not
 * seen (loaded after the TCB was set up).  Threads glibc started itself
 * (the main thread) are glibc's business (tls_nmods < 0). */
static void copy_new_static(g_t *g, void *arg)
{
	int i, from = g->tls_nmods;

	(void)arg;
	if (!g->tcb || from < 0)
		return;
	g->tls_nmods = tls.nmods;
	for (i = from; i < tls.nmods; i++) {
		struct tls_module *mod = &tls.mods[i];
		char *blk = (char *)g->tcb + mod->off;

		if (mod->dead)
			continue;
		memcpy(blk, mod->image, mod->filesz);
		memset(blk + mod->filesz, 0, mod->memsz - mod->filesz);
	}
}

/* After a dlclose (shim/dl.c): forget the static TLS modules that are
 * gone.  Their entries stay (a G's tls_nmods indexes the table) but are
 * never copied again: the image was unmapped.  The same library loaded
 * again, even with the same module id, at the same address and the same
 * static TLS offset, is a new entry, and every G gets its initial image
 * once more, as glibc gives it to its own threads.  (A dlclose inside
 * libc, which does not come through here, is not seen: libc's own
 * modules, NSS and the like, have no initial-exec TLS.) */
struct present { bool seen[64]; };

static int mark_present(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct present *p = arg;
	int i, j;

	(void)size;
	if (!info->dlpi_tls_modid)
		return 0;
	for (j = 0; j < info->dlpi_phnum; j++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[j];
		const void *image = (const char *)info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type != PT_TLS)
			continue;
		for (i = 0; i < tls.nmods; i++)
			if (tls.mods[i].modid == info->dlpi_tls_modid &&
			    tls.mods[i].image == image)
				p->seen[i] = true;
		break;
	}
	return 0;
}

void tls_modules_unloaded(void)
{
	struct present p;
	int i;

	memset(&p, 0, sizeof p);
	dl_iterate_phdr(mark_present, &p);
	for (i = 0; i < tls.nmods; i++)
		if (!p.seen[i])
			tls.mods[i].dead = true;
	/* The next dlopen may bring the count back to what it was. */
	__atomic_store_n(&link_maps_seen, 0, __ATOMIC_RELAXED);
}

void tls_modules_changed(void)
{
	size_t n = count_link_maps();
	int before;

	if (n == __atomic_load_n(&link_maps_seen, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&link_maps_seen, n, __ATOMIC_RELAXED);
	atomic_store(&tls.dlopen_seen, 1);
	before = tls.nmods;
	dl_iterate_phdr(scan_module, NULL);
	if (tls.nmods > before)
		g_foreach(copy_new_static, NULL);
}

bool tls_init(void)
{
	void (*static_info)(size_t *, size_t *);
	const char *why;
	size_t align;
	void *tp = arch_tp();

	arch_tp_init();
	if (rt_cfg.nofsgsbase)
		arch_have_fsgsbase = 0;
	tls.allocate = dlvsym(RTLD_DEFAULT, "_dl_allocate_tls", "GLIBC_PRIVATE");
	tls.deallocate = dlvsym(RTLD_DEFAULT, "_dl_deallocate_tls", "GLIBC_PRIVATE");
	static_info = dlvsym(RTLD_DEFAULT, "_dl_get_tls_static_info", "GLIBC_PRIVATE");
	tls.ctype_init = dlvsym(RTLD_DEFAULT, "__ctype_init", "GLIBC_PRIVATE");
	tls.call_tls_dtors = dlvsym(RTLD_DEFAULT, "__call_tls_dtors", "GLIBC_PRIVATE");
	if (!tls.allocate || !tls.deallocate || !static_info || !tls.ctype_init ||
	    !tls.call_tls_dtors)
		why = "per-g TLS needs ld.so's _dl_allocate_tls and libc's __ctype_init, "
		      "which this libc does not export";
	else
		why = tls_layout_find(&L);
	if (why) {
		char msg[300];

		snprintf(msg, sizeof msg, "%s; using GSHIM_TLS=shared", why);
		rt_warn(msg);
		return false;
	}
	static_info(&tls.static_size, &align);
	tls.resp_off = (char *)dlsym(RTLD_DEFAULT, "__resp") - (char *)tp;
	tls.slot_off = (char *)&gshim_tls_g - (char *)tp;
	tls.errno_off = (char *)__errno_location() - (char *)tp;
	tls.herrno_off = (char *)__h_errno_location() - (char *)tp;
	dl_iterate_phdr(scan_module, NULL);
	link_maps_seen = count_link_maps();
	tls.ok = true;
	return true;
}

/* Fill in what glibc's pthread_create/start_thread would.  tp is fresh
 * from _dl_allocate_tls or being reused; g owns it. */
static void tls_setup(void *tp, g_t *g)
{
	void *cur = arch_tp();
	int i;

	AT(tp, TCB_SELF0, void *) = tp;
	AT(tp, TCB_SELF, void *) = tp;
	AT(tp, TCB_MULTI, int) = 1;
	AT(tp, TCB_SYSINFO, uintptr_t) = AT(cur, TCB_SYSINFO, uintptr_t);
	AT(tp, TCB_STACK_GUARD, uintptr_t) = AT(cur, TCB_STACK_GUARD, uintptr_t);
	AT(tp, TCB_POINTER_GUARD, uintptr_t) = AT(cur, TCB_POINTER_GUARD, uintptr_t);
	AT(tp, TCB_FEATURE_1, uint32_t) = AT(cur, TCB_FEATURE_1, uint32_t);

	AT(tp, L.list, void *) = (char *)tp + L.list;
	AT(tp, L.list + 8, void *) = (char *)tp + L.list;
	AT(tp, L.tid, int) = g_fake_tid(g);
	AT(tp, L.robust_prev, void *) = (char *)tp + L.robust_head;
	AT(tp, L.robust_head, void *) = (char *)tp + L.robust_head;
	AT(tp, L.robust_head + 8, long) = L.robust_futex_offset;
	AT(tp, L.robust_head + 16, void *) = NULL;
	AT(tp, L.cleanup_jmp_buf - 8, void *) = NULL;   /* cleanup */
	AT(tp, L.cleanup_jmp_buf, void *) = NULL;
	AT(tp, L.cancelhandling, int) = 0;
	memset((char *)tp + L.specific_1st, 0, L.specific - L.specific_1st);
	for (i = 1; i < (int)L.nspecific; i++) {
		free(AT(tp, L.specific + 8 * i, void *));
		AT(tp, L.specific + 8 * i, void *) = NULL;
	}
	AT(tp, L.specific, void *) = (char *)tp + L.specific_1st;
	AT(tp, L.specific_used, bool) = false;
	AT(tp, L.schedparam, int) = 0;
	AT(tp, L.schedpolicy, int) = 0;
	AT(tp, L.stackblock, void *) = (void *)(g->stack.lo - g->stack.guard);
	AT(tp, L.stackblock_size, size_t) = g->stack.hi - (g->stack.lo - g->stack.guard);
	AT(tp, L.guardsize, size_t) = g->stack.guard;
	AT(tp, L.reported_guardsize, size_t) = g->stack.guard;
	AT(tp, tls.resp_off, void *) = (char *)tp + L.res;
	/* Fresh from _dl_allocate_tls the area holds malloc garbage when it
	 * lies in static TLS (2.41 on). */
	memset((char *)tp + L.rseq, 0, L.rseq_len);
	AT(tp, L.rseq + 4, int32_t) = -2;   /* cpu_id: RSEQ_CPU_ID_REGISTRATION_FAILED */
	AT(tp, tls.slot_off, g_t *) = g;
	AT(tp, tls.errno_off, int) = 0;
	AT(tp, tls.herrno_off, int) = 0;
}

/* Reset a reused TCB's TLS blocks to their images (libc's excepted). */
static void tls_reset_blocks(void *tp)
{
	int i;

	for (i = 0; i < tls.nmods; i++) {
		struct tls_module *mod = &tls.mods[i];
		char *blk = (char *)tp + mod->off;

		if (mod->is_libc || mod->dead)
			continue;
		memcpy(blk, mod->image, mod->filesz);
		memset(blk + mod->filesz, 0, mod->memsz - mod->filesz);
	}
}

struct dyn_reset { void *tp; };

/* Dynamic TLS (modules dlopen'd after start): reset the blocks this TCB
 * allocated in its previous life, found through its DTV. */
static int reset_dynamic(struct dl_phdr_info *info, size_t size, void *arg)
{
	void *tp = ((struct dyn_reset *)arg)->tp;
	uintptr_t *dtv = AT(tp, TCB_DTV, uintptr_t *);
	size_t modid = info->dlpi_tls_modid, n;
	int i;

	(void)size;
	if (!modid || !dtv)
		return 0;
	n = dtv[-2];   /* dtv[-1].counter: number of entries */
	if (modid > n)
		return 0;
	for (i = 0; i < tls.nmods; i++)
		if (tls.mods[i].modid == modid && !tls.mods[i].dead)
			return 0;   /* static: done by tls_reset_blocks */
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		char *blk = (char *)dtv[2 * modid];

		if (ph->p_type != PT_TLS)
			continue;
		if (blk && blk != (char *)-1l) {
			memcpy(blk, (const char *)info->dlpi_addr + ph->p_vaddr, ph->p_filesz);
			memset(blk + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
		}
		break;
	}
	return 0;
}

/* A TCB for g: g's own from a previous life, reset, or a fresh one.
 * NULL if memory cannot be had. */
void *tls_new(g_t *g)
{
	void *tp = g->tcb;

	tls_modules_changed();
	if (tp) {
		tls_reset_blocks(tp);
		if (atomic_load_explicit(&tls.dlopen_seen, memory_order_relaxed)) {
			struct dyn_reset r = { tp };
			dl_iterate_phdr(reset_dynamic, &r);
		}
	} else {
		tp = tls.allocate(NULL);
		if (!tp)
			return NULL;
	}
	/* Either way every module known now is initialised in it. */
	g->tls_nmods = tls.nmods;
	tls_setup(tp, g);
	g->tcb = tp;
	return tp;
}

/* A TCB for a g0 that cannot use its thread's own (M0's: the main
 * thread's TCB belongs to the main G). */
void *tls_new_g0(g_t *g0)
{
	void *tp = tls.allocate(NULL);

	if (!tp)
		return NULL;   /* start-up out of memory: sched_init gives up */
	tls_setup(tp, g0);
	g0->tcb = tp;
	g0->tcb_fresh = true;
	return tp;
}

/* Undo tls_new_g0 (sched_init could not get the rest of its memory). */
void tls_free_g0(g_t *g0)
{
	tls.deallocate(g0->tcb, true);
	g0->tcb = NULL;
	g0->tcb_fresh = false;
}

/* First code on g's TCB (g runs): per-thread libc set-up that can only be
 * done from the thread itself. */
void tls_first_run(void)
{
	tls.ctype_init();
}

/* Last code of a G on its own TCB: what glibc's start_thread does after
 * the start routine returns. */
void tls_exit(void)
{
	tls.call_tls_dtors();
	uselocale(LC_GLOBAL_LOCALE);
}

/* Calls into glibc's process-shared objects: glibc names owners by the
 * tid in the TCB, and the fake tids of G's repeat from one process to the
 * next.  For the duration of such a call the G's TCB carries its M's
 * kernel tid (unique system-wide), which is what shared TLS gives too.
 * Returns the value to restore. */
int tls_tid_enter(void)
{
	g_t *g = getcurg();
	int old;

	if (!rt_tls_per_g() || !g || !g->m)
		return 0;
	old = AT(arch_tp(), L.tid, int);
	AT(arch_tp(), L.tid, int) = g->m->tid;
	return old;
}

void tls_tid_leave(int old)
{
	if (old)
		AT(arch_tp(), L.tid, int) = old;
}
