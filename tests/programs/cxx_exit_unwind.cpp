/* pthread_exit and cancellation unwind C++ frames, as glibc does: RAII
 * destructors of every frame between the exit and the start routine run,
 * and the C++ form of pthread_cleanup_push (a class) runs its handler. */
#include <pthread.h>
#include <cstdio>
#include <atomic>
#include <semaphore.h>
#include "prog.h"
static std::atomic<int> dtors{0}, cleanups{0};
struct R { ~R() { dtors++; } };
static void cl(void *) { cleanups++; }
/* every path ends in pthread_exit, which gcc reads as endless recursion */
#pragma GCC diagnostic ignored "-Winfinite-recursion"
static void deep(int n) { R r; if (n <= 0) pthread_exit((void*)42); else deep(n - 1); }
static void *t1(void *) { R a; deep(3); return nullptr; }
static sem_t s;
static void *t2(void *) { R a; pthread_cleanup_push(cl, nullptr); for (;;) { sem_wait(&s); } pthread_cleanup_pop(0); return nullptr; }
int main() {
  pthread_t t; void *r; sem_init(&s, 0, 0);
  pthread_create(&t, 0, t1, 0); pthread_join(t, &r);
  printf("exit value %ld, destructors %d\n", (long)r, dtors.load());
  CHECK(r == (void *)42);
  pthread_create(&t, 0, t2, 0); struct timespec ts = {0, 20000000}; nanosleep(&ts, 0); pthread_cancel(t); pthread_join(t, &r);
  printf("canceled %d, cleanups %d, destructors %d\n", r == PTHREAD_CANCELED, cleanups.load(), dtors.load());
  CHECK(r == PTHREAD_CANCELED);
  CHECK(cleanups.load() == 1);
  return report_failures();
}
