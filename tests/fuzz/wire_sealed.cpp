// Wire frames before decryption (daemon/transport): a datagram's seal and
// the replay window it goes through, and a stream exchange's sealed header
// and body bound to the receiver's challenge. The key is a fixed test key.
//
// The first input byte picks what the rest is:
//   0  bytes as they arrive: a datagram to open, a stream header and body to
//      open keyed, and the same header and body unkeyed (no seal to pass:
//      the length bounds and the sender's address are reached);
//   1  a datagram's plaintext, sealed here at a time taken from the input;
//   2  a stream body's plaintext (u16 address length, address, frame),
//      sealed here as a sender answers a challenge;
//   3  a sequence of datagram labels, 5 bytes each, for a ReplayGuard.
// Properties: what opens under the key is a genuine seal (one altered byte
// and it fails; the fuzzer cannot forge, but the seeds hold real seals);
// what is sealed opens to itself, bound to its kind and challenge, and one
// altered byte makes it fail; a sealed exchange is judged exactly as the
// same exchange unkeyed; the replay guard never admits one frame twice,
// admits nothing outside its clock tolerance and remembers a bounded number
// of streams.
#include <array>
#include <set>
#include <tuple>

#include "fuzz.hpp"
#include "transport/keyring.hpp"
#include "transport/replay.hpp"
#include "transport/stream.hpp"

using namespace regfs;
using namespace regfs::transport;

namespace {

const Keyring& ring() {
  static const Keyring r = [] {
    Key k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i);
    return Keyring({k});
  }();
  return r;
}

constexpr std::array<std::uint8_t, 16> kContext{1, 2,  3,  4,  5,  6,  7,  8,
                                                9, 10, 11, 12, 13, 14, 15, 16};
constexpr std::array<std::uint8_t, 16> kOtherContext{2, 2,  3,  4,  5,  6,  7,  8,
                                                     9, 10, 11, 12, 13, 14, 15, 16};
constexpr std::size_t kMaxFrame = 8u << 20;

// Opened under the key: then it is a seal of that kind, and any altered
// byte (here the tag's last) makes it fail.
void check_genuine(SealKind kind, std::span<const std::uint8_t> in,
                   std::span<const std::uint8_t> context) {
  const auto label = peek_label(in);
  FUZZ_CHECK(label && label->kind == kind);
  std::vector<std::uint8_t> altered(in.begin(), in.end());
  altered.back() ^= 1;
  FUZZ_CHECK(!ring().open(kind, altered, context).ok());
}

void raw(std::span<const std::uint8_t> in) {
  if (ring().open(SealKind::packet, in).ok()) check_genuine(SealKind::packet, in, {});
  if (const auto label = peek_label(in)) {
    FUZZ_CHECK(in.size() >= kSealOverhead && in[0] == 'R' && in[1] == 'F' && in[2] == 2);
  }
  const std::size_t keyed = header_size(true);
  if (in.size() >= keyed) {
    const StreamHeader h = open_stream_header(&ring(), kContext, in.first(keyed), kMaxFrame);
    if (h.fault != StreamFault::forged)
      check_genuine(SealKind::stream_header, in.first(keyed), kContext);
    const auto body = in.subspan(keyed);
    if (open_stream_body(&ring(), kContext, {body.begin(), body.end()}).fault !=
        StreamFault::forged) {
      check_genuine(SealKind::stream_body, body, kContext);
    }
  }
  const std::size_t bare = header_size(false);
  if (in.size() >= bare) {
    const StreamHeader h = open_stream_header(nullptr, kContext, in.first(bare), kMaxFrame);
    if (h.fault == StreamFault::none)
      FUZZ_CHECK(h.length >= 2 && h.length <= 2 + kMaxAddrBytes + kMaxFrame);
    const auto body = in.subspan(bare);
    const StreamBody b = open_stream_body(nullptr, kContext, {body.begin(), body.end()});
    if (b.fault == StreamFault::none) {
      FUZZ_CHECK(!b.from.empty() && b.from.size() <= kMaxAddrBytes);
      FUZZ_CHECK(parse_addr(b.from).has_value());
      FUZZ_CHECK(b.frame_at == 2 + b.from.size() && b.frame_at <= b.plain.size());
    }
  }
}

