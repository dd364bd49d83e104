/* shim/spin.c - being written (issue 3). */
#include "shim.h"
