#pragma once
// The language server's model work: one thread for what the user asked for, one for background
// work (explanations for hover, suggestions on save). A user's job pre-empts a running
// background one (cancelled, then queued again); a job supersedes an older one with its key.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/task.h"
#include "lsp/json_rpc.h"

namespace ponder::lsp {

class Jobs;

struct Job {
  std::string key;               // jobs with the same key supersede each other ("" none)
  bool background = false;
  json request_id;               // the request it answers, or null
  std::string token;             // its progress token, or "" (set through Jobs::set_token)
  std::unique_ptr<agent::TaskControl> control = std::make_unique<agent::TaskControl>();
  std::atomic<bool> cancelled{false}, superseded{false}, preempted{false};
  std::function<void(Job&)> run;
  Jobs* owner = nullptr;         // set by Jobs::submit
};

class Jobs {
 public:
  /// `dropped`: a queued job that will not run (cancelled, superseded), with why — it owes its
  /// request an answer. `failed`: a job whose run threw.
  using Dropped = std::function<void(Job&, const std::string& why)>;
  Jobs(Dropped dropped, Dropped failed);
  /// Cancels what runs, drops what waits (without answers: the server is going away), joins.
  ~Jobs();

  void submit(std::shared_ptr<Job> job);
  /// Cancels the first job that matches (queued: dropped; running: stopped). False when none.
  bool cancel(const std::function<bool(const Job&)>& match);
  void cancel_all();
  /// A background job with `key` is queued or running.
  bool background_pending(const std::string& key);
  void set_token(Job& job, std::string token);
  /// The running `job` has sent its answer: from now on it does not count as running (running(),
  /// idle()), though its thread may still be returning, so that a client that asks right after
  /// the answer sees the server idle.
  void answered(Job& job);
  bool running();
  std::size_t queued();
  bool idle();

 private:
  void loop(bool background);
  Dropped dropped_, failed_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> fg_queue_, bg_queue_;
  std::shared_ptr<Job> fg_running_, bg_running_;
  bool stopping_ = false;
  std::thread fg_thread_, bg_thread_;
};

}  // namespace ponder::lsp
