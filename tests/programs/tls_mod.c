/* Helper library for tls_dlopen.c: dlopen'd at run time, with a __thread
 * variable in the default (general-dynamic) model, reached through
 * __tls_get_addr and the calling thread's DTV.  (The project compiles C
 * with -fvisibility=hidden: the entry points say default.) */
#define API __attribute__((visibility("default")))

__thread int counter = 42;

API int tls_mod_get(void) { return counter; }
API void tls_mod_inc(void) { counter++; }
API int *tls_mod_addr(void) { return &counter; }
