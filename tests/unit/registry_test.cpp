// The registry model, verdicts, read planning and rotation: pure, no clock.
#include <catch2/catch.hpp>

#include "core/read_plan.hpp"
#include "core/registry.hpp"

using namespace regfs;

namespace {
InstanceSpec spec(const std::string& host, std::uint16_t port) {
  return InstanceSpec{Endpoint{host, port}, Check{}};
}
Time at(int ms) { return Time{milliseconds(ms)}; }
}  // namespace

TEST_CASE("replace groups instances per owner") {
  Registry r;
  CHECK(r.replace("web", "n1", {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}));
  CHECK(r.replace("web", "n2", {spec("10.0.0.3", 80)}));
  CHECK(r.instance_count() == 3);
  CHECK_FALSE(r.replace("web", "n1", {spec("10.0.0.2", 80), spec("10.0.0.1", 80)}));
  CHECK(r.owned("web", "n1").size() == 2);
  CHECK(r.replace("web", "n1", {}));
  CHECK(r.instance_count() == 1);
  REQUIRE(r.find("web") != nullptr);
  CHECK(r.find("web")->instances.front().owner == "n2");
  CHECK(r.replace("web", "n2", {}));
  CHECK(r.find("web") == nullptr);
  CHECK(r.services().empty());
  CHECK(r.instance_count() == 0);
  CHECK_FALSE(r.replace("none", "n1", {}));
}

TEST_CASE("verdicts survive a replace that keeps the instance") {
  Registry r;
  r.replace("web", "n1", {spec("10.0.0.1", 80)});
  r.find("web")->instances[0].verdict.record(true, "ok", at(5));
  const auto v1 = r.find("web")->version;
  r.replace("web", "n1", {spec("10.0.0.1", 80), spec("10.0.0.2", 80)});
  const Service& svc = *r.find("web");
  CHECK(svc.version > v1);
  CHECK(svc.instances[0].verdict.healthy());
  CHECK(svc.instances[1].verdict.state == Verdict::State::unknown);
}

TEST_CASE("drop_owner removes an owner everywhere") {
  Registry r;
  r.replace("a", "n1", {spec("10.0.0.1", 80)});
  r.replace("b", "n1", {spec("10.0.0.1", 81)});
  r.replace("b", "n2", {spec("10.0.0.2", 81)});
  const auto changed = r.drop_owner("n1");
  CHECK(changed == std::vector<std::string>{"a", "b"});
  CHECK(r.find("a") == nullptr);
  CHECK(r.find("b")->instances.size() == 1);
  CHECK(r.drop_owner("n1").empty());
}

TEST_CASE("verdict state machine") {
  Verdict v;
  CHECK_FALSE(v.current(at(0)));
  v.record(false, "refused", at(100));
  CHECK(v.state == Verdict::State::unhealthy);
  CHECK(v.failing_since == at(100));
  v.record(false, "refused", at(200));
  CHECK(v.failing_since == at(100));  // the run of failures started at 100
  CHECK(v.reapable(at(1100), milliseconds(1000)));
  CHECK_FALSE(v.reapable(at(1099), milliseconds(1000)));
  v.record(true, "ok", at(300));
  CHECK_FALSE(v.reapable(at(5000), milliseconds(1000)));
  CHECK(v.current(at(300)));
  CHECK_FALSE(v.current(at(301)));
  v.record(false, "refused", at(400));
  CHECK(v.failing_since == at(400));
}

