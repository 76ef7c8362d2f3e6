// The read orchestrator with a hand-moved clock and checks the test completes:
// parked reads, deadlines, single flight, reaping, and what a refused write leaves.
#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <unistd.h>

#include "registrar.hpp"

using namespace regfs;
namespace stdfs = std::filesystem;

namespace {

struct TempDir {
  stdfs::path path;
  TempDir() {
    char tmpl[] = "/tmp/regfs-node-test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { stdfs::remove_all(path); }
};

struct TestClock final : Clock {
  Time t{seconds(1000)};
  Time wanted{Duration::max()};
  Time now() const override { return t; }
  void wake_at(Time when) override { wanted = when; }
};

struct TestChecker final : Checker {
  struct Call {
    Endpoint endpoint;
    Done done;
  };
  std::vector<Call> calls;
  void check(const Endpoint& endpoint, const Check&, Duration, Done done) override {
    calls.push_back({endpoint, std::move(done)});
  }
  // Completes check `i` (each at most once).
  void complete(std::size_t i, bool healthy) {
    auto done = std::move(calls.at(i).done);
    REQUIRE(done);
    done(CheckResult{healthy, healthy ? "connected" : "connection refused"});
  }
  std::size_t open() const {
    return static_cast<std::size_t>(std::count_if(calls.begin(), calls.end(),
                                                  [](const Call& c) { return bool(c.done); }));
  }
};

struct Sink final : fs::ChangeSink {
  std::vector<std::string> changed;
  void service_changed(const std::string& service) override { changed.push_back(service); }
};

// Records what the registrar replicates; refuses publishes while `refuse` is set.
struct RecordingReplicator final : Replicator {
  explicit RecordingReplicator(std::vector<std::pair<std::string, std::size_t>>& out) : log(out) {}
  std::vector<std::pair<std::string, std::size_t>>& log;
  bool refuse = false;
  void restore(const std::string& service, const std::vector<InstanceSpec>& specs) override {
    log.emplace_back(service, specs.size());
  }
  Status publish(const std::string& service, const std::vector<InstanceSpec>& specs) override {
    if (refuse) return Error{Errc::timed_out, "store unreachable"};
    log.emplace_back(service, specs.size());
    return ok_status();
  }
  std::vector<MemberView> members() const override { return {}; }
  StoreView store_view() const override { return StoreView{}; }
  std::string metrics_text() const override { return {}; }
  void leave(std::function<void()> done) override { done(); }
};

// One read's outcome, once it has one.
struct Outcome {
  std::optional<Result<fs::Answer>> got;
  fs::Backend::AnswerFn fn() {
    return [this](Result<fs::Answer> a) {
      REQUIRE_FALSE(got.has_value());  // exactly once
      got = std::move(a);
    };
  }
  bool answered() const { return got.has_value(); }
  std::string content() const { return got && got->ok() ? (*got)->content : "(error)"; }
  Errc error() const { return got && !got->ok() ? got->error().code : Errc::io; }
};

struct Fixture {
  TempDir dir;
  StateStore store = *StateStore::open(dir.path.string());
  TestClock clock;
  TestChecker checker;
  Sink sink;
  std::vector<std::pair<std::string, std::size_t>> replicated;  // service, instances
  RecordingReplicator replicator{replicated};
  std::vector<std::unique_ptr<Outcome>> outcomes;  // outlive the node, which may answer on stop
  std::unique_ptr<Registrar> node;

