// The container event hub behind GetContainerEvents.
#include "cri/event_hub.h"

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace berth::cri {
namespace {

namespace v1 = ::runtime::v1;

v1::ContainerEventResponse Event(const std::string& id, v1::ContainerEventType type) {
  v1::ContainerEventResponse e;
  e.set_container_id(id);
  e.set_container_event_type(type);
  return e;
}

TEST(EventHubTest, EverySubscriberSeesEventsInOrder) {
  EventHub hub;
  EXPECT_FALSE(hub.HasSubscribers());
  hub.Publish(Event("before", v1::CONTAINER_CREATED_EVENT));  // nobody listens: gone
  std::shared_ptr<EventSubscription> a = hub.Subscribe();
  std::shared_ptr<EventSubscription> b = hub.Subscribe();
  EXPECT_EQ(hub.subscribers(), 2u);
  hub.Publish(Event("c", v1::CONTAINER_CREATED_EVENT));
  hub.Publish(Event("c", v1::CONTAINER_STARTED_EVENT));
  for (const auto& sub : {a, b}) {
    std::optional<v1::ContainerEventResponse> e = sub->Next(absl::ZeroDuration());
    ASSERT_TRUE(e);
    EXPECT_EQ(e->container_id(), "c");
    EXPECT_EQ(e->container_event_type(), v1::CONTAINER_CREATED_EVENT);
    e = sub->Next(absl::ZeroDuration());
    ASSERT_TRUE(e);
    EXPECT_EQ(e->container_event_type(), v1::CONTAINER_STARTED_EVENT);
    EXPECT_FALSE(sub->Next(absl::Milliseconds(1)));
    EXPECT_FALSE(sub->closed());
  }
  hub.Unsubscribe(a);
  EXPECT_TRUE(a->closed());
  EXPECT_EQ(hub.subscribers(), 1u);
  hub.Publish(Event("d", v1::CONTAINER_STOPPED_EVENT));
  EXPECT_FALSE(a->Next(absl::ZeroDuration()));
  EXPECT_TRUE(b->Next(absl::ZeroDuration()));
}

TEST(EventHubTest, ASlowSubscriberLosesItsOldestEvents) {
  EventHub hub(3);
  std::shared_ptr<EventSubscription> sub = hub.Subscribe();
  for (int i = 0; i < 5; ++i) hub.Publish(Event(std::to_string(i), v1::CONTAINER_CREATED_EVENT));
  EXPECT_EQ(sub->dropped(), 2u);
  for (const char* want : {"2", "3", "4"}) {
    std::optional<v1::ContainerEventResponse> e = sub->Next(absl::ZeroDuration());
    ASSERT_TRUE(e);
    EXPECT_EQ(e->container_id(), want);
  }
}

TEST(EventHubTest, NextWakesOnPublishAndOnClose) {
  EventHub hub;
  std::shared_ptr<EventSubscription> sub = hub.Subscribe();
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(50));
    hub.Publish(Event("x", v1::CONTAINER_DELETED_EVENT));
  });
  absl::Time start = absl::Now();
  std::optional<v1::ContainerEventResponse> e = sub->Next(absl::Seconds(10));
  publisher.join();
  ASSERT_TRUE(e);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    hub.Close();
  });
  start = absl::Now();
  EXPECT_FALSE(sub->Next(absl::Seconds(10)));
  closer.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(sub->closed());
  EXPECT_TRUE(hub.Subscribe()->closed()) << "subscribing after shutdown";
}

}  // namespace
}  // namespace berth::cri
