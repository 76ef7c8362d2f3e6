// The change feed: order, edge-triggered notification, slow subscribers that
// lose the oldest events and are told how many, bounded memory, and the JSON
// lines. Pure: no clock, no thread.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/change_feed.hpp"

using namespace regfs;

namespace {
ChangeEvent event(const std::string& service, ChangeEvent::Kind kind = ChangeEvent::Kind::added) {
  return ChangeEvent{0, Time{seconds(5)}, service, kind, "10.0.0.1:80", "n1", Verdict::State::unknown};
}
}  // namespace

TEST_CASE("a subscriber sees the events published after it subscribed, in order") {
  ChangeFeed feed;
  feed.publish(event("before"));
  auto sub = feed.subscribe(16, nullptr);
  feed.publish(event("a"));
  feed.publish(event("b", ChangeEvent::Kind::removed));
  CHECK(sub.pending() == 2);
  auto batch = sub.take();
  CHECK(batch.missed == 0);
  REQUIRE(batch.events.size() == 2);
  CHECK(batch.events[0].service == "a");
  CHECK(batch.events[1].service == "b");
  CHECK(batch.events[1].kind == ChangeEvent::Kind::removed);
  CHECK(batch.events[0].seq + 1 == batch.events[1].seq);
  CHECK(sub.take().events.empty());
  CHECK(sub.pending() == 0);
}

TEST_CASE("take(max) hands out at most max events and keeps the rest") {
  ChangeFeed feed;
  auto sub = feed.subscribe(16, nullptr);
  for (int i = 0; i < 5; ++i) feed.publish(event("s" + std::to_string(i)));
  CHECK(sub.take(2).events.size() == 2);
  auto rest = sub.take();
  REQUIRE(rest.events.size() == 3);
  CHECK(rest.events[0].service == "s2");
}

TEST_CASE("notify is edge-triggered: once until the subscriber takes everything") {
  ChangeFeed feed;
  int calls = 0;
  auto sub = feed.subscribe(16, [&] { ++calls; });
  feed.publish(event("a"));
  feed.publish(event("b"));
  CHECK(calls == 1);
  sub.take(1);  // not everything: stays disarmed
  feed.publish(event("c"));
  CHECK(calls == 1);
  sub.take();
  feed.publish(event("d"));
  CHECK(calls == 2);
}

TEST_CASE("a notify may take, and may unsubscribe itself or another subscriber") {
  ChangeFeed feed;
  std::vector<std::string> seen;
  ChangeFeed::Subscription other;
  ChangeFeed::Subscription self;
  self = feed.subscribe(16, [&] {
    for (auto& e : self.take().events) seen.push_back(e.service);
    other.reset();
    self.reset();
  });
  other = feed.subscribe(16, [&] { FAIL("unsubscribed by the first notify"); });
  feed.publish(event("a"));
  CHECK(seen == std::vector<std::string>{"a"});
  CHECK(feed.subscribers() == 0);
  feed.publish(event("b"));  // nobody left
  CHECK(feed.held() == 0);
}

TEST_CASE("a slow subscriber loses the oldest events and is told how many") {
  ChangeFeed feed(64);
  auto slow = feed.subscribe(4, nullptr);
  auto fast = feed.subscribe(64, nullptr);
  for (int i = 0; i < 10; ++i) feed.publish(event("s" + std::to_string(i)));
  auto batch = slow.take();
  CHECK(batch.missed == 6);
  REQUIRE(batch.events.size() == 4);
  CHECK(batch.events.front().service == "s6");
  CHECK(batch.events.back().service == "s9");
  // Caught up: nothing missed any more.
  feed.publish(event("s10"));
  batch = slow.take();
  CHECK(batch.missed == 0);
  CHECK(batch.events.size() == 1);
  CHECK(fast.take().events.size() == 11);
}

TEST_CASE("memory stays bounded by the history, whatever subscribers do") {
  ChangeFeed feed(8);
  auto idle = feed.subscribe(1000, nullptr);  // counts as 8
  for (int i = 0; i < 1000; ++i) feed.publish(event("s" + std::to_string(i)));
  CHECK(feed.held() == 8);
  auto batch = idle.take();
  CHECK(batch.missed == 992);
  REQUIRE(batch.events.size() == 8);
  CHECK(batch.events.front().service == "s992");
  // Once every subscriber has taken everything, the next publish keeps only itself.
  feed.publish(event("last"));
  CHECK(feed.held() == 1);
  // With no subscriber nothing is kept.
  idle.reset();
  feed.publish(event("unheard"));
  CHECK(feed.held() == 0);
  CHECK(feed.published() == 1002);
}

TEST_CASE("a moved subscription stays subscribed once; a destroyed one unsubscribes") {
  ChangeFeed feed;
  {
    auto a = feed.subscribe(4, nullptr);
    auto b = std::move(a);
    CHECK_FALSE(a);
    CHECK(b);
    CHECK(feed.subscribers() == 1);
  }
  CHECK(feed.subscribers() == 0);
}

TEST_CASE("events and missed counts render as one JSON line each") {
  ChangeEvent e{7, Time{milliseconds(1500)}, "web", ChangeEvent::Kind::verdict, "[::1]:80", "node-a",
                Verdict::State::unhealthy};
  // 2026-01-02T03:04:05Z is 1767323045 s after the Unix epoch.
  const std::string line = to_json_line(e, seconds(1767323045) - milliseconds(1500) + milliseconds(678));
  REQUIRE(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  const auto j = nlohmann::json::parse(line);
  CHECK(j["time"] == "2026-01-02T03:04:05.678Z");
  CHECK(j["seq"] == 7);
  CHECK(j["service"] == "web");
  CHECK(j["kind"] == "verdict");
  CHECK(j["endpoint"] == "[::1]:80");
  CHECK(j["owner"] == "node-a");
  CHECK(j["verdict"] == "unhealthy");
  CHECK(line.rfind(R"({"time":)", 0) == 0);  // fields in a fixed order
  const auto missed = nlohmann::json::parse(missed_json_line(12));
  CHECK(missed["kind"] == "missed");
  CHECK(missed["missed"] == 12);
}