void sealed_datagram(std::span<const std::uint8_t> in) {
  if (in.size() < 10) return;
  std::uint64_t time_ms = 0;
  for (int i = 0; i < 8; ++i) time_ms = (time_ms << 8) | in[static_cast<std::size_t>(i)];
  const std::size_t flip = in[8];
  const auto plain = in.subspan(9);
  auto sealed = ring().seal(SealKind::packet, time_ms, plain);
  FUZZ_CHECK(sealed.size() == plain.size() + kSealOverhead);
  const auto label = peek_label(sealed);
  FUZZ_CHECK(label && label->kind == SealKind::packet && label->time_ms == time_ms);
  auto opened = ring().open(SealKind::packet, sealed);
  FUZZ_CHECK(opened.ok() && std::equal(opened->begin(), opened->end(), plain.begin(), plain.end()));
  FUZZ_CHECK(!ring().open(SealKind::stream_body, sealed).ok());
  FUZZ_CHECK(!ring().open(SealKind::packet, sealed, kContext).ok());
  sealed[flip % sealed.size()] ^= static_cast<std::uint8_t>(1u << (flip % 8));
  FUZZ_CHECK(!ring().open(SealKind::packet, sealed).ok());
}

void sealed_exchange(std::span<const std::uint8_t> plain) {
  const auto body = ring().seal(SealKind::stream_body, 1, plain, kContext);
  std::vector<std::uint8_t> length;
  put_u32(length, static_cast<std::uint32_t>(body.size()));
  const auto header = ring().seal(SealKind::stream_header, 1, length, kContext);
  FUZZ_CHECK(header.size() == header_size(true));

  // The header opens; its length is refused only when no address length fits.
  const StreamHeader h = open_stream_header(&ring(), kContext, header, kMaxFrame);
  if (plain.size() < 2) {
    FUZZ_CHECK(h.fault == StreamFault::malformed);
  } else {
    FUZZ_CHECK(h.fault == StreamFault::none && h.length == body.size());
  }
  FUZZ_CHECK(open_stream_header(&ring(), kOtherContext, header, kMaxFrame).fault ==
             StreamFault::forged);
  FUZZ_CHECK(open_stream_header(&ring(), kContext,
                                body.size() >= header.size() ? std::span(body).first(header.size())
                                                             : std::span(body),
                                kMaxFrame)
                 .fault != StreamFault::none);
  const StreamBody keyed = open_stream_body(&ring(), kContext, body);
  FUZZ_CHECK(open_stream_body(&ring(), kOtherContext, body).fault == StreamFault::forged);
  FUZZ_CHECK(open_stream_body(&ring(), kContext, header).fault == StreamFault::forged);
  // The same exchange unkeyed is judged the same.
  const StreamBody bare = open_stream_body(nullptr, kContext, {plain.begin(), plain.end()});
  FUZZ_CHECK(keyed.fault == bare.fault);
  FUZZ_CHECK(keyed.fault != StreamFault::forged);
  if (keyed.fault == StreamFault::none) {
    FUZZ_CHECK(keyed.from == bare.from && keyed.frame_at == bare.frame_at);
    FUZZ_CHECK(std::equal(keyed.plain.begin(), keyed.plain.end(), plain.begin(), plain.end()));
  }
}

void replay_window(std::span<const std::uint8_t> in) {
  constexpr std::uint64_t kTolerance = 1000;
  constexpr std::size_t kStreams = 4;
  ReplayGuard guard(kTolerance, kStreams);
  std::uint64_t now = 1'000'000;
  std::set<std::tuple<std::uint8_t, std::uint64_t, std::uint64_t>> admitted;
  for (std::size_t i = 0; i + 5 <= in.size(); i += 5) {
    SealLabel l;
    l.stream[0] = in[i] & 7;
    l.counter = std::uint64_t{in[i + 1]} | (std::uint64_t{in[i + 2]} << 8);
    const auto offset = static_cast<std::int8_t>(in[i + 3]);
    l.time_ms =
        offset == -128 ? ~std::uint64_t{0} : now + static_cast<std::uint64_t>(offset * 20) - 1000;
    const auto v = guard.admit(l, now);
    const bool within = l.time_ms + kTolerance >= now && l.time_ms <= now + kTolerance;
    if (v == ReplayGuard::Verdict::fresh) {
      FUZZ_CHECK(within);
      FUZZ_CHECK(admitted.insert({l.stream[0], l.counter, l.time_ms}).second);
    }
    if (!within) FUZZ_CHECK(v == ReplayGuard::Verdict::stale);
    FUZZ_CHECK(guard.streams() <= kStreams);
    now += std::uint64_t{in[i + 4]} * 10;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto in = fuzz::bytes(data, size).subspan(1);
  switch (data[0] % 4) {
    case 0:
      raw(in);
      break;
    case 1:
      sealed_datagram(in);
      break;
    case 2:
      sealed_exchange(in);
      break;
    default:
      replay_window(in);
  }
  return 0;
}