  explicit Fixture(RegistrarConfig config = defaults()) {
    node = std::make_unique<Registrar>(clock, checker, store, config);
    node->add_sink(&sink);
    REQUIRE(node->start().ok());
    node->set_replicator(&replicator);
  }
  static RegistrarConfig defaults() {
    RegistrarConfig c;
    c.name = "n1";
    c.advertise = "127.0.0.1";
    c.fresh = seconds(1);
    c.read_timeout = seconds(1);
    c.wait_timeout = seconds(5);
    c.reap_after = seconds(10);
    c.check_interval = seconds(2);
    return c;
  }
  // Moves the clock to `until`, ticking the node at every time it asked for.
  void advance(Duration d) {
    const Time until = clock.t + d;
    for (int i = 0; i < 100000 && clock.wanted <= until; ++i) {
      clock.t = std::max(clock.t, clock.wanted);
      node->tick();
    }
    clock.t = until;
  }
  Outcome& read(fs::FileKind kind, const std::string& service, const std::string& suspect = "") {
    outcomes.push_back(std::make_unique<Outcome>());
    node->answer(kind, service, suspect, outcomes.back()->fn());
    return *outcomes.back();
  }
};

}  // namespace

TEST_CASE("a parked read is answered when its check completes") {
  Fixture f;
  REQUIRE(f.node->write("web", "10.0.0.1:80", false).ok());
  auto& r = f.read(fs::FileKind::one, "web");
  CHECK_FALSE(r.answered());  // no verdict yet: parked
  REQUIRE(f.checker.calls.size() == 1);
  CHECK(f.clock.wanted == f.clock.t + seconds(1));  // its deadline
  f.checker.complete(0, true);
  REQUIRE(r.answered());
  CHECK(r.content() == "10.0.0.1:80\n");
  CHECK(f.clock.wanted == f.clock.t + seconds(2));  // only the background round is left
  // Within the freshness window the next read is served at once, without a check.
  auto& again = f.read(fs::FileKind::one, "web");
  CHECK(again.content() == "10.0.0.1:80\n");
  CHECK(f.checker.calls.size() == 1);
}

TEST_CASE("the read deadline answers host_down when no healthy verdict comes") {
  Fixture f;
  REQUIRE(f.node->write("web", "10.0.0.1:80\n10.0.0.2:80", false).ok());
  auto& r = f.read(fs::FileKind::one, "web");
  REQUIRE(f.checker.calls.size() == 2);
  f.checker.complete(0, false);  // one fails, the other hangs
  CHECK_FALSE(r.answered());
  f.advance(milliseconds(999));
  CHECK_FALSE(r.answered());
  f.advance(milliseconds(1));  // the final replan
  REQUIRE(r.answered());
  CHECK(r.error() == Errc::host_down);
  // The hanging check ending later answers nobody twice, and its verdict counts.
  f.checker.complete(1, true);
  CHECK(f.read(fs::FileKind::one, "web").content() == "10.0.0.2:80\n");
}

TEST_CASE(".wait/ reads wait for a registration, and time out") {
  Fixture f;
  auto& late = f.read(fs::FileKind::wait, "web");
  auto& never = f.read(fs::FileKind::wait, "nobody");
  f.advance(seconds(1));
  CHECK_FALSE(late.answered());
  f.node->apply_remote("web", "n2", {*parse_line("10.0.0.7:80", Limits{})});
  REQUIRE(f.checker.calls.size() == 1);
  f.checker.complete(0, true);
  CHECK(late.content() == "10.0.0.7:80\n");
  CHECK_FALSE(never.answered());
  f.advance(seconds(4));
  REQUIRE(never.answered());
  CHECK(never.error() == Errc::timed_out);
}

TEST_CASE("many concurrent reads share one check per instance") {
  Fixture f;
  REQUIRE(f.node->write("web", "10.0.0.1:80", false).ok());
  for (int i = 0; i < 100; ++i) {
    f.read(i % 2 == 0 ? fs::FileKind::one : fs::FileKind::all, "web");
  }
  CHECK(f.checker.calls.size() == 1);
  for (const auto& o : f.outcomes) CHECK_FALSE(o->answered());
  f.checker.complete(0, true);
  for (const auto& o : f.outcomes) CHECK(o->content() == "10.0.0.1:80\n");
  // Once the verdict is stale, the next read checks again, once.
  f.advance(milliseconds(1500));
  f.read(fs::FileKind::one, "web");
  f.read(fs::FileKind::one, "web");
  CHECK(f.checker.open() == 1);
}

TEST_CASE("an own instance failing longer than reap-after is reaped") {
  Fixture f;
  REQUIRE(f.node->write("web", "10.0.0.1:80\n10.0.0.2:80", false).ok());
  f.replicated.clear();
  // Background rounds every 2 s: instance 1 keeps failing, instance 2 passes.
  for (int round = 0; round < 8; ++round) {
    const std::size_t first = f.checker.calls.size();
    f.advance(seconds(2));
    REQUIRE(f.checker.calls.size() == first + 2);
    for (std::size_t i = first; i < f.checker.calls.size(); ++i) {
      f.checker.complete(i, f.checker.calls[i].endpoint.host == "10.0.0.2");
    }
    if (f.node->instance_count("web") == 1) break;
    CHECK(round < 6);  // first failure at 2 s, reaped by the check at 12 s
  }
  CHECK(f.node->instance_count("web") == 1);
  CHECK(f.node->metrics().reaped == 1);
  REQUIRE(f.replicated.size() == 1);
  CHECK(f.replicated[0] == std::pair<std::string, std::size_t>{"web", 1});
  auto loaded = StateStore::open(f.dir.path.string())->load();
  REQUIRE(loaded->at("web").size() == 1);
  CHECK(loaded->at("web")[0].endpoint.host == "10.0.0.2");
}

TEST_CASE("a write the state directory refuses changes nothing, in memory, on disk or on peers") {
  Fixture f;
  REQUIRE(f.node->write("web", "10.0.0.1:80", false).ok());
  f.replicated.clear();
  f.sink.changed.clear();
  auto fault = GENERATE(StateStore::Fault::file_fsync, StateStore::Fault::dir_fsync);
  bool failed = false;
  f.store.set_fault_hook([&](StateStore::Fault at) {
    if (at != fault || failed) return 0;
    failed = true;
    return EIO;
  });
  SECTION("replace") {
    const auto st = f.node->write("web", "10.0.0.9:80", false);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::io);
  }
  SECTION("add a service") {
    REQUIRE_FALSE(f.node->write("db", "10.0.0.9:5432", false).ok());
    CHECK(f.node->instance_count("db") == 0);
  }
  SECTION("remove") {
    fault = StateStore::Fault::dir_fsync;  // a removal writes no file
    REQUIRE_FALSE(f.node->remove("web").ok());
  }
  CHECK(failed);
  CHECK(f.replicated.empty());
  CHECK(f.sink.changed.empty());
  REQUIRE(f.node->instance_count("web") == 1);
  CHECK(f.node->registry().find("web")->instances[0].spec.endpoint.host == "10.0.0.1");
  f.store.set_fault_hook(nullptr);
  const auto loaded = *StateStore::open(f.dir.path.string())->load();
  CHECK(loaded.size() == 1);
  CHECK(loaded.at("web")[0].endpoint.host == "10.0.0.1");
  // The node goes on working once the directory does.
  CHECK(f.node->write("web", "10.0.0.9:80", true).ok());
  CHECK(f.node->instance_count("web") == 2);
}

