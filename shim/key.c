/* shim/key.c - thread-specific data (pthread_key_*, and C11 tss_* on top).
 *
 * glibc's own key code keeps the values in its struct pthread, which is
 * the M's, not the G's; so keys are ours.  The design follows glibc's:
 * a global table of PTHREAD_KEYS_MAX keys, each with a sequence number
 * that is odd while the key is in use; each thread stores (value, seq) so
 * that a value set under a deleted key reads as NULL after the key is
 * reused, without touching every thread on delete.  The first 32 keys live
 * inline in the thread; the rest in blocks of 32 allocated on first use.
 *
 * Destructors run at thread exit for up to PTHREAD_DESTRUCTOR_ITERATIONS
 * rounds while values keep appearing (POSIX).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "shim.h"

static struct {
	_Atomic uintptr_t seq;        /* odd = in use */
	void (*_Atomic dtor)(void *);
} keys[SHIM_KEYS_MAX];

/* The runtime could not start (shim/init.c): every thread is native and
 * libc keeps their keys; ours would be one table for all of them. */
static inline bool keys_native(void)
{
	return __builtin_expect(!shim_self() && sched_disabled(), 0);
}

SHIM_EXPORT int pthread_key_create(pthread_key_t *key, void (*dtor)(void *))
{
	unsigned i;

	if (keys_native())
		return REAL(pthread_key_create)(key, dtor);

	for (i = 0; i < SHIM_KEYS_MAX; i++) {
		uintptr_t s = atomic_load_explicit(&keys[i].seq, memory_order_relaxed);

		if (s & 1)
			continue;
		/* glibc refuses to reuse a key whose sequence would wrap. */
		if (s + 1 < s)
			continue;
		if (atomic_compare_exchange_strong_explicit(&keys[i].seq, &s, s + 1,
		        memory_order_acq_rel, memory_order_relaxed)) {
			atomic_store_explicit(&keys[i].dtor, dtor, memory_order_release);
			*key = i;
			return 0;
		}
	}
	return EAGAIN;
}

SHIM_EXPORT int pthread_key_delete(pthread_key_t key)
{
	uintptr_t s;

	if (keys_native())
		return REAL(pthread_key_delete)(key);
	if (key >= SHIM_KEYS_MAX)
		return EINVAL;
	s = atomic_load_explicit(&keys[key].seq, memory_order_relaxed);
	if (!(s & 1) ||
	    !atomic_compare_exchange_strong_explicit(&keys[key].seq, &s, s + 1,
	        memory_order_release, memory_order_relaxed))
		return EINVAL;
	return 0;
}

/* The slot for key in t, or NULL if its block is not allocated (and
 * alloc is false, or allocation failed). */
static struct key_slot *slot(struct thread *t, pthread_key_t key, bool alloc)
{
	unsigned blk = key / SHIM_KEY_BLOCK, idx = key % SHIM_KEY_BLOCK;

	if (blk == 0)
		return &t->key1[idx];
	if (!t->keyblk[blk]) {
		if (!alloc)
			return NULL;
		t->keyblk[blk] = calloc(SHIM_KEY_BLOCK, sizeof(struct key_slot));
		if (!t->keyblk[blk])
			return NULL;
	}
	return &t->keyblk[blk][idx];
}

/* Values of a thread that is not a G (created behind our back) cannot be
 * stored per thread by us; such threads share one table, which is the
 * best that can be done and is documented in docs/compat.md. */
static struct thread foreign_thread;

/* The main thread's values set while the runtime was starting (a
 * replacement malloc called from our own initialisation, shim/init.c):
 * handed to the main G when it exists. */
static struct thread boot_thread;

static struct thread *cur_thread(void)
{
	g_t *g = shim_self();

	if (g)
		return thread_of(g);
	return shim_booting_main() ? &boot_thread : &foreign_thread;
}

void key_adopt_boot(struct thread *t)
{
	unsigned b;

	if (!t || !boot_thread.keys_used)
		return;
	memcpy(t->key1, boot_thread.key1, sizeof t->key1);
	for (b = 0; b < SHIM_KEYS_MAX / SHIM_KEY_BLOCK; b++)
		t->keyblk[b] = boot_thread.keyblk[b];
	t->keys_used = true;
	memset(&boot_thread, 0, sizeof boot_thread);
}

SHIM_EXPORT void *pthread_getspecific(pthread_key_t key)
{
	struct key_slot *s;
	uintptr_t seq;

	if (keys_native())
		return REAL(pthread_getspecific)(key);
	if (key >= SHIM_KEYS_MAX)
		return NULL;
	s = slot(cur_thread(), key, false);
	if (!s)
		return NULL;
	seq = atomic_load_explicit(&keys[key].seq, memory_order_relaxed);
	return s->seq == seq ? s->val : NULL;
}

SHIM_EXPORT int pthread_setspecific(pthread_key_t key, const void *val)
{
	struct thread *t;
	struct key_slot *s;
	uintptr_t seq;

	if (keys_native())
		return REAL(pthread_setspecific)(key, val);
	if (key >= SHIM_KEYS_MAX)
		return EINVAL;
	seq = atomic_load_explicit(&keys[key].seq, memory_order_relaxed);
	if (!(seq & 1))
		return EINVAL;
	t = cur_thread();
	s = slot(t, key, true);
	if (!s)
		return ENOMEM;
	s->val = (void *)val;
	s->seq = seq;
	t->keys_used = true;
	return 0;
}

void key_run_destructors(struct thread *t)
{
	int round;
	unsigned k, b;

	for (round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
		bool again = false;

		for (k = 0; k < SHIM_KEYS_MAX; k++) {
			uintptr_t seq = atomic_load_explicit(&keys[k].seq, memory_order_relaxed);
			void (*dtor)(void *);
			struct key_slot *s;
			void *v;

			if (!(seq & 1))
				continue;
			s = slot(t, k, false);
			if (!s) {
				k += SHIM_KEY_BLOCK - 1 - k % SHIM_KEY_BLOCK;
				continue;
			}
			if (s->seq != seq || !s->val)
				continue;
			v = s->val;
			s->val = NULL;
			dtor = atomic_load_explicit(&keys[k].dtor, memory_order_relaxed);
			if (dtor) {
				dtor(v);
				again = true;
			}
		}
		if (!again)
			break;
	}
	/* The G is reused: leave no values and no blocks behind. */
	for (b = 1; b < SHIM_KEYS_MAX / SHIM_KEY_BLOCK; b++) {
		free(t->keyblk[b]);
		t->keyblk[b] = NULL;
	}
	for (k = 0; k < SHIM_KEY_BLOCK; k++)
		t->key1[k].val = NULL;
	t->keys_used = false;
}
