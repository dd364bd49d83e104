/* Huge stack sizes (issue 11 item 5).  pthread_attr_setstacksize accepts
 * any size from PTHREAD_STACK_MIN up; whether a thread can then have it is
 * the kernel's answer to glibc's stack mapping: EAGAIN from
 * pthread_create when the kernel refuses (a mapping larger than RAM + swap
 * under the default overcommit heuristic, or beyond RLIMIT_AS), EINVAL
 * when size + guard wraps.  gshim used to map stacks MAP_NORESERVE and
 * gave a 64 TiB stack to a thread (half the address space) where glibc
 * says EAGAIN.  Each outcome is printed and compared with the native run;
 * a thread that is created must run and report its stack size. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include "prog.h"

static void *body(void *arg)
{
	pthread_attr_t a;
	size_t size = 0;
	volatile char buf[4096];

	buf[0] = 1;   /* touch the stack */
	(void)arg;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getstacksize(&a, &size);
		pthread_attr_destroy(&a);
	}
	return (void *)(uintptr_t)(size + buf[0] - 1);
}

/* Create (and join) a thread with the given stack size; print what
 * happened: "<what>: setstacksize <r>, create <r>[, ran with <size>]". */
static void try_size(const char *what, size_t size)
{
	pthread_attr_t a;
	pthread_t t;
	void *ret;
	int s, c;

	pthread_attr_init(&a);
	s = pthread_attr_setstacksize(&a, size);
	c = s ? -1 : pthread_create(&t, &a, body, NULL);
	pthread_attr_destroy(&a);
	printf("%s: setstacksize %s", what, s ? ename(s) : "ok");
	if (c >= 0)
		printf(", create %s", c ? ename(c) : "created");
	if (c == 0) {
		pthread_join(t, &ret);
		printf(", ran with %s", (uintptr_t)ret == (size & ~(size_t)63) ? "that size"
		                                                               : "another size");
	}
	putchar('\n');
}

int main(void)
{
	struct rlimit rl;

	watchdog(20);
	stage("sizes without a limit");
	try_size("64 TiB", (size_t)64 << 40);
	try_size("16 TiB", (size_t)16 << 40);
	try_size("SIZE_MAX rounded down to pages", SIZE_MAX & ~(size_t)4095);
	try_size("SIZE_MAX / 2", SIZE_MAX / 2);
	try_size("64 MiB", (size_t)64 << 20);

	stage("sizes under RLIMIT_AS");
	getrlimit(RLIMIT_AS, &rl);
	rl.rlim_cur = vm_size() + ((size_t)256 << 20);
	if (setrlimit(RLIMIT_AS, &rl) != 0) {
		printf("setrlimit failed\n");
		return 1;
	}
	try_size("1 GiB under RLIMIT_AS + 256 MiB", (size_t)1 << 30);
	try_size("512 MiB under RLIMIT_AS + 256 MiB", (size_t)512 << 20);
	try_size("64 MiB under RLIMIT_AS + 256 MiB", (size_t)64 << 20);
	try_size("64 TiB under RLIMIT_AS + 256 MiB", (size_t)64 << 40);
	try_size("1 MiB under RLIMIT_AS + 256 MiB", (size_t)1 << 20);
	return 0;
}
