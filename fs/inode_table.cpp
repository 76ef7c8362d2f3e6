#include "inode_table.hpp"

namespace regfs::fs {

InodeTable::InodeTable() {
  add_dir(kRootIno, InodeType::root);
  add_dir(kAllIno, InodeType::dir_all);
  add_dir(kWaitIno, InodeType::dir_wait);
  add_dir(kAnswersIno, InodeType::dir_answers);
  add_dir(kEventsIno, InodeType::events);
  find(kEventsIno)->kind = FileKind::events;
}

void InodeTable::add_dir(fuse_ino_t ino, InodeType type) {
  auto node = std::make_unique<Inode>();
  node->ino = ino;
  node->type = type;
  nodes_.emplace(ino, std::move(node));
}

Inode* InodeTable::find(fuse_ino_t ino) {
  const auto it = nodes_.find(ino);
  return it == nodes_.end() ? nullptr : it->second.get();
}

Inode& InodeTable::add(std::unique_ptr<Inode> node) {
  node->ino = next_ino_++;
  Inode& ref = *node;
  if (!ref.service.empty()) by_service_.emplace(ref.service, ref.ino);
  nodes_.emplace(ref.ino, std::move(node));
  return ref;
}

Inode& InodeTable::file(FileKind kind, const std::string& service, const std::string& content,
                       int error) {
  Key key{kind, service, content, error};
  if (const auto it = by_answer_.find(key); it != by_answer_.end()) return *nodes_.at(it->second);
  auto node = std::make_unique<Inode>();
  node->kind = kind;
  node->service = service;
  node->content = content;
  node->error = error;
  node->snapshot = kind == FileKind::all || kind == FileKind::status || kind == FileKind::metrics;
  Inode& ref = add(std::move(node));
  by_answer_.emplace(std::move(key), ref.ino);
  return ref;
}

Inode& InodeTable::link(FileKind kind, const std::string& service) {
  auto key = std::make_pair(kind, service);
  if (const auto it = links_.find(key); it != links_.end()) return *nodes_.at(it->second);
  auto node = std::make_unique<Inode>();
  node->type = InodeType::link;
  node->kind = kind;
  node->service = service;
  Inode& ref = add(std::move(node));
  links_.emplace(std::move(key), ref.ino);
  return ref;
}

Inode& InodeTable::stream() {
  auto node = std::make_unique<Inode>();
  node->kind = FileKind::events;
  node->snapshot = true;
  return add(std::move(node));
}

void InodeTable::retire(Inode& node) {
  const auto it = by_answer_.find(Key{node.kind, node.service, node.content, node.error});
  if (it != by_answer_.end() && it->second == node.ino) by_answer_.erase(it);
}

std::vector<Inode*> InodeTable::inodes_of(const std::string& service) {
  std::vector<Inode*> found;
  const auto [first, last] = by_service_.equal_range(service);
  for (auto it = first; it != last; ++it) found.push_back(nodes_.at(it->second).get());
  return found;
}

bool InodeTable::unused(const Inode& node, Clock::time_point now) const {
  return node.nlookup == 0 && node.held_until <= now &&
         (node.type == InodeType::file || node.type == InodeType::link);
}

void InodeTable::hold(Inode& node, Clock::time_point now) {
  node.held_until = now + kHold;
  if (node.hold_queued) return;  // collect() finds the later end when it comes to it
  holds_.emplace(node.held_until, node.ino);
  node.hold_queued = true;
}

void InodeTable::collect(Clock::time_point now) {
  // Bounded: each pass removes an entry, and puts one back only later than now.
  while (!holds_.empty() && holds_.begin()->first <= now) {
    const fuse_ino_t ino = holds_.begin()->second;
    holds_.erase(holds_.begin());
    Inode* node = find(ino);
    if (node == nullptr) continue;
    node->hold_queued = false;
    if (node->held_until > now) {
      holds_.emplace(node->held_until, ino);  // held again since it was queued
      node->hold_queued = true;
    } else if (unused(*node, now)) {
      erase(ino);
    }
  }
}

void InodeTable::forget(fuse_ino_t ino, std::uint64_t n, Clock::time_point now) {
  Inode* node = find(ino);
  if (node == nullptr) return;
  node->nlookup = n >= node->nlookup ? 0 : node->nlookup - n;
  if (unused(*node, now)) erase(ino);
}

void InodeTable::sweep(const std::string& service, Clock::time_point now) {
  for (const Inode* node : inodes_of(service)) {
    if (unused(*node, now)) erase(node->ino);
  }
}

void InodeTable::erase(fuse_ino_t ino) {
  const auto it = nodes_.find(ino);
  Inode& node = *it->second;
  if (node.type == InodeType::link) {
    links_.erase({node.kind, node.service});
  } else {
    retire(node);
  }
  const auto [first, last] = by_service_.equal_range(node.service);
  for (auto s = first; s != last; ++s) {
    if (s->second == ino) {
      by_service_.erase(s);
      break;
    }
  }
  const std::string service = std::move(node.service);
  nodes_.erase(it);
  if (on_erase_) on_erase_(ino, service);
}

}  // namespace regfs::fs
