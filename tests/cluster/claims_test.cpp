// What a member holding the key can make a core believe (docs/SECURITY.md),
// and how a node's lives, incarnations and departure records hold up: cores
// driven by hand, fed forged frames from "mallory", a sender that is no member.
#include <catch2/catch.hpp>

#include <limits>

#include "mesh.hpp"

using namespace regfs;
using namespace regfs::cluster;
using regfs::cluster::testing::at;
using regfs::cluster::testing::Mesh;

namespace {

constexpr std::uint64_t G = 1'700'000'000'000'000;  // a wall-clock generation (µs)
constexpr std::uint32_t kLastIncarnation = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t kLastVersion = std::numeric_limits<std::uint64_t>::max();
const NodeId mallory{"mallory", G};

// a and b, b registering web.
struct Pair {
  Mesh net;
  std::size_t a, b;
  explicit Pair(Config cfg = {}) : net(std::move(cfg)) {
    a = net.add("a", G);
    b = net.add("b", G + 1, {a});
    net.run(seconds(1));
    REQUIRE(net.sees_alive(a, net[b].self()));
    REQUIRE(net[b].set_service(net.now, "web", at("10.0.0.2")).ok());
    net.run(milliseconds(100));
    REQUIRE(serves(a, "web", "10.0.0.2"));
  }
  bool serves(std::size_t n, const std::string& service, const std::string& host) {
    const auto* got = net[n].instances("b", service);
    return got != nullptr && got->size() == 1 && (*got)[0].endpoint.host == host;
  }
  // a holds b's current life alive and serves its web from 10.0.0.2.
  bool back() { return net.sees_alive(a, net[b].self()) && serves(a, "web", "10.0.0.2"); }
};

}  // namespace

// --- incarnations at their end ---

TEST_CASE("an accusation at the last incarnation makes the node start a new life", "[claims]") {
  Pair p;
  const NodeId old = p.net[p.b].self();
  p.net.inject(p.a, mallory, {Dead{old, kLastIncarnation, "mallory", false}});
  p.net.inject(p.b, mallory, {Dead{old, kLastIncarnation, "mallory", false}});
  // a knew b at a low incarnation: a jump to the last one is refused.
  CHECK(p.net[p.a].stats().refused >= 1);
  // b cannot outbid it (its refutation would wrap to 0): it lives again above.
  CHECK(p.net[p.b].self().generation == old.generation + 1);
  CHECK(p.net.reported(p.b) == old.generation + 1);
  CHECK(p.net[p.b].incarnation() == 0);
  CHECK(p.net.until(seconds(5), [&] { return p.back(); }) < seconds(1));
}

TEST_CASE("a node that took a death at the last incarnation lets the accused back as a new life", "[claims]") {
  Pair p;
  const NodeId old = p.net[p.b].self();
  // c never knew b: it cannot judge the incarnation and records the death.
  const std::size_t c = p.net.add("c", G + 2);
  p.net.inject(c, mallory, {Dead{old, kLastIncarnation, "mallory", false}});
  p.net[c].join(p.net.now, {p.net.addr(p.a), p.net.addr(p.b)});
  const auto took = p.net.until(seconds(10), [&] {
    const auto* got = p.net[c].instances("b", "web");
    return p.net.sees_alive(c, p.net[p.b].self()) && got != nullptr;
  });
  CHECK(took < seconds(3));
  CHECK(p.net[p.b].self().generation > old.generation);
}

TEST_CASE("an Alive at the last incarnation from another address redirects nothing", "[claims]") {
  Pair p;
  const NodeId old = p.net[p.b].self();
  p.net.inject(p.a, mallory, {Alive{old, kLastIncarnation, PeerAddr{"10.66.6.6:7946"}, 0}});
  const auto* rec = p.net.member(p.a, "b");
  REQUIRE(rec != nullptr);
  CHECK(rec->addr == p.net.addr(p.b));
  CHECK(rec->incarnation < 10);
  // Told the same, b starts a new life rather than wrap its incarnation.
  p.net.inject(p.b, mallory, {Alive{old, kLastIncarnation, PeerAddr{"10.66.6.6:7946"}, 0}});
  CHECK(p.net[p.b].self().generation == old.generation + 1);
  CHECK(p.net.until(seconds(5), [&] { return p.back(); }) < seconds(1));
  CHECK(p.net.member(p.a, "b")->addr == p.net.addr(p.b));
}

