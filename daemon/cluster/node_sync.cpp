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

#include "cluster/hash.hpp"
#include "cluster/node.hpp"

namespace regfs::cluster {

void Node::spread_entry(Time now, const Entry& e, bool own) {
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

void Node::on_entry(Time now, const Entry& e) {
  if (store_.apply(e, now, events_.services)) spread_entry(now, e, false);
}

std::uint64_t Node::members_hash() const {
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

SyncState Node::state(std::uint8_t stage) const {
  SyncState s;
  s.stage = stage;
  s.members.reserve(members_.size());
  for (const auto& m : members_) s.members.push_back({m.id, m.incarnation, m.state, m.addr, m.announced});
  s.digests = store_.digests();
  return s;
}

Duration Node::push_pull_interval() const {
  // memberlist's scaling: beyond 32 members, one more interval per doubling.
  const double n = static_cast<double>(live_members());
  if (n <= 32) return cfg_.push_pull_interval;
  const double mult = std::ceil(std::log2(n) - std::log2(32.0)) + 1.0;
  return Duration(static_cast<Duration::rep>(mult * static_cast<double>(cfg_.push_pull_interval.count())));
}

void Node::catch_up_tick(Time now) {
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

void Node::compare_registry(Time now, const PeerAddr& peer, std::uint64_t hash) {
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

void Node::reconnect_tick(Time now) {
  if (now < reconnect_next_) return;
  reconnect_next_ = now + cfg_.reconnect_interval;
  refresh_peers();
  if (gone_.empty() || leaving_) return;
  const Member* d = gone_[random(gone_.size())];
  reconnect_seq_ = next_seq_++;
  reconnect_to_ = d->id;
  send_packet(d->addr, Ping{reconnect_seq_, d->id});
}

void Node::on_reconnect_ack(Time now) {
  reconnect_seq_ = 0;
  const Member* m = members_.find(reconnect_to_.name);
  if (m == nullptr || m->id != reconnect_to_ || m->state != MemberState::dead || leaving_) return;
  // It answers, so it was only cut off: the state exchange tells each side
  // that the other holds it dead, both refute, and each refutation travels
  // back in the same exchange (see handle).
  start_sync(now, m->addr);
}

void Node::start_sync(Time, const PeerAddr& to) {
  stats_.syncs_started++;
  send_stream(to, {SyncHello{members_hash(), store_.hash()}});
}

void Node::on_sync_hello(Time, const PeerAddr& from, const SyncHello& m) {
  if (m.members_hash == members_hash() && m.registry_hash == store_.hash()) return;
  stats_.syncs_full++;
  send_stream(from, {state(1)});
}

void Node::on_sync_state(Time, const PeerAddr& from, const SyncState& m,
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

void Node::merge(Time now, const std::string& sender, const std::vector<MemberRecord>& records) {
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
