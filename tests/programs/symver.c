/* Symbol versions (docs/design.md, "Hazards"). Built twice: with
 * -DSYMVER_OLD the binary references pthread_create@GLIBC_2.2.5, with
 * -DSYMVER_NEW pthread_create@GLIBC_2.34. Prints "gshim" when the call
 * reached gshim, "native" when it reached glibc.
 *
 * Two detectors, either is enough:
 *  - in the created thread, pthread_self() differs from glibc's own thread
 *    descriptor (%fs:0x10, tcbhead_t.self);
 *  - dladdr() of the function our versioned reference bound to names a
 *    library other than libc. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(SYMVER_OLD)
__asm__(".symver pthread_create_ver, pthread_create@GLIBC_2.2.5");
#define VERSION "GLIBC_2.2.5"
#elif defined(SYMVER_NEW)
__asm__(".symver pthread_create_ver, pthread_create@GLIBC_2.34");
#define VERSION "GLIBC_2.34"
#else
#error "build with -DSYMVER_OLD or -DSYMVER_NEW"
#endif
extern int pthread_create_ver(pthread_t *, const pthread_attr_t *,
                              void *(*)(void *), void *);

static void *fs_self;
static pthread_t self;

static void *thread_fn(void *arg)
{
    void *tp;
    __asm__ volatile("movq %%fs:0x10, %0" : "=r"(tp));
    fs_self = tp;
    self = pthread_self();
    return arg;
}

int main(void)
{
    pthread_t t;
    void *rv = NULL;
    if (pthread_create_ver(&t, NULL, thread_fn, (void *)42) != 0 ||
        pthread_join(t, &rv) != 0 || rv != (void *)42) {
        printf("create/join via pthread_create@%s failed\n", VERSION);
        return 1;
    }
    int by_self = (void *)self != fs_self;

    Dl_info info;
    int by_addr = 0;
    if (dladdr((void *)pthread_create_ver, &info) && info.dli_fname)
        by_addr = strstr(info.dli_fname, "libc.so") == NULL;

    fprintf(stderr, "pthread_create@%s: pthread_self %s %%fs:0x10, bound in %s\n",
            VERSION, by_self ? "!=" : "==",
            info.dli_fname ? info.dli_fname : "?");
    printf("%s\n", by_self || by_addr ? "gshim" : "native");
    return 0;
}
