#include "cluster/core.hpp"

#include <algorithm>
#include <cmath>

#include "cluster/codec.hpp"

namespace regfs::cluster {

Core::Core(Config config, NodeId self, PeerAddr addr, std::uint64_t seed, Time now)
    : cfg_(std::move(config)),
      self_(std::move(self)),
      clock_generation_(cfg_.clock_generation != 0 ? cfg_.clock_generation : self_.generation),
      started_(now),
      rng_(seed),
      awareness_(cfg_.awareness_max),
      store_(self_, cfg_.faults, cfg_.max_instances_per_origin) {
  *members_.emplace(self_.name).first = Member{self_, std::move(addr), 0, MemberState::alive, now};
  // Spread phases so that nodes started together do not probe in lockstep.
  next_probe_ = now + Duration(static_cast<Duration::rep>(
                          random(static_cast<std::uint64_t>(cfg_.probe_interval.count()))));
  push_pull_next_ = now + cfg_.push_pull_interval +
                    Duration(static_cast<Duration::rep>(random(
                        static_cast<std::uint64_t>(cfg_.push_pull_interval.count()))));
  rejoin_next_ = now + cfg_.rejoin_interval;
  purge_next_ = now + cfg_.purge_interval;
  reconnect_next_ = now + cfg_.reconnect_interval;
  queue_rumor("m/" + self_.name, Alive{self_, 0, me().addr});
  urgent_ = false;
}

// --- the daemon's side ---

Status Core::set_service(Time now, std::string_view service, std::vector<InstanceSpec> instances) {
  if (!valid_service_name(service)) {
    return Error{Errc::invalid_name, "bad service name"};
  }
  if (instances.size() > cfg_.limits.max_instances_per_service) {
    return Error{Errc::too_many_instances, "over " +
                 std::to_string(cfg_.limits.max_instances_per_service) + " instances"};
  }
  for (const auto& s : instances) {
    if (s.endpoint.host.size() > kMaxHostName || s.check.path.size() > kMaxCheckPath) {
      return Error{Errc::invalid_line, "endpoint or check path too long"};
    }
  }
  const auto* current = store_.entry(self_.name, service);
  if (current == nullptr && instances.empty()) return ok_status();
  if (current != nullptr && *current == instances) return ok_status();
  if (current == nullptr && store_.services().size() >= cfg_.limits.max_services_per_node) {
    std::size_t own = 0;
    for (const auto& s : store_.services()) own += store_.entry(self_.name, s) != nullptr;
    if (own >= cfg_.limits.max_services_per_node) {
      return Error{Errc::too_many_services, "over the services-per-node limit"};
    }
  }
  Entry e = store_.set_own(service, std::move(instances), now, events_.services);
  spread_entry(now, e, true);
  // Members accept versions up to version_jump_max beyond what they were
  // announced: say where this node is before it gets that far.
  if (e.version >= me().announced + cfg_.version_jump_max / 2) announce(now);
  return ok_status();
}

void Core::join(Time now, std::vector<PeerAddr> seeds) {
  for (auto& s : seeds) {
    if (s == me().addr) continue;
    if (std::find(seeds_.begin(), seeds_.end(), s) == seeds_.end()) seeds_.push_back(s);
    start_sync(now, s);
  }
  alone_retry_ = std::min(cfg_.rejoin_alone, cfg_.rejoin_interval);
  rejoin_next_ = now + alone_retry_;
}

void Core::leave(Time now) {
  if (leaving_) return;
  leaving_ = true;
  Member& m = me();
  m.state = MemberState::left;
  m.since = now;
  queue_rumor("m/" + self_.name, Dead{self_, m.incarnation, self_.name, true});
  gossip(now, cfg_.change_fanout * 2);
}

// --- the transport's side ---

void Core::handle(Time now, const PeerAddr& from, std::span<const std::uint8_t> bytes) {
  stats_.frames_in++;
  stats_.bytes_in += bytes.size();
  auto decoded = decode_frame(bytes, cfg_.wire);
  if (!decoded.ok()) {
    stats_.bad_frames++;
    return;
  }
  Frame& f = decoded.value();
  if (f.sender.name == self_.name) return;  // our own echo, or a namesake
  if (!screen(now, f)) return;
  if (members_.find(f.sender.name) == nullptr && store_.departed(f.sender)) {
    // A life whose death we remember but whose record is gone: it was cut
    // off for long, or it is a new life of a node whose clock is behind its
    // previous one. Tell it which life died: it refutes, or starts a life
    // above that one, and comes back.
    NodeId died = store_.death_of(f.sender.name);
    if (died.generation < f.sender.generation) died = f.sender;
    send_packet(from, Dead{died, store_.death_incarnation(f.sender), self_.name, false});
  }
  // Membership first, so that entries of a node that just came back are
  // accepted in the same frame.
  std::vector<OriginDigest> reply_to;
  bool stage2 = false;
  const std::uint32_t incarnation = me().incarnation;
  for (const auto& m : f.messages) {
    if (const auto* a = std::get_if<Alive>(&m)) on_alive(now, *a);
    else if (const auto* s = std::get_if<Suspect>(&m)) on_suspect(now, *s);
    else if (const auto* d = std::get_if<Dead>(&m)) on_dead(now, *d);
    else if (const auto* st = std::get_if<SyncState>(&m)) {
      merge(now, f.sender.name, st->members);
      stage2 = stage2 || st->stage == 2;
    }
  }
  for (const auto& m : f.messages) {
    if (const auto* p = std::get_if<Ping>(&m)) on_ping(now, from, *p);
    else if (const auto* pr = std::get_if<PingReq>(&m)) on_ping_req(now, from, *pr);
    else if (const auto* a = std::get_if<Ack>(&m)) on_ack(now, from, *a);
    else if (const auto* n = std::get_if<Nack>(&m)) on_nack(n->seq);
    else if (const auto* e = std::get_if<Entry>(&m)) on_entry(now, *e);
    else if (const auto* h = std::get_if<SyncHello>(&m)) on_sync_hello(now, from, *h);
    else if (const auto* st = std::get_if<SyncState>(&m)) on_sync_state(now, from, *st, reply_to);
    else if (const auto* c = std::get_if<OriginChunk>(&m)) apply_chunk(now, *c);
  }
  if (stage2) {
    // The opener sent its state with what we lacked; answer with what it lacks.
    auto chunks = store_.chunks_for(reply_to);
    if (!chunks.empty()) {
      std::vector<Message> out(chunks.begin(), chunks.end());
      send_stream(from, std::move(out));
    }
  }
  // Heard from its sender directly: after the membership messages, so that a
  // frame that introduces its sender (or its new life) counts.
  if (Member* sender = members_.find(f.sender.name); sender != nullptr && sender->id == f.sender) {
    sender->heard = now;
  }
  // This frame made us refute: its sender holds us suspect or dead, and may
  // be on the far side of a healed partition where our gossip does not go
  // yet. Tell it first.
  if (me().incarnation != incarnation && !leaving_) send_packet(from, self_alive());
}

void Core::tick(Time now) {
  probe_tick(now);
  suspicion_tick(now);
  reconnect_tick(now);
  catch_up_tick(now);
  for (auto it = relays_.begin(); it != relays_.end();) {
    if (it->second.deadline > now) { ++it; continue; }
    send_packet(it->second.requester, Nack{it->second.requester_seq});
    it = relays_.erase(it);
  }
  if (urgent_) {
    urgent_ = false;
    gossip(now, cfg_.change_fanout);
    gossip_next_ = now + cfg_.gossip_interval;
  } else if (!broadcasts_.empty() && now >= gossip_next_) {
    gossip(now, cfg_.gossip_fanout);
    gossip_next_ = now + cfg_.gossip_interval;
  }
  if (now >= push_pull_next_) {
    push_pull_next_ = now + push_pull_interval();
    // Now and then, and always when alone, sync with a member believed dead:
    // that is how the two sides of a healed partition find each other.
    refresh_peers();
    auto targets = pick(1, "", peers_.empty() || random(4) == 0);
    if (!targets.empty() && !leaving_) start_sync(now, targets.front()->addr);
  }
  if (now >= rejoin_next_) {
    refresh_peers();
    if (peers_.empty()) {  // alone: every seed, again soon
      if (!leaving_) for (const auto& s : seeds_) start_sync(now, s);
      alone_retry_ = std::min({std::max(alone_retry_, cfg_.rejoin_alone) * 2, cfg_.rejoin_alone_max,
                               cfg_.rejoin_interval});
      rejoin_next_ = now + alone_retry_;
    } else {
      if (!seeds_.empty() && !leaving_) start_sync(now, seeds_[random(seeds_.size())]);
      rejoin_next_ = now + cfg_.rejoin_interval;
      alone_retry_ = std::min(cfg_.rejoin_alone, cfg_.rejoin_interval);
    }
  }
  if (now >= purge_next_) {
    purge_next_ = now + cfg_.purge_interval;
    store_.purge(now, now - cfg_.tombstone_ttl);
    const std::size_t erased = members_.erase_if([&](const Member& m) {
      const bool gone = m.state == MemberState::dead || m.state == MemberState::left;
      return gone && m.id != self_ && m.since + cfg_.tombstone_ttl <= now;
    });
    if (erased > 0) {  // every pointer into members_ is invalid now
      peers_.clear();
      recent_dead_.clear();
      gone_.clear();
      probe_order_.clear();
      probe_pos_ = 0;
    }
    peers_dirty_ = true;
    drop_orphans(now);
  }
}

void Core::drop_orphans(Time now) {
  // Entries of an origin that is not (or no longer) a member: kept for a
  // grace period, since entries may arrive before the origin's Alive.
  std::vector<NodeId> drop;
  std::map<std::string, Time, std::less<>> still;
  for (const auto& [name, o] : store_.origins()) {
    if (name == self_.name || o.hidden || members_.find(name) != nullptr) continue;
    auto it = orphans_.find(name);
    const Time since = it == orphans_.end() ? now : it->second;
    if (now - since >= cfg_.orphan_grace) {
      drop.push_back(NodeId{name, o.generation});
    } else {
      still[name] = since;
    }
  }
  orphans_ = std::move(still);
  for (const auto& id : drop) store_.depart(id, Store::kOrphan, now + cfg_.departure_ttl, events_.services);
}

Time Core::next_deadline() const {
  Time t = std::min({push_pull_next_, purge_next_});
  if (!seeds_.empty()) t = std::min(t, rejoin_next_);
  if (urgent_) return Time{};  // a fresh rumor goes out at once
  if (!broadcasts_.empty() && !gossip_stalled_) t = std::min(t, gossip_next_);
  if (probe_.active) {
    t = std::min(t, probe_.indirect ? probe_.end : probe_.direct_deadline);
  } else if (!probe_idle_) {
    t = std::min(t, next_probe_);
  }
  for (const auto& [_, r] : relays_) t = std::min(t, r.deadline);
  // Dead members (or a membership change not yet looked at): reconnect pings.
  if (!gone_.empty() || peers_dirty_) t = std::min(t, reconnect_next_);
  if (catching_up_) t = std::min(t, catch_up_next_);
  for (const auto& [_, s] : suspicions_) t = std::min(t, s.deadline());
  return t;
}

std::vector<Outgoing> Core::take_outgoing() { return std::exchange(outbox_, {}); }
Events Core::take_events() { return std::exchange(events_, {}); }

std::vector<MemberInfo> Core::members() const {
  std::vector<MemberInfo> out(members_.begin(), members_.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id.name < b.id.name; });
  return out;
}

