#include "keyring.hpp"

#include "core/base64.hpp"

#include <cstring>
#include <fstream>
#include <pthread.h>
#include <sodium.h>
#include <sstream>

namespace regfs::transport {
namespace {

// Nonces without a system call per packet: each thread draws a random
// 16-byte prefix once and counts up in the last 8 bytes, so no two packets
// sealed under one key share a nonce (XChaCha20's 24-byte nonces leave room
// for both). A forked child draws a new prefix.
struct NonceStream {
  std::uint8_t prefix[16] = {};
  std::uint64_t next = 0;
  bool seeded = false;
};
thread_local NonceStream t_nonces;

void next_nonce(std::uint8_t* out) {
  static const bool reseed_after_fork = [] {
    return pthread_atfork(nullptr, nullptr, [] { t_nonces.seeded = false; }) == 0;
  }();
  (void)reseed_after_fork;
  NonceStream& s = t_nonces;
  if (!s.seeded) {
    randombytes_buf(s.prefix, sizeof s.prefix);
    s.next = 0;
    s.seeded = true;
  }
  std::memcpy(out, s.prefix, sizeof s.prefix);
  for (int i = 0; i < 8; ++i) out[16 + i] = static_cast<std::uint8_t>(s.next >> (8 * i));
  ++s.next;
}

constexpr std::uint8_t kMagic0 = 'R';
constexpr std::uint8_t kMagic1 = 'F';
constexpr std::uint8_t kVersion = 2;
constexpr std::size_t kNonceAt = 4;
constexpr std::size_t kTimeAt = 28;
constexpr std::size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t kMaxSealed = 16 * 1024 * 1024;

static_assert(kNonceAt + kNonce == kTimeAt && kTimeAt + 8 == kSealLabel);
static_assert(kSealLabel + kTag == kSealOverhead);

bool known_kind(std::uint8_t k) {
  return k == static_cast<std::uint8_t>(SealKind::packet) ||
         k == static_cast<std::uint8_t>(SealKind::stream_header) ||
         k == static_cast<std::uint8_t>(SealKind::stream_body);
}

// The associated data: the label, then the context.
std::vector<std::uint8_t> associated(std::span<const std::uint8_t> label,
                                     std::span<const std::uint8_t> context) {
  std::vector<std::uint8_t> ad(label.size() + context.size());
  std::memcpy(ad.data(), label.data(), label.size());
  if (!context.empty()) std::memcpy(ad.data() + label.size(), context.data(), context.size());
  return ad;
}

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  (void)ready;
}

Error bad_key(std::string what) { return Error{Errc::invalid_line, "keyring: " + std::move(what)}; }

}  // namespace

void random_bytes(std::span<std::uint8_t> out) {
  ensure_sodium();
  randombytes_buf(out.data(), out.size());
}

Keyring::Keyring(std::vector<Key> keys) : keys_(std::move(keys)) { ensure_sodium(); }

Result<Keyring> Keyring::parse(std::string_view text) {
  std::vector<Key> keys;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    auto bytes = base64_decode(line);
    if (!bytes || bytes->size() != kKeyBytes) {
      return bad_key("line " + std::to_string(line_no) + ": expected a base64 32-byte key");
    }
    Key key{};
    std::memcpy(key.data(), bytes->data(), key.size());
    keys.push_back(key);
  }
  if (keys.empty()) return bad_key("no key");
  return Keyring(std::move(keys));
}

Result<Keyring> Keyring::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{Errc::io, "cannot read key file " + path};
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str());
}

std::string Keyring::generate_key() {
  ensure_sodium();
  Key key{};
  randombytes_buf(key.data(), key.size());
  return base64_encode({reinterpret_cast<const char*>(key.data()), key.size()});
}

std::optional<SealLabel> peek_label(std::span<const std::uint8_t> sealed) {
  if (sealed.size() < kSealOverhead || sealed[0] != kMagic0 || sealed[1] != kMagic1 ||
      sealed[2] != kVersion || !known_kind(sealed[3])) {
    return std::nullopt;
  }
  SealLabel l;
  l.kind = static_cast<SealKind>(sealed[3]);
  std::memcpy(l.stream.data(), sealed.data() + kNonceAt, l.stream.size());
  for (int i = 0; i < 8; ++i) l.counter |= std::uint64_t{sealed[kNonceAt + 16 + i]} << (8 * i);
  for (int i = 0; i < 8; ++i) l.time_ms = (l.time_ms << 8) | sealed[kTimeAt + i];
  return l;
}

std::vector<std::uint8_t> Keyring::seal(SealKind kind, std::uint64_t time_ms,
                                        std::span<const std::uint8_t> plain,
                                        std::span<const std::uint8_t> context) const {
  std::vector<std::uint8_t> out(kSealLabel + plain.size() + kTag);
  out[0] = kMagic0;
  out[1] = kMagic1;
  out[2] = kVersion;
  out[3] = static_cast<std::uint8_t>(kind);
  static_assert(kNonce == 24);
  next_nonce(out.data() + kNonceAt);
  for (int i = 0; i < 8; ++i) out[kTimeAt + i] = static_cast<std::uint8_t>(time_ms >> (56 - 8 * i));
  const auto ad = associated(std::span(out.data(), kSealLabel), context);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + kSealLabel, &written, plain.data(),
                                             plain.size(), ad.data(), ad.size(), nullptr,
                                             out.data() + kNonceAt, keys_.front().data());
  out.resize(kSealLabel + written);
  return out;
}

Result<std::vector<std::uint8_t>> Keyring::open(SealKind kind, std::span<const std::uint8_t> sealed,
                                                std::span<const std::uint8_t> context) const {
  if (sealed.size() < kSealOverhead || sealed.size() > kMaxSealed) {
    return Error{Errc::invalid_line, "sealed frame of " + std::to_string(sealed.size()) + " bytes"};
  }
  const auto label = peek_label(sealed);
  if (!label) return Error{Errc::invalid_line, "not a sealed regfs frame"};
  if (label->kind != kind) return Error{Errc::invalid_line, "sealed frame of another kind"};
  std::vector<std::uint8_t> plain(sealed.size() - kSealOverhead);
  const auto ad = associated(sealed.first(kSealLabel), context);
  const std::uint8_t* nonce = sealed.data() + kNonceAt;
  const std::uint8_t* cipher = sealed.data() + kSealLabel;
  const std::size_t cipher_len = sealed.size() - kSealLabel;
  for (const Key& key : keys_) {
    unsigned long long len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain.data(), &len, nullptr, cipher, cipher_len,
                                                   ad.data(), ad.size(), nonce, key.data()) == 0) {
      plain.resize(len);
      return plain;
    }
  }
  return Error{Errc::invalid_line, "authentication failed"};
}

}  // namespace regfs::transport
