/* core/netpoll_int.h - the poller's state and helpers shared by its
 * files: core/netpoll.c (backend choice, reaping, the blocker, fork),
 * core/netpoll_wait.c (the slot table, ring submission, the waits and
 * file operations) and core/netpoll_fd.c (the poller's own descriptors:
 * moves and loss).  Core-internal: nothing outside those files uses it.
 * The small helpers every path takes (dead, use_begin/use_end, fd_gone)
 * stay static inline here, as they were inlined before the split.
 */
#ifndef GSHIM_CORE_NETPOLL_INT_H
#define GSHIM_CORE_NETPOLL_INT_H

#include <liburing.h>
#include <sys/epoll.h>
#include "internal.h"

struct slot {
	uint32_t gen;
	uint32_t nextfree;            /* free list link (index + 1) */
	_Atomic uint32_t *done;       /* waiter's word, NULL: free or fired */
	int32_t *res;
	bool file;                    /* a file operation: needs its completion */
	int dfd;                      /* epoll: the wait's private dup, -1
	                               * (read and written in rtfd transitions) */
	uint32_t ev;                  /* epoll: its events */
};

struct netpoll {
	lock_t lock;                  /* slot table */
	struct slot *v;               /* os_grow pages, vlen bytes */
	size_t vlen;
	uint32_t n, cap, freehead;    /* freehead: index + 1, 0 = none */
	_Atomic uint32_t nwait;       /* slots in use: G's waiting */
	_Atomic int mode;             /* -1 not yet chosen, else IO_* */
	lock_t initlock;
	struct io_uring ring;
	lock_t sqlock;                /* SQ of the ring */
	_Atomic uint32_t sqpend;      /* SQEs queued, not yet taken by the
	                               * kernel (written under sqlock) */
	_Atomic int sysmon_soon;      /* sysmon's sleep ends within NETPOLL_NS
	                               * and it flushes then (deferral allowed) */
	_Atomic int cqbusy;           /* someone is consuming the CQ */
	_Atomic int blocker;          /* an idle M sleeps in the ring / epoll */
	_Atomic int dead;             /* lost: given up (see lost()) */
	bool raw;                     /* lost behind our back (set before dead) */
	_Atomic int refire;           /* lost: waiters for readiness to wake */
	_Atomic uint32_t epoch;       /* the numbers' users (use_begin), and */
	_Atomic uint32_t use[2];      /* a move's wait for the old ones */
	bool ext_arg;                 /* the ring takes a timeout */
	_Atomic int64_t lastpoll;     /* when an M last looked (Go's sched.lastpoll) */
	int epfd, brkfd;              /* epoll set, its break eventfd (never
	                               * read or written: see brk_arm) */
	int nev;                      /* epoll: events the blocker got */
	struct epoll_event ev[128];
};
extern struct netpoll np;

/* Names a break in the ring / epoll set (tokens have a generation >= 1). */
#define BREAK_TOK 0xffffffffull


/* One request to the ring, named by tok (0: its completion is ignored):
 * the poll of a wait, a file read/write, or the cancel of a wait.  <0:
 * the ring is unusable now (the caller blocks instead). */
struct req {
	int op, fd, cnt;
	uint32_t events;              /* POLL_ADD; FSYNC, SYNC_FILE_RANGE flags */
	const struct iovec *iov;
	int64_t off, len;
	uint64_t target;              /* ASYNC_CANCEL: the request's token */
};


/* Users of the ring's, the epoll set's or the break eventfd's number
 * outside a transition and outside sqlock (the blocker's sleep, epoll
 * reaping, break writes) hold a use while they may still pass the number
 * to the kernel.  A move (netpoll_fd_moved) publishes the new number,
 * flips the epoch and waits for the old epoch's users: a user that read
 * the old epoch is counted there, one that read the new epoch reads the
 * new number (seq_cst: publish -> flip; load epoch -> count -> load fd). */
static inline unsigned use_begin(void)
{
	unsigned e = atomic_load_explicit(&np.epoch, memory_order_seq_cst) & 1;

	atomic_fetch_add_explicit(&np.use[e], 1, memory_order_seq_cst);
	return e;
}

static inline void use_end(unsigned e)
{
	atomic_fetch_sub_explicit(&np.use[e], 1, memory_order_release);
}

static inline bool dead(void)
{
	return atomic_load_explicit(&np.dead, memory_order_acquire);
}


/* A failure that says the number is no longer our ring or epoll set. */
static inline bool fd_gone(long r)
{
	return r == -EBADF || r == -EOPNOTSUPP || r == -ENXIO;
}

/* ---- shared between the netpoll files ---------------------------------- */

/* netpoll.c */
long brk_arm(int epfd, int brkfd);

/* netpoll_wait.c: the slot table and the ring's submission queue */
void slot_fire(uint64_t tok, int32_t res);
int uring_submit_locked(void);
void sq_flush(void);
struct io_uring_sqe *sqe_get(void);
int submit(const struct req *q, uint64_t tok);

/* netpoll_fd.c */
void lost(bool raw);
int refire(void);

#endif
