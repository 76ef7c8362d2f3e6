#include <catch2/catch.hpp>

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

TEST_CASE("base64 round trip and rejection") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    const auto enc = base64_encode(bytes(s));
    auto dec = base64_decode(enc);
    REQUIRE(dec.ok());
    CHECK(std::string(dec->begin(), dec->end()) == s);
  }
  CHECK(base64_encode(bytes("foobar")) == "Zm9vYmFy");
  CHECK_FALSE(base64_decode("Zm9").ok());
  CHECK_FALSE(base64_decode("Zm9v!mFy").ok());
  CHECK_FALSE(base64_decode("Z=9v").ok());
}

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

  auto sealed = old_ring.seal(msg);
  CHECK(sealed.size() == msg.size() + kSealOverhead);
  REQUIRE(old_ring.open(sealed).ok());
  CHECK(*old_ring.open(sealed) == msg);
  CHECK(rotating.open(sealed).ok());      // the second key still opens
  CHECK_FALSE(other.open(sealed).ok());   // a stranger's key does not
  CHECK(old_ring.open(rotating.seal(msg)).ok() == false);  // sends with its first key, b

  SECTION("every flipped bit is detected") {
    for (std::size_t i = 0; i < sealed.size(); ++i) {
      auto copy = sealed;
      copy[i] ^= 0x01;
      CHECK_FALSE(old_ring.open(copy).ok());
    }
  }
  SECTION("truncated and empty frames") {
    for (std::size_t n = 0; n < sealed.size(); ++n) {
      CHECK_FALSE(old_ring.open(std::span(sealed.data(), n)).ok());
    }
  }
  SECTION("nonces differ") { CHECK(old_ring.seal(msg) != old_ring.seal(msg)); }
}
