// The C API's plan handles. A handle is a number, never reused, rather than the plan's
// address: a destroyed or made-up handle is then always an error instead of a use after
// free, even once the allocator has handed the old plan's memory to a new one.
#pragma once

#include <memory>

#include "lvsa/lvsa.h"
#include "lvsa/plan.hpp"

namespace lvsa::capi {

lvsa_plan* add_plan(StepPlan plan);
// Null when the handle is not live (never created, or destroyed already). Holding the
// result keeps the plan alive through a call that races with lvsa_plan_destroy.
std::shared_ptr<const StepPlan> find_plan(const lvsa_plan* handle);
// False when the handle was not live.
bool remove_plan(const lvsa_plan* handle);

}  // namespace lvsa::capi