TEST_CASE("a refutation never makes a jump members refuse", "[claims]") {
  Config cfg;
  cfg.incarnation_jump_max = 64;
  Pair p(cfg);
  const NodeId old = p.net[p.b].self();
  // Within half the bound: refuted as usual, one above the accusation.
  p.net.inject(p.b, mallory, {Suspect{old, 20, "mallory"}});
  CHECK(p.net[p.b].self() == old);
  CHECK(p.net[p.b].incarnation() == 21);
  p.net.run(milliseconds(200));
  CHECK(p.net.member(p.a, "b")->incarnation == 21);
  // Beyond it: a new life, which a takes at once.
  p.net.inject(p.b, mallory, {Suspect{old, 21 + 40, "mallory"}});
  CHECK(p.net[p.b].self().generation == old.generation + 1);
  CHECK(p.net.until(seconds(5), [&] { return p.back(); }) < seconds(1));
  // a refuses an incarnation more than the bound above the one it holds.
  p.net.inject(p.a, mallory, {Suspect{p.net[p.b].self(), 65, "mallory"}});
  CHECK(p.net.member(p.a, "b")->state == MemberState::alive);
}

TEST_CASE("a member that missed forced refutations takes the node back once it holds it suspect", "[claims]") {
  Config cfg;
  cfg.incarnation_jump_max = 64;
  Mesh net(cfg);
  const std::size_t a = net.add("a", G), b = net.add("b", G + 1, {a}), c = net.add("c", G + 2, {a, b});
  net.run(seconds(2));
  const NodeId id = net[b].self();
  // While a sleeps, accusations just under half the bound push b's
  // incarnation three times; c follows each step.
  net.freeze(a, true);
  for (std::uint32_t accused : {30u, 61u, 92u}) {
    net.inject(b, mallory, {Suspect{id, accused, "mallory"}});
    net.run(milliseconds(100));
  }
  REQUIRE(net[b].self() == id);
  REQUIRE(net[b].incarnation() == 93);
  net.run(milliseconds(200));
  REQUIRE(net.member(c, "b")->incarnation == 93);
  net.freeze(a, false);
  net.run(milliseconds(500));
  CHECK(net.member(a, "b")->incarnation < 93);  // a jump of 93 from a member held alive: refused
  // b stops answering for a moment: a suspects it at the incarnation it holds.
  net.freeze(b, true);
  REQUIRE(net.until(seconds(5), [&] { return net.member(a, "b")->state != MemberState::alive; }) < seconds(5));
  net.freeze(b, false);
  const auto took = net.until(seconds(10), [&] {
    const auto* m = net.member(a, "b");
    return m->state == MemberState::alive && m->incarnation >= 93;
  });
  CHECK(took < seconds(3));
  CHECK(net[b].self() == id);
}

// --- generations ---

TEST_CASE("a generation beyond the receiver's clock is refused", "[claims]") {
  Pair p;
  const auto refused = p.net[p.a].stats().refused;
  p.net.inject(p.a, mallory, {Dead{NodeId{"b", kLastVersion}, 0, "mallory", false}});
  p.net.inject(p.a, mallory, {Alive{NodeId{"zed", G + 25ull * 3600 * 1000000}, 0, PeerAddr{"z:1"}, 0}});
  CHECK(p.net.sees_alive(p.a, p.net[p.b].self()));
  CHECK(p.net.member(p.a, "zed") == nullptr);
  // A whole frame from such a life goes, answered or not.
  p.net.inject(p.a, NodeId{"mallory", kLastVersion}, {Ping{7, p.net[p.a].self()}});
  CHECK(p.net[p.a].stats().refused == refused + 3);
  // A life started an hour ahead of this node's clock is still a life.
  p.net.inject(p.a, mallory, {Alive{NodeId{"soon", G + 3600ull * 1000000}, 0, PeerAddr{"s:1"}, 0}});
  CHECK(p.net.member(p.a, "soon") != nullptr);
  CHECK(p.serves(p.a, "web", "10.0.0.2"));
}

TEST_CASE("a death of a newer life, within the clock, sends the node to a life above it", "[claims]") {
  Pair p;
  const NodeId old = p.net[p.b].self();
  const NodeId newer{"b", old.generation + 1000};
  p.net.inject(p.a, mallory, {Dead{newer, 0, "mallory", false}});
  CHECK(p.net[p.a].instances("b", "web") == nullptr);  // a key holder can do this
  // a tells the dead life's address (b's); b lives above the death.
  const auto took = p.net.until(seconds(10), [&] { return p.back(); });
  CHECK(took < seconds(2));
  CHECK(p.net[p.b].self().generation == newer.generation + 1);
}

TEST_CASE("a member that does not exist is declared dead within seconds", "[claims]") {
  Pair p;
  const NodeId ghost{"ghost", G + 7};
  p.net.inject(p.a, mallory, {Alive{ghost, 0, PeerAddr{"10.66.6.7:7946"}, 0}});
  REQUIRE(p.net.sees_alive(p.a, ghost));
  const auto took = p.net.until(seconds(10), [&] {
    const auto* m = p.net.member(p.a, "ghost");
    return m != nullptr && m->state == MemberState::dead;
  });
  CHECK(took < seconds(3));
  CHECK(p.back());
}

