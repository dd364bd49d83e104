/* fork() while other threads wait: the child has only the forking thread,
 * a fresh scheduler, and can create and join threads. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
#include <semaphore.h>
static sem_t s;
static void *w(void *a) { sem_wait(&s); return a; }
static void *k(void *a) { return (void*)((long)a + 1); }
int main(void) {
  pthread_t t[4]; sem_init(&s, 0, 0);
  for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, w, 0);
  sched_yield();
  pid_t p = fork();
  if (p == 0) {
    long sum = 0;
    for (long i = 0; i < 100; i++) { pthread_t x; void *r; pthread_create(&x, 0, k, (void*)i); pthread_join(x, &r); sum += (long)r; }
    printf("child sum %ld\n", sum); fflush(stdout); _exit(0);
  }
  int st; waitpid(p, &st, 0);
  for (int i = 0; i < 4; i++) sem_post(&s);
  for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
  printf("parent ok, child status %d\n", WEXITSTATUS(st));
}
