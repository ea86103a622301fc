// A minimal parallel-for over independent work items on plain std::threads.
//
// Not OpenMP: torch ships its own libgomp and two OpenMP runtimes in one process fight.
// Threads are started per call; an attention call is milliseconds or more, a thread start
// a few microseconds, and nothing outlives the call (safe across fork()).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace lvsa::cpu {

// Hands out item indices in order; items are claimed one at a time so uneven items
// (encoder tiles, dense rows) balance themselves.
class WorkQueue {
 public:
  explicit WorkQueue(int64_t items) : items_(items) {}
  bool next(int64_t& item) {
    item = next_.fetch_add(1, std::memory_order_relaxed);
    return item < items_;
  }

 private:
  const int64_t items_;
  std::atomic<int64_t> next_{0};
};

// Runs worker(queue) on min(threads, items) threads (threads <= 0: all hardware threads).
// Each worker sets up its own scratch, then drains the queue. The first exception thrown
// by any worker is rethrown here after all threads have joined.
template <class Worker>
void parallel_for(int64_t items, int threads, const Worker& worker) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  const int n = int(std::min<int64_t>(threads, std::max<int64_t>(items, 1)));
  WorkQueue queue(items);
  std::exception_ptr error;
  std::mutex error_mutex;
  const auto run = [&] {
    try {
      worker(queue);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(n - 1);
  for (int t = 1; t < n; ++t) {
    try {
      pool.emplace_back(run);
    } catch (const std::system_error&) {
      break;  // the threads already running, and this one, still drain the queue
    }
  }
  run();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace lvsa::cpu
