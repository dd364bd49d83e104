/* Yield-heavy producers/consumers on lock-free single-producer rings, using
 * only atomics + sched_yield. At GOMAXPROCS=1 this finishes only if
 * sched_yield really lets the other side run (cooperative scheduling). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define PAIRS 4     /* 4 producers + 4 consumers = 8 threads */
#define RING 64
#define ITEMS 50000

struct ring {
    _Alignas(64) atomic_uint head; /* written by the consumer */
    _Alignas(64) atomic_uint tail; /* written by the producer */
    uint64_t slot[RING];
    uint64_t sum;                  /* consumer's result */
};

static struct ring rings[PAIRS];

static void *producer(void *arg)
{
    struct ring *r = arg;
    uint64_t base = (uint64_t)(r - rings) * 1000000;
    for (uint64_t i = 1; i <= ITEMS; i++) {
        unsigned t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        /* full: wait for the consumer (acquire pairs with its release) */
        while (t - atomic_load_explicit(&r->head, memory_order_acquire) == RING)
            sched_yield();
        r->slot[t % RING] = base + i;
        atomic_store_explicit(&r->tail, t + 1, memory_order_release);
        if (i % 97 == 0)
            sched_yield();
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct ring *r = arg;
    uint64_t sum = 0;
    for (uint64_t n = 0; n < ITEMS; n++) {
        unsigned h = atomic_load_explicit(&r->head, memory_order_relaxed);
        /* empty: wait for the producer (acquire pairs with its release) */
        while (atomic_load_explicit(&r->tail, memory_order_acquire) == h)
            sched_yield();
        sum = sum * 3 + r->slot[h % RING];
        atomic_store_explicit(&r->head, h + 1, memory_order_release);
    }
    r->sum = sum;
    return NULL;
}

int main(void)
{
    pthread_t p[PAIRS], c[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        if (pthread_create(&c[i], NULL, consumer, &rings[i]) != 0 ||
            pthread_create(&p[i], NULL, producer, &rings[i]) != 0)
            return 2;
    }
    uint64_t total = 0;
    for (int i = 0; i < PAIRS; i++) {
        pthread_join(p[i], NULL);
        pthread_join(c[i], NULL);
        printf("pair %d: checksum %016llx\n", i, (unsigned long long)rings[i].sum);
        total ^= rings[i].sum;
    }
    printf("total: %016llx\n", (unsigned long long)total);
    return 0;
}
