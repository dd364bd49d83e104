/* arch/os.h - thin, allocation-free access to the kernel and to libc's
 * thread creation for M's.  Nothing here knows about G's. */
#ifndef GSHIM_ARCH_OS_H
#define GSHIM_ARCH_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stddef.h>
#include <time.h>
#include <sys/types.h>

/* futex on a private 32-bit word.  timeout_ns < 0: forever.  Returns 0 on
 * wake-up, or -errno (EAGAIN, ETIMEDOUT, EINTR). */
int os_futex_wait(uint32_t *addr, uint32_t val, int64_t timeout_ns);
int os_futex_wake(uint32_t *addr, int n);

pid_t os_gettid(void);
int64_t os_nanotime(void);            /* CLOCK_MONOTONIC, ns */
int64_t os_clock_ns(clockid_t clk);   /* any clock, ns; -1 on error */
void os_write_all(int fd, const char *buf, size_t len);  /* raw write(2) */
void os_sched_yield(void);            /* the real syscall */
/* Scheduler state letter of kernel thread tid of this process, from
 * /proc/self/task/<tid>/stat ('R' running, 'S'/'D' asleep in the kernel),
 * or 0 if unknown.  Raw syscalls only. */
char os_thread_state(pid_t tid);
/* Decimal n into buf (no NUL); returns the length.  Allocation-free. */
size_t os_fmt_u64(char *buf, unsigned long long n);
/* v in lower-case hex into buf, at least `digits` digits (zero-padded,
 * 1 to 16), no "0x", no NUL; returns the length.  Allocation-free. */
size_t os_fmt_hex(char *buf, unsigned long long v, int digits);
/* The kernel's struct sigaction (rt_sigaction), and a raw query of the
 * action installed for sig (false if the kernel refuses). */
struct os_ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};
bool os_sigaction_get(int sig, struct os_ksigaction *ka);
int os_ncpu(void);                    /* CPUs in the affinity mask, >= 1 */

/* Block every signal in the calling thread (runtime helper threads: a
 * handler there could re-enter the runtime code it interrupted) except
 * glibc's SIGSETXID, which every kernel thread must take (setuid). */
void os_block_all_signals(void);

/* Start an OS thread (a glibc thread, so it has a TCB of its own) running
 * fn(arg).  stack_size 0 means a small default.  Returns 0 or an errno. */
int os_thread_start(void *(*fn)(void *), void *arg, size_t stack_size);
/* Runtime descriptors live high (see os.c; core/rtfd.c marks them): a
 * close-on-exec duplicate at or above the base, or -errno. */
int os_fd_dup_high(int fd);

/* A growable array of the runtime's own (timer heaps, poller slots):
 * anonymous pages, never the program's malloc (which may not be
 * thread-safe, and whose first call from a thread creates a 64 MiB glibc
 * arena - a third of a 200 MiB RLIMIT_AS).  Grows old (oldlen bytes, NULL
 * if 0) to at least newlen, contents kept; NULL when the kernel refuses
 * (RLIMIT_AS, overcommit), with old left as it was.  *len gets the new
 * size (page-rounded). */
void *os_grow(void *old, size_t oldlen, size_t newlen, size_t *len);

#endif
