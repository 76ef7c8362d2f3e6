// A few cluster cores driven by hand on a loss-free network, for tests that
// feed them forged frames and freeze, kill or restart one of them. Frames
// are delivered at once (in rounds, up to a bound), ticks at each core's
// deadline, time in steps of 1 ms.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/codec.hpp"
#include "cluster/core.hpp"

namespace regfs::cluster::testing {

class Mesh {
 public:
  explicit Mesh(Config cfg) : cfg_(std::move(cfg)) {}

  // Starts a core named `name` at `generation`, joining `seeds` (indices).
  std::size_t add(const std::string& name, std::uint64_t generation, std::vector<std::size_t> seeds = {}) {
    slots_.push_back(Slot{name, nullptr, false, {}});
    const std::size_t i = slots_.size() - 1;
    start(i, generation, std::move(seeds));
    return i;
  }
  // A new process for slot i (its previous core is gone) at `generation`.
  void start(std::size_t i, std::uint64_t generation, std::vector<std::size_t> seeds = {}) {
    Slot& s = slots_[i];
    s.core = std::make_unique<Core>(cfg_, NodeId{s.name, generation}, addr(i), 1000 + i + generation, now);
    s.frozen = false;
    std::vector<PeerAddr> to;
    for (std::size_t j : seeds) to.push_back(addr(j));
    s.core->join(now, to);
    s.reported = 0;
    flush();
  }
  void kill(std::size_t i) { slots_[i].core.reset(); }
  // A frozen core neither ticks nor hears anything (a suspended process);
  // what is sent to it meanwhile is lost.
  void freeze(std::size_t i, bool frozen) { slots_[i].frozen = frozen; }

  Core& operator[](std::size_t i) { return *slots_[i].core; }
  // The generation of the last new life core i reported starting (0: none).
  std::uint64_t reported(std::size_t i) const { return slots_[i].reported; }
  PeerAddr addr(std::size_t i) const { return PeerAddr{slots_[i].name + ":7946"}; }

  // A frame from someone holding the key: `sender` need not be a member.
  void inject(std::size_t to, const NodeId& sender, std::vector<Message> ms,
              Channel ch = Channel::packet) {
    auto bytes = encode_frame(ch, sender, ms);
    slots_[to].core->handle(now, PeerAddr{"10.66.6.6:7946"}, bytes);
    flush();
  }

  void run(Duration d) {
    const Time end = now + d;
    while (now < end) {
      now = now + milliseconds(1);
      for (auto& s : slots_) {
        if (s.core && !s.frozen && now >= s.core->next_deadline()) s.core->tick(now);
      }
      flush();
    }
  }
  // Runs until `done` holds, at most `limit`; returns how long it took
  // (limit + 1 ms when it never held).
  Duration until(Duration limit, const std::function<bool()>& done) {
    const Time start = now;
    while (!done()) {
      if (now - start >= limit) return limit + milliseconds(1);
      run(milliseconds(1));
    }
    return now - start;
  }

  // Whether core i holds `name` as a live member at exactly `id`'s life.
  bool sees_alive(std::size_t i, const NodeId& id) {
    for (const auto& m : slots_[i].core->members()) {
      if (m.id == id) return m.state == MemberState::alive;
    }
    return false;
  }
  const MemberInfo* member(std::size_t i, const std::string& name) {
    info_ = slots_[i].core->members();
    for (const auto& m : info_) {
      if (m.id.name == name) return &m;
    }
    return nullptr;
  }

  Time now{};

 private:
  struct Slot {
    std::string name;
    std::unique_ptr<Core> core;
    bool frozen = false;
    std::uint64_t reported = 0;  // the last new life the core reported (Events::generation)
  };
  void flush() {
    for (int round = 0; round < 16; ++round) {
      bool any = false;
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (!slots_[i].core) continue;
        auto out = slots_[i].core->take_outgoing();
        const auto events = slots_[i].core->take_events();
        if (events.generation != 0) slots_[i].reported = events.generation;
        for (auto& o : out) {
          for (std::size_t j = 0; j < slots_.size(); ++j) {
            if (addr(j) != o.to || !slots_[j].core || slots_[j].frozen) continue;
            slots_[j].core->handle(now, addr(i), o.bytes);
            any = true;
          }
        }
      }
      if (!any) return;
    }
  }

  Config cfg_;
  std::vector<Slot> slots_;
  std::vector<MemberInfo> info_;
};

inline std::vector<InstanceSpec> at(std::string host, std::uint16_t port = 80) {
  return {InstanceSpec{Endpoint{std::move(host), port}, Check{}}};
}

}  // namespace regfs::cluster::testing
