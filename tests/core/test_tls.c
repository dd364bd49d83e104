/* tests/core/test_tls.c - core/tls.c's map of glibc's struct pthread.
 *
 * tls_layout_find takes most offsets from what libc exports and a few
 * from a table per glibc release.  Here every offset it returns is read
 * back in threads glibc itself set up (nothing of gshim is preloaded in
 * a unit test: pthread_create is glibc's), and compared with what glibc
 * says through its public API: pthread_getattr_np for the stack fields,
 * the __resp TLS pointer for the resolver state, pthread_setspecific for
 * the key fields, pthread_cleanup_push for cleanup_jmp_buf,
 * pthread_setcancelstate for cancelhandling, get_robust_list for the
 * robust list head.  Run on a new glibc, this is the check that its
 * table row is right. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "core/internal.h"

#define AT(tp, off, type) (*(type *)((char *)(tp) + (off)))

static struct tls_layout L;

/* gnu_get_libc_version as tls_layout_find sees it: this executable's
 * definition comes first; it answers libc's unless a test fakes one. */
static const char *fake_version;

const char *gnu_get_libc_version(void)
{
	static const char *(*real)(void);

	if (fake_version)
		return fake_version;
	if (!real)
		real = (const char *(*)(void))dlsym(RTLD_NEXT, "gnu_get_libc_version");
	return real();
}

/* The layout, or skip on a glibc gshim has no table row for. */
static void layout(void)
{
	const char *why = tls_layout_find(&L);

	if (why && strstr(why, "knows the thread layout"))
		cr_skip_test("%s", why);
	cr_assert_null(why, "%s", why);
	cr_assert_str_eq(L.row, gnu_get_libc_version());
}

static char *robust_head_now(void)
{
	char *head = NULL;
	size_t len = 0;

	cr_assert_eq(syscall(SYS_get_robust_list, 0, &head, &len), 0);
	cr_assert_eq(len, sizeof(struct robust_list_head));
	return head;
}

/* Fields every glibc thread has, main or not. */
static void check_common(char *tp)
{
	char *head = robust_head_now();

	cr_assert_eq(AT(tp, L.tid, int), (int)syscall(SYS_gettid));
	cr_assert_eq(head, tp + L.robust_head);
	cr_assert_eq(AT(tp, L.robust_prev, char *), tp + L.robust_head);
	cr_assert_eq(AT(tp, L.robust_head + 8, long), L.robust_futex_offset);
	cr_assert_eq(AT(tp, L.specific, char *), tp + L.specific_1st);
	cr_assert_eq(AT(tp, L.list, void *) != NULL, true);
	if (L.rseq_len && *(unsigned int *)dlsym(RTLD_DEFAULT, "__rseq_size") > 0)
		cr_assert_geq(AT(tp, L.rseq + 4, int32_t), 0, "rseq cpu_id");
}

Test(tls_layout, main_thread)
{
	void **stack_end = dlsym(RTLD_DEFAULT, "__libc_stack_end");
	char *tp = arch_tp();

	layout();
	check_common(tp);
	if (syscall(SYS_gettid) != getpid())
		return;   /* not the main thread: nothing more glibc sets */
	cr_assert_not_null(stack_end);
	cr_assert_null(AT(tp, L.stackblock, void *));
	cr_assert_eq(AT(tp, L.stackblock_size, void *), *stack_end);
}

static pthread_key_t key;
static int value;

static void noop(void *arg)
{
	(void)arg;
}

