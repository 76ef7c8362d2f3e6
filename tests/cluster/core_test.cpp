// The core driven through the simulator on a clean network: the life of a
// registration and of a node, step by step.
#include <catch2/catch.hpp>

#include "mesh.hpp"
#include "sim/scenario.hpp"
#include "sim/sim.hpp"

using namespace regfs;
using namespace regfs::cluster;
using regfs::sim::Sim;

namespace {

std::vector<InstanceSpec> at(std::string host, std::uint16_t port = 80) {
  return {InstanceSpec{Endpoint{std::move(host), port}, Check{}}};
}

bool everyone_has(Sim& sim, const std::string& origin, const std::string& service, bool has) {
  for (std::size_t i = 0; i < sim.size(); ++i) {
    if (!sim.up(i) || (!has && sim.name(i) == origin)) continue;
    if ((sim.node(i).instances(origin, service) != nullptr) != has) return false;
  }
  return true;
}

Time until(Sim& sim, Duration limit, const std::function<bool()>& done) {
  const Time start = sim.now();
  while (!done() && sim.now() - start < limit) sim.run_for(milliseconds(1));
  return sim.now();
}

void grow(Sim& sim, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) sim.add();
  sim.run_for(seconds(2));
}

}  // namespace

TEST_CASE("nodes join through a seed and see each other alive", "[node]") {
  Sim sim(1, sim::scenario_config());
  grow(sim, 5);
  for (std::size_t i = 0; i < sim.size(); ++i) {
    CHECK(sim.node(i).live_members() == 5);
    for (const auto& m : sim.node(i).members()) CHECK(m.state == MemberState::alive);
  }
}

TEST_CASE("a member's last heard moves with the frames it sends, not with news of it", "[node]") {
  testing::Mesh net{Config{}};
  const std::size_t a = net.add("a", 1);
  const std::size_t b = net.add("b", 1, {a});
  const std::size_t c = net.add("c", 1, {a});
  net.run(seconds(1));
  REQUIRE(net.sees_alive(a, net[b].self()));
  REQUIRE(net.sees_alive(a, net[c].self()));
  CHECK_FALSE(net.member(a, "a")->heard);  // never from itself
  // Probes and acks: b is heard from every probe interval or so.
  for (int i = 0; i < 10; ++i) {
    net.run(Config{}.probe_interval);
    REQUIRE(net.member(a, "b")->heard);
    CHECK(net.now - *net.member(a, "b")->heard <= 2 * Config{}.probe_interval);
  }
  // b suspended: c's rumors of it (suspect, then dead) and an Alive of it
  // from c reach a, but nothing from b itself.
  net.freeze(b, true);
  const Time last = *net.member(a, "b")->heard;
  net.inject(a, net[c].self(), {Alive{net[b].self(), net[b].incarnation(), net.addr(b)}});
  CHECK(*net.member(a, "c")->heard == net.now);
  CHECK(*net.member(a, "b")->heard == last);
  CHECK(net.until(seconds(10), [&] { return net.member(a, "b")->state == MemberState::dead; }) <
        seconds(10));
  CHECK(*net.member(a, "b")->heard == last);
  CHECK(net.now - last > seconds(1));
  // One frame from b, even to the node that holds it dead: heard now.
  net.inject(a, net[b].self(), {Ping{7, net[a].self()}});
  CHECK(*net.member(a, "b")->heard == net.now);
}

TEST_CASE("a registration reaches every member within milliseconds", "[node]") {
  Sim sim(2, sim::scenario_config());
  grow(sim, 8);
  std::vector<std::pair<std::size_t, ServiceChange>> seen;
  sim.on_events = [&](std::size_t n, const Events& e) {
    for (const auto& c : e.services) seen.push_back({n, c});
  };
  const Time start = sim.now();
  REQUIRE(sim.set_service(3, "web", at("10.0.0.3", 8080)).ok());
  const Time done = until(sim, seconds(1), [&] { return everyone_has(sim, "n3", "web", true); });
  CHECK(done - start < milliseconds(20));
  CHECK(seen.size() == 8);  // each node reported the change once
  CHECK(sim.node(0).holders("web") == std::vector<std::string>{"n3"});
  CHECK(sim.node(0).services() == std::vector<std::string>{"web"});
  REQUIRE(sim.set_service(3, "web", {}).ok());
  until(sim, seconds(1), [&] { return everyone_has(sim, "n3", "web", false); });
  CHECK(everyone_has(sim, "n3", "web", false));
  CHECK(sim.node(5).holders("web").empty());
}

