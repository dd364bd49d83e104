/* tests/core/test_gfutex.c - placeholder being written; see helper. */
#include <criterion/criterion.h>
#include "core/rt.h"
Test(core_gfutex, links) { cr_assert(sizeof(g_t) > 0); }
