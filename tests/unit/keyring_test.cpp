#include <catch2/catch.hpp>

#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "transport/keyring.hpp"

using namespace regfs::transport;

namespace {
Keyring ring(std::initializer_list<std::string> keys) {
  std::string text;
  for (const auto& k : keys) text += k + "\n";
  auto r = Keyring::parse(text);
  REQUIRE(r.ok());
  return *r;
}
std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("keyring files") {
  const auto k1 = Keyring::generate_key();
  CHECK(k1.size() == 44);
  CHECK(Keyring::parse("# comment\n\n" + k1 + "\r\n").ok());
  CHECK_FALSE(Keyring::parse("").ok());
  CHECK_FALSE(Keyring::parse("# only a comment\n").ok());
  CHECK_FALSE(Keyring::parse("Zm9vYmFy\n").ok());  // too short
  CHECK_FALSE(Keyring::parse(k1 + "\nnot base64\n").ok());
}

TEST_CASE("seal and open, rotation, forgery") {
  const auto a = Keyring::generate_key();
  const auto b = Keyring::generate_key();
  const Keyring old_ring = ring({a});
  const Keyring rotating = ring({b, a});
  const Keyring other = ring({b});
  const auto msg = bytes("probe 42");

  auto sealed = old_ring.seal(SealKind::packet, 1, msg);
  CHECK(sealed.size() == msg.size() + kSealOverhead);
  REQUIRE(old_ring.open(SealKind::packet, sealed).ok());
  CHECK(*old_ring.open(SealKind::packet, sealed) == msg);
  CHECK(rotating.open(SealKind::packet, sealed).ok());      // the second key still opens
  CHECK_FALSE(other.open(SealKind::packet, sealed).ok());   // a stranger's key does not
  CHECK(old_ring.open(SealKind::packet, rotating.seal(SealKind::packet, 1, msg)).ok() == false);  // sends with its first key, b

  SECTION("every flipped bit is detected") {
    for (std::size_t i = 0; i < sealed.size(); ++i) {
      auto copy = sealed;
      copy[i] ^= 0x01;
      CHECK_FALSE(old_ring.open(SealKind::packet, copy).ok());
    }
  }
  SECTION("truncated and empty frames") {
    for (std::size_t n = 0; n < sealed.size(); ++n) {
      CHECK_FALSE(old_ring.open(SealKind::packet, std::span(sealed.data(), n)).ok());
    }
  }
  SECTION("a frame opens only as its own kind and with its own context") {
    const std::vector<std::uint8_t> challenge(16, 7), other_challenge(16, 8);
    const auto header = old_ring.seal(SealKind::stream_header, 5, msg, challenge);
    CHECK(old_ring.open(SealKind::stream_header, header, challenge).ok());
    CHECK_FALSE(old_ring.open(SealKind::stream_header, header, other_challenge).ok());
    CHECK_FALSE(old_ring.open(SealKind::stream_header, header).ok());
    CHECK_FALSE(old_ring.open(SealKind::stream_body, header, challenge).ok());
    CHECK_FALSE(old_ring.open(SealKind::stream_header, sealed, challenge).ok());
    auto relabelled = header;
    relabelled[3] = static_cast<std::uint8_t>(SealKind::stream_body);
    CHECK_FALSE(old_ring.open(SealKind::stream_body, relabelled, challenge).ok());
  }
  SECTION("the label is readable and cannot be altered") {
    const auto a1 = old_ring.seal(SealKind::packet, 1234567890123, msg);
    const auto a2 = old_ring.seal(SealKind::packet, 1234567890124, msg);
    const auto l1 = peek_label(a1), l2 = peek_label(a2);
    REQUIRE(l1);
    REQUIRE(l2);
    CHECK(l1->kind == SealKind::packet);
    CHECK(l1->time_ms == 1234567890123);
    CHECK(l1->stream == l2->stream);
    CHECK(l2->counter == l1->counter + 1);
    auto moved = a1;
    moved[35] ^= 1;  // the time stamp's last byte
    CHECK_FALSE(old_ring.open(SealKind::packet, moved).ok());
  }
  SECTION("nonces differ") { CHECK(old_ring.seal(SealKind::packet, 1, msg) != old_ring.seal(SealKind::packet, 1, msg)); }
}

TEST_CASE("no two sealed packets share a nonce, across threads and forks") {
  const auto ring = Keyring::parse(Keyring::generate_key());
  REQUIRE(ring.ok());
  const std::vector<std::uint8_t> plain{1, 2, 3};
  auto nonce_of = [](const std::vector<std::uint8_t>& sealed) {
    return std::vector<std::uint8_t>(sealed.begin() + 4, sealed.begin() + 4 + 24);
  };
  std::set<std::vector<std::uint8_t>> seen;
  for (int i = 0; i < 10000; ++i) {
    const auto sealed = ring->seal(SealKind::packet, 1, plain);
    REQUIRE(ring->open(SealKind::packet, sealed).ok());
    CHECK(seen.insert(nonce_of(sealed)).second);
  }
  std::vector<std::vector<std::uint8_t>> other;
  std::thread([&] {
    for (int i = 0; i < 100; ++i) other.push_back(nonce_of(ring->seal(SealKind::packet, 1, plain)));
  }).join();
  for (const auto& n : other) CHECK(seen.insert(n).second);

  // A forked child continues from the parent's state unless it draws anew.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const auto n = nonce_of(ring->seal(SealKind::packet, 1, plain));
    const bool ok = ::write(fds[1], n.data(), n.size()) == static_cast<ssize_t>(n.size());
    ::_exit(ok ? 0 : 1);
  }
  std::vector<std::uint8_t> from_child(24);
  REQUIRE(::read(fds[0], from_child.data(), from_child.size()) == 24);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(seen.insert(from_child).second);
  CHECK(seen.insert(nonce_of(ring->seal(SealKind::packet, 1, plain))).second);  // the parent's next one
}
