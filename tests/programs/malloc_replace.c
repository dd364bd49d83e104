/* Programs that replace malloc (jemalloc, tcmalloc, mimalloc, their own)
 * call the pthread API from inside malloc - on every thread, and on the
 * main thread while gshim itself is starting (its start-up allocates
 * through glibc, which calls this malloc).  A malloc of the program's own
 * here takes a pthread mutex, runs pthread_once and reads and writes a
 * pthread key on every call; and a library constructor that runs before
 * gshim's (early_lib.c) leaves locks held and a key set for main to
 * check.  Then threads allocate concurrently across blocking points.
 * Natively and under gshim the output is the same; a hang at start-up
 * (the bug this guards against) fails by the run's timeout. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the replacement allocator: a locked bump allocator ---------------- */

struct hdr { size_t size; size_t pad; };   /* 16 bytes: keeps 16-alignment */

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t heap_once = PTHREAD_ONCE_INIT;
static pthread_key_t heap_key;
static int heap_key_ok;
static char *heap_cur, *heap_end;
static unsigned long heap_calls;

static void heap_init(void)
{
	heap_key_ok = pthread_key_create(&heap_key, NULL) == 0;
}

static void *raw_alloc(size_t size, size_t align)
{
	char *p;
	struct hdr *h;

	if (align < 16)
		align = 16;
	if (size > ((size_t)1 << 40) || align > 4096 * 16)
		return NULL;
	pthread_once(&heap_once, heap_init);
	if (heap_key_ok) {
		/* per-thread call count: getspecific/setspecific inside malloc */
		uintptr_t n = (uintptr_t)pthread_getspecific(heap_key);
		pthread_setspecific(heap_key, (void *)(n + 1));
	}
	pthread_mutex_lock(&heap_lock);
	heap_calls++;
	for (;;) {
		uintptr_t u = (uintptr_t)heap_cur + sizeof(struct hdr);
		u = (u + align - 1) & ~(uintptr_t)(align - 1);
		p = (char *)u;
		if (heap_cur && p + size <= heap_end)
			break;
		size_t chunk = size + align + sizeof(struct hdr) > (64u << 20)
		               ? size + align + sizeof(struct hdr) : (64u << 20);
		chunk = (chunk + 4095) & ~(size_t)4095;
		char *m = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			pthread_mutex_unlock(&heap_lock);
			errno = ENOMEM;
			return NULL;
		}
		heap_cur = m;
		heap_end = m + chunk;
	}
	heap_cur = p + size;
	pthread_mutex_unlock(&heap_lock);
	h = (struct hdr *)p - 1;
	h->size = size;
	return p;
}

void *malloc(size_t n) { return raw_alloc(n, 16); }
void free(void *p) { (void)p; }   /* bump allocator: never reused */
void *calloc(size_t a, size_t b)
{
	if (b && a > SIZE_MAX / b)
		return errno = ENOMEM, NULL;
	return raw_alloc(a * b, 16);   /* fresh mmap'd memory is zero */
}
void *realloc(void *old, size_t n)
{
	void *p = raw_alloc(n, 16);

	if (p && old) {
		size_t o = ((struct hdr *)old - 1)->size;
		memcpy(p, old, o < n ? o : n);
	}
	return p;
}
void *memalign(size_t al, size_t n) { return raw_alloc(n, al); }
void *aligned_alloc(size_t al, size_t n) { return raw_alloc(n, al); }
void *valloc(size_t n) { return raw_alloc(n, 4096); }
void *pvalloc(size_t n) { return raw_alloc((n + 4095) & ~(size_t)4095, 4096); }
int posix_memalign(void **out, size_t al, size_t n)
{
	void *p = raw_alloc(n, al);

	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}
size_t malloc_usable_size(void *p) { return p ? ((struct hdr *)p - 1)->size : 0; }

/* ---- the program --------------------------------------------------------- */

extern pthread_mutex_t early_rec, early_ec;
extern pthread_key_t early_key;
extern int early_key_value, early_once_runs, early_errors;
extern pthread_once_t early_once;
extern char *early_block;

#define NTHREADS 16
#define ROUNDS 2000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long total;
static int turn;

static void *(*volatile alloc_fn)(size_t) = malloc;

static void once_again(void) { early_once_runs += 100; }

static void *worker(void *arg)
{
	long id = (long)arg, sum = 0;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		size_t n = 16 + (size_t)((id * 131 + i * 17) % 4000);
		/* through a volatile pointer: the compiler may not elide the
		 * malloc/free pair */
		unsigned char *p = alloc_fn(n);
		if (!p)
			return (void *)1;
		memset(p, (int)(id + i) & 0xff, n);
		sum += p[n - 1];
		if (i % 100 == 0) {
			/* a blocking point: pass the turn around a condvar */
			pthread_mutex_lock(&mu);
			turn++;
			pthread_cond_broadcast(&cv);
			pthread_mutex_unlock(&mu);
			usleep(100);
		}
		free(p);
	}
	pthread_mutex_lock(&mu);
	total += sum;
	pthread_mutex_unlock(&mu);
	return NULL;
}

int main(void)
{
	pthread_t t[NTHREADS];
	long i, expect = 0;
	int bad = 0;
	void *r;

	printf("constructor before gshim's: errors %d, block \"%s\"\n",
	       early_errors, early_block ? early_block : "(null)");
	printf("key set by that constructor: %s\n",
	       pthread_getspecific(early_key) == &early_key_value ? "kept" : "LOST");
	{
		int u1 = pthread_mutex_unlock(&early_ec);
		int u2 = pthread_mutex_unlock(&early_ec);
		printf("errorcheck mutex held across start-up: unlock %d, again EPERM %d\n",
		       u1, u2 == EPERM);
	}
	{
		int u1 = pthread_mutex_unlock(&early_rec);
		int u2 = pthread_mutex_unlock(&early_rec);
		int u3 = pthread_mutex_unlock(&early_rec);
		printf("recursive mutex held twice: unlock %d %d, third EPERM %d\n",
		       u1, u2, u3 == EPERM);
	}
	pthread_once(&early_once, once_again);
	printf("once: ran %d time(s)\n", early_once_runs);

	for (i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i)) {
			printf("pthread_create failed\n");
			return 1;
		}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], &r);
		bad += r != NULL;
	}
	for (i = 0; i < NTHREADS; i++) {
		int k;
		for (k = 0; k < ROUNDS; k++) {
			size_t n = 16 + (size_t)((i * 131 + k * 17) % 4000);
			expect += (unsigned char)((i + k) & 0xff);
			(void)n;
		}
	}
	printf("%d threads x %d allocations: failures %d, checksum %s\n",
	       NTHREADS, ROUNDS, bad, total == expect ? "ok" : "WRONG");
	printf("allocator used: %s\n", heap_calls >= NTHREADS * ROUNDS ? "yes" : "no");
	return 0;
}
