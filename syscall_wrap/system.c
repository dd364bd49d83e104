/* syscall_wrap/system.c - system(3), a cancellation point that can be
 * cancelled while the command runs.
 *
 * glibc's system() waits for its child with libc's internal waitpid,
 * which gshim does not see: its cancellation check reads glibc's state in
 * the TCB, not gshim's, so a thread cancelled while the command runs
 * would wait for the command to finish (forever, for a command that does
 * not end).  So system() is gshim's, with the behaviour POSIX and glibc
 * document: SIGINT and SIGQUIT ignored in the caller while any system()
 * runs (counted, so concurrent callers restore them once), SIGCHLD
 * blocked in the calling thread, the shell started with posix_spawn
 * (/bin/sh -c, the caller's signal mask, SIGINT/SIGQUIT back to default
 * unless they were ignored already), exit status 127 if it cannot start.
 * The wait is gshim's waitpid (a cancellation point while it blocks);
 * a cancelled caller kills the child with SIGKILL, reaps it and restores
 * the signal state, in a cleanup handler, before its own cleanup
 * handlers run - what glibc's cancellation handler does.
 *
 * Threads that are not G's call libc's system().
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "wrap.h"

extern char **environ;

static pthread_mutex_t sys_lock = PTHREAD_MUTEX_INITIALIZER;
static int sys_users;                     /* sys_lock */
static struct sigaction sys_int, sys_quit; /* sys_lock: actions before */

struct sys_call {
	pid_t pid;
	sigset_t omask;
};

/* Undo what start() did: the last caller puts SIGINT/SIGQUIT back. */
static void sys_restore(const sigset_t *omask)
{
	pthread_mutex_lock(&sys_lock);
	if (--sys_users == 0) {
		sigaction(SIGINT, &sys_int, NULL);
		sigaction(SIGQUIT, &sys_quit, NULL);
	}
	pthread_mutex_unlock(&sys_lock);
	pthread_sigmask(SIG_SETMASK, omask, NULL);
}

/* Cleanup handler of a cancelled caller: the command dies with it. */
static void sys_cancelled(void *arg)
{
	struct sys_call *c = arg;
	long r;

	kill(c->pid, SIGKILL);
	do   /* not a cancellation point: cancellation is acting already */
		r = arch_syscall6(SYS_wait4, c->pid, 0, 0, 0, 0, 0);
	while (r == -EINTR);
	sys_restore(&c->omask);
}

static int do_system(const char *cmd)
{
	struct sigaction ign;
	posix_spawnattr_t attr;
	sigset_t chld, def;
	struct sys_call c;
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	int status = -1, err;

	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &c.omask);
	pthread_mutex_lock(&sys_lock);
	if (sys_users++ == 0) {
		sigaction(SIGINT, &ign, &sys_int);
		sigaction(SIGQUIT, &ign, &sys_quit);
	}
	pthread_mutex_unlock(&sys_lock);

	sigemptyset(&def);
	if (sys_int.sa_handler != SIG_IGN)
		sigaddset(&def, SIGINT);
	if (sys_quit.sa_handler != SIG_IGN)
		sigaddset(&def, SIGQUIT);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &c.omask);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	err = posix_spawn(&c.pid, "/bin/sh", NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (err == 0) {
		pthread_cleanup_push(sys_cancelled, &c);
		while (waitpid(c.pid, &status, 0) < 0) {
			if (errno != EINTR) {
				status = -1;
				break;
			}
		}
		pthread_cleanup_pop(0);
	} else {
		status = W_EXITCODE(127, 0);
	}
	err = err ? err : errno;
	sys_restore(&c.omask);
	errno = err;
	return status;
}

WRAP_EXPORT int system(const char *cmd)
{
	if (!getcurg())
		return REAL(system)(cmd);
	if (!cmd)   /* is there a shell? */
		return do_system("exit 0") == 0;
	return do_system(cmd);
}
