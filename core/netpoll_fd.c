/* core/netpoll_fd.c - the poller's own descriptors: keeping their numbers
 * away from the program (moves on the program's dup2/dup3 onto them),
 * and giving the poller up when one is lost (lost, refire).  Waiting is
 * core/netpoll_wait.c's, reaping core/netpoll.c's.
 *
 * Descriptors.  The ring, the epoll set, its break eventfd and each epoll
 * wait's private dup are numbers in the program's table, and programs
 * close numbers they never opened (close_range(3, ~0U), closefrom, /proc
 * loops) or dup2 onto them.  They are created, moved and closed only in
 * core/rtfd.c's transitions, marked there, and the program's closing
 * calls leave marked numbers alone; a dup2/dup3 onto one calls
 * netpoll_fd_moved first, which moves it to a new number.  Submitters
 * read the ring's number under sqlock, which the move holds; everyone
 * else who passes a number to the kernel outside a transition (the
 * blocker's sleep, epoll reaping, epoll breaks) holds a "use"
 * (use_begin/use_end, two counters and an epoch): the move publishes the
 * new number, flips the epoch, breaks the blocker through the new number
 * (the same ring or epoll set) and waits for the old epoch's users.  The
 * set keys entries by file and number, so the break eventfd gets a new
 * entry under its new number (the old one deleted after the wait), and
 * an epoll wait's dup is re-registered under its new number, its G
 * reading the number from its slot.  With no number left to move to (the table full), or after a
 * failure that says a number is no longer ours (a close by a raw system
 * call libc did not make), the poller is given up - lost(): one warning,
 * new waits get -ENOSYS (plain calls, as GSHIM_IO=syscall), waiters for
 * readiness are woken to retry, file operations in flight are reaped
 * from the ring's memory (the mapping keeps the ring alive).  The
 * blocker's sleep is bounded (1 s) for that case alone: a break that can
 * no longer reach it must not leave a P with a sleeping M for good.
 *
 * Rejected: numbers the program cannot touch (there are none: every
 * number is in the process's one table, and programs close, dup2 onto
 * and reuse numbers they never opened); closing the poller's descriptors
 * on a loss (the number may be the program's by then: it is only
 * unmarked); failing the program's dup2 onto a number of ours (the
 * program asked for that number and natively gets it).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "internal.h"
#include "netpoll_int.h"



/* The poller is given up: the ring or the epoll set was closed or
 * replaced behind our back (raw: a system call libc did not make, so
 * core/rtfd.c did not see it, and the number may be the program's now),
 * or a program's dup2 onto it found no number left to move it to.  The
 * numbers are never used again: new waits get -ENOSYS (plain calls);
 * G's waiting for readiness are woken to retry (plainly) by the next
 * reaper, find_runnable or sysmon (refire: an M about to drop its P must
 * not ready G's onto it without counting them); file
 * operations already in the ring still complete there and are reaped
 * from its memory (the mapping keeps the ring alive) by find_runnable and
 * sysmon.  The numbers are unmarked, not closed. */
void lost(bool raw)
{
	bool mine;

	if (atomic_load_explicit(&np.dead, memory_order_seq_cst))
		return;
	mine = rtfd_held();
	if (!mine)
		rtfd_begin(true);
	np.raw = raw;
	/* seq_cst: pairs with use_begin then dead() in the users. */
	if (atomic_exchange_explicit(&np.dead, 1, memory_order_seq_cst)) {
		if (!mine)
			rtfd_end();
		return;
	}
	rt_warn(raw ? "the program closed the I/O poller's descriptor without libc: "
	              "blocking calls hold a thread from now on" :
	              "no descriptor number left for the I/O poller: "
	              "blocking calls hold a thread from now on");
	if (atomic_load_explicit(&np.mode, memory_order_relaxed) == IO_URING) {
		rtfd_unmark(__atomic_load_n(&np.ring.ring_fd, __ATOMIC_RELAXED));
	} else {
		rtfd_unmark(__atomic_load_n(&np.epfd, __ATOMIC_RELAXED));
		rtfd_unmark(__atomic_load_n(&np.brkfd, __ATOMIC_RELAXED));
		/* The waits' dups went the same way, most likely: their numbers
		 * may be the program's now, whose closes must reach the kernel.
		 * Their G's find -1 and leave them alone. */
		lock_acquire(&np.lock);
		for (uint32_t i = 0; raw && i < np.n; i++)
			if (np.v[i].dfd >= 0) {
				rtfd_unmark(np.v[i].dfd);
				np.v[i].dfd = -1;
			}
		lock_release(&np.lock);
	}
	if (!mine)
		rtfd_end();
	/* Not readied from here: the caller may be an M about to give up its
	 * P (find_runnable's reap), which must not leave G's on it.  The
	 * next reaper does it and counts them (refire). */
	atomic_store_explicit(&np.refire, 1, memory_order_seq_cst);
	sysmon_kick();
}

