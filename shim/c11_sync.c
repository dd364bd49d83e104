/* shim/c11_sync.c - being written (issue 3). */
#include "shim.h"
