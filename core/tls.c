/* core/tls.c - a thread control block (TCB) and TLS block per G.
 *
 * Why.  Compiled code caches TLS addresses across calls (&errno from the
 * const __errno_location, &some___thread_var), so a G that blocks on M1
 * and resumes on M2 keeps using M1's TLS while another G uses it there.
 * Only a TLS block per G, with the thread pointer (FS base) switched on
 * every G switch, keeps those addresses right (../shared/design/TLS.md).
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
 * Offsets.  struct pthread is private to glibc.  The offsets below are
 * those of glibc 2.36 on x86_64; tls_init checks them against what libc
 * exports for debuggers (_thread_db_* descriptors: size, count, offset)
 * and __rseq_offset, and refuses per-G TLS with a clear message if they
 * differ: gshim then runs in shared mode rather than corrupting memory.
 *
 * Reuse.  A TCB stays with its G on the free list (a fresh one per
 * thread leaked ~1.7 KB through glibc's per-thread malloc cache, which
 * lives in libc's TLS).  On reuse every module's static TLS block is
 * reset from its image, except libc's (it holds that malloc cache), whose
 * per-thread state is reset field by field (errno, h_errno, locale);
 * dynamic TLS blocks of dlopen'd modules are reset through the DTV.
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
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include "rt.h"

/* glibc 2.36, x86_64 (checked in tls_init). */
enum {
	TCB_SELF0 = 0x00, TCB_DTV = 0x08, TCB_SELF = 0x10, TCB_MULTI = 0x18,
	TCB_SYSINFO = 0x20, TCB_STACK_GUARD = 0x28, TCB_POINTER_GUARD = 0x30,
	TCB_FEATURE_1 = 0x48,
	PT_LIST = 0x2c0, PT_TID = 0x2d0, PT_ROBUST_PREV = 0x2d8,
	PT_ROBUST_HEAD = 0x2e0, PT_CLEANUP_JMP = 0x300, PT_CANCEL = 0x308,
	PT_SPECIFIC1 = 0x310, PT_SPECIFIC = 0x510, PT_SPECIFIC_USED = 0x610,
	PT_SCHEDPARAM = 0x630, PT_SCHEDPOLICY = 0x634,
	PT_STACKBLOCK = 0x690, PT_STACKBLOCK_SIZE = 0x698, PT_GUARDSIZE = 0x6a0,
	PT_REPORTED_GUARD = 0x6a8, PT_RES = 0x6b8,
	PT_SIZE = 2368, PT_RSEQ = 0x920,
};

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

static bool tdb_off(const char *name, uint32_t want)
{
	const uint32_t *d = tdb(name);

	return d && d[2] == want;
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
	const uint32_t *sz;
	const int *rseq_off;
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
	sz = tdb("_thread_db_sizeof_pthread");
	rseq_off = dlsym(RTLD_DEFAULT, "__rseq_offset");
	if (!tls.allocate || !tls.deallocate || !static_info || !tls.ctype_init ||
	    !tls.call_tls_dtors || !sz || !rseq_off ||
	    strcmp(gnu_get_libc_version(), "2.36") != 0 ||
	    sz[0] != PT_SIZE || *rseq_off != PT_RSEQ ||
	    !tdb_off("_thread_db_pthread_list", PT_LIST) ||
	    !tdb_off("_thread_db_pthread_tid", PT_TID) ||
	    !tdb_off("_thread_db_pthread_specific", PT_SPECIFIC) ||
	    !tdb_off("_thread_db_pthread_schedpolicy", PT_SCHEDPOLICY) ||
	    !tdb_off("_thread_db_pthread_dtvp", TCB_DTV)) {
		rt_warn("GSHIM_TLS=per-g needs glibc 2.36's thread layout, which this "
		        "libc does not have; using GSHIM_TLS=shared");
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

	AT(tp, PT_LIST, void *) = (char *)tp + PT_LIST;
	AT(tp, PT_LIST + 8, void *) = (char *)tp + PT_LIST;
	AT(tp, PT_TID, int) = g_fake_tid(g);
	AT(tp, PT_ROBUST_PREV, void *) = (char *)tp + PT_ROBUST_HEAD;
	AT(tp, PT_ROBUST_HEAD, void *) = (char *)tp + PT_ROBUST_HEAD;
	AT(tp, PT_ROBUST_HEAD + 8, long) = -32;  /* __lock - __list.__next */
	AT(tp, PT_ROBUST_HEAD + 16, void *) = NULL;
	AT(tp, PT_CLEANUP_JMP - 8, void *) = NULL;
	AT(tp, PT_CLEANUP_JMP, void *) = NULL;
	AT(tp, PT_CANCEL, int) = 0;
	memset((char *)tp + PT_SPECIFIC1, 0, PT_SPECIFIC - PT_SPECIFIC1);
	for (i = 1; i < 32; i++) {
		free(AT(tp, PT_SPECIFIC + 8 * i, void *));
		AT(tp, PT_SPECIFIC + 8 * i, void *) = NULL;
	}
	AT(tp, PT_SPECIFIC, void *) = (char *)tp + PT_SPECIFIC1;
	AT(tp, PT_SPECIFIC_USED, bool) = false;
	AT(tp, PT_SCHEDPARAM, int) = 0;
	AT(tp, PT_SCHEDPOLICY, int) = 0;
	AT(tp, PT_STACKBLOCK, void *) = (void *)(g->stack.lo - g->stack.guard);
	AT(tp, PT_STACKBLOCK_SIZE, size_t) = g->stack.hi - (g->stack.lo - g->stack.guard);
	AT(tp, PT_GUARDSIZE, size_t) = g->stack.guard;
	AT(tp, PT_REPORTED_GUARD, size_t) = g->stack.guard;
	AT(tp, tls.resp_off, void *) = (char *)tp + PT_RES;
	memset((char *)tp + PT_RSEQ, 0, 32);
	AT(tp, PT_RSEQ + 4, int32_t) = -2;   /* RSEQ_CPU_ID_REGISTRATION_FAILED */
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
		rt_fatal("cannot allocate a TCB for the scheduler of M0");
	tls_setup(tp, g0);
	g0->tcb = tp;
	g0->tcb_fresh = true;
	return tp;
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

bool tls_per_g(void)
{
	return tls.ok;
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

	if (rt_cfg.tls_mode != TLS_PER_G || !g || !g->m)
		return 0;
	old = AT(arch_tp(), PT_TID, int);
	AT(arch_tp(), PT_TID, int) = g->m->tid;
	return old;
}

void tls_tid_leave(int old)
{
	if (old)
		AT(arch_tp(), PT_TID, int) = old;
}
