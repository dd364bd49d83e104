/* Loaded by execstack.c: linked with -z execstack, so loading it makes
 * glibc (and gshim) give every thread stack execute permission. */
__attribute__((visibility("default"))) int execstack_mod_answer(void)
{
	return 42;
}
