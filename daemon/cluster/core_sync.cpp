// Registry dissemination and push-pull anti-entropy.
//
// A change is queued as a rumor and pushed to change_fanout peers at once;
// every node that finds it new does the same, then retransmits it in gossip
// rounds and on probe traffic until its transmit limit. Periodically a node
// opens a push-pull with one random member: hashes first (SyncHello), full
// state only when they differ (SyncState), then the origin chunks each side
// lacks (OriginChunk).
#include <algorithm>
#include <cmath>
#include <limits>

#include "cluster/hash.hpp"
#include "cluster/core.hpp"

namespace regfs::cluster {
namespace {

std::uint64_t add_capped(std::uint64_t a, std::uint64_t b) {
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  return a > max - b ? max : a + b;
}

std::uint64_t micros(Duration d) {
  return static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<microseconds>(d).count()));
}

// The newest version a chunk carries, and the newest it claims.
std::uint64_t chunk_top(const OriginChunk& c) {
  std::uint64_t top = std::max(c.base, c.upto);
  for (const auto& item : c.items) top = std::max(top, item.version);
  return top;
}

}  // namespace

// What an honest member never sends, dropped before anything is applied
// (docs/SECURITY.md lists what a key holder can still do):
// - a life whose generation lies beyond generation_limit: no node can have
//   started it yet, and a generation nobody can pass would shut its name out;
// - about a life known alive: an incarnation more than incarnation_jump_max
//   above the one held; about a known life, an announced version beyond
//   version_limit;
// - entries and chunks with versions beyond version_limit (what this node
//   holds or was announced of that life, plus version_jump_max), checked
//   where they are applied.
// Claims about this node's own current life that it never made start a new
// life (own_life_forged); accusations about it go to refute, which starts a
// new life when it cannot outbid them.
bool Core::screen(Time now, Frame& f) {
  const std::uint64_t gen_max = generation_limit(now);
  if (f.sender.generation > gen_max) {
    stats_.refused++;
    return false;
  }
  auto forged = [&](const NodeId& id, std::uint64_t version) {
    if (!own_life_forged(id, version)) return false;
    new_life(now, self_.generation);
    return true;
  };
  auto known = [&](const NodeId& id) -> const Member* {
    if (id.name == self_.name) return nullptr;
    const Member* m = members_.find(id.name);
    return m != nullptr && m->id.generation == id.generation ? m : nullptr;
  };
  // Only against a member held alive: that is whose traffic a forged Alive
  // could redirect. A record held suspect or dead may have missed several
  // refutations (each up to half the bound, when they are forced); refusing
  // them would keep the member out for as long as the record is kept.
  auto jumps = [&](const NodeId& id, std::uint32_t incarnation) {
    const Member* m = known(id);
    return m != nullptr && m->state == MemberState::alive &&
           incarnation > std::uint64_t{m->incarnation} + cfg_.incarnation_jump_max;
  };
  auto member_ok = [&](const NodeId& id, std::uint32_t incarnation, std::uint64_t version,
                       bool announces) {
    if (id.generation > gen_max || jumps(id, incarnation)) return false;
    if (!announces) return true;
    if (forged(id, version)) return false;
    return known(id) == nullptr || version <= version_limit(id);
  };
  auto ok = [&](Message& m) {
    if (const auto* p = std::get_if<Ping>(&m)) return p->target.generation <= gen_max;
    if (const auto* p = std::get_if<PingReq>(&m)) return p->target.generation <= gen_max;
    if (const auto* a = std::get_if<Alive>(&m)) return member_ok(a->node, a->incarnation, a->version, true);
    if (const auto* s = std::get_if<Suspect>(&m)) return member_ok(s->node, s->incarnation, 0, false);
    if (const auto* d = std::get_if<Dead>(&m)) return member_ok(d->node, d->incarnation, 0, false);
    // Their versions are checked when applied (on_entry, apply_chunk), once
    // the frame's member records, which may announce them, are merged.
    if (const auto* e = std::get_if<Entry>(&m)) {
      return e->origin.generation <= gen_max && !forged(e->origin, e->version);
    }
    if (const auto* c = std::get_if<OriginChunk>(&m)) {
      return c->origin.generation <= gen_max && !forged(c->origin, chunk_top(*c));
    }
    if (auto* st = std::get_if<SyncState>(&m)) {
      std::erase_if(st->members, [&](const MemberRecord& r) {
        const bool keep = member_ok(r.node, r.incarnation, r.version, r.state == MemberState::alive);
        stats_.refused += !keep;
        return !keep;
      });
      std::erase_if(st->digests, [&](const OriginDigest& d) {
        const bool keep = d.origin.generation <= gen_max && !forged(d.origin, std::max(d.complete, d.max));
        stats_.refused += !keep;
        return !keep;
      });
    }
    return true;
  };
  std::erase_if(f.messages, [&](Message& m) {
    const bool keep = ok(m);
    stats_.refused += !keep;
    return !keep;
  });
  return true;
}