TEST_CASE("bad registrations are refused and change nothing", "[node]") {
  Sim sim(3, sim::scenario_config());
  grow(sim, 2);
  CHECK(sim.set_service(0, ".hidden", at("h")).error().code == Errc::invalid_name);
  std::vector<InstanceSpec> many;
  for (int i = 0; i < 257; ++i) many.push_back(at("h", static_cast<std::uint16_t>(i))[0]);
  CHECK(sim.set_service(0, "web", many).error().code == Errc::too_many_instances);
  CHECK(sim.node(0).services().empty());
}

TEST_CASE("a killed node is declared dead and its instances vanish; a restart supersedes it", "[node]") {
  Sim sim(4, sim::scenario_config());
  grow(sim, 6);
  REQUIRE(sim.set_service(2, "db", at("10.0.0.2", 5432)).ok());
  sim.run_for(seconds(1));
  REQUIRE(everyone_has(sim, "n2", "db", true));
  const auto old_life = sim.node(2).self();
  sim.kill(2);
  const Time start = sim.now();
  const Time gone = until(sim, seconds(10), [&] { return everyone_has(sim, "n2", "db", false); });
  CHECK(gone - start < seconds(5));
  for (std::size_t i = 0; i < sim.size(); ++i) {
    if (!sim.up(i)) continue;
    for (const auto& m : sim.node(i).members()) {
      if (m.id.name == "n2") CHECK(m.state == MemberState::dead);
    }
  }
  // The restarted node comes back with its registration, as a new life.
  sim.restart(2);
  CHECK(sim.node(2).self().generation > old_life.generation);
  until(sim, seconds(5), [&] { return everyone_has(sim, "n2", "db", true); });
  CHECK(everyone_has(sim, "n2", "db", true));
  for (const auto& m : sim.node(0).members()) {
    if (m.id.name == "n2") CHECK(m.state == MemberState::alive);
  }
}

TEST_CASE("a graceful leave removes the node's instances at once", "[node]") {
  Sim sim(5, sim::scenario_config());
  grow(sim, 6);
  REQUIRE(sim.set_service(4, "cache", at("10.0.0.4", 6379)).ok());
  sim.run_for(seconds(1));
  sim.leave(4);
  const Time start = sim.now();
  const Time gone = until(sim, seconds(2), [&] { return everyone_has(sim, "n4", "cache", false); });
  CHECK(gone - start < milliseconds(50));
  for (const auto& m : sim.node(0).members()) {
    if (m.id.name == "n4") CHECK(m.state == MemberState::left);
  }
}

TEST_CASE("a node cut off briefly refutes its suspicion and is never declared dead", "[node]") {
  Sim sim(6, sim::scenario_config());
  grow(sim, 6);
  REQUIRE(sim.set_service(1, "api", at("10.0.0.1")).ok());
  sim.run_for(seconds(1));
  const auto before = sim.node(1).incarnation();
  // n1 hears everyone but nobody hears it: probes of n1 fail.
  for (std::size_t i = 0; i < sim.size(); ++i) if (i != 1) sim.partition_oneway(1, i);
  bool suspected = false;
  sim.on_events = [&](std::size_t, const Events& e) {
    for (const auto& m : e.members) {
      if (m.id.name == "n1") {
        suspected = suspected || m.state == MemberState::suspect;
        CHECK(m.state != MemberState::dead);
      }
    }
  };
  sim.run_for(milliseconds(700));
  sim.heal();
  sim.run_for(seconds(2));
  CHECK(suspected);
  CHECK(sim.node(1).incarnation() > before);
  CHECK(everyone_has(sim, "n1", "api", true));
}