// --- versions and watermarks ---

TEST_CASE("a snapshot claiming completeness beyond what it carries freezes nothing", "[claims]") {
  Pair p;
  const NodeId b = p.net[p.b].self();
  // Far beyond what a holds of b: refused whole.
  p.net.inject(p.a, mallory, {OriginChunk{b, 0, kLastVersion, true, {}}}, Channel::stream);
  p.net.inject(p.a, mallory, {Entry{b, "web", 1ull << 30, at("10.66.6.6")}});
  // Within reach, but carrying nothing up to it: completeness goes no further.
  p.net.inject(p.a, mallory, {OriginChunk{b, 0, 1000, false, {}}}, Channel::stream);
  p.net.inject(p.a, mallory, {OriginChunk{b, 0, 1000, true, {{"web", 1, at("10.0.0.2")}}}}, Channel::stream);
  CHECK(p.net[p.a].store().origins().at("b").complete == 1);
  CHECK(p.net[p.a].stats().refused >= 2);
  // b's next change is served.
  REQUIRE(p.net[p.b].set_service(p.net.now, "db", at("10.0.0.2", 5432)).ok());
  p.net.run(milliseconds(50));
  CHECK(p.net[p.a].instances("b", "db") != nullptr);
  CHECK(p.serves(p.a, "web", "10.0.0.2"));
  CHECK(p.net[p.a].store().origins().at("b").complete == 2);
}

TEST_CASE("an announced version beyond reach is refused; one about this node's own life starts a new one", "[claims]") {
  Pair p;
  const NodeId b = p.net[p.b].self();
  p.net.inject(p.a, mallory, {Alive{b, 5, p.net.addr(p.b), kLastVersion}});
  CHECK(p.net.member(p.a, "b")->incarnation < 5);
  CHECK(p.net[p.a].store().behind().empty());
  // No honest member holds a version of b's life that b never issued.
  p.net.inject(p.b, mallory, {Alive{b, 0, p.net.addr(p.b), 5000}});
  CHECK(p.net[p.b].self().generation == b.generation + 1);
  CHECK(p.net.until(seconds(5), [&] { return p.back(); }) < seconds(1));
}

TEST_CASE("a forged entry within reach is served until its origin sees it, then the origin lives anew", "[claims]") {
  Pair p;
  const NodeId b = p.net[p.b].self();
  // A key holder can forge any origin's entries: a takes this one.
  p.net.inject(p.a, mallory, {Entry{b, "web", 2, at("10.66.6.6")}});
  CHECK(p.serves(p.a, "web", "10.66.6.6"));
  // b's probe of a finds another registry hash; the push-pull shows b a
  // version of its own life it never issued.
  const auto took = p.net.until(seconds(10), [&] { return p.back(); });
  CHECK(took < seconds(3));
  CHECK(p.net[p.b].self().generation == b.generation + 1);
  CHECK(p.net[p.b].stats().new_lives == 1);
}

TEST_CASE("a digest of this node's own life beyond its version starts a new life", "[claims]") {
  Pair p;
  const NodeId b = p.net[p.b].self();
  SyncState st;
  st.stage = 2;
  st.digests.push_back(OriginDigest{b, 0, 1ull << 40});
  p.net.inject(p.b, mallory, {st}, Channel::stream);
  CHECK(p.net[p.b].self().generation == b.generation + 1);
  CHECK(p.net.until(seconds(5), [&] { return p.back(); }) < seconds(1));
}

TEST_CASE("a leave the node did not say is refuted", "[claims]") {
  Pair p;
  const NodeId b = p.net[p.b].self();
  p.net.inject(p.a, mallory, {Dead{b, p.net[p.b].incarnation(), "b", true}});
  CHECK(p.net.member(p.a, "b")->state == MemberState::left);
  p.net.inject(p.b, mallory, {Dead{b, p.net[p.b].incarnation(), "b", true}});
  CHECK(p.net.until(seconds(5), [&] { return p.back(); }) < seconds(1));
  CHECK(p.net[p.b].self() == b);
}

