// This node's member list: one record per node name, found by name.
//
// Every daemon holds a record of every member, so at 10,000 members (and in
// the simulator, which holds every node's table in one process) the record's
// size is what counts. Records live in a deque: no allocation per record, and
// a record's address stays put while others are added. They are found through
// an open-addressing index of positions, 4 bytes per slot, at most half full.
//
// Iteration is in insertion order, and `erase_if` keeps the order of what
// stays: the order depends only on the sequence of calls, never on hash
// values, so the simulator stays deterministic.
//
// Pure; not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/messages.hpp"
#include "core/time.hpp"

namespace regfs::cluster {

struct MemberInfo {
  NodeId id;
  PeerAddr addr;
  std::uint32_t incarnation = 0;
  MemberState state = MemberState::alive;
  Time since{};  // when this node saw the state begin
  std::uint64_t announced = 0;  // registry version the member announced with its incarnation
  // When this node last received a frame from this life of the member itself
  // (a probe, an ack, gossip, a sync), not news of it from others; none yet
  // (and always none for this node's own record).
  std::optional<Time> heard{};
};

class MemberTable {
 public:
  using Member = MemberInfo;

  Member* find(std::string_view name);
  const Member* find(std::string_view name) const;
  // The record named `name`; a new one (second: true) with only the name set
  // when there was none. Pointers to other records stay valid.
  std::pair<Member*, bool> emplace(std::string_view name);
  // Erases the records for which `gone(record)` holds and returns how many.
  // When any was erased, every pointer to a record is invalid.
  template <class Pred>
  std::size_t erase_if(Pred gone);

  std::size_t size() const { return records_.size(); }
  auto begin() { return records_.begin(); }
  auto end() { return records_.end(); }
  auto begin() const { return records_.begin(); }
  auto end() const { return records_.end(); }

 private:
  static constexpr std::uint32_t kEmpty = 0;  // slots hold position + 1
  // The slot that holds `name`, or the empty slot where it would go.
  std::size_t slot_for(std::string_view name) const;
  void rebuild_index(std::size_t slots);

  std::deque<Member> records_;
  std::vector<std::uint32_t> index_;  // size: a power of two, or 0 before the first record
};

template <class Pred>
std::size_t MemberTable::erase_if(Pred gone) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < records_.size(); ++i) {
    if (gone(std::as_const(records_[i]))) continue;
    if (kept != i) records_[kept] = std::move(records_[i]);
    ++kept;
  }
  const std::size_t erased = records_.size() - kept;
  if (erased == 0) return 0;
  records_.resize(kept);
  rebuild_index(index_.size());
  return erased;
}

}  // namespace regfs::cluster
