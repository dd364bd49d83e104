// C++ thread identity across blocking points and migrations (issue 4):
//  - thread_local objects with a constructor and a destructor: constructed
//    once by each thread that touches them, destroyed once at that
//    thread's exit, on that thread; untouched in threads that never use
//    them;
//  - thread_local counters (and their addresses) survive a thread blocking
//    on one M and resuming on another;
//  - exceptions in 16 threads that interleave at blocking points: a throw
//    after blocking inside the try, `throw;` after blocking in a catch,
//    std::current_exception / std::rethrow_exception across a block,
//    std::uncaught_exceptions in a destructor that blocks during
//    unwinding, nested catch blocks with a block in between;
//  - setjmp/longjmp across a blocking call (sem_wait).
// Threads pass tokens round a ring (condvars, and semaphores for the
// setjmp part), so every check point is a block and, at GOMAXPROCS=2 under
// gshim, many resumes happen on another M (counted on stderr).
// Built with -O2 -fstack-protector-strong.
#include <atomic>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>
#include "prog.h"

namespace {

constexpr int NT = 16;      // threads
constexpr int ROUNDS = 100; // rounds of each check per thread

std::atomic<long> migrations{0}, blocks{0};

// ---- a ring of condvar slots: block_point(i) gives a token to the next
// thread and waits for one from the previous.  A finished thread makes the
// ring non-blocking for its successor, so an early exit cannot hang.
struct Ring {
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv[NT];
	long tokens[NT] = {};
	Ring() {
		for (auto &c : cv)
			pthread_cond_init(&c, nullptr);
	}
	void give(int i) {
		pthread_mutex_lock(&mu);
		tokens[i]++;
		pthread_cond_signal(&cv[i]);
		pthread_mutex_unlock(&mu);
	}
	void take(int i) {
		pthread_mutex_lock(&mu);
		while (tokens[i] == 0)
			pthread_cond_wait(&cv[i], &mu);
		tokens[i]--;
		pthread_mutex_unlock(&mu);
	}
	void finish(int i) {
		pthread_mutex_lock(&mu);
		tokens[(i + 1) % NT] += 1L << 40;
		pthread_cond_signal(&cv[(i + 1) % NT]);
		pthread_mutex_unlock(&mu);
	}
};
Ring ring;

void count_migration(pid_t before)
{
	blocks++;
	if (gettid() != before)
		migrations++;
}

__attribute__((noinline)) void block_point(int id)
{
	pid_t before = gettid();
	ring.give((id + 1) % NT);
	ring.take(id);
	count_migration(before);
}

// ---- semaphore ring for the setjmp part (fixed number of blocks per
// thread: no early exits there).
sem_t sems[NT];

__attribute__((noinline)) void sem_block(int id)
{
	pid_t before = gettid();
	sem_post(&sems[(id + 1) % NT]);
	sem_wait(&sems[id]);
	count_migration(before);
}

// ---- thread_local objects ------------------------------------------------
std::atomic<int> ctor_count[NT], dtor_count[NT], dtor_wrong_thread{0},
	dtor_bad_value{0};

thread_local int my_id = -1;

struct Tracked {
	int id;
	pthread_t owner;
	long value;
	std::string name;
	Tracked() : id(my_id), owner(pthread_self()), value(1000L * my_id),
		    name("tracked-" + std::to_string(my_id)) {
		if (id >= 0 && id < NT)
			ctor_count[id]++;
	}
	~Tracked() {
		if (!pthread_equal(owner, pthread_self()))
			dtor_wrong_thread++;
		if (name != "tracked-" + std::to_string(id) ||
		    value != 1000L * id + ROUNDS)
			dtor_bad_value++;
		if (id >= 0 && id < NT)
			dtor_count[id]++;
	}
};

// function-local: constructed on the first call in each thread (a
// namespace-scope one would be built by the TU's TLS init together with
// every other dynamically initialised thread_local here)
Tracked &tracked_ref()
{
	thread_local Tracked t;
	return t;
}
#define tracked tracked_ref()

thread_local long counter = 0;
thread_local std::vector<int> tl_vec;

__attribute__((noinline)) long *counter_addr() { return &counter; }
__attribute__((noinline)) Tracked *tracked_addr() { return &tracked; }

int tls_check(int id)
{
	int bad = 0;
	long *caddr = counter_addr();
	bool touch = id % 2 == 0;  // odd threads never touch `tracked`
	Tracked *taddr = touch ? tracked_addr() : nullptr;

	if (counter != 0 || !tl_vec.empty())
		bad++;  // a fresh thread sees fresh thread_locals
	for (int r = 0; r < ROUNDS; r++) {
		counter++;
		tl_vec.push_back(id * 100 + r);
		if (touch)
			tracked.value++;
		block_point(id);
		if (counter != r + 1 || counter_addr() != caddr)
			bad++;
		if (tl_vec.size() != size_t(r + 1) || tl_vec.back() != id * 100 + r)
			bad++;
		if (touch && (tracked_addr() != taddr || tracked.id != id ||
			      tracked.value != 1000L * id + r + 1 ||
			      !pthread_equal(tracked.owner, pthread_self())))
			bad++;
	}
	return bad;
}

// ---- exceptions -------------------------------------------------------------
struct Err {
	int v;
};

__attribute__((noinline)) void block_then_throw(int id, int v)
{
	block_point(id);
	if (id >= 0)
		throw Err{v};
}

struct BlockingGuard {
	int id;
	int *seen;
	~BlockingGuard() {
		// runs during unwinding: block, then ask whether this
		// thread has an exception in flight
		block_point(id);
		*seen = std::uncaught_exceptions();
	}
};

__attribute__((noinline)) void guarded_throw(int id, int *seen)
{
	BlockingGuard g{id, seen};
	throw std::runtime_error("guarded " + std::to_string(id));
}

int exc_round(int id, int r)
{
	int ok = 0;
	int base = id * 1000 + r * 10;

	// 1. block between try and throw
	try {
		block_then_throw(id, base + 1);
	} catch (const Err &e) {
		ok += e.v == base + 1;
	}

	// 2. `throw;` after blocking in a catch block
	try {
		try {
			throw Err{base + 2};
		} catch (Err &e) {
			block_point(id);
			e.v += 5;
			throw;
		}
	} catch (const Err &e) {
		ok += e.v == base + 7;
	}

	// 3. current_exception / rethrow_exception across a block
	std::exception_ptr ep;
	try {
		throw std::runtime_error("ep " + std::to_string(base + 3));
	} catch (...) {
		ep = std::current_exception();
	}
	block_point(id);
	try {
		std::rethrow_exception(ep);
	} catch (const std::runtime_error &e) {
		ok += std::string(e.what()) == "ep " + std::to_string(base + 3);
	}

	// 4. a destructor that blocks during unwinding sees one exception
	//    in flight on this thread, and the exception arrives intact
	int seen = -1;
	try {
		guarded_throw(id, &seen);
	} catch (const std::runtime_error &e) {
		ok += seen == 1 &&
		      std::string(e.what()) == "guarded " + std::to_string(id);
	}
	ok += std::uncaught_exceptions() == 0;

	// 5. nested handlers: inside catch(A) block, throw and catch B,
	//    block, then `throw;` must still rethrow A
	try {
		try {
			throw Err{base + 5};
		} catch (const Err &a) {
			block_point(id);
			try {
				throw std::string("inner " + std::to_string(base));
			} catch (const std::string &b) {
				block_point(id);
				ok += b == "inner " + std::to_string(base);
			}
			block_point(id);
			throw;
		}
	} catch (const Err &a) {
		ok += a.v == base + 5;
	}
	ok += std::current_exception() == nullptr;
	return ok;  // EXC_CHECKS when everything held
}

constexpr int EXC_CHECKS = 8;

// ---- setjmp / longjmp across a block ---------------------------------------
__attribute__((noinline)) void jump_back(std::jmp_buf *jb, int v)
{
	std::longjmp(*jb, v);
}

__attribute__((noinline)) int jmp_round(int id, int r)
{
	std::jmp_buf jb;
	volatile int stage = 0;
	volatile long local = id * 7 + r;
	int v = setjmp(jb);
	if (v == 0) {
		stage = 1;
		sem_block(id);
		local = local + 1;
		jump_back(&jb, id + 1);
		return 0;  // not reached
	}
	return v == id + 1 && stage == 1 && local == id * 7 + r + 1;
}

struct Result {
	int tls_bad = 0;
	int exc_ok = 0;
	int jmp_ok = 0;
};
Result results[NT];

void worker(int id)
{
	my_id = id;
	Result &res = results[id];
	res.tls_bad = tls_check(id);
	for (int r = 0; r < ROUNDS; r++)
		res.exc_ok += exc_round(id, r);
	for (int r = 0; r < ROUNDS; r++)
		res.jmp_ok += jmp_round(id, r);
	// the counter still holds after all that
	if (counter != ROUNDS || counter_addr() != &counter)
		res.tls_bad++;
	ring.finish(id);
}

}  // namespace

