// Header-only (include/CThreadSupport.h); SwiftPM wants one source file in a C target.
#include "CThreadSupport.h"