std::uint64_t Core::generation_limit(Time now) const {
  return add_capped(clock_generation_, add_capped(micros(now - started_), micros(cfg_.generation_ahead)));
}

std::uint64_t Core::version_limit(const NodeId& origin) const {
  std::uint64_t seen = store_.seen(origin);
  const Member* m = members_.find(origin.name);
  if (m != nullptr && m->id == origin) seen = std::max(seen, m->announced);
  return add_capped(seen, cfg_.version_jump_max);
}

void Core::apply_chunk(Time now, const OriginChunk& c) {
  if (c.origin.name != self_.name && chunk_top(c) > version_limit(c.origin)) {
    stats_.refused++;
    return;
  }
  store_.apply(c, now, events_.services);
}

void Core::spread_entry(Time now, const Entry& e, bool own) {
  auto bytes = encode_message(e);
  if (bytes.size() + header_size(self_) <= cfg_.wire.max_packet) {
    // A change queued into an idle gossip loop waits for its first
    // retransmission round (a gossip interval; relay_delay on a receiver of a
    // direct send): the direct send or urgent push comes first.
    refresh_peers();
    const bool small = peers_.size() <= cfg_.broadcast_max;
    if (broadcasts_.empty()) {
      const Duration wait = !own && small ? cfg_.relay_delay : cfg_.gossip_interval;
      gossip_next_ = std::max(gossip_next_, now + wait);
    }
    if (own) {
      // Straight to the peers: a write is rare, and one hop is the fastest
      // spread there is. Gossip rounds then repeat it in case of loss.
      auto packet = encode_header(Channel::packet, self_);
      packet.insert(packet.end(), bytes.begin(), bytes.end());
      for (const Member* m : pick(cfg_.broadcast_max, "", false)) send(m->addr, Channel::packet, packet);
    }
    queue_rumor("e/" + e.origin.name + "/" + e.service, e, !own && !small);
    return;
  }
  // Too big for a datagram: push it over streams to a few peers at once;
  // push-pull carries it to the rest.
  OriginChunk c;
  c.origin = e.origin;
  c.base = e.version - 1;
  c.upto = 0;
  c.items.push_back({e.service, e.version, e.instances});
  for (const Member* m : pick(static_cast<std::size_t>(cfg_.change_fanout), "", false)) {
    send_stream(m->addr, {c});
  }
}

void Core::on_entry(Time now, const Entry& e) {
  if (e.origin.name != self_.name && e.version > version_limit(e.origin)) {
    stats_.refused++;
    return;
  }
  if (store_.apply(e, now, events_.services)) spread_entry(now, e, false);
}

std::uint64_t Core::members_hash() const {
  // A sum of per-member hashes: independent of the order members are held in.
  std::uint64_t sum = 0;
  for (const auto& m : members_) {
    if (!is_live(m.state)) continue;
    Fnv64 h;
    h.add(m.id.name);
    h.add(m.id.generation);
    h.add(static_cast<std::uint64_t>(m.incarnation));
    sum += h.value();
  }
  return sum;
}

SyncState Core::state(std::uint8_t stage) const {
  SyncState s;
  s.stage = stage;
  s.members.reserve(members_.size());
  for (const auto& m : members_) s.members.push_back({m.id, m.incarnation, m.state, m.addr, m.announced});
  s.digests = store_.digests();
  return s;
}

Duration Core::push_pull_interval() const {
  // memberlist's scaling: beyond 32 members, one more interval per doubling.
  const double n = static_cast<double>(live_members());
  if (n <= 32) return cfg_.push_pull_interval;
  const double mult = std::ceil(std::log2(n) - std::log2(32.0)) + 1.0;
  return Duration(static_cast<Duration::rep>(mult * static_cast<double>(cfg_.push_pull_interval.count())));
}

