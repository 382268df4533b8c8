#include "lsp/jobs.h"

#include "engine/log.h"

namespace ponder::lsp {

Jobs::Jobs(Dropped dropped, Dropped failed) : dropped_(std::move(dropped)), failed_(std::move(failed)) {
  fg_thread_ = std::thread([this] { loop(false); });
  bg_thread_ = std::thread([this] { loop(true); });
}

Jobs::~Jobs() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto* running : {&fg_running_, &bg_running_})
      if (*running) (*running)->control->cancel();
    cv_.notify_all();
  }
  fg_thread_.join();
  bg_thread_.join();
}

void Jobs::submit(std::shared_ptr<Job> job) {
  std::vector<std::shared_ptr<Job>> dropped;
  {
    std::lock_guard lock(mu_);
    if (!job->key.empty()) {
      for (auto* q : {&fg_queue_, &bg_queue_})
        for (auto it = q->begin(); it != q->end();)
          if ((*it)->key == job->key) {
            dropped.push_back(*it);
            it = q->erase(it);
          } else {
            ++it;
          }
      for (auto* running : {&fg_running_, &bg_running_})
        if (*running && (*running)->key == job->key) {
          (*running)->superseded = true;
          (*running)->control->cancel();
        }
    }
    if (!job->background && bg_running_) {  // what the user asked for comes first
      bg_running_->preempted = true;
      bg_running_->control->cancel();
    }
    job->owner = this;
    (job->background ? bg_queue_ : fg_queue_).push_back(std::move(job));
    cv_.notify_all();
  }
  for (auto& d : dropped) dropped_(*d, "superseded by a newer request");
}

void Jobs::loop(bool background) {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] {
      if (stopping_) return true;
      if (!background) return !fg_queue_.empty();
      return !bg_queue_.empty() && fg_queue_.empty() && !fg_running_;
    });
    if (stopping_) break;
    auto& queue = background ? bg_queue_ : fg_queue_;
    std::shared_ptr<Job> job = queue.front();
    queue.pop_front();
    (background ? bg_running_ : fg_running_) = job;
    lock.unlock();
    try {
      job->run(*job);
    } catch (const std::exception& e) {
      log::error("job failed: ", e.what());
      failed_(*job, e.what());
    }
    lock.lock();
    auto& slot = background ? bg_running_ : fg_running_;
    if (slot == job) slot.reset();  // (answered() may have cleared it already)
    if (background && job->preempted && !job->cancelled && !job->superseded && !stopping_) {
      job->preempted = false;  // run it again when the user's request is done
      job->control = std::make_unique<agent::TaskControl>();
      bg_queue_.push_front(job);
    }
    cv_.notify_all();
  }
  for (auto* q : {&fg_queue_, &bg_queue_}) q->clear();
}

bool Jobs::cancel(const std::function<bool(const Job&)>& match) {
  std::shared_ptr<Job> queued;
  {
    std::lock_guard lock(mu_);
    for (auto* q : {&fg_queue_, &bg_queue_})
      for (auto it = q->begin(); it != q->end(); ++it)
        if (match(**it)) {
          queued = *it;
          q->erase(it);
          break;
        }
    if (!queued)
      for (auto* running : {&fg_running_, &bg_running_})
        if (*running && match(**running)) {
          (*running)->cancelled = true;
          (*running)->control->cancel();
          return true;
        }
  }
  if (queued) dropped_(*queued, "cancelled");
  return queued != nullptr;
}

void Jobs::cancel_all() {
  std::vector<std::shared_ptr<Job>> queued;
  {
    std::lock_guard lock(mu_);
    for (auto* q : {&fg_queue_, &bg_queue_}) {
      queued.insert(queued.end(), q->begin(), q->end());
      q->clear();
    }
    for (auto* running : {&fg_running_, &bg_running_})
      if (*running) {
        (*running)->cancelled = true;
        (*running)->control->cancel();
      }
  }
  for (auto& j : queued) dropped_(*j, "cancelled");
}

bool Jobs::background_pending(const std::string& key) {
  std::lock_guard lock(mu_);
  for (auto& j : bg_queue_)
    if (j->key == key) return true;
  return bg_running_ && bg_running_->key == key;
}

void Jobs::set_token(Job& job, std::string token) {
  std::lock_guard lock(mu_);  // cancel() reads it
  job.token = std::move(token);
}

void Jobs::answered(Job& job) {
  std::lock_guard lock(mu_);
  for (auto* running : {&fg_running_, &bg_running_})
    if (running->get() == &job) running->reset();
  cv_.notify_all();
}

bool Jobs::running() {
  std::lock_guard lock(mu_);
  return fg_running_ || bg_running_;
}

std::size_t Jobs::queued() {
  std::lock_guard lock(mu_);
  return fg_queue_.size() + bg_queue_.size();
}

bool Jobs::idle() {
  std::lock_guard lock(mu_);
  return fg_queue_.empty() && bg_queue_.empty() && !fg_running_ && !bg_running_;
}

}  // namespace ponder::lsp
