#include "cri/event_hub.h"

#include <algorithm>

namespace berth::cri {

namespace v1 = ::runtime::v1;

std::optional<v1::ContainerEventResponse> EventSubscription::Next(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const absl::Duration wait = std::clamp(timeout, absl::ZeroDuration(), absl::Hours(1));
  cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
               [this] { return !queue_.empty() || closed_; });
  if (queue_.empty()) return std::nullopt;
  v1::ContainerEventResponse e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

bool EventSubscription::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

uint64_t EventSubscription::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

void EventSubscription::Push(const v1::ContainerEventResponse& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    while (queue_.size() >= capacity_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(event);
  }
  cv_.notify_all();
}

void EventSubscription::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

std::shared_ptr<EventSubscription> EventHub::Subscribe() {
  auto sub = std::make_shared<EventSubscription>(capacity_);
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) {
    sub->Close();
  } else {
    subscribers_.push_back(sub);
  }
  return sub;
}

void EventHub::Unsubscribe(const std::shared_ptr<EventSubscription>& subscription) {
  if (!subscription) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    subscribers_.erase(std::remove(subscribers_.begin(), subscribers_.end(), subscription),
                       subscribers_.end());
  }
  subscription->Close();
}

void EventHub::Publish(const v1::ContainerEventResponse& event) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::shared_ptr<EventSubscription>& s : subscribers_) s->Push(event);
}

bool EventHub::HasSubscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !subscribers_.empty();
}

size_t EventHub::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subscribers_.size();
}

void EventHub::Close() {
  std::vector<std::shared_ptr<EventSubscription>> subs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    subs.swap(subscribers_);
  }
  for (const std::shared_ptr<EventSubscription>& s : subs) s->Close();
}

}  // namespace berth::cri
