/* shim/dl.c - dlopen.
 *
 * With a TCB per G, a module dlopen'd while threads exist needs its static
 * TLS image copied into every G's TCB (glibc does it only for the threads
 * it knows, the M's): tls_modules_changed() does that right after the real
 * dlopen returns, before any thread can use the module.
 *
 * The catch: glibc's dlopen looks at its return address to find the
 * calling object, whose DT_RUNPATH (with $ORIGIN) it searches for a bare
 * file name.  Called from here, the caller would be libgshim.  So for a
 * name without a slash whose caller has a DT_RUNPATH, the search glibc
 * would make is made here first (LD_LIBRARY_PATH, then the caller's
 * RUNPATH), and the library found is opened by path; everything else
 * (already-loaded names, the cache, default directories, RPATH of the
 * executable) is left to glibc as usual.
 *
 * Executable stacks.  An object whose PT_GNU_STACK asks for execute
 * permission (or that has no PT_GNU_STACK: x86_64's default is an
 * executable stack) makes glibc mprotect the stack of every thread it
 * knows PROT_EXEC and map later ones so; gshim's G stacks are its own
 * mappings, so after each dlopen (and at start-up, for the program and
 * its dependencies) the loaded objects are looked at, and the first
 * that asks makes every G stack executable (core g_stacks_executable).
 * The look costs one dl_iterate_phdr walk per dlopen until then.
 */
#include <dlfcn.h>
#include <sys/auxv.h>
#include <elf.h>
#include <link.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "shim.h"

/* The caller's DT_RUNPATH string, or NULL. */
static const char *caller_runpath(const void *caller, const char **origin_name)
{
	struct link_map *lm = NULL;
	Dl_info info;
	const ElfW(Dyn) *d;
	const char *strtab = NULL;
	ElfW(Addr) runpath = 0;
	bool have = false;

	if (!dladdr1(caller, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm || !lm->l_ld)
		return NULL;
	for (d = lm->l_ld; d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_STRTAB)
			strtab = (const char *)d->d_un.d_ptr;
		else if (d->d_tag == DT_RUNPATH) {
			runpath = d->d_un.d_val;
			have = true;
		}
	}
	if (!have || !strtab)
		return NULL;
	*origin_name = lm->l_name && *lm->l_name ? lm->l_name : NULL;
	return strtab + runpath;
}

/* Try dir/file for each dir of a colon-separated list; $ORIGIN expands to
 * the directory of origin_name (or of the executable). */
static void *try_path(const char *list, const char *file, int mode,
                      const char *origin_name)
{
	char dir[PATH_MAX], path[PATH_MAX], origin[PATH_MAX];
	const char *p = list;

	if (origin_name) {
		strncpy(origin, origin_name, sizeof origin - 1);
		origin[sizeof origin - 1] = 0;
	} else {
		ssize_t n = readlink("/proc/self/exe", origin, sizeof origin - 1);
		origin[n > 0 ? n : 0] = 0;
	}
	if (strrchr(origin, '/'))
		*strrchr(origin, '/') = 0;
	while (p && *p) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len && len < sizeof dir) {
			memcpy(dir, p, len);
			dir[len] = 0;
			const char *pre = "", *rest = dir;
			int n;

			if (strncmp(dir, "$ORIGIN", 7) == 0) {
				pre = origin;
				rest = dir + 7;
			} else if (strncmp(dir, "${ORIGIN}", 9) == 0) {
				pre = origin;
				rest = dir + 9;
			}
			n = snprintf(path, sizeof path, "%s%s/%s", pre, rest, file);
			if (n < 0 || (size_t)n >= sizeof path) {
				p = end ? end + 1 : NULL;
				continue;
			}
			if (access(path, F_OK) == 0) {
				void *h = REAL(dlopen)(path, mode);
				if (h)
					return h;
			}
		}
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

static int phdr_wants_exec(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t vdso = (uintptr_t)arg;
	int i;

	(void)size;
	if (info->dlpi_addr == vdso && vdso)
		return 0;   /* the vDSO is not loaded by ld.so */
	for (i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_GNU_STACK)
			return (info->dlpi_phdr[i].p_flags & PF_X) != 0;
	/* No PT_GNU_STACK: glibc's default for x86_64 is an executable stack
	 * (DEFAULT_STACK_PERMS includes PF_X); a loaded object with no
	 * program headers at all is ld.so's own business. */
	return info->dlpi_phnum > 0;
}

void shim_execstack_check(void)
{
	uintptr_t vdso;

	if (stack_is_executable())
		return;
	vdso = getauxval(AT_SYSINFO_EHDR);
	if (dl_iterate_phdr(phdr_wants_exec, (void *)vdso))
		g_stacks_executable();
}

SHIM_EXPORT void *dlopen(const char *file, int mode)
{
	const void *caller = __builtin_return_address(0);
	const char *runpath, *origin_name = NULL;
	void *h = NULL;

	if (file && !strchr(file, '/') &&
	    (runpath = caller_runpath(caller, &origin_name)) != NULL) {
		/* Already loaded under that name: glibc finds it first. */
		h = REAL(dlopen)(file, mode | RTLD_NOLOAD);
		if (!h && getenv("LD_LIBRARY_PATH"))
			h = try_path(getenv("LD_LIBRARY_PATH"), file, mode, origin_name);
		if (!h)
			h = try_path(runpath, file, mode, origin_name);
	}
	if (!h)
		h = REAL(dlopen)(file, mode);
	if (h && rt_tls_per_g() && sched_ready())
		tls_modules_changed();
	if (h && sched_ready())
		shim_execstack_check();
	return h;
}

/* dlclose: a module with static TLS that goes away must not have its
 * (unmapped) image copied into TCBs again, and the same library loaded
 * again is new to every G (core/tls.c, tls_modules_unloaded). */
SHIM_EXPORT int dlclose(void *h)
{
	int r;

	r = REAL(dlclose)(h);
	if (r == 0 && rt_tls_per_g() && sched_ready())
		tls_modules_unloaded();
	return r;
}
