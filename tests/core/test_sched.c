/* tests/core/test_sched.c - placeholder being written; see helper. */
#include <criterion/criterion.h>
#include "core/rt.h"
Test(core_sched, links) { cr_assert(sizeof(g_t) > 0); }