TEST_CASE("plan_one rotates over healthy instances and never serves a failed one") {
  Registry r;
  r.replace("web", "n1", {spec("10.0.0.1", 80), spec("10.0.0.2", 80), spec("10.0.0.3", 80)});
  Service& svc = *r.find("web");

  SECTION("unchecked instances must be checked first") {
    auto plan = plan_one(svc, at(0), false);
    CHECK(plan.kind == ReadPlan::Kind::wait);
    CHECK(plan.check.size() == 3);
    CHECK(plan_one(svc, at(0), true).kind == ReadPlan::Kind::fail);
  }
  SECTION("rotation visits every healthy instance in turn") {
    for (auto& inst : svc.instances) inst.verdict.record(true, "ok", at(10));
    std::vector<std::size_t> served;
    for (int i = 0; i < 6; ++i) {
      auto plan = plan_one(svc, at(0), false);
      REQUIRE(plan.kind == ReadPlan::Kind::serve);
      served.push_back(plan.serve.front());
      advance(svc, plan.serve.front());
    }
    CHECK(served == std::vector<std::size_t>{0, 1, 2, 0, 1, 2});
  }
  SECTION("a failed instance is skipped") {
    svc.instances[0].verdict.record(true, "ok", at(10));
    svc.instances[1].verdict.record(false, "refused", at(10));
    svc.instances[2].verdict.record(true, "ok", at(10));
    svc.cursor = 1;
    auto plan = plan_one(svc, at(0), false);
    REQUIRE(plan.kind == ReadPlan::Kind::serve);
    CHECK(plan.serve.front() == 2);
    CHECK(plan.check.empty());
  }
  SECTION("stale verdicts are checked even when another is served") {
    svc.instances[0].verdict.record(true, "ok", at(1));
    svc.instances[1].verdict.record(true, "ok", at(10));
    auto plan = plan_one(svc, at(5), false);
    REQUIRE(plan.kind == ReadPlan::Kind::serve);
    CHECK(plan.serve.front() == 1);
    CHECK(plan.check == std::vector<std::size_t>{0, 2});
  }
  SECTION("all failed: host down") {
    for (auto& inst : svc.instances) inst.verdict.record(false, "refused", at(10));
    auto plan = plan_one(svc, at(0), false);
    CHECK(plan.kind == ReadPlan::Kind::fail);
    CHECK(plan.error == Errc::host_down);
  }
  SECTION("a stale healthy verdict is never served as current") {
    for (auto& inst : svc.instances) inst.verdict.record(true, "ok", at(10));
    CHECK(plan_one(svc, at(11), false).kind == ReadPlan::Kind::wait);
    CHECK(plan_one(svc, at(11), true).kind == ReadPlan::Kind::fail);
  }
}

TEST_CASE("plan_one accepts only a recent verdict on the suspect of a re-read") {
  Registry r;
  r.replace("web", "n1", {spec("10.0.0.1", 80), spec("10.0.0.2", 80)});
  Service& svc = *r.find("web");
  svc.instances[0].verdict.record(true, "ok", at(10));
  svc.instances[1].verdict.record(true, "ok", at(10));

  SECTION("a suspect with an older verdict is checked and another healthy one served") {
    auto plan = plan_one(svc, at(0), false, Suspect{*parse_endpoint("10.0.0.1:80"), at(50)});
    REQUIRE(plan.kind == ReadPlan::Kind::serve);
    CHECK(plan.serve.front() == 1);
    CHECK(plan.check == std::vector<std::size_t>{0});
    CHECK(plan.reverify == std::vector<std::size_t>{0});
  }
  SECTION("a suspect verdict younger than the suspect's window is served as any other") {
    auto plan = plan_one(svc, at(0), false, Suspect{*parse_endpoint("10.0.0.1:80"), at(10)});
    REQUIRE(plan.kind == ReadPlan::Kind::serve);
    CHECK(plan.serve.front() == 0);
    CHECK(plan.check.empty());
    CHECK(plan.reverify.empty());
  }
  SECTION("the only other instance unchecked: the read waits for both checks") {
    svc.instances[1].verdict = Verdict{};
    auto plan = plan_one(svc, at(0), false, Suspect{*parse_endpoint("10.0.0.1:80"), at(50)});
    CHECK(plan.kind == ReadPlan::Kind::wait);
    CHECK(plan.check == std::vector<std::size_t>{0, 1});
    CHECK(plan.reverify == std::vector<std::size_t>{0});
  }
  SECTION("a stale verdict on the suspect is a plain check, not a re-verification") {
    auto plan = plan_one(svc, at(20), false, Suspect{*parse_endpoint("10.0.0.1:80"), at(50)});
    CHECK(plan.kind == ReadPlan::Kind::wait);
    CHECK(plan.check == std::vector<std::size_t>{0, 1});
    CHECK(plan.reverify.empty());
  }
  SECTION("an endpoint no longer registered suspects nothing") {
    auto plan = plan_one(svc, at(0), false, Suspect{*parse_endpoint("10.0.0.9:80"), at(50)});
    REQUIRE(plan.kind == ReadPlan::Kind::serve);
    CHECK(plan.serve.front() == 0);
    CHECK(plan.check.empty());
  }
}

TEST_CASE("plan_all waits for every verdict, then serves the healthy ones") {
  Registry r;
  r.replace("web", "n1", {spec("10.0.0.1", 80), spec("10.0.0.2", 80)});
  Service& svc = *r.find("web");
  svc.instances[0].verdict.record(true, "ok", at(10));
  CHECK(plan_all(svc, at(0), false).kind == ReadPlan::Kind::wait);
  auto final_plan = plan_all(svc, at(0), true);
  CHECK(final_plan.kind == ReadPlan::Kind::serve);
  CHECK(render_endpoints(svc, final_plan.serve) == "10.0.0.1:80\n");
  svc.instances[1].verdict.record(true, "ok", at(10));
  auto plan = plan_all(svc, at(0), false);
  CHECK(plan.kind == ReadPlan::Kind::serve);
  CHECK(render_endpoints(svc, plan.serve) == "10.0.0.1:80\n10.0.0.2:80\n");
}