void Core::catch_up_tick(Time now) {
  if (!catching_up_ || now < catch_up_next_) return;
  catch_up_next_ = now + cfg_.catch_up_interval;
  std::vector<const Member*> behind;
  for (const auto& name : store_.behind()) {
    const Member* m = members_.find(name);
    if (m != nullptr && is_live(m->state)) behind.push_back(m);
  }
  if (behind.empty()) {
    catching_up_ = false;
    return;
  }
  // One push-pull brings everything the peer knows, not only its own
  // changes: after a heal, a few of them cover the whole other side.
  if (!leaving_) start_sync(now, behind[random(behind.size())]->addr);
}

void Core::compare_registry(Time now, const PeerAddr& peer, std::uint64_t hash) {
  if (hash == store_.hash()) {
    mismatch_backoff_ = cfg_.mismatch_sync_interval;
    return;
  }
  if (now < mismatch_sync_next_ || leaving_) return;
  // Hashes differ for a moment while a change spreads; the peer compares
  // again when the SyncHello arrives and answers only if they still differ.
  mismatch_backoff_ = std::clamp(mismatch_backoff_ * 2, cfg_.mismatch_sync_interval,
                                 std::max(cfg_.mismatch_sync_interval, cfg_.push_pull_interval));
  mismatch_sync_next_ = now + mismatch_backoff_;
  start_sync(now, peer);
}

void Core::reconnect_tick(Time now) {
  if (now < reconnect_next_) return;
  reconnect_next_ = now + cfg_.reconnect_interval;
  refresh_peers();
  if (gone_.empty() || leaving_) return;
  const Member* d = gone_[random(gone_.size())];
  reconnect_seq_ = next_seq_++;
  reconnect_to_ = d->id;
  send_packet(d->addr, Ping{reconnect_seq_, d->id});
}

void Core::on_reconnect_ack(Time now) {
  reconnect_seq_ = 0;
  const Member* m = members_.find(reconnect_to_.name);
  if (m == nullptr || m->id != reconnect_to_ || m->state != MemberState::dead || leaving_) return;
  // It answers, so it was only cut off: the state exchange tells each side
  // that the other holds it dead, both refute, and each refutation travels
  // back in the same exchange (see handle).
  start_sync(now, m->addr);
}

void Core::start_sync(Time, const PeerAddr& to) {
  stats_.syncs_started++;
  send_stream(to, {SyncHello{members_hash(), store_.hash()}});
}

void Core::on_sync_hello(Time, const PeerAddr& from, const SyncHello& m) {
  if (m.members_hash == members_hash() && m.registry_hash == store_.hash()) return;
  stats_.syncs_full++;
  send_stream(from, {state(1)});
}

void Core::on_sync_state(Time, const PeerAddr& from, const SyncState& m,
                         std::vector<OriginDigest>& reply_to) {
  if (m.stage == 2) {
    reply_to = m.digests;  // answered once the whole frame is applied
    return;
  }
  std::vector<Message> out;
  out.push_back(state(2));
  for (auto& c : store_.chunks_for(m.digests)) out.push_back(std::move(c));
  send_stream(from, std::move(out));
}

void Core::merge(Time now, const std::string& sender, const std::vector<MemberRecord>& records) {
  for (const auto& r : records) {
    switch (r.state) {
      case MemberState::alive:
        on_alive(now, Alive{r.node, r.incarnation, r.addr, r.version}, false);
        break;
      case MemberState::suspect:
      case MemberState::dead:
        // A remote verdict of death only makes us suspect: our own timer and
        // the node's chance to refute decide (as memberlist does).
        if (r.node.name == self_.name) {
          if (r.state == MemberState::dead) on_dead(now, Dead{r.node, r.incarnation, sender, false});
          else on_suspect(now, Suspect{r.node, r.incarnation, sender});
        } else {
          // Unknown to us: take it in as alive first, so that our own probes
          // and suspicion timer settle its fate.
          if (members_.find(r.node.name) == nullptr) {
            on_alive(now, Alive{r.node, r.incarnation, r.addr, r.version}, false);
          }
          on_suspect(now, Suspect{r.node, r.incarnation, sender});
        }
        break;
      case MemberState::left:
        on_dead(now, Dead{r.node, r.incarnation, r.node.name, true});
        break;
    }
  }
}

}  // namespace regfs::cluster