int main()
{
	for (auto &s : sems)
		sem_init(&s, 0, 0);
	for (int round = 0; round < 2; round++) {
		// two generations: the second reuses whatever the first left
		// behind (TCBs, stacks) and must see fresh thread_locals
		for (int i = 0; i < NT; i++) {
			ctor_count[i] = 0;
			dtor_count[i] = 0;
			results[i] = Result{};
		}
		for (auto &t : ring.tokens)
			t = 0;
		std::vector<std::thread> ts;
		for (int i = 0; i < NT; i++)
			ts.emplace_back(worker, i);
		for (auto &t : ts)
			t.join();
		for (int i = 0; i < NT; i++) {
			const Result &r = results[i];
			int want_life = i % 2 == 0 ? 1 : 0;
			bool life = ctor_count[i] == want_life && dtor_count[i] == want_life;
			bool exc = r.exc_ok == EXC_CHECKS * ROUNDS;
			bool jmp = r.jmp_ok == ROUNDS;
			std::printf("gen %d thread %2d: thread_local %s, lifetime %s "
				    "(ctor %d dtor %d), exceptions %d/%d, longjmp %d/%d\n",
				    round, i, r.tls_bad ? "CORRUPTED" : "ok",
				    life ? "ok" : "WRONG", ctor_count[i].load(),
				    dtor_count[i].load(), r.exc_ok, EXC_CHECKS * ROUNDS,
				    r.jmp_ok, ROUNDS);
			failures += r.tls_bad != 0 || !life || !exc || !jmp;
		}
		std::printf("gen %d: destructors on the wrong thread %d, with wrong "
			    "values %d\n", round, dtor_wrong_thread.load(),
			    dtor_bad_value.load());
		failures += dtor_wrong_thread != 0 || dtor_bad_value != 0;
		if (failures) {
			std::printf("FAILED\n");
			return 1;
		}
	}
	// main's own thread_local is untouched by all of that
	if (counter != 0 || my_id != -1) {
		std::printf("main thread_local CORRUPTED\n");
		return 1;
	}
	std::fprintf(stderr, "tls_cxx: %ld of %ld block points resumed on another kernel thread\n",
		     migrations.load(), blocks.load());
	std::printf("ok\n");
	return 0;
}
