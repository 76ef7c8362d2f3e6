#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cluster/member_table.hpp"

using regfs::cluster::MemberState;
using regfs::cluster::MemberTable;

namespace {
std::vector<std::string> names(const MemberTable& t) {
  std::vector<std::string> out;
  for (const auto& m : t) out.push_back(m.id.name);
  return out;
}
}  // namespace

TEST_CASE("member table: finds what it holds, and only that") {
  MemberTable t;
  CHECK(t.find("a") == nullptr);
  auto [a, fresh] = t.emplace("a");
  REQUIRE(fresh);
  CHECK(a->id.name == "a");
  a->incarnation = 7;
  auto [again, fresh2] = t.emplace("a");
  CHECK_FALSE(fresh2);
  CHECK(again == a);
  CHECK(t.find("a")->incarnation == 7);
  CHECK(t.find("b") == nullptr);
  CHECK(t.size() == 1);
}

TEST_CASE("member table: thousands of names, records stay put while others are added") {
  MemberTable t;
  std::vector<const MemberTable::Member*> first;
  for (int i = 0; i < 5000; ++i) {
    auto [m, fresh] = t.emplace("node-" + std::to_string(i));
    REQUIRE(fresh);
    m->incarnation = static_cast<std::uint32_t>(i);
    if (i < 10) first.push_back(m);
  }
  CHECK(t.size() == 5000);
  for (int i = 0; i < 5000; ++i) {
    const auto* m = t.find("node-" + std::to_string(i));
    REQUIRE(m != nullptr);
    CHECK(m->incarnation == static_cast<std::uint32_t>(i));
  }
  for (int i = 0; i < 10; ++i) CHECK(t.find("node-" + std::to_string(i)) == first[static_cast<std::size_t>(i)]);
  CHECK(t.find("node-5000") == nullptr);
  CHECK(t.find("") == nullptr);
}

TEST_CASE("member table: erase_if keeps the order of what stays, and the index follows") {
  MemberTable t;
  for (const char* n : {"e", "d", "c", "b", "a"}) t.emplace(n);
  t.find("d")->state = MemberState::dead;
  t.find("a")->state = MemberState::dead;
  CHECK(t.erase_if([](const auto& m) { return m.state == MemberState::alive && m.id.name == "zz"; }) == 0);
  CHECK(t.erase_if([](const auto& m) { return m.state == MemberState::dead; }) == 2);
  CHECK(names(t) == std::vector<std::string>{"e", "c", "b"});
  CHECK(t.find("d") == nullptr);
  CHECK(t.find("a") == nullptr);
  REQUIRE(t.find("b") != nullptr);
  CHECK(t.find("b")->id.name == "b");
  // Names erased can come back, at the end.
  CHECK(t.emplace("a").second);
  CHECK(names(t) == std::vector<std::string>{"e", "c", "b", "a"});
}

TEST_CASE("member table: order is insertion order, whatever the names hash to") {
  MemberTable t;
  std::vector<std::string> want;
  for (int i = 99; i >= 0; --i) {
    want.push_back("n" + std::to_string(i * 37 % 100));
    t.emplace(want.back());
  }
  CHECK(names(t) == want);
}
