// The transmit-limited gossip queue (memberlist's TransmitLimitedQueue).
//
// Each queued rumor is an encoded message with a key naming what it is about
// ("m/<node>" or "e/<origin>/<service>"); queuing a rumor drops an older one
// with the same key, since the new one supersedes it. Packing takes the least
// transmitted rumors first (newest among equals) and retires a rumor once it
// went out `limit` times. Packing costs O(rumors packed), not O(rumors
// queued): it gives up on a packet after a few rumors that do not fit.
// Pure; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
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
  void clear() { order_.clear(); index_.clear(); }

 private:
  // (transmits, -id): fewest transmissions first, newest first among equals.
  using Rank = std::pair<int, std::int64_t>;
  struct Item {
    std::string key;
    std::vector<std::uint8_t> message;
  };
  std::map<Rank, Item> order_;
  std::unordered_map<std::string, Rank> index_;
  std::int64_t next_id_ = 0;
};

}  // namespace regfs::cluster