TEST_CASE("merge_write: replace, append, limits") {
  Limits limits;
  limits.max_instances_per_service = 2;
  limits.max_services_per_node = 1;
  const std::vector<InstanceSpec> current{spec("10.0.0.1", 80)};

  auto replaced = merge_write(current, {spec("10.0.0.2", 80)}, WriteMode::replace, 1, limits);
  REQUIRE(replaced.ok());
  CHECK(*replaced == std::vector<InstanceSpec>{spec("10.0.0.2", 80)});

  auto appended = merge_write(current, {spec("10.0.0.2", 80)}, WriteMode::append, 1, limits);
  REQUIRE(appended.ok());
  CHECK(appended->size() == 2);

  auto again = merge_write(current, {spec("10.0.0.1", 80)}, WriteMode::append, 1, limits);
  REQUIRE(again.ok());
  CHECK(again->size() == 1);  // the same endpoint is not added twice

  auto over = merge_write(*appended, {spec("10.0.0.3", 80)}, WriteMode::append, 1, limits);
  REQUIRE_FALSE(over.ok());
  CHECK(over.error().code == Errc::too_many_instances);

  auto new_service = merge_write({}, {spec("10.0.0.3", 80)}, WriteMode::replace, 1, limits);
  REQUIRE_FALSE(new_service.ok());
  CHECK(new_service.error().code == Errc::too_many_services);
}

TEST_CASE("merge_write: remove takes out exactly the named instances") {
  const Limits limits;
  const std::vector<InstanceSpec> current{spec("10.0.0.1", 80), spec("10.0.0.2", 80),
                                          spec("10.0.0.3", 80)};
  auto one = merge_write(current, {spec("10.0.0.2", 80)}, WriteMode::remove, 1, limits);
  REQUIRE(one.ok());
  CHECK(*one == std::vector<InstanceSpec>{spec("10.0.0.1", 80), spec("10.0.0.3", 80)});

  // The check does not matter: the endpoint names the instance.
  InstanceSpec other_check = spec("10.0.0.1", 80);
  other_check.check = Check{Check::Kind::none, {}};
  auto by_endpoint = merge_write(*one, {other_check}, WriteMode::remove, 1, limits);
  REQUIRE(by_endpoint.ok());
  CHECK(*by_endpoint == std::vector<InstanceSpec>{spec("10.0.0.3", 80)});

  auto last = merge_write(*by_endpoint, {spec("10.0.0.3", 80)}, WriteMode::remove, 1, limits);
  REQUIRE(last.ok());
  CHECK(last->empty());

  // One endpoint this node does not hold fails the whole removal.
  auto missing = merge_write(current, {spec("10.0.0.1", 80), spec("10.0.0.9", 80)},
                             WriteMode::remove, 1, limits);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == Errc::not_found);
  auto none_held = merge_write({}, {spec("10.0.0.1", 80)}, WriteMode::remove, 0, limits);
  REQUIRE_FALSE(none_held.ok());
  CHECK(none_held.error().code == Errc::not_found);
}

TEST_CASE("replace reports what it removed and added, removed ones with their last verdict") {
  Registry r;
  std::vector<InstanceChange> diff;
  CHECK(r.replace("web", "n1", {spec("10.0.0.1", 80), spec("10.0.0.2", 80)}, &diff));
  REQUIRE(diff.size() == 2);
  CHECK(diff[0].added);
  CHECK(diff[1].added);
  r.find("web")->instances[0].verdict.record(false, "refused", at(3));
  diff.clear();
  CHECK_FALSE(r.replace("web", "n1", {spec("10.0.0.2", 80), spec("10.0.0.1", 80)}, &diff));
  CHECK(diff.empty());
  CHECK(r.replace("web", "n1", {spec("10.0.0.2", 80), spec("10.0.0.3", 80)}, &diff));
  REQUIRE(diff.size() == 2);
  CHECK_FALSE(diff[0].added);
  CHECK(diff[0].instance.spec == spec("10.0.0.1", 80));
  CHECK(diff[0].instance.owner == "n1");
  CHECK(diff[0].instance.verdict.state == Verdict::State::unhealthy);
  CHECK(diff[1].added);
  CHECK(diff[1].instance.spec == spec("10.0.0.3", 80));
}