static void *probe(void *arg)
{
	size_t guard = *(size_t *)arg, size, reported;
	char *tp = arch_tp(), *lo, *cjb_before, *cjb_in;
	void **resp = dlsym(RTLD_DEFAULT, "__resp");
	pthread_attr_t a;
	void *addr;
	int old;

	check_common(tp);

	/* stackblock, stackblock_size, guardsize, reported_guardsize: glibc's
	 * pthread_getattr_np computes the stack from them */
	cr_assert_eq(pthread_getattr_np(pthread_self(), &a), 0);
	cr_assert_eq(pthread_attr_getstack(&a, &addr, &size), 0);
	cr_assert_eq(pthread_attr_getguardsize(&a, &reported), 0);
	pthread_attr_destroy(&a);
	lo = AT(tp, L.stackblock, char *);
	cr_assert_eq(lo + AT(tp, L.stackblock_size, size_t), (char *)addr + size);
	cr_assert_eq(AT(tp, L.stackblock_size, size_t) - AT(tp, L.guardsize, size_t), size);
	cr_assert_eq(AT(tp, L.reported_guardsize, size_t), reported);
	cr_assert_eq(reported, guard);
	cr_assert_eq(AT(tp, L.guardsize, size_t), guard);
	cr_assert((char *)&a > lo && (char *)&a < lo + AT(tp, L.stackblock_size, size_t));

	/* res: start_thread points __resp at the thread's own resolver state */
	cr_assert_not_null(resp);
	cr_assert_eq((char *)*resp, tp + L.res);

	/* specific_used and the inline key block */
	cr_assert_eq(AT(tp, L.specific_used, bool), false);
	cr_assert_eq(pthread_setspecific(key, &value), 0);
	cr_assert_eq(AT(tp, L.specific_used, bool), true);
	cr_assert_lt(key, 32u);
	cr_assert_eq(AT(tp, L.specific_1st + 16 * key + 8, void *), &value);

	/* cancelhandling: bit 0 is "cancellation disabled" since 2.34 */
	cr_assert_eq(AT(tp, L.cancelhandling, int) & 1, 0);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	cr_assert_eq(AT(tp, L.cancelhandling, int) & 1, 1);
	pthread_setcancelstate(old, NULL);

	/* cleanup_jmp_buf: start_thread's unwind buffer, up the stack; a
	 * cleanup push (C: __pthread_register_cancel) puts this frame's */
	cjb_before = AT(tp, L.cleanup_jmp_buf, char *);
	cr_assert(cjb_before > (char *)&a && cjb_before < lo + AT(tp, L.stackblock_size, size_t));
	pthread_cleanup_push(noop, NULL);
	cjb_in = AT(tp, L.cleanup_jmp_buf, char *);
	cr_assert(cjb_in != cjb_before);
	cr_assert(cjb_in > lo && cjb_in < cjb_before);
	pthread_cleanup_pop(0);
	cr_assert_eq(AT(tp, L.cleanup_jmp_buf, char *), cjb_before);
	return NULL;
}

Test(tls_layout, glibc_thread)
{
	size_t guard = 3 * (size_t)sysconf(_SC_PAGESIZE);
	pthread_attr_t a;
	pthread_t t;

	layout();
	cr_assert_eq(pthread_key_create(&key, NULL), 0);
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 320 * 1024);   /* no cached stack fits */
	pthread_attr_setguardsize(&a, guard);
	cr_assert_eq(pthread_create(&t, &a, probe, &guard), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	pthread_attr_destroy(&a);
}

/* What tls_layout_find derives agrees with gdb's ptype /o of struct
 * pthread in Debian's and Ubuntu's debug builds of 2.36, 2.39 and 2.41
 * (the same offsets in all three; a new row may need its own here). */
Test(tls_layout, known_rows)
{
	layout();
	cr_assert_eq(L.list, 0x2c0);
	cr_assert_eq(L.tid, 0x2d0);
	cr_assert_eq(L.robust_head, 0x2e0);
	cr_assert_eq(L.cleanup_jmp_buf, 0x300);
	cr_assert_eq(L.cancelhandling, 0x308);
	cr_assert_eq(L.specific_1st, 0x310);
	cr_assert_eq(L.specific, 0x510);
	cr_assert_eq(L.nspecific, 32);
	cr_assert_eq(L.specific_used, 0x610);
	cr_assert_eq(L.schedparam, 0x630);
	cr_assert_eq(L.schedpolicy, 0x634);
	cr_assert_eq(L.stackblock, 0x690);
	cr_assert_eq(L.res, 0x6b8);
	cr_assert_eq(L.size, 2368);
	cr_assert_eq(L.robust_futex_offset, -32);
}

/* A release without a table row, even one that shares a row's major
 * and minor number, is refused with one line naming what is known. */
Test(tls_layout, unknown_release_refused)
{
	const char *why;

	fake_version = "2.42";
	why = tls_layout_find(&L);
	cr_assert_not_null(why);
	cr_assert_str_eq(why, "per-g TLS knows the thread layout of glibc 2.36, 2.39, "
	                 "2.41, not of this glibc 2.42");
	fake_version = "2.41.9000";
	cr_assert_not_null(tls_layout_find(&L));
	fake_version = NULL;
}
