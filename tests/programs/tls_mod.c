/* Helper library for tls_dlopen.c: dlopen'd at run time, with a __thread
 * variable in the default (general-dynamic) model, reached through
 * __tls_get_addr and the calling thread's DTV. */
__thread int counter = 42;

int tls_mod_get(void) { return counter; }
void tls_mod_inc(void) { counter++; }
int *tls_mod_addr(void) { return &counter; }
