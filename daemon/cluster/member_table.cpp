#include "cluster/member_table.hpp"

#include <functional>

namespace regfs::cluster {

std::size_t MemberTable::slot_for(std::string_view name) const {
  const std::size_t mask = index_.size() - 1;
  std::size_t slot = std::hash<std::string_view>{}(name) & mask;
  // Linear probing; the index is at most half full, so an empty slot ends it.
  while (index_[slot] != kEmpty && records_[index_[slot] - 1].id.name != name) {
    slot = (slot + 1) & mask;
  }
  return slot;
}

MemberTable::Member* MemberTable::find(std::string_view name) {
  return const_cast<Member*>(std::as_const(*this).find(name));
}

const MemberTable::Member* MemberTable::find(std::string_view name) const {
  if (index_.empty()) return nullptr;
  const std::uint32_t at = index_[slot_for(name)];
  return at == kEmpty ? nullptr : &records_[at - 1];
}

std::pair<MemberTable::Member*, bool> MemberTable::emplace(std::string_view name) {
  if (Member* m = find(name)) return {m, false};
  if ((records_.size() + 1) * 2 > index_.size()) {
    rebuild_index(index_.empty() ? 16 : index_.size() * 2);
  }
  Member& m = records_.emplace_back();
  m.id.name = name;
  index_[slot_for(name)] = static_cast<std::uint32_t>(records_.size());
  return {&m, true};
}

void MemberTable::rebuild_index(std::size_t slots) {
  index_.assign(slots, kEmpty);
  for (std::size_t i = 0; i < records_.size(); ++i) {
    index_[slot_for(records_[i].id.name)] = static_cast<std::uint32_t>(i + 1);
  }
}

}  // namespace regfs::cluster
