/* tests/core/test_runq.c - placeholder being written; see helper. */
#include <criterion/criterion.h>
#include "core/rt.h"
Test(core_runq, links) { cr_assert(sizeof(g_t) > 0); }
