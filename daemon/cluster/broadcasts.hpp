// The transmit-limited gossip queue (memberlist's TransmitLimitedQueue).
//
// Each queued rumor is an encoded message with a key naming what it is about
// ("m/<node>" or "e/<origin>/<service>"); queuing a rumor drops an older one
// with the same key, since the new one supersedes it. Packing takes the least
// transmitted rumors first (newest among equals) and retires a rumor once it
// went out `limit` times. Pure; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

namespace regfs::cluster {

class Broadcasts {
 public:
  void queue(std::string key, std::vector<std::uint8_t> message);

  // Appends to `out` the rumors that fit in `budget` bytes, counting one
  // transmission for each; rumors that reached `limit` are dropped.
  // Returns the number of bytes appended.
  std::size_t pack(std::vector<std::uint8_t>& out, std::size_t budget, int limit);

  bool empty() const { return order_.empty(); }
  std::size_t size() const { return order_.size(); }
  void clear() { order_.clear(); items_.clear(); }

 private:
  struct Item {
    std::vector<std::uint8_t> message;
    int transmits = 0;
    std::uint64_t id = 0;
  };
  // (transmits, -id): fewest transmissions first, newest first among equals.
  using Rank = std::tuple<int, std::int64_t, std::string>;
  std::map<std::string, Item, std::less<>> items_;
  std::set<Rank> order_;
  std::uint64_t next_id_ = 0;
};

}  // namespace regfs::cluster
