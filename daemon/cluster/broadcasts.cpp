#include "cluster/broadcasts.hpp"

namespace regfs::cluster {

void Broadcasts::queue(std::string key, std::vector<std::uint8_t> message) {
  auto it = items_.find(key);
  if (it != items_.end()) {
    order_.erase(Rank{it->second.transmits, -static_cast<std::int64_t>(it->second.id), key});
    items_.erase(it);
  }
  const std::uint64_t id = next_id_++;
  order_.insert(Rank{0, -static_cast<std::int64_t>(id), key});
  items_.emplace(std::move(key), Item{std::move(message), 0, id});
}

std::size_t Broadcasts::pack(std::vector<std::uint8_t>& out, std::size_t budget, int limit) {
  std::size_t used = 0;
  std::vector<Rank> sent;
  for (auto it = order_.begin(); it != order_.end() && budget - used > 2;) {
    const auto& key = std::get<2>(*it);
    auto item = items_.find(key);
    const auto& msg = item->second.message;
    if (msg.size() > budget - used) { ++it; continue; }
    out.insert(out.end(), msg.begin(), msg.end());
    used += msg.size();
    sent.push_back(*it);
    it = order_.erase(it);
  }
  for (auto& rank : sent) {
    auto item = items_.find(std::get<2>(rank));
    item->second.transmits++;
    if (item->second.transmits >= limit) {
      items_.erase(item);
    } else {
      std::get<0>(rank) = item->second.transmits;
      order_.insert(std::move(rank));
    }
  }
  return used;
}

}  // namespace regfs::cluster