TEST_CASE("stop fails parked reads and arms nothing more") {
  Fixture f;
  REQUIRE(f.node->write("web", "10.0.0.1:80", false).ok());
  auto& r = f.read(fs::FileKind::one, "web");
  f.node->stop();
  REQUIRE(r.answered());
  CHECK(r.error() == Errc::host_down);
  CHECK(f.clock.wanted == Time{Duration::max()});
  f.checker.complete(0, true);  // a check ending after stop is ignored
}

TEST_CASE("a re-read re-verifies the endpoint it was handed, at most once per recheck_after") {
  Fixture f;  // fresh 1 s; recheck_after 100 ms by default
  REQUIRE(f.node->write("web", "10.0.0.1:80\n10.0.0.2:80", false).ok());
  auto& first = f.read(fs::FileKind::one, "web");
  REQUIRE(f.checker.calls.size() == 2);
  f.checker.complete(0, true);
  f.checker.complete(1, true);
  REQUIRE(first.content() == "10.0.0.1:80\n");
  const auto reverified = [&] { return f.node->metrics().reverify_checks; };

  SECTION("within recheck_after the verdict stands") {
    f.advance(milliseconds(50));
    auto& again = f.read(fs::FileKind::one, "web", "10.0.0.1:80");
    CHECK(again.answered());
    CHECK(f.checker.calls.size() == 2);
    CHECK(reverified() == 0);
  }
  SECTION("the dead one fails its re-check and the other is served; the read waited for it") {
    // Rotation points at 10.0.0.2: one more read turns it back to the suspect.
    REQUIRE(f.read(fs::FileKind::one, "web").content() == "10.0.0.2:80\n");
    f.advance(milliseconds(150));
    // 10.0.0.2's verdict is fresh, so the re-read is served by it at once while
    // the suspect is checked.
    auto& again = f.read(fs::FileKind::one, "web", "10.0.0.1:80");
    CHECK(again.content() == "10.0.0.2:80\n");
    REQUIRE(f.checker.calls.size() == 3);
    CHECK(f.checker.calls[2].endpoint.host == "10.0.0.1");
    CHECK(reverified() == 1);
    f.checker.complete(2, false);
    // Another reader that suspects nothing is never handed the failed one
    // (the rotation starts at it again).
    CHECK(f.read(fs::FileKind::one, "web").content() == "10.0.0.2:80\n");
  }
  SECTION("nothing else healthy: the re-read waits for the check and fails host_down") {
    f.advance(milliseconds(150));
    REQUIRE(f.node->write("web", "10.0.0.1:80", false).ok());
    auto& again = f.read(fs::FileKind::one, "web", "10.0.0.1:80");
    CHECK_FALSE(again.answered());
    REQUIRE(f.checker.calls.size() == 3);
    f.checker.complete(2, false);
    REQUIRE(again.answered());
    CHECK(again.error() == Errc::host_down);
  }
  SECTION("a reader polling in a loop costs at most one check per endpoint per recheck_after") {
    // 2 s of a re-read every millisecond, every check answering in 1 ms.
    std::size_t next = 2;
    for (int ms = 0; ms < 2000; ++ms) {
      f.advance(milliseconds(1));
      for (; next < f.checker.calls.size(); ++next) f.checker.complete(next, true);
      auto& r = f.read(fs::FileKind::one, "web", ms % 2 == 0 ? "10.0.0.1:80" : "10.0.0.2:80");
      CHECK(r.answered());
    }
    // 2 endpoints x 2 s / 100 ms, and the plain checks as the 1 s window ends.
    CHECK(reverified() <= 2 * 20);
    CHECK(reverified() >= 2 * 15);
    CHECK(f.checker.calls.size() <= 2 + 2 * 20 + 4);
  }
  SECTION("off with recheck_after zero") {
    auto config = Fixture::defaults();
    config.recheck_after = Duration::zero();
    Fixture g(config);
    REQUIRE(g.node->write("web", "10.0.0.1:80", false).ok());
    g.read(fs::FileKind::one, "web");
    g.checker.complete(0, true);
    g.advance(milliseconds(500));
    CHECK(g.read(fs::FileKind::one, "web", "10.0.0.1:80").content() == "10.0.0.1:80\n");
    CHECK(g.checker.calls.size() == 1);
  }
}

