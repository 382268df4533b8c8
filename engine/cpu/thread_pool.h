#pragma once
// A persistent pool of worker threads for the CPU backend's kernels.
//
// parallel_for(n, fn) runs fn(task, thread) for every task in [0, n) on all threads (the
// caller's included, as thread 0) and returns when every task is done. Tasks are claimed one at
// a time from a shared counter, so uneven tasks balance themselves. Nothing is allocated per
// call: the callable is passed by reference through a function pointer.
//
// Workers spin briefly after a call before they sleep, so back-to-back calls (a decode step is
// a few hundred of them) do not pay a wake-up each.
//
// Calls are serialised: two threads calling parallel_for on the same pool take turns. A call
// made from inside a task (a nested call, on any pool) runs all its tasks serially on the
// calling thread, passing that thread's own index — it cannot deadlock.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace ponder::cpu {

/// One pause in a spin-wait (PAUSE on x86, else a yield).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

class ThreadPool {
 public:
  using TaskFn = void (*)(void* context, std::size_t task, unsigned thread);

  /// `threads` threads in all, the caller's included; 0 = every core
  /// (std::thread::hardware_concurrency()).
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Threads in all, the caller's included.
  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  /// Runs fn(task, thread) for task in [0, n_tasks), thread in [0, size()); returns when all are
  /// done. `fn` must be callable concurrently from several threads.
  template <class F>
  void parallel_for(std::size_t n_tasks, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run(n_tasks,
        [](void* context, std::size_t task, unsigned thread) {
          (*static_cast<Fn*>(context))(task, thread);
        },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

  /// The type-erased form of parallel_for.
  void run(std::size_t n_tasks, TaskFn fn, void* context);

 private:
  void worker_main(unsigned index);
  void work(unsigned thread);  // claims tasks of the current call until none is left

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one call at a time

  // The current call.
  TaskFn fn_ = nullptr;
  void* context_ = nullptr;
  std::size_t n_tasks_ = 0;
  alignas(64) std::atomic<std::size_t> next_{0};
  alignas(64) std::atomic<std::uint64_t> generation_{0};
  alignas(64) std::atomic<unsigned> pending_{0};  // workers that have not finished the call

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  bool stop_ = false;
};

}  // namespace ponder::cpu
