#include "change_feed.hpp"

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

namespace regfs {

const char* to_string(ChangeEvent::Kind kind) {
  switch (kind) {
    case ChangeEvent::Kind::added: return "added";
    case ChangeEvent::Kind::removed: return "removed";
    case ChangeEvent::Kind::verdict: return "verdict";
  }
  return "unknown";
}

namespace {

// RFC 3339 in UTC with milliseconds, from a distance to the Unix epoch.
std::string utc_text(Duration since_unix) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_unix).count();
  const std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  const int frac = static_cast<int>(ms - static_cast<long long>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  char tail[8];
  std::snprintf(tail, sizeof tail, ".%03dZ", frac);
  return out + tail;
}

}  // namespace

std::string to_json_line(const ChangeEvent& event, Duration wall_offset) {
  nlohmann::ordered_json j;
  j["time"] = utc_text(event.time.since_epoch + wall_offset);
  j["seq"] = event.seq;
  j["service"] = event.service;
  j["kind"] = to_string(event.kind);
  j["endpoint"] = event.endpoint;
  j["owner"] = event.owner;
  j["verdict"] = to_string(event.verdict);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string missed_json_line(std::uint64_t missed) {
  return R"({"kind":"missed","missed":)" + std::to_string(missed) + "}\n";
}

ChangeFeed::ChangeFeed(std::size_t history) : history_(std::max<std::size_t>(history, 1)) {}

ChangeFeed::~ChangeFeed() = default;

ChangeFeed::Subscription ChangeFeed::subscribe(std::size_t capacity, std::function<void()> notify) {
  const std::uint64_t id = next_id_++;
  subs_.emplace(id, Sub{next_seq_, std::clamp<std::size_t>(capacity, 1, history_),
                        std::move(notify), true});
  return Subscription(this, id);
}

void ChangeFeed::publish(ChangeEvent event) {
  event.seq = next_seq_++;
  if (subs_.empty()) {
    ring_.clear();
    return;
  }
  ring_.push_back(std::move(event));
  trim();
  // Edge-triggered notifications; a notify may take, subscribe or unsubscribe,
  // so each is looked up again before it runs.
  std::vector<std::uint64_t> due;
  for (auto& [id, sub] : subs_) {
    if (sub.armed && sub.notify) {
      sub.armed = false;
      due.push_back(id);
    }
  }
  for (const std::uint64_t id : due) {
    const auto it = subs_.find(id);
    if (it == subs_.end()) continue;
    auto notify = it->second.notify;  // a copy: the notify may unsubscribe itself
    notify();
  }
}

void ChangeFeed::trim() {
  // Keep what the slowest subscriber has not taken, within `history_`.
  std::uint64_t oldest_needed = next_seq_;
  for (const auto& [id, sub] : subs_) oldest_needed = std::min(oldest_needed, sub.next);
  while (!ring_.empty() && (ring_.size() > history_ || ring_.front().seq < oldest_needed)) {
    ring_.pop_front();
  }
}

ChangeFeed::Batch ChangeFeed::take(std::uint64_t id, std::size_t max) {
  Batch batch;
  const auto it = subs_.find(id);
  if (it == subs_.end()) return batch;
  Sub& sub = it->second;
  const std::uint64_t first_held = next_seq_ - ring_.size();
  // Within the subscriber's capacity and what the ring still holds.
  const std::uint64_t floor =
      std::max(first_held, next_seq_ - std::min<std::uint64_t>(sub.capacity, next_seq_ - 1));
  if (sub.next < floor) {
    batch.missed = floor - sub.next;
    sub.next = floor;
  }
  const std::uint64_t count = std::min<std::uint64_t>(next_seq_ - sub.next, max);
  batch.events.reserve(count);
  for (std::uint64_t s = sub.next; s < sub.next + count; ++s) {
    batch.events.push_back(ring_[s - first_held]);
  }
  sub.next += count;
  if (sub.next == next_seq_) sub.armed = true;
  return batch;
}

std::uint64_t ChangeFeed::pending(std::uint64_t id) const {
  const auto it = subs_.find(id);
  return it == subs_.end() ? 0 : next_seq_ - it->second.next;
}

void ChangeFeed::drop(std::uint64_t id) { subs_.erase(id); }

ChangeFeed::Subscription::Subscription(Subscription&& other) noexcept
    : feed_(other.feed_), id_(other.id_) {
  other.feed_ = nullptr;
}

ChangeFeed::Subscription& ChangeFeed::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    feed_ = other.feed_;
    id_ = other.id_;
    other.feed_ = nullptr;
  }
  return *this;
}

ChangeFeed::Subscription::~Subscription() { reset(); }

void ChangeFeed::Subscription::reset() {
  if (feed_ != nullptr) feed_->drop(id_);
  feed_ = nullptr;
}

ChangeFeed::Batch ChangeFeed::Subscription::take(std::size_t max) {
  return feed_ == nullptr ? Batch{} : feed_->take(id_, max);
}

std::uint64_t ChangeFeed::Subscription::pending() const {
  return feed_ == nullptr ? 0 : feed_->pending(id_);
}

}  // namespace regfs
