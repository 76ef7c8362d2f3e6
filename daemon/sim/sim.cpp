#include "sim/sim.hpp"

#include <algorithm>
#include <cstdio>

namespace regfs::sim {

Sim::Sim(std::uint64_t seed, cluster::Config config, NetConfig net)
    : seed_(seed), config_(std::move(config)), net_(net), rng_(seed) {}

Sim::~Sim() = default;

double Sim::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

Duration Sim::random_duration(Duration below) {
  if (below.count() <= 0) return Duration(0);
  return Duration(static_cast<Duration::rep>(rng_() % static_cast<std::uint64_t>(below.count())));
}

void Sim::note(const std::string& what) const {
  if (!trace) return;
  std::fprintf(stderr, "%10.4f %s\n", std::chrono::duration<double>(now_.since_epoch).count(),
               what.c_str());
}

void Sim::disturbed() {
  last_disturbance_ = now_;
  if (checker_) checker_->on_disturbance(*this);
}

std::size_t Sim::add(std::string name, std::size_t seeds) {
  const std::size_t n = nodes_.size();
  SimNode node;
  node.name = name.empty() ? "n" + std::to_string(n) : std::move(name);
  for (std::size_t i = 0; i < std::min(seeds, n); ++i) node.seeds.push_back({nodes_[i].name});
  by_addr_[node.name] = n;
  nodes_.push_back(std::move(node));
  group_.push_back(0);
  start(n);
  return n;
}

void Sim::start(std::size_t n) {
  SimNode& s = nodes_[n];
  const auto micros = static_cast<std::uint64_t>(
      std::chrono::duration_cast<microseconds>(now_.since_epoch).count());
  s.generation = std::max(s.generation + 1, micros + 1);
  s.core = std::make_unique<cluster::Core>(config_, cluster::NodeId{s.name, s.generation},
                                           cluster::PeerAddr{s.name}, rng_(), now_);
  if (checker_) checker_->on_start(*this, n);
  for (const auto& [service, instances] : s.durable) {
    if (s.core->set_service(now_, service, instances).ok() && checker_) {
      checker_->on_register(*this, n, service, instances);
    }
  }
  s.core->join(now_, s.seeds);
  after_call(n);
}

void Sim::schedule(Time at, Event e) { queue_.emplace(std::make_pair(at, next_seq_++), std::move(e)); }

void Sim::after_call(std::size_t n) {
  SimNode& s = nodes_[n];
  if (!s.core) return;
  auto events = s.core->take_events();
  if (checker_) checker_->on_own_versions(*this, n);
  if (checker_ && (!events.services.empty() || !events.members.empty() || events.generation != 0)) {
    checker_->on_events(*this, n, events);
  }
  if (trace) {
    for (const auto& m : events.members) {
      note(s.name + " sees " + m.id.name + "/" + std::to_string(m.id.generation) + " " +
           cluster::to_string(m.state) + " inc " + std::to_string(m.incarnation));
    }
    for (const auto& c : events.services) note(s.name + " changed " + c.origin + "/" + c.service);
  }
  if (on_events && (!events.services.empty() || !events.members.empty())) on_events(n, events);
  for (auto& out : s.core->take_outgoing()) transmit(n, std::move(out));
  Time at = std::max(s.core->next_deadline(), now_);
  if (at != s.tick_at || s.tick_token == 0) {
    s.tick_at = at;
    s.tick_token++;
    schedule(at, Event{Event::tick, n, 0, s.tick_token, {}});
  }
}

bool Sim::passes(std::size_t from, std::size_t to) const {
  if (group_[from] != group_[to]) return false;
  return oneway_.find({from, to}) == oneway_.end();
}

bool Sim::connected(std::size_t a, std::size_t b) const { return passes(a, b) && passes(b, a); }

void Sim::transmit(std::size_t from, cluster::Outgoing out) {
  auto it = by_addr_.find(out.to.value);
  if (it == by_addr_.end()) return;
  const std::size_t to = it->second;
  NodeTraffic& t = nodes_[from].traffic;
  const bool packet = out.channel == cluster::Channel::packet;
  if (packet) {
    t.packets++;
    t.packet_bytes += out.bytes.size();
  } else {
    t.streams++;
    t.stream_bytes += out.bytes.size();
  }
  if (!packet) note("stream " + nodes_[from].name + " -> " + nodes_[to].name + " " + std::to_string(out.bytes.size()) + "B" + (passes(from, to) ? "" : " (cut)"));
  if (!passes(from, to)) return;
  Event e{Event::deliver, to, from, nodes_[to].generation, std::move(out.bytes)};
  if (!packet) {
    schedule(now_ + net_.stream_delay + random_duration(net_.jitter), std::move(e));
    return;
  }
  if (net_.loss > 0 && uniform() < net_.loss) return;
  Duration d = net_.delay + random_duration(net_.jitter);
  if (net_.reorder > 0 && uniform() < net_.reorder) d += random_duration(net_.reorder_delay);
  if (net_.dup > 0 && uniform() < net_.dup) {
    schedule(now_ + d + random_duration(net_.delay + net_.jitter + Duration(1)), e);
  }
  schedule(now_ + d, std::move(e));
}

bool Sim::step() {
  if (queue_.empty()) return false;
  auto it = queue_.begin();
  now_ = std::max(now_, it->first.first);
  Event e = std::move(it->second);
  queue_.erase(it);
  fired_++;
  SimNode& s = nodes_[e.node];
  if (e.kind == Event::tick) {
    if (!s.core || e.token != s.tick_token) return true;  // superseded
    s.tick_token++;  // consumed: after_call schedules the next one
    s.core->tick(now_);
    after_call(e.node);
  } else if (e.kind == Event::stop) {
    if (s.core && s.generation == e.token) {
      s.core.reset();
      if (checker_) checker_->on_stop(*this, e.node);
    }
  } else {
    if (!s.core || s.generation != e.token || !passes(e.from, e.node)) return true;
    s.core->handle(now_, cluster::PeerAddr{nodes_[e.from].name}, e.bytes);
    after_call(e.node);
  }
  if (checker_) checker_->after_step(*this);
  return true;
}

void Sim::run_until(Time t) {
  while (!queue_.empty() && queue_.begin()->first.first <= t) step();
  now_ = std::max(now_, t);
  if (checker_) checker_->after_step(*this);
}

void Sim::partition(const std::vector<std::vector<std::size_t>>& groups) {
  std::fill(group_.begin(), group_.end(), 0);
  std::size_t g = 1;
  note("partition");
  for (const auto& members : groups) {
    for (std::size_t n : members) group_[n] = g;
    ++g;
  }
  has_groups_ = true;
  disturbed();
}

void Sim::partition_oneway(std::size_t from, std::size_t to) {
  oneway_[{from, to}] = true;
  note("block " + nodes_[from].name + " -> " + nodes_[to].name);
  disturbed();
}

void Sim::heal() {
  std::fill(group_.begin(), group_.end(), 0);
  has_groups_ = false;
  oneway_.clear();
  note("heal");
  disturbed();
  if (checker_) checker_->on_heal(*this);
}

void Sim::kill(std::size_t n) {
  if (!nodes_[n].core) return;
  if (checker_) checker_->on_kill(*this, n);
  note("kill " + nodes_[n].name);
  nodes_[n].core.reset();
  disturbed();
}

void Sim::restart(std::size_t n) {
  if (nodes_[n].core) kill(n);
  note("restart " + nodes_[n].name);
  start(n);
  disturbed();
}

void Sim::leave(std::size_t n) {
  SimNode& s = nodes_[n];
  if (!s.core) return;
  note("leave " + s.name);
  s.core->leave(now_);
  after_call(n);
  if (checker_) checker_->on_leave(*this, n);
  // The daemon keeps its loop running a little to let the goodbye out.
  schedule(now_ + config_.gossip_interval * 5, Event{Event::stop, n, 0, s.generation, {}});
  disturbed();
}

Status Sim::set_service(std::size_t n, const std::string& service,
                        std::vector<InstanceSpec> instances) {
  SimNode& s = nodes_[n];
  if (!s.core) return Error{Errc::io, "node is down"};
  note("register " + s.name + "/" + service + " x" + std::to_string(instances.size()));
  Status st = s.core->set_service(now_, service, instances);
  if (!st.ok()) return st;
  if (checker_) checker_->on_register(*this, n, service, instances);
  if (instances.empty()) {
    s.durable.erase(service);
  } else {
    s.durable[service] = std::move(instances);
  }
  after_call(n);
  return st;
}

void Sim::enable_checks(CheckConfig cfg) { checker_ = std::make_unique<Checker>(cfg); }

const std::optional<std::string>& Sim::violation() const {
  static const std::optional<std::string> none;
  return checker_ ? checker_->violation() : none;
}

}  // namespace regfs::sim
