/* shim/mutex.c - being written (issue 3). */
#include "shim.h"
