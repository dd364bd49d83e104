/* core/internal.h - placeholder */
#include "rt.h"