TEST_CASE("a node that cannot get acks raises its own awareness", "[node][lifeguard]") {
  Sim sim(7, sim::scenario_config());
  grow(sim, 5);
  for (std::size_t i = 0; i < sim.size(); ++i) if (i != 0) sim.partition_oneway(i, 0);
  sim.run_for(seconds(2));
  CHECK(sim.node(0).awareness() > 0);
  for (std::size_t i = 1; i < sim.size(); ++i) CHECK(sim.node(i).awareness() == 0);
}

TEST_CASE("garbage frames are counted and ignored", "[node]") {
  Core n(Config{}, NodeId{"n", 1}, PeerAddr{"n"}, 1, Time{});
  const std::vector<std::uint8_t> junk{'R', 'G', 1, 0, 200};
  n.handle(Time{}, PeerAddr{"x"}, junk);
  CHECK(n.stats().bad_frames == 1);
  CHECK(n.take_events().services.empty());
}

TEST_CASE("a lone node retries its seeds after 1, 2, 4 s, then every 4 s", "[node]") {
  // The seed is not up yet: nothing ever answers.
  const Config cfg;
  const Time t0{};
  const PeerAddr seed{"10.0.0.9:7946"};
  Core node(cfg, NodeId{"a", 1}, PeerAddr{"10.0.0.1:7946"}, 7, t0);
  node.join(t0, {seed});
  std::vector<Duration> contacts;
  for (Time now = t0; now <= t0 + seconds(100); now = now + milliseconds(100)) {
    node.tick(now);
    for (const auto& o : node.take_outgoing()) {
      if (o.to == seed && o.channel == Channel::stream) contacts.push_back(now - t0);
    }
  }
  // Alone there is nothing to lose by asking: a node cut off from its seeds
  // before it met anyone joins within rejoin_alone_max of them coming back.
  std::vector<Duration> expected{seconds(0), seconds(1), seconds(3)};
  for (Duration t = seconds(7); t <= seconds(100); t += cfg.rejoin_alone_max) expected.push_back(t);
  CHECK(contacts == expected);
}

TEST_CASE("a lone node with rumors to spread wakes only for its rounds of housekeeping", "[node]") {
  const Config cfg;
  Time now{};
  Core node(cfg, NodeId{"a", 1}, PeerAddr{"10.0.0.1:7946"}, 7, now);
  REQUIRE(node.set_service(now, "web", at("10.0.0.1", 8080)).ok());
  // Drive it as the daemon does: wake at each deadline the core names.
  int wakes = 0;
  const Time end = now + seconds(10);
  while (now < end) {
    node.tick(now);
    (void)node.take_outgoing();
    now = std::max(node.next_deadline(), now + milliseconds(1));
    ++wakes;
  }
  // Purge and push-pull rounds: not a gossip round every 20 ms (500), nor a
  // probe every 200 ms (50) with nobody to probe.
  CHECK(wakes <= 10 * 1000 / static_cast<int>(cfg.purge_interval / milliseconds(1)) + 3);

  // Once somebody joins, the rumor still goes out to it, and probes start again.
  const auto probes_alone = node.stats().probes;
  const PeerAddr b{"10.0.0.2:7946"};
  Core other(cfg, NodeId{"b", 1}, b, 8, now);
  other.join(now, {PeerAddr{"10.0.0.1:7946"}});
  bool heard = false;
  for (int step = 0; step < 3000; ++step) {
    for (auto& o : other.take_outgoing()) node.handle(now, b, o.bytes);
    for (auto& o : node.take_outgoing()) {
      if (o.to == b) other.handle(now, PeerAddr{"10.0.0.1:7946"}, o.bytes);
    }
    node.tick(now);
    other.tick(now);
    heard = heard || other.instances("a", "web") != nullptr;
    now = now + milliseconds(1);
  }
  CHECK(heard);
  CHECK(node.stats().probes >= probes_alone + 3000 / 200 - 1);
}
