// Refuses sealed datagrams heard before, and datagrams stamped too far from
// this node's clock.
//
// A sender seals from nonce streams (keyring.hpp): a random 16-byte stream id
// and a counter that only grows. For each stream heard from, the guard keeps
// the highest counter and which of the kWindow counters below it arrived, as
// IPsec and WireGuard do (RFC 6479): a counter seen before, or older than the
// window, is a replay. A time stamp more than `tolerance` away from this
// node's clock is stale. Together they let a stream's record go once its
// newest frame is older than `tolerance`: every frame of it is stale by then.
// So the guard remembers the streams heard from within `tolerance`, at most
// `max_streams` of them; when it must forget a stream sooner, frames of
// streams it does not know are refused up to that stream's newest time, and
// so are those of a stream first heard from (again) while that floor holds.
//
// What it does not stop: the first copy of a frame that an eavesdropper
// delivers before the real one (the real one is then the replay), and a
// replay to a receiver restarted within `tolerance` of the capture.
//
// Pure (the time comes in as an argument); not thread-safe.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <map>

#include "transport/keyring.hpp"

namespace regfs::transport {

class ReplayGuard {
 public:
  enum class Verdict : std::uint8_t { fresh, replayed, stale };
  static constexpr std::size_t kWindow = 1024;

  explicit ReplayGuard(std::uint64_t tolerance_ms = 60'000, std::size_t max_streams = 4096)
      : tolerance_ms_(tolerance_ms), max_streams_(max_streams) {}

  // Judges a frame whose seal has been opened, and remembers it when fresh.
  Verdict admit(const SealLabel& label, std::uint64_t now_ms);

  std::size_t streams() const { return streams_.size(); }

 private:
  struct Record {
    std::uint64_t top = 0;        // the highest counter seen
    std::uint64_t newest_ms = 0;  // the latest time stamp seen
    std::bitset<kWindow> seen;    // bit i: counter top - i arrived
    // The refusal floor when the record was made: the stream may be one
    // forgotten before, whose frames up to then are not in `seen`.
    std::uint64_t floor_ms = 0;
  };
  void forget_old(std::uint64_t now_ms);

  std::uint64_t tolerance_ms_;
  std::size_t max_streams_;
  std::map<std::array<std::uint8_t, 16>, Record> streams_;
  std::uint64_t floor_ms_ = 0;  // unknown streams: refused at or below this time
  std::uint64_t next_sweep_ms_ = 0;
};

}  // namespace regfs::transport
