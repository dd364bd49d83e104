/* Wrapped blocking calls keep their results and errno, and a thread
 * blocked in one does not stop the others, even at GOMAXPROCS=1: a reader
 * blocks in read() on a pipe and a socketpair while the writer (another
 * thread) fills them; popen/fgets and system() (blocking inside libc);
 * open with O_CREAT's mode, fcntl with a lock wait, openat; a syscall()
 * futex wait woken by another thread; errno of a failing call. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fds[2];

static void *writer(void *arg)
{
	unsigned char buf[100];
	int i;

	(void)arg;
	for (i = 0; i < 2000; i++) {
		memset(buf, i & 0xff, sizeof buf);
		if (write(fds[1], buf, sizeof buf) != (ssize_t)sizeof buf)
			return (void *)1;
	}
	close(fds[1]);
	return NULL;
}

static _Atomic uint32_t fword;

static void *futex_waker(void *arg)
{
	(void)arg;
	usleep(20000);
	atomic_store(&fword, 1);
	syscall(SYS_futex, &fword, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return NULL;
}

int main(void)
{
	char path[64], line[64];
	struct stat st;
	struct flock fl;
	pthread_t t;
	void *rv;
	int kind, fd;

	for (kind = 0; kind < 2; kind++) {
		unsigned char b[64];
		long sum = 0, n, i;

		if (kind == 0 ? pipe(fds) : socketpair(AF_UNIX, SOCK_STREAM, 0, fds))
			return 2;
		pthread_create(&t, NULL, writer, NULL);
		while ((n = read(fds[0], b, sizeof b)) > 0)
			for (i = 0; i < n; i++)
				sum += b[i];
		pthread_join(t, &rv);
		close(fds[0]);
		printf("%s: sum %ld, writer %s\n", kind ? "socketpair" : "pipe", sum,
		       rv ? "failed" : "ok");
	}

	FILE *p = popen("echo hello from popen", "r");
	if (!p || !fgets(line, sizeof line, p))
		return 3;
	pclose(p);
	printf("%s", line);
	printf("system: %d\n", WEXITSTATUS(system("exit 3")));

	snprintf(path, sizeof path, "/tmp/gshim-syscalls-%d", (int)getpid());
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0640);
	fstat(fd, &st);
	printf("open O_CREAT mode %o\n", (unsigned)(st.st_mode & 0777));
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	printf("fcntl F_SETLKW: %d, F_GETFL rdwr %d\n", fcntl(fd, F_SETLKW, &fl),
	       (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
	close(fd);
	fd = openat(AT_FDCWD, path, O_RDONLY);
	printf("openat: %s\n", fd >= 0 ? "ok" : "failed");
	close(fd);
	unlink(path);

	pthread_create(&t, NULL, futex_waker, NULL);
	while (atomic_load(&fword) == 0)
		syscall(SYS_futex, &fword, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	pthread_join(t, NULL);
	printf("syscall(futex) wait woken by another thread\n");

	errno = 0;
	printf("read(-1): %zd, errno %s\n", read(-1, line, 1), errno == EBADF ? "EBADF" : "?");
	return 0;
}