TEST_CASE("a write the store refuses changes nothing, in memory or on disk, and fails with its error") {
  Fixture f;
  REQUIRE(f.node->write("web", "10.0.0.1:80", false).ok());
  f.replicated.clear();
  f.sink.changed.clear();
  f.replicator.refuse = true;
  SECTION("replace") {
    const auto st = f.node->write("web", "10.0.0.9:80", false);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::timed_out);
  }
  SECTION("add a service") {
    REQUIRE_FALSE(f.node->write("db", "10.0.0.9:5432", false).ok());
    CHECK(f.node->instance_count("db") == 0);
  }
  SECTION("remove") {
    REQUIRE_FALSE(f.node->remove("web").ok());
  }
  CHECK(f.replicated.empty());
  CHECK(f.sink.changed.empty());
  REQUIRE(f.node->instance_count("web") == 1);
  CHECK(f.node->registry().find("web")->instances[0].spec.endpoint.host == "10.0.0.1");
  const auto loaded = *StateStore::open(f.dir.path.string())->load();
  REQUIRE(loaded.size() == 1);
  CHECK(loaded.at("web")[0].endpoint.host == "10.0.0.1");
  f.replicator.refuse = false;
  REQUIRE(f.node->write("web", "10.0.0.9:80", false).ok());
  CHECK(f.replicated.size() == 1);
}

TEST_CASE("the change feed gets additions, removals and verdict flips, not first verdicts") {
  Fixture f;
  auto sub = f.node->feed().subscribe(64, nullptr);
  auto kinds = [&] {
    std::vector<std::string> out;
    for (const auto& e : sub.take().events) {
      out.push_back(std::string(to_string(e.kind)) + " " + e.service + " " + e.endpoint + " " +
                    e.owner + " " + to_string(e.verdict));
    }
    return out;
  };
  REQUIRE(f.node->write("web", "10.0.0.1:80\n:81", false).ok());
  CHECK(kinds() == std::vector<std::string>{"added web 10.0.0.1:80 n1 unknown",
                                            "added web 127.0.0.1:81 n1 unknown"});
  REQUIRE(f.node->write("web", "10.0.0.1:80", false).ok());
  CHECK(kinds() == std::vector<std::string>{"removed web 127.0.0.1:81 n1 unknown"});
  REQUIRE(f.node->write("web", "10.0.0.1:80", false).ok());  // no change: no event
  CHECK(kinds().empty());
  f.node->apply_remote("db", "n2", {*parse_line("10.0.0.7:5432", Limits{})});
  CHECK(kinds() == std::vector<std::string>{"added db 10.0.0.7:5432 n2 unknown"});

  // A first verdict is not a flip; a change of verdict is.
  f.read(fs::FileKind::one, "web");
  REQUIRE(f.checker.calls.size() == 1);
  f.checker.complete(0, true);
  CHECK(kinds().empty());
  f.advance(seconds(2));  // the background round checks own instances
  REQUIRE(f.checker.calls.size() == 2);
  f.checker.complete(1, false);
  CHECK(kinds() == std::vector<std::string>{"verdict web 10.0.0.1:80 n1 unhealthy"});
  f.advance(seconds(2));
  REQUIRE(f.checker.calls.size() == 3);
  f.checker.complete(2, false);  // the same verdict again: no event
  CHECK(kinds().empty());

  f.node->apply_remote("db", "n2", {});
  CHECK(kinds() == std::vector<std::string>{"removed db 10.0.0.7:5432 n2 unknown"});
  REQUIRE(f.node->remove("web").ok());
  CHECK(kinds() == std::vector<std::string>{"removed web 10.0.0.1:80 n1 unhealthy"});
}