std::size_t Core::live_members() const {
  std::size_t n = 0;
  for (const auto& m : members_) {
    n += is_live(m.state);
  }
  return n;
}

// --- plumbing ---

std::uint64_t Core::random(std::uint64_t below) { return below == 0 ? 0 : rng_() % below; }

void Core::refresh_peers() {
  if (!peers_dirty_) return;
  peers_dirty_ = false;
  peers_.clear();
  recent_dead_.clear();
  gone_.clear();
  for (const auto& m : members_) {
    if (m.id.name == self_.name) continue;
    if (is_live(m.state)) {
      peers_.push_back(&m);
      continue;
    }
    if (m.state == MemberState::dead) recent_dead_.push_back(&m);
    gone_.push_back(&m);
  }
}

std::vector<const Core::Member*> Core::pick(std::size_t k, const std::string& exclude,
                                            bool with_dead) {
  refresh_peers();
  const auto& pool = with_dead && !recent_dead_.empty() ? recent_dead_ : peers_;
  std::vector<const Member*> out;
  const std::size_t n = pool.size();
  if (n == 0) return out;
  // Partial Fisher-Yates over indices, without copying the pool.
  std::map<std::size_t, std::size_t> swapped;
  auto at = [&](std::size_t i) { auto it = swapped.find(i); return it == swapped.end() ? i : it->second; };
  for (std::size_t i = 0; i < n && out.size() < k; ++i) {
    const std::size_t j = i + random(n - i);
    const std::size_t picked = at(j);
    swapped[j] = at(i);
    if (pool[picked]->id.name == exclude) continue;
    out.push_back(pool[picked]);
  }
  return out;
}

