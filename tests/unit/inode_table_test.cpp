#include <catch2/catch.hpp>

#include "fs/inode_table.hpp"

using namespace regfs::fs;

namespace {
const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1);
}

TEST_CASE("an answer is one inode per content, and a new one once retired") {
  InodeTable t;
  Inode& a = t.file(FileKind::one, "web", "10.0.0.1:80\n", 0);
  CHECK(&t.file(FileKind::one, "web", "10.0.0.1:80\n", 0) == &a);
  CHECK(&t.file(FileKind::one, "web", "10.0.0.2:80\n", 0) != &a);
  a.nlookup = 1;
  const fuse_ino_t a_ino = a.ino;
  t.retire(a);
  Inode& fresh = t.file(FileKind::one, "web", "10.0.0.1:80\n", 0);
  CHECK(fresh.ino != a_ino);
  CHECK(t.find(a_ino) == &a);  // still referenced by the kernel
  t.forget(a_ino, 1, t0);  // frees `a`
  CHECK(t.find(a_ino) == nullptr);
  CHECK(t.find(fresh.ino) == &fresh);  // retiring one did not drop its successor
}

TEST_CASE("a held answer outlives the kernel's forget until the hold ends") {
  InodeTable t;
  Inode& a = t.file(FileKind::one, "web", "10.0.0.1:80\n", 0);
  const fuse_ino_t ino = a.ino;
  t.hold(a, t0);
  a.nlookup = 2;
  t.forget(ino, 2, t0 + std::chrono::milliseconds(10));
  REQUIRE(t.find(ino) != nullptr);  // a readlink named it 10 ms ago
  t.sweep("web", t0 + std::chrono::seconds(1));
  CHECK(t.find(ino) != nullptr);
  t.sweep("web", t0 + InodeTable::kHold);
  CHECK(t.find(ino) == nullptr);
  // Gone means gone: the same content gets a new number.
  CHECK(t.file(FileKind::one, "web", "10.0.0.1:80\n", 0).ino != ino);
}

TEST_CASE("a referenced inode survives a sweep; other services are untouched") {
  InodeTable t;
  Inode& a = t.file(FileKind::one, "web", "a\n", 0);
  Inode& b = t.file(FileKind::one, "api", "b\n", 0);
  a.nlookup = 1;
  const fuse_ino_t a_ino = a.ino, b_ino = b.ino;
  t.sweep("web", t0);
  CHECK(t.find(a_ino) != nullptr);
  CHECK(t.find(b_ino) != nullptr);  // unreferenced, but its service did not change
  t.sweep("api", t0);
  CHECK(t.find(b_ino) == nullptr);
}

TEST_CASE("one link per service and kind, dropped when the kernel forgets it") {
  InodeTable t;
  Inode& l = t.link(FileKind::one, "web");
  CHECK(l.type == InodeType::link);
  CHECK(l.kind == FileKind::one);
  CHECK(&t.link(FileKind::one, "web") == &l);
  CHECK(&t.link(FileKind::one, "api") != &l);
  Inode& w = t.link(FileKind::wait, "web");  // .wait/web: a link of its own
  CHECK(&w != &l);
  CHECK(w.kind == FileKind::wait);
  CHECK(&t.link(FileKind::wait, "web") == &w);
  t.forget(w.ino, 1, t0);  // never looked up: dropped at once
  const fuse_ino_t ino = l.ino;
  l.nlookup = 3;
  t.forget(ino, 1, t0);
  CHECK(t.find(ino) != nullptr);
  t.forget(ino, 5, t0);  // more than it holds: clamps, then drops
  CHECK(t.find(ino) == nullptr);
  CHECK(t.link(FileKind::one, "web").ino != ino);
  CHECK(t.inodes_of("web").size() == 1);
}

TEST_CASE("directories are never forgotten") {
  InodeTable t;
  for (fuse_ino_t dir : {kRootIno, kAllIno, kWaitIno, kAnswersIno}) {
    t.forget(dir, 1000, t0);
    CHECK(t.find(dir) != nullptr);
  }
  CHECK(t.find(kAnswersIno)->type == InodeType::dir_answers);
}

TEST_CASE("an answer the kernel forgot while it was held is collected once the hold ends") {
  InodeTable t;
  Inode& a = t.file(FileKind::one, "web", "10.0.0.1:80\n", 0);
  Inode& b = t.file(FileKind::one, "api", "10.0.0.2:80\n", 0);
  const fuse_ino_t a_ino = a.ino, b_ino = b.ino;
  t.hold(a, t0);
  t.hold(b, t0);
  a.nlookup = b.nlookup = 1;
  t.forget(a_ino, 1, t0);
  t.hold(b, t0 + std::chrono::seconds(1));  // named by a readlink again
  t.collect(t0 + InodeTable::kHold - std::chrono::milliseconds(1));
  CHECK(t.find(a_ino) != nullptr);
  t.collect(t0 + InodeTable::kHold);  // no change to "web" needed
  CHECK(t.find(a_ino) == nullptr);
  CHECK(t.find(b_ino) != nullptr);  // held longer, and referenced
  t.forget(b_ino, 1, t0 + InodeTable::kHold);
  t.collect(t0 + InodeTable::kHold + std::chrono::seconds(1));
  CHECK(t.find(b_ino) == nullptr);
  t.collect(t0 + std::chrono::hours(1));  // the queue is empty: nothing to do
  CHECK(t.size() == 5);  // the directories and the .events link
}

TEST_CASE("every inode forgotten is reported once, with its service; fixed inodes never are") {
  InodeTable t;
  std::vector<std::pair<fuse_ino_t, std::string>> erased;
  t.on_erase([&](fuse_ino_t ino, const std::string& service) { erased.emplace_back(ino, service); });
  const auto t0 = Clock::now();
  Inode& a = t.file(FileKind::one, "web", "10.0.0.1:80\n", 0);
  const fuse_ino_t a_ino = a.ino;
  a.nlookup = 1;
  Inode& s = t.stream();
  const fuse_ino_t s_ino = s.ino;
  CHECK(s.kind == FileKind::events);
  t.hold(s, t0);
  t.forget(a_ino, 1, t0);
  t.forget(kEventsIno, 1, t0);
  t.collect(t0 + InodeTable::kHold);
  CHECK(erased == std::vector<std::pair<fuse_ino_t, std::string>>{{a_ino, "web"}, {s_ino, ""}});
  REQUIRE(t.find(kEventsIno) != nullptr);
  CHECK(t.find(kEventsIno)->type == InodeType::events);
}