/* After a loss: wake the G's waiting for readiness, to retry (plainly). */
int refire(void)
{
	int n = 0;

	for (uint32_t i = 0;; i++) {
		uint64_t tok = 0;

		lock_acquire(&np.lock);
		if (i >= np.n) {
			lock_release(&np.lock);
			break;
		}
		if (np.v[i].done && !np.v[i].file)
			tok = (uint64_t)np.v[i].gen << 32 | i;
		lock_release(&np.lock);
		if (tok) {
			slot_fire(tok, -ECANCELED);   /* the wrapper asks again */
			n++;
		}
	}
	return n;
}

/* Wake the blocker through whatever number we hold now, also after a
 * loss (the mover's drain: the number is still ours until the program's
 * call replaces it). */
static void break_raw(void)
{
	if (atomic_load_explicit(&np.mode, memory_order_acquire) == IO_URING) {
		struct io_uring_sqe *sqe;

		lock_acquire(&np.sqlock);
		if ((sqe = sqe_get()) != NULL) {
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, BREAK_TOK);
			uring_submit_locked();
		}
		lock_release(&np.sqlock);
	} else {
		brk_arm(np.epfd, np.brkfd);
	}
}

/* After a move (or a loss): wait until the users that may hold the old
 * number are out (all: every user, for a loss).  The blocker sleeps on
 * it: the break (through the new number: the same ring or eventfd) wakes
 * it; netpoll_block's bound ends its sleep anyway. */
static void drain(bool all)
{
	unsigned old = atomic_fetch_add_explicit(&np.epoch, 1, memory_order_seq_cst) & 1;

	for (int i = 0;; i++) {
		if (!atomic_load_explicit(&np.use[old], memory_order_seq_cst) &&
		    (!all || !atomic_load_explicit(&np.use[old ^ 1], memory_order_seq_cst)))
			break;
		if (i % 1024 == 0)
			break_raw();
		arch_syscall(SYS_sched_yield, 0, 0, 0);
	}
}

/* An epoll wait's dup is about to be replaced: re-register the wait under
 * a new one (the set keys entries by file and number); its G reads the
 * number from the slot in its own transition.  No number left: the wait
 * is taken off the set and woken, to ask again (plainly, as the table is
 * full). */
static void dfd_moved(int fd)
{
	uint64_t wake = 0;

	lock_acquire(&np.lock);
	for (uint32_t i = 0; i < np.n; i++) {
		struct epoll_event ev;
		int h;

		if (np.v[i].dfd != fd)
			continue;
		ev.events = np.v[i].ev;
		ev.data.u64 = (uint64_t)np.v[i].gen << 32 | i;
		h = rtfd_dup_high(fd);
		if (!dead())
			arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_DEL, fd, 0, 0, 0);
		if (h >= 0 && !dead())
			arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_ADD, h, (long)&ev, 0, 0);
		else if (np.v[i].done)
			wake = ev.data.u64;
		np.v[i].dfd = h;   /* -1: nothing for the G to close */
		break;
	}
	lock_release(&np.lock);
	if (wake)
		slot_fire(wake, 0);
}

/* In a transition (core/rtfd.c), for a program's dup2/dup3 onto fd, one
 * of ours: move what fd is to another number, so that the program's call
 * replaces nothing the runtime still uses.  After return, fd may be
 * replaced.  If no number is left for the ring or the epoll set, the
 * poller is given up (lost). */
void netpoll_fd_moved(int fd)
{
	int mode = atomic_load_explicit(&np.mode, memory_order_acquire), h;

	if (mode == IO_URING && fd == __atomic_load_n(&np.ring.ring_fd, __ATOMIC_RELAXED)) {
		/* Submitters hold sqlock and read the number there. */
		lock_acquire(&np.sqlock);
		h = rtfd_dup_high(fd);
		if (h >= 0) {
			__atomic_store_n(&np.ring.ring_fd, h, __ATOMIC_SEQ_CST);
			__atomic_store_n(&np.ring.enter_ring_fd, h, __ATOMIC_SEQ_CST);
		}
		lock_release(&np.sqlock);
	} else if (mode == IO_EPOLL && fd == np.epfd) {
		h = rtfd_dup_high(fd);   /* the same set: its entries stay */
		if (h >= 0)
			__atomic_store_n(&np.epfd, h, __ATOMIC_SEQ_CST);
	} else if (mode == IO_EPOLL && fd == np.brkfd) {
		/* The set keys the entry by file and number: a new entry under
		 * the new number (armed: it wakes the blocker for the drain),
		 * and the old one taken out once nobody arms it any more. */
		struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.u64 = BREAK_TOK };

		h = rtfd_dup_high(fd);
		if (h >= 0 && arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_ADD, h, (long)&ev, 0, 0) < 0) {
			rtfd_close(h);
			h = -1;
		}
		if (h >= 0) {
			__atomic_store_n(&np.brkfd, h, __ATOMIC_SEQ_CST);
			drain(false);
			arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_DEL, fd, 0, 0, 0);
			return;
		}
	} else {
		dfd_moved(fd);
		return;
	}
	if (h < 0)
		lost(false);   /* the table is full: users of the old number drained below */
	drain(h < 0);
}
