// The change feed: every change to what a name would answer, in order, for
// whoever follows the registry (the mount's poll() and /registry/.events, the
// HTTP face's /v1/events).
//
// Subscribing (loop thread only, like everything in the core):
//
//   ChangeFeed::Subscription sub = feed.subscribe(capacity, [] { /* events ready */ });
//   ChangeFeed::Batch batch = sub.take();          // or take(max)
//   if (batch.missed > 0) { /* `missed` events were dropped before these */ }
//   for (const ChangeEvent& e : batch.events) { /* oldest first */ }
//
// - A subscription sees the events published after subscribe(), in order.
// - `notify` is edge-triggered: it runs inside publish() once, when an event
//   arrives for a subscriber that had taken everything, and not again until
//   that subscriber's next take(). It may call take() and may destroy its own
//   or any other subscription, but must not publish().
// - A subscriber more than `capacity` events behind loses the oldest: its next
//   take() returns the newest `capacity` events and how many it missed.
// - Memory is bounded whatever subscribers do: events are kept once, in one
//   ring of at most `history` events, shared by all subscribers (a capacity
//   above `history` counts as `history`); a subscriber costs a few words.
// - Destroying a Subscription unsubscribes. It must not outlive the feed.
//
// Who publishes: the registrar, for this node's writes, replicated changes
// from either store and verdict flips (a check whose result differs from the
// instance's previous known verdict). No timers, no clock: the publisher
// gives each event its (monotonic) time.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "time.hpp"
#include "verdict.hpp"

namespace regfs {

struct ChangeEvent {
  enum class Kind : std::uint8_t { added, removed, verdict };

  std::uint64_t seq = 0;  // set by publish(): 1, 2, 3, ... in publishing order
  Time time{};            // monotonic, from the publisher
  std::string service;
  Kind kind = Kind::added;
  std::string endpoint;  // "host:port" / "[v6]:port"
  std::string owner;     // node name
  // added: what this node knows (unknown for a new instance); removed: the
  // last verdict; verdict: the new one.
  Verdict::State verdict = Verdict::State::unknown;
};

const char* to_string(ChangeEvent::Kind kind);

// One JSON line, newline included:
// {"time":"2026-01-02T03:04:05.678Z","seq":7,"service":"web","kind":"added",
//  "endpoint":"10.0.0.5:80","owner":"node-a","verdict":"unknown"}
// `wall_offset` turns the event's monotonic time into wall-clock time (the
// adapter's system_clock minus steady_clock).
std::string to_json_line(const ChangeEvent& event, Duration wall_offset);
// The line that stands for `missed` dropped events: {"kind":"missed","missed":N}
std::string missed_json_line(std::uint64_t missed);

class ChangeFeed {
 public:
  static constexpr std::size_t kDefaultHistory = 1024;

  explicit ChangeFeed(std::size_t history = kDefaultHistory);
  ~ChangeFeed();
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  struct Batch {
    std::vector<ChangeEvent> events;  // oldest first
    std::uint64_t missed = 0;         // dropped before these, since the last take
  };

  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

    explicit operator bool() const { return feed_ != nullptr; }
    // The events published since the last take (at most `max`), and how many
    // were dropped. Re-arms `notify` once it has taken everything.
    Batch take(std::size_t max = SIZE_MAX);
    // Events waiting to be taken, dropped ones included (0: take() is empty).
    std::uint64_t pending() const;
    void reset();  // unsubscribes now

   private:
    friend class ChangeFeed;
    Subscription(ChangeFeed* feed, std::uint64_t id) : feed_(feed), id_(id) {}
    ChangeFeed* feed_ = nullptr;
    std::uint64_t id_ = 0;
  };

  Subscription subscribe(std::size_t capacity, std::function<void()> notify);

  // Appends `event` (its seq is set here) and notifies subscribers.
  void publish(ChangeEvent event);

  std::size_t subscribers() const { return subs_.size(); }
  std::size_t held() const { return ring_.size(); }  // events kept in the ring
  std::uint64_t published() const { return next_seq_ - 1; }

 private:
  struct Sub {
    std::uint64_t next = 0;  // seq of the next event it takes
    std::size_t capacity = 0;
    std::function<void()> notify;
    bool armed = true;  // notify on the next event
  };
  Batch take(std::uint64_t id, std::size_t max);
  std::uint64_t pending(std::uint64_t id) const;
  void drop(std::uint64_t id);
  void trim();

  std::size_t history_;
  std::deque<ChangeEvent> ring_;  // seqs [next_seq_ - ring_.size(), next_seq_)
  std::uint64_t next_seq_ = 1;
  std::map<std::uint64_t, Sub> subs_;
  std::uint64_t next_id_ = 1;
};

}  // namespace regfs
