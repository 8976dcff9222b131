/* agx.h — umbrella header for libagx. */
#ifndef AGX_AGX_H
#define AGX_AGX_H

#define AGX_VERSION "0.1.0"

#include "agx/error.h"
#include "agx/util.h"
#include "agx/plan.h"
#include "agx/registry.h"
#include "agx/input.h"
#include "agx/backend.h"
#include "agx/planner.h"

#endif
