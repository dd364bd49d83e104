/* Helper library for tls_dlopen.c: dlopen'd at run time with an
 * initial-exec __thread variable, which lives in the static TLS block of
 * every thread (glibc's surplus): ld.so must copy its initial value into
 * every existing thread's TCB when the library is loaded. */
#define API __attribute__((visibility("default")))

__thread int ie_var __attribute__((tls_model("initial-exec"))) = 7;

API int tls_ie_get(void) { return ie_var; }
API void tls_ie_inc(void) { ie_var++; }
API int *tls_ie_addr(void) { return &ie_var; }
