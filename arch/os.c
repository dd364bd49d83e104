/* arch/os.c - raw kernel access for the runtime (see os.h).  Everything
 * here is malloc-free (os_grow maps pages) and safe to call from any
 * thread, including an M between G's; only os_thread_start goes through
 * libc (to give the new M a TCB of its own). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "os.h"
#include "real.h"
#include "arch.h"

int os_futex_wait(uint32_t *addr, uint32_t val, int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	long r;

	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	r = arch_syscall6(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, val,
	                  (long)tsp, 0, 0);
	return (int)r;
}

int os_futex_wake(uint32_t *addr, int n)
{
	return (int)arch_syscall6(SYS_futex, (long)addr, FUTEX_WAKE_PRIVATE, n,
	                          0, 0, 0);
}

pid_t os_gettid(void)
{
	return (pid_t)arch_syscall(SYS_gettid, 0, 0, 0);
}

int64_t os_nanotime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t os_clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) != 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void os_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		long n = arch_syscall(SYS_write, fd, buf, len);
		if (n < 0) {
			if (n == -EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

void os_sched_yield(void)
{
	arch_syscall(SYS_sched_yield, 0, 0, 0);
}

int os_ncpu(void)
{
	cpu_set_t set;
	int n;

	memset(&set, 0, sizeof set);
	if (arch_syscall(SYS_sched_getaffinity, 0, sizeof set, &set) < 0)
		return 1;
	n = CPU_COUNT(&set);
	return n > 0 ? n : 1;
}

/* The lowest descriptor number the runtime's own descriptors use: high,
 * so that the numbers a program's open() and socket() return are the ones
 * it would get natively (a lazily created ring would take the number the
 * program just closed), but not so high that the kernel's table grows. */
static int fd_high_base(void)
{
	struct rlimit rl;

	if (arch_syscall(SYS_getrlimit, RLIMIT_NOFILE, (long)&rl, 0) != 0 ||
	    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 4096 + 64)
		return 4096;
	return rl.rlim_cur > 128 ? (int)rl.rlim_cur - 64 : 3;
}

int os_fd_dup_high(int fd)
{
	return (int)arch_syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, fd_high_base());
}

int os_thread_start(void *(*fn)(void *), void *arg, size_t stack_size)
{
	pthread_attr_t attr;
	pthread_t t;
	int err;

	if (!REAL(pthread_create))
		return ENOSYS;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, stack_size ? stack_size : 256 * 1024);
	err = REAL(pthread_create)(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return err;
}

void *os_grow(void *old, size_t oldlen, size_t newlen, size_t *len)
{
	size_t n = (newlen + 4095) & ~(size_t)4095;
	void *p;

	if (n < newlen)
		return NULL;
	if (old && oldlen)
		p = mremap(old, oldlen, n, MREMAP_MAYMOVE);
	else
		p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	*len = n;
	return p;
}

void os_block_all_signals(void)
{
	/* All but glibc's SIGSETXID (33): setuid & co. wait until every
	 * kernel thread of the process has run its handler (core/signal.c). */
	uint64_t all = ~(1ull << (33 - 1));

	arch_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, 0, 8, 0, 0);
}

size_t os_fmt_u64(char *buf, unsigned long long n)
{
	char tmp[24];
	size_t len = 0, i;

	do {
		tmp[len++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	for (i = 0; i < len; i++)
		buf[i] = tmp[len - 1 - i];
	return len;
}

size_t os_fmt_hex(char *buf, unsigned long long v, int digits)
{
	int i = 60;
	size_t len = 0;

	while (i > 0 && i >= 4 * digits && !((v >> i) & 15))
		i -= 4;
	for (; i >= 0; i -= 4)
		buf[len++] = "0123456789abcdef"[(v >> i) & 15];
	return len;
}

char os_thread_state(pid_t tid)
{
	char path[64], buf[512], *p;
	long fd, n;
	size_t len;

	memcpy(path, "/proc/self/task/", 16);
	len = 16 + os_fmt_u64(path + 16, (unsigned long long)tid);
	memcpy(path + len, "/stat", 6);
	fd = arch_syscall6(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		return 0;
	n = arch_syscall(SYS_read, fd, buf, sizeof buf - 1);
	arch_syscall(SYS_close, fd, 0, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	return p[2];
}

bool os_sigaction_get(int sig, struct os_ksigaction *ka)
{
	return arch_syscall6(SYS_rt_sigaction, sig, 0, (long)ka, 8, 0, 0) == 0;
}
