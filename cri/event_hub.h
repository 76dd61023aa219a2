// Container lifecycle events for GetContainerEvents: the PodManager publishes, every open stream
// holds a subscription with a bounded queue of its own. A subscriber that does not keep up
// loses its oldest events (counted), never blocks the publisher.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "cri/api/cri.h"

namespace berth::cri {

class EventSubscription {
 public:
  explicit EventSubscription(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // The next event, waiting up to `timeout`; nullopt on timeout or once closed and drained.
  std::optional<::runtime::v1::ContainerEventResponse> Next(absl::Duration timeout);

  // Closed by the hub (shutdown) or by Unsubscribe: Next returns what is queued, then nullopt.
  bool closed() const;
  // Events dropped (the oldest first) because the queue was full.
  uint64_t dropped() const;

 private:
  friend class EventHub;
  void Push(const ::runtime::v1::ContainerEventResponse& event);
  void Close();

  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<::runtime::v1::ContainerEventResponse> queue_;
  uint64_t dropped_ = 0;
  bool closed_ = false;
};

class EventHub {
 public:
  explicit EventHub(size_t capacity_per_subscriber = 1024) : capacity_(capacity_per_subscriber) {}
  ~EventHub() { Close(); }

  // A new subscription; it sees the events published from now on. After Close(), it is
  // returned already closed.
  std::shared_ptr<EventSubscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<EventSubscription>& subscription);

  void Publish(const ::runtime::v1::ContainerEventResponse& event);
  bool HasSubscribers() const;
  size_t subscribers() const;

  // Ends every subscription (berthd shutting down); later ones start closed.
  void Close();

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<EventSubscription>> subscribers_;
  bool closed_ = false;
};

}  // namespace berth::cri
