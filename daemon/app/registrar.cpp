#include "registrar.hpp"

#include <algorithm>
#include <malloc.h>
#include <spdlog/spdlog.h>

#include "core/prometheus.hpp"
#include "core/read_plan.hpp"

namespace regfs {

Time steady_now() { return Time{std::chrono::steady_clock::now().time_since_epoch()}; }

// A read of one/all/wait parked until checks answer or its deadline passes.
struct Registrar::Read {
  fs::FileKind kind;
  std::string service;
  Time arrival;
  Time since;  // oldest verdict this read accepts
  Suspect suspect;  // the endpoint the reader asks again about (one, wait)
  AnswerFn done;
  Timers::iterator deadline;  // in timers_, or timers_.end()
  Timers::iterator retry;     // .wait/: look again while nothing is healthy
  bool finished = false;
};

Registrar::Registrar(Clock& clock, Checker& checker, StateStore& store, RegistrarConfig config)
    : clock_(clock), checker_(checker), store_(store), config_(std::move(config)) {}

Registrar::~Registrar() { stop(); }

Result<std::size_t> Registrar::start() {
  auto loaded = store_.load();
  if (!loaded) return loaded.error();
  for (auto& [service, specs] : *loaded) {
    registry_.replace(service, config_.name, resolve(specs));
    own_.emplace(service, std::move(specs));
  }
  background_at_ = clock_.now() + config_.check_interval;
  rearm();
  return own_.size();
}

void Registrar::stop() {
  if (stopped_) return;
  stopped_ = true;
  background_at_ = Time{Duration::max()};
  auto parked = std::move(reads_);
  reads_.clear();
  for (auto& [service, reads] : parked) {
    for (auto& read : reads) finish(read, Error{Errc::host_down, "daemon stopping"});
  }
  timers_.clear();
  rearm();
}

Time Registrar::next_deadline() const {
  if (stopped_) return Time{Duration::max()};
  const Time first = timers_.empty() ? Time{Duration::max()} : timers_.begin()->first;
  return std::min(first, background_at_);
}

void Registrar::rearm() {
  const Time next = next_deadline();
  if (next == armed_for_) return;
  armed_for_ = next;
  clock_.wake_at(next);
}

void Registrar::tick() {
  armed_for_ = Time{Duration::max()};  // the Clock's request has fired
  const Time now = clock_.now();
  // Bounded: each pass removes one timer, and what it fires adds timers only
  // later than now (a retry is at least 1 ms away).
  while (!stopped_ && !timers_.empty() && timers_.begin()->first <= now) {
    const auto it = timers_.begin();
    const Timer timer = it->second;
    (timer.retry ? timer.read->retry : timer.read->deadline) = timers_.end();
    timers_.erase(it);
    if (timer.retry) {
      timer.read->since = now;
      replan(timer.read, false);
    } else {
      replan(timer.read, true);
    }
  }
  if (!stopped_ && background_at_ <= now) {
    background_at_ = now + config_.check_interval;
    background_round();
  }
  rearm();
}

// ---- reads -----------------------------------------------------------------

fs::Backend::Abandon Registrar::answer(fs::FileKind kind, const std::string& service,
                                      const std::string& suspect, AnswerFn done) {
  const Time now = clock_.now();
  if (kind == fs::FileKind::status) {
    NodeView view{config_.name, config_.generation, config_.advertise, {}, {}};
    if (replicator_ != nullptr) {
      view.members = replicator_->members();
      view.store = replicator_->store_view();
      // The cluster may have moved this node to a new life since it started.
      for (const auto& m : view.members) {
        if (m.self && m.generation != 0) view.generation = m.generation;
      }
    } else {
      view.members = {MemberView{config_.name, config_.bind, "alive", 0, config_.generation, true}};
    }
    done(fs::Answer{render_status(registry_, view, now), Duration::zero()});
    return {};
  }
  if (kind == fs::FileKind::metrics) {
    std::size_t deciding = 0;
    for (const auto& [name, reads] : reads_) deciding += reads.size();
    PrometheusText gauges;
    gauges.gauge("regfs_reads_in_progress", "Reads being decided (checks, .wait/ retries).",
                 deciding);
    std::string extra = gauges.take();
    for (const auto& source : metric_sources_) extra += source();
    done(fs::Answer{render_metrics(metrics_, registry_, extra), Duration::zero()});
    return {};
  }
  if (stopped_) {
    done(Error{Errc::host_down, "daemon stopping"});
    return {};
  }
  const Duration timeout = kind == fs::FileKind::wait ? config_.wait_timeout : config_.read_timeout;
  Suspect suspected;
  if (!suspect.empty() && config_.recheck_after > Duration::zero() && kind != fs::FileKind::all) {
    // What this node rendered: it parses (a text that does not suspects nothing).
    if (auto endpoint = parse_endpoint(suspect)) {
      suspected = Suspect{std::move(*endpoint), now - config_.recheck_after};
    }
  }
  auto read = std::make_shared<Read>(Read{kind, service, now, now - config_.fresh,
                                          std::move(suspected), std::move(done), timers_.end(),
                                          timers_.end(), false});
  start_read(read, now + timeout);
  rearm();
  if (read->finished) return {};
  return [this, weak = std::weak_ptr<Read>(read)] {
    if (auto r = weak.lock()) abandon(r);
  };
}

void Registrar::start_read(const std::shared_ptr<Read>& read, Time deadline) {
  reads_[read->service].push_back(read);
  replan(read, false);
  if (read->finished) return;  // served from fresh verdicts: no timer armed
  read->deadline = timers_.emplace(deadline, Timer{read, false});
}

void Registrar::replan(const std::shared_ptr<Read>& read, bool final) {
  if (read->finished || stopped_) return;
  const bool waits = read->kind == fs::FileKind::wait;
  Service* svc = registry_.find(read->service);
  if (svc == nullptr) {
    if (waits && !final) return;  // a registration will wake it
    return finish(read, Error{waits ? Errc::timed_out : Errc::not_found, read->service});
  }
  const ReadPlan plan = read->kind == fs::FileKind::all
                            ? plan_all(*svc, read->since, final)
                            : plan_one(*svc, read->since, final, read->suspect);
  for (std::size_t i : plan.check) {
    const bool started = start_check(read->service, svc->instances[i]);
    if (started && std::find(plan.reverify.begin(), plan.reverify.end(), i) != plan.reverify.end()) {
      ++metrics_.reverify_checks;
    }
  }

  if (plan.kind == ReadPlan::Kind::serve) {
    fs::Answer answer{render_endpoints(*svc, plan.serve), Duration::zero()};
    const Time now = clock_.now();
    if (read->kind != fs::FileKind::all) advance(*svc, plan.serve.front());
    // An answer may be kept while its verdicts stay fresh; .all must look
    // again next open when some instance is unhealthy (it may recover).
    Duration left = Duration::max();
    for (std::size_t i : plan.serve) {
      left = std::min(left, svc->instances[i].verdict.checked_at + config_.fresh - now);
    }
    if (read->kind == fs::FileKind::all && plan.serve.size() != svc->instances.size()) {
      left = Duration::zero();
    }
    answer.cache_for = std::max(left, Duration::zero());
    answer.rotates = read->kind != fs::FileKind::all && svc->instances.size() > 1;
    return finish(read, std::move(answer));
  }
  if (plan.kind == ReadPlan::Kind::wait) return;  // checks will replan
  if (waits && !final) {
    // Nothing healthy yet: check again shortly, with fresh verdicts.
    if (read->retry != timers_.end()) timers_.erase(read->retry);
    const Duration pause = std::clamp<Duration>(config_.wait_timeout, milliseconds(1), milliseconds(250));
    read->retry = timers_.emplace(clock_.now() + pause, Timer{read, true});
    return;
  }
  finish(read, Error{waits ? Errc::timed_out : Errc::host_down, read->service});
}

bool Registrar::retire(const std::shared_ptr<Read>& read) {
  if (read->finished) return false;
  read->finished = true;
  if (read->deadline != timers_.end()) timers_.erase(read->deadline);
  if (read->retry != timers_.end()) timers_.erase(read->retry);
  read->deadline = read->retry = timers_.end();
  if (auto it = reads_.find(read->service); it != reads_.end()) {
    std::erase(it->second, read);
    if (it->second.empty()) reads_.erase(it);
  }
  return true;
}

void Registrar::finish(const std::shared_ptr<Read>& read, Result<fs::Answer> answer) {
  if (!retire(read)) return;
  ++metrics_.reads;
  metrics_.read_latency.observe(clock_.now() - read->arrival);
  if (!answer.ok()) {
    switch (answer.error().code) {
      case Errc::not_found: ++metrics_.reads_not_found; break;
      case Errc::host_down: ++metrics_.reads_host_down; break;
      case Errc::timed_out: ++metrics_.waits_timed_out; break;
      default: break;
    }
  }
  read->done(std::move(answer));
}

void Registrar::abandon(const std::shared_ptr<Read>& read) {
  if (retire(read)) rearm();
}

void Registrar::replan_service(const std::string& service) {
  const auto it = reads_.find(service);
  if (it == reads_.end()) return;
  const auto reads = it->second;  // replan may finish (and erase) any of them
  for (const auto& read : reads) replan(read, false);
}

// ---- checks ----------------------------------------------------------------

bool Registrar::start_check(const std::string& service, const Instance& inst) {
  InstanceKey key{service, inst.owner, inst.spec};
  if (!in_flight_.insert(key).second) return false;  // single flight
  ++metrics_.checks;
  const Time started = clock_.now();
  checker_.check(inst.spec.endpoint, inst.spec.check, config_.read_timeout,
                 [this, key = std::move(key), started](const CheckResult& result) {
                   recorded(key, result, started);
                   rearm();
                 });
  return true;
}

void Registrar::recorded(const InstanceKey& key, const CheckResult& result, Time started) {
  in_flight_.erase(key);
  if (stopped_) return;
  const Time now = clock_.now();
  metrics_.check_latency.observe(now - started);
  if (!result.healthy) ++metrics_.checks_failed;

  const auto& [service, owner, spec] = key;
  Service* svc = registry_.find(service);
  if (svc == nullptr) return;
  const auto inst = std::find_if(svc->instances.begin(), svc->instances.end(), [&](const Instance& i) {
    return i.owner == owner && i.spec == spec;
  });
  if (inst == svc->instances.end()) return;  // removed while the check ran

  const auto before = inst->verdict.state;
  inst->verdict.record(result.healthy, result.detail, now);
  const bool flipped = before != inst->verdict.state;
  // A first verdict is no flip: a read of an unchecked instance checks it
  // first, so what the name answers has not changed.
  const bool answer_changed = flipped && before != Verdict::State::unknown;
  if (answer_changed) {
    spdlog::info("{} {} is now {} ({})", service, to_string(spec.endpoint),
                 to_string(inst->verdict.state), result.detail);
  }
  ChangeEvent flip{0, now, service, ChangeEvent::Kind::verdict, to_string(spec.endpoint), owner,
                   inst->verdict.state};
  if (owner == config_.name && inst->verdict.reapable(now, config_.reap_after)) {
    spdlog::warn("reaping {} {}: failing for {} ms ({})", service, to_string(spec.endpoint),
                 std::chrono::duration_cast<milliseconds>(now - inst->verdict.failing_since).count(),
                 result.detail);
    auto raw = own_[service];
    std::erase_if(raw, [&](const InstanceSpec& s) { return resolve({s}).front() == spec; });
    if (answer_changed) feed_.publish(std::move(flip));
    if (apply_own(service, std::move(raw)).ok()) ++metrics_.reaped;
    return;
  }
  if (flipped) {
    for (auto* sink : sinks_) sink->service_changed(service);
  }
  // After the sinks, so that a follower woken by the feed finds the kernel's
  // cached names of the service dropped (or on their way out).
  if (answer_changed) feed_.publish(std::move(flip));
  replan_service(service);
}

void Registrar::background_round() {
  // Give freed heap pages back to the system: registrations come and go in
  // bursts, and a daemon per task should stay small.
  ::malloc_trim(0);
  for (const auto& [service, svc] : registry_.services()) {
    for (const auto& inst : svc.instances) {
      if (config_.check_all || inst.owner == config_.name) start_check(service, inst);
    }
  }
}

// ---- writes ----------------------------------------------------------------

std::size_t Registrar::instance_count(std::string_view service) const {
  const Service* svc = registry_.find(service);
  return svc == nullptr ? 0 : svc->instances.size();
}

std::vector<std::string> Registrar::list() const {
  std::vector<std::string> names;
  names.reserve(registry_.services().size());
  for (const auto& [name, svc] : registry_.services()) names.push_back(name);
  return names;
}

bool Registrar::may_write(const fs::Caller& who) const {
  if (who.uid == 0) return true;
  if (config_.writers_gid == 0) return false;
  return who.gid == config_.writers_gid ||
         std::find(who.groups.begin(), who.groups.end(), config_.writers_gid) != who.groups.end();
}

Status Registrar::write(const std::string& service, std::string_view text, bool append) {
  auto fail = [&](Error e) -> Status {
    ++metrics_.writes_rejected;
    spdlog::info("refused registration of {}: {}", service, e.detail);
    return e;
  };
  if (!valid_service_name(service)) return fail(Error{Errc::invalid_name, service});
  // A write of `-ENDPOINT` lines removes those of this node's instances.
  const bool removal = is_removal(text);
  const WriteMode mode = removal ? WriteMode::remove : append ? WriteMode::append : WriteMode::replace;
  auto specs = removal ? parse_removal(text, config_.limits) : parse_registration(text, config_.limits);
  if (!specs) return fail(specs.error());
  if (specs->empty()) return fail(Error{Errc::invalid_line, "no endpoint in the write"});

  const auto it = own_.find(service);
  static const std::vector<InstanceSpec> kNone;
  auto merged = merge_write(it == own_.end() ? kNone : it->second, std::move(*specs),
                            mode, own_.size(), config_.limits);
  if (!merged) return fail(merged.error());
  if (auto st = apply_own(service, std::move(*merged)); !st) return fail(st.error());
  ++metrics_.writes;
  return ok_status();
}

Status Registrar::remove(const std::string& service) {
  if (own_.contains(service)) {
    if (auto st = apply_own(service, {}); !st) return st;
    ++metrics_.unlinks;
    return ok_status();
  }
  return Error{registry_.find(service) != nullptr ? Errc::not_owner : Errc::not_found, service};
}

Status Registrar::apply_own(const std::string& service, std::vector<InstanceSpec> raw) {
  // Durable first, then memory, then the cluster: a change the state
  // directory refused (the store then keeps the previous file) is seen by
  // nobody, and a restart brings back exactly what callers were told.
  if (auto st = store_.save(service, raw); !st) return st;
  const auto resolved = resolve(raw);
  // Then the store, which may refuse (etcd unreachable): the state directory
  // gets its previous content back, so nothing changed anywhere.
  if (replicator_ != nullptr) {
    if (auto st = replicator_->publish(service, resolved); !st) {
      const auto it = own_.find(service);
      if (auto undo = store_.save(service, it == own_.end() ? std::vector<InstanceSpec>{} : it->second);
          !undo) {
        spdlog::error("state directory: cannot restore {} after the store refused it: {}", service,
                      undo.error().detail);
      }
      return st;
    }
  }
  if (raw.empty()) {
    own_.erase(service);
    spdlog::info("deregistered {}", service);
  } else {
    spdlog::info("registered {}: {} instance(s)", service, raw.size());
    own_[service] = std::move(raw);
  }
  std::vector<InstanceChange> diff;
  if (registry_.replace(service, config_.name, resolved, &diff)) {
    changed(service);
    publish(service, diff);
  }
  rearm();
  return ok_status();
}

void Registrar::set_replicator(Replicator* replicator) {
  replicator_ = replicator;
  if (replicator_ == nullptr) return;
  for (const auto& [service, raw] : own_) replicator_->restore(service, resolve(raw));
}

void Registrar::apply_remote(const std::string& service, const std::string& origin,
                        std::vector<InstanceSpec> instances) {
  if (origin == config_.name || !valid_service_name(service)) return;
  std::vector<InstanceChange> diff;
  if (registry_.replace(service, origin, std::move(instances), &diff)) {
    changed(service);
    publish(service, diff);
  }
  rearm();
}

std::vector<InstanceSpec> Registrar::resolve(const std::vector<InstanceSpec>& raw) const {
  std::vector<InstanceSpec> out = raw;
  for (auto& spec : out) {
    if (spec.endpoint.uses_advertise()) spec.endpoint.host = config_.advertise;
  }
  return out;
}

// Called after changed(): the sinks have queued their invalidations first.
void Registrar::publish(const std::string& service, const std::vector<InstanceChange>& diff) {
  const Time now = clock_.now();
  for (const auto& change : diff) {
    feed_.publish(ChangeEvent{0, now, service,
                              change.added ? ChangeEvent::Kind::added : ChangeEvent::Kind::removed,
                              to_string(change.instance.spec.endpoint), change.instance.owner,
                              change.instance.verdict.state});
  }
}

void Registrar::changed(const std::string& service) {
  for (auto* sink : sinks_) sink->service_changed(service);
  replan_service(service);
}

}  // namespace regfs
