#include "engine/cpu/thread_pool.h"

namespace ponder::cpu {
namespace {

// Set while a thread runs tasks of some pool: a nested parallel_for runs inline.
thread_local bool t_in_task = false;
thread_local unsigned t_thread_index = 0;

// How long an idle worker (or a waiting caller) spins before it blocks: about 10-50 µs.
constexpr int kSpins = 4096;

}  // namespace

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0) threads = std::thread::hardware_concurrency();
  if (threads == 0) threads = 1;
  workers_.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work(unsigned thread) {
  const bool was_in_task = t_in_task;
  const unsigned was_index = t_thread_index;
  t_in_task = true;
  t_thread_index = thread;
  for (;;) {
    const std::size_t task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    fn_(context_, task, thread);
  }
  t_in_task = was_in_task;
  t_thread_index = was_index;
}

void ThreadPool::run(std::size_t n_tasks, TaskFn fn, void* context) {
  if (n_tasks == 0) return;
  if (t_in_task || workers_.empty() || n_tasks == 1) {
    // Nested (or nothing to share): serially, on this thread, under its own index.
    const unsigned thread = t_in_task ? t_thread_index : 0;
    const bool was_in_task = t_in_task;
    t_in_task = true;
    for (std::size_t task = 0; task < n_tasks; ++task) fn(context, task, thread);
    t_in_task = was_in_task;
    return;
  }
  std::lock_guard<std::mutex> call(call_mutex_);
  fn_ = fn;
  context_ = context;
  n_tasks_ = n_tasks;
  next_.store(0, std::memory_order_relaxed);
  pending_.store(static_cast<unsigned>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);  // publishes the fields above
  }
  wake_.notify_all();
  work(0);
  for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
}

void ThreadPool::worker_main(unsigned index) {
  std::uint64_t seen = 0;
  for (;;) {
    std::uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpins && gen == seen; ++i) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    work(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

}  // namespace ponder::cpu