TEST_CASE("a node announces its version as it goes, so a member that joins later takes all of it", "[claims]") {
  Config cfg;
  cfg.version_jump_max = 64;
  Pair p(cfg);
  for (int i = 0; i < 300; ++i) {
    const std::string host = "10.0.1." + std::to_string(i % 250);
    REQUIRE(p.net[p.b].set_service(p.net.now, "s" + std::to_string(i % 7), at(host)).ok());
  }
  REQUIRE(p.net[p.b].set_service(p.net.now, "web", {}).ok());
  REQUIRE(p.net[p.b].set_service(p.net.now, "web", at("10.0.0.2")).ok());
  p.net.run(milliseconds(500));
  const std::size_t c = p.net.add("c", G + 2, {p.a});
  CHECK(p.net.until(seconds(5), [&] { return p.net[c].instances("b", "web") != nullptr; }) < seconds(2));
  for (int s = 0; s < 7; ++s) CHECK(p.net[c].instances("b", "s" + std::to_string(s)) != nullptr);
  // And an entry further than the bound beyond what c holds is refused.
  const auto top = p.net[c].store().origins().at("b").max;
  p.net.inject(c, mallory, {Entry{p.net[p.b].self(), "web", top + 65, at("10.66.6.6")}});
  CHECK(p.serves(c, "web", "10.0.0.2"));
}

// --- departure records ---

TEST_CASE("a long-dead member relayed as alive by a node that returns after its record expired is refused", "[claims]") {
  Config cfg;
  cfg.tombstone_ttl = seconds(10);
  cfg.departure_ttl = seconds(60);
  bool control = false;
  SECTION("with departure records kept for departure_ttl") {}
  SECTION("control: departure records kept no longer than member records") {
    cfg.departure_ttl = cfg.tombstone_ttl;
    control = true;
  }
  Mesh net(cfg);
  const std::size_t a = net.add("a", G), b = net.add("b", G + 1, {a}), c = net.add("c", G + 2, {a});
  net.run(seconds(2));
  REQUIRE(net[c].set_service(net.now, "db", at("10.0.0.3")).ok());
  net.run(milliseconds(200));
  REQUIRE(net[b].instances("c", "db") != nullptr);
  const NodeId dead = net[c].self();
  net.freeze(b, true);  // b sleeps, still holding c alive
  net.kill(c);
  net.run(seconds(25));
  REQUIRE(net.member(a, "c") == nullptr);  // a's member record of c is gone
  net.freeze(b, false);
  const auto took = net.until(seconds(5), [&] {
    return net.sees_alive(a, dead) || net[a].instances("c", "db") != nullptr;
  });
  if (control) {
    CHECK(took < seconds(5));  // the record is what keeps c out
  } else {
    CHECK(took > seconds(5));
    CHECK(net.sees_alive(a, net[b].self()));  // b itself is back
  }
}

TEST_CASE("a live node declared dead by a node that never knew it is accepted once it refutes", "[claims]") {
  Mesh net(Config{});
  const std::size_t a = net.add("a", G);
  const NodeId d_id{"d", G + 5};
  net.inject(a, mallory, {Dead{d_id, 0, "mallory", false}});
  const std::size_t d = net.add("d", G + 5, {a});
  REQUIRE(net[d].set_service(net.now, "api", at("10.0.0.4")).ok());
  const auto took = net.until(seconds(5), [&] {
    return net.sees_alive(a, d_id) && net[a].instances("d", "api") != nullptr;
  });
  CHECK(took < seconds(1));
  CHECK(net[d].incarnation() >= 1);
  CHECK(net[d].self() == d_id);
}

// --- a new life above the previous one ---

TEST_CASE("a node restarted with a generation below its previous life's is a member again within seconds", "[claims]") {
  Config cfg;
  cfg.tombstone_ttl = seconds(10);
  Mesh net(cfg);
  const std::size_t a = net.add("a", G);
  const std::size_t b = net.add("b", G + 1'000'000, {a});
  net.run(seconds(1));
  REQUIRE(net[b].set_service(net.now, "web", at("10.0.0.2")).ok());
  net.run(milliseconds(100));
  const NodeId old = net[b].self();
  net.kill(b);
  Duration limit = seconds(3);
  SECTION("the previous life is held dead") {
    REQUIRE(net.until(seconds(10), [&] { return net.member(a, "b")->state == MemberState::dead; }) < seconds(10));
  }
  SECTION("only the previous life's departure record is left") {
    net.run(seconds(25));
    REQUIRE(net.member(a, "b") == nullptr);
  }
  SECTION("the previous life is not yet declared dead") {
    limit = seconds(8);  // it is declared dead first
  }
  // The state directory is lost and the clock is a second behind.
  net.start(b, G, {a});
  REQUIRE(net[b].set_service(net.now, "web", at("10.0.0.2")).ok());
  const auto took = net.until(seconds(20), [&] {
    return net.sees_alive(a, net[b].self()) && net[a].instances("b", "web") != nullptr;
  });
  CHECK(took < limit);
  CHECK(net[b].self().generation > old.generation);
  CHECK(net.reported(b) == net[b].self().generation);
}
