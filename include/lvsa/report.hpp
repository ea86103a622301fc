// Human- and machine-readable renderings of a step plan, shared by the `lvsa-plan` CLI
// and the Python bindings so both print exactly the same thing.
#pragma once

#include <string>

#include "lvsa/plan.hpp"

namespace lvsa {

// One JSON object: configuration, geometry, kfi, offset, globals, attended (per query
// frame, sorted key frames), key ranges, densities and FLOPs for `heads` x `head_dim`.
std::string plan_to_json(const StepPlan& plan, int heads, int head_dim);

// A readable summary plus the frame mask, one character per (query, key) frame pair:
// 'G' global, 'w' window, 'B' both, '.' skipped.
std::string plan_to_text(const StepPlan& plan, int heads, int head_dim);

}  // namespace lvsa
