#include "plan_handles.hpp"

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace lvsa::capi {
namespace {

struct Registry {
  std::mutex mutex;
  uintptr_t last_id = 0;  // 0 is NULL, never handed out
  std::unordered_map<uintptr_t, std::shared_ptr<const StepPlan>> plans;
};

// Function-local so that plans made from other translation units' static initialisers count.
Registry& registry() {
  static Registry r;
  return r;
}

uintptr_t id_of(const lvsa_plan* handle) { return reinterpret_cast<uintptr_t>(handle); }

}  // namespace

lvsa_plan* add_plan(StepPlan plan) {
  auto shared = std::make_shared<const StepPlan>(std::move(plan));
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  const uintptr_t id = ++r.last_id;
  r.plans.emplace(id, std::move(shared));
  return reinterpret_cast<lvsa_plan*>(id);
}

std::shared_ptr<const StepPlan> find_plan(const lvsa_plan* handle) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.plans.find(id_of(handle));
  return it == r.plans.end() ? nullptr : it->second;
}

bool remove_plan(const lvsa_plan* handle) {
  Registry& r = registry();
  std::shared_ptr<const StepPlan> removed;  // freed after the lock is released
  const std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.plans.find(id_of(handle));
  if (it == r.plans.end()) return false;
  removed = std::move(it->second);
  r.plans.erase(it);
  return true;
}

}  // namespace lvsa::capi
