// SWIM failure detection: one probe per interval, round robin over a
// shuffled member list; a missed direct ack asks k members to probe
// indirectly; a probe that ends without any ack raises a suspicion.
// Lifeguard: timeouts stretch with this node's awareness score, and missing
// nacks from the indirect helpers count against this node, not the target.
#include <algorithm>
#include <iterator>

#include "cluster/codec.hpp"

#include "cluster/core.hpp"

namespace regfs::cluster {

void Core::probe_tick(Time now) {
  if (probe_.active && !probe_.indirect && now >= probe_.direct_deadline) {
    probe_.indirect = true;
    const Member* target = members_.find(probe_.target.name);
    if (target == nullptr) {
      probe_.active = false;
    } else {
      const PeerAddr addr = target->addr;
      auto helpers = pick(static_cast<std::size_t>(cfg_.indirect_checks), probe_.target.name, false);
      probe_.expected_nacks = static_cast<int>(helpers.size());
      for (const Member* h : helpers) send_packet(h->addr, PingReq{probe_.seq, probe_.target, addr});
    }
  }
  if (probe_.active && probe_.indirect && now >= probe_.end) {
    probe_.active = false;
    stats_.probe_failures++;
    int delta = 1;
    if (probe_.expected_nacks > 0) delta = std::max(0, probe_.expected_nacks - probe_.nacks);
    awareness_.apply(delta);
    const Member* m = members_.find(probe_.target.name);
    if (m != nullptr && m->id == probe_.target && is_live(m->state)) {
      on_suspect(now, Suspect{m->id, m->incarnation, self_.name});
    }
  }
  if (!probe_.active && now >= next_probe_ && !leaving_) start_probe(now);
}

void Core::start_probe(Time now) {
  next_probe_ = now + awareness_.scale(cfg_.probe_interval);
  refresh_peers();
  // Every other probe goes to a suspect, if there is one: either it answers
  // (and hears of the suspicion, see below) or it confirms the suspicion.
  suspect_turn_ = !suspect_turn_;
  if (suspect_turn_ && !suspicions_.empty()) {
    auto s = suspicions_.begin();
    std::advance(s, static_cast<std::ptrdiff_t>(random(suspicions_.size())));
    const Member* m = members_.find(s->first);
    if (m != nullptr && m->state == MemberState::suspect) return send_probe(now, *m);
  }
  for (std::size_t tries = 0; tries <= probe_order_.size(); ++tries) {
    if (probe_pos_ >= probe_order_.size()) {
      probe_order_ = peers_;
      for (std::size_t i = probe_order_.size(); i > 1; --i) {
        std::swap(probe_order_[i - 1], probe_order_[random(i)]);
      }
      probe_pos_ = 0;
      if (probe_order_.empty()) break;
    }
    const Member& m = *probe_order_[probe_pos_++];
    if (!is_live(m.state)) continue;
    return send_probe(now, m);
  }
  probe_idle_ = true;  // nobody to probe: no probe timer until the membership changes
}

void Core::send_probe(Time now, const Member& m) {
  stats_.probes++;
  probe_ = Probe{};
  probe_.active = true;
  probe_.seq = next_seq_++;
  probe_.target = m.id;
  probe_.direct_deadline = now + awareness_.scale(cfg_.probe_timeout);
  probe_.end = next_probe_;
  if (m.state == MemberState::suspect) {
    // Lifeguard's buddy system: tell a suspect it is suspected, so that it
    // refutes at once and its ack carries the refutation back.
    auto bytes = encode_header(Channel::packet, self_);
    for (const Message& msg : {Message{Ping{probe_.seq, m.id}},
                               Message{Suspect{m.id, m.incarnation, self_.name}}}) {
      auto b = encode_message(msg);
      bytes.insert(bytes.end(), b.begin(), b.end());
    }
    broadcasts_.pack(bytes, cfg_.wire.max_packet - bytes.size(), retransmit_limit());
    return send(m.addr, Channel::packet, std::move(bytes));
  }
  send_packet(m.addr, Ping{probe_.seq, m.id});
}

void Core::on_ping(Time, const PeerAddr& from, const Ping& m) {
  if (leaving_) return;
  if (m.target.name == self_.name && m.target.generation < self_.generation) {
    // A probe for our previous life: no ack (that life is over), but tell
    // the prober of this one, or a node restarted without seeds stays
    // unknown to peers that only probe the dead.
    return send_packet(from, self_alive());
  }
  if (m.target != self_) return;  // not this life: let the prober suspect it
  send_packet(from, Ack{m.seq, store_.hash()});
}

void Core::on_ping_req(Time now, const PeerAddr& from, const PingReq& m) {
  if (leaving_) return;
  const std::uint32_t seq = next_seq_++;
  // Nack early enough to reach the requester before its probe round ends.
  relays_[seq] = Relay{from, m.seq, now + cfg_.probe_timeout * 4 / 5};
  send_packet(m.addr, Ping{seq, m.target});
}

void Core::on_ack(Time now, const PeerAddr& from, const Ack& a) {
  const std::uint32_t seq = a.seq;
  if (reconnect_seq_ != 0 && seq == reconnect_seq_) return on_reconnect_ack(now);
  if (probe_.active && probe_.seq == seq) {
    probe_.active = false;
    awareness_.apply(-1);
    if (a.registry_hash != 0) compare_registry(now, from, a.registry_hash);
    return;
  }
  auto it = relays_.find(seq);
  if (it == relays_.end()) return;
  send_packet(it->second.requester, Ack{it->second.requester_seq, 0});
  relays_.erase(it);
}

void Core::on_nack(std::uint32_t seq) {
  if (probe_.active && probe_.seq == seq) probe_.nacks++;
}

}  // namespace regfs::cluster
