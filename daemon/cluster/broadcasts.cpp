#include "cluster/broadcasts.hpp"

namespace regfs::cluster {

namespace {
// A packet is given up on after this many rumors in a row that do not fit in
// what is left of it; the rest wait for the next packet.
constexpr int kMaxMisses = 8;
}  // namespace

void Broadcasts::queue(std::string key, std::vector<std::uint8_t> message) {
  const Rank rank{0, -next_id_++};
  if (auto it = index_.find(key); it != index_.end()) {
    order_.erase(it->second);
    it->second = rank;
  } else {
    index_.emplace(key, rank);
  }
  order_.emplace(rank, Item{std::move(key), std::move(message)});
}

std::size_t Broadcasts::pack(std::vector<std::uint8_t>& out, std::size_t budget, int limit) {
  std::size_t used = 0;
  int misses = 0;
  std::vector<decltype(order_)::node_type> sent;
  for (auto it = order_.begin(); it != order_.end() && misses < kMaxMisses;) {
    const auto& msg = it->second.message;
    if (msg.size() > budget - used) {
      ++misses;
      ++it;
      continue;
    }
    misses = 0;
    out.insert(out.end(), msg.begin(), msg.end());
    used += msg.size();
    sent.push_back(order_.extract(it++));
  }
  for (auto& node : sent) {
    const int transmits = node.key().first + 1;
    if (transmits >= limit) {
      index_.erase(node.mapped().key);
      continue;
    }
    node.key().first = transmits;
    index_[node.mapped().key] = node.key();
    order_.insert(std::move(node));
  }
  return used;
}

}  // namespace regfs::cluster