void Core::send(const PeerAddr& to, Channel ch, std::vector<std::uint8_t> bytes) {
  stats_.frames_out++;
  stats_.bytes_out += bytes.size();
  outbox_.push_back(Outgoing{to, ch, std::move(bytes)});
}

void Core::send_packet(const PeerAddr& to, const Message& m) {
  auto bytes = encode_header(Channel::packet, self_);
  auto body = encode_message(m);
  bytes.insert(bytes.end(), body.begin(), body.end());
  if (bytes.size() < cfg_.wire.max_packet) {
    broadcasts_.pack(bytes, cfg_.wire.max_packet - bytes.size(), retransmit_limit());
  }
  send(to, Channel::packet, std::move(bytes));
}

void Core::send_stream(const PeerAddr& to, std::vector<Message> ms) {
  send(to, Channel::stream, encode_frame(Channel::stream, self_, ms));
}

void Core::queue_rumor(std::string key, const Message& m, bool urgent) {
  auto bytes = encode_message(m);
  // Too big for a gossip packet of ours; push-pull carries it.
  if (bytes.size() + header_size(self_) > cfg_.wire.max_packet) return;
  broadcasts_.queue(std::move(key), std::move(bytes));
  urgent_ = urgent_ || urgent;
}

void Core::gossip(Time now, int fanout) {
  if (broadcasts_.empty()) return;
  refresh_peers();
  auto targets = pick(static_cast<std::size_t>(fanout), "", false);
  // Members declared dead recently still hear rumors, so they can refute.
  if (!recent_dead_.empty()) {
    const Member* d = recent_dead_[random(recent_dead_.size())];
    if (d->since + cfg_.gossip_to_dead > now) targets.push_back(d);
  }
  gossip_stalled_ = targets.empty();
  for (const Member* t : targets) {
    auto bytes = encode_header(Channel::packet, self_);
    const std::size_t header = bytes.size();
    broadcasts_.pack(bytes, cfg_.wire.max_packet - header, retransmit_limit());
    if (bytes.size() == header) break;
    send(t->addr, Channel::packet, std::move(bytes));
  }
}

int Core::retransmit_limit() {
  refresh_peers();
  const double n = static_cast<double>(peers_.size() + 1);
  return cfg_.retransmit_mult * static_cast<int>(std::ceil(std::log10(n + 1.0)));
}

void Core::member_event(const Member& m, bool was_live, bool fresh) {
  events_.members.push_back({m.id, m.addr, m.incarnation, m.state, m.since});
  gossip_stalled_ = false;  // someone to tell or to probe, perhaps: the next round looks
  probe_idle_ = false;
  const bool live = is_live(m.state);
  if (fresh && live && !peers_dirty_) {
    peers_.push_back(&m);  // where a rebuild would put it: records are in insertion order
  } else if (fresh || live != was_live || m.state == MemberState::dead) {
    peers_dirty_ = true;
  }
}

}  // namespace regfs::cluster
