// The receiving side of stream exchanges: the TCP listener, its limits, and
// one exchange from challenge to delivered frame (layout in transport.hpp).
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "stream.hpp"

namespace regfs::transport {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr std::chrono::milliseconds kFirstPause{10};
constexpr std::chrono::milliseconds kMaxPause{1000};
}  // namespace

void Transport::accept_stream() {
  auto conn = std::make_shared<Inbound>(io_);
  acceptor_.async_accept(conn->socket, [this, conn](const error_code& ec) {
    if (closed_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors or memory: accepting again at once fails again at
      // once. Pause, doubling, so the loop keeps serving everything else.
      ++stats_.accept_errors;
      accept_pause_ = std::min(std::max(accept_pause_ * 2, kFirstPause), kMaxPause);
      accept_timer_.expires_after(accept_pause_);
      accept_timer_.async_wait([this](const error_code& tec) {
        if (!tec && !closed_) accept_stream();
      });
      return;
    }
    accept_pause_ = std::chrono::milliseconds(0);
    admit(conn);
    accept_stream();
  });
}

// At a limit, the oldest exchange of `source` (or of anyone, when `source`
// is empty) still waiting for its header is closed; false when none is.
bool Transport::make_room(const std::string& source) {
  for (const auto& [id, c] : inbound_) {
    if (c->authenticated || (!source.empty() && c->source != source)) continue;
    ++stats_.streams_refused;
    finish(std::shared_ptr<Inbound>(c));
    return true;
  }
  return false;
}

void Transport::admit(std::shared_ptr<Inbound> conn) {
  error_code ec;
  const auto remote = conn->socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  conn->source = remote.address().to_string();
  if (!stream_rate_.admit(conn->source, std::chrono::steady_clock::now())) {
    ++stats_.streams_rate_limited;
    conn->socket.close(ec);
    return;
  }
  if ((per_source_[conn->source] >= limits_.max_per_source && !make_room(conn->source)) ||
      (inbound_.size() >= limits_.max_connections && !make_room({}))) {
    ++stats_.streams_refused;
    if (per_source_[conn->source] == 0) per_source_.erase(conn->source);
    conn->socket.close(ec);
    return;
  }
  conn->id = next_inbound_++;
  conn->accepted = std::chrono::steady_clock::now();
  inbound_.emplace(conn->id, conn);
  ++per_source_[conn->source];
  stats_.streams_open = inbound_.size();

  conn->timer.expires_after(limits_.handshake_timeout);
  conn->timer.async_wait([this, conn](const error_code& tec) {
    if (tec || conn->done) return;
    ++stats_.stream_timeouts;
    finish(conn);
  });
  std::copy(kChallengeMagic.begin(), kChallengeMagic.end(), conn->challenge.begin());
  random_bytes(std::span(conn->challenge).subspan(kChallengeMagic.size()));
  asio::async_write(conn->socket, asio::buffer(conn->challenge), [this, conn](const error_code& wec, std::size_t) {
    if (conn->done) return;
    if (wec) return finish(conn);
    read_header(conn);
  });
}

void Transport::read_header(const std::shared_ptr<Inbound>& conn) {
  const std::size_t n = header_size(keyring_.has_value());
  asio::async_read(conn->socket, asio::buffer(conn->header.data(), n), [this, conn](const error_code& ec, std::size_t) {
    if (conn->done) return;
    if (ec) return finish(conn);
    on_header(conn);
  });
}

void Transport::on_header(const std::shared_ptr<Inbound>& conn) {
  const std::size_t n = header_size(keyring_.has_value());
  stats_.bytes_in += kChallenge + n;
  const auto context = std::span(conn->challenge).subspan(kChallengeMagic.size());
  const StreamHeader h = open_stream_header(keyring_ ? &*keyring_ : nullptr, context,
                                            std::span(conn->header.data(), n), limits_.max_frame);
  if (h.fault == StreamFault::forged) {
    ++stats_.auth_failures;
    return finish(conn);
  }
  if (h.fault == StreamFault::malformed) {
    ++stats_.dropped;
    return finish(conn);
  }
  const std::size_t length = h.length;
  if (buffered_ + length > limits_.max_buffered) {
    ++stats_.streams_refused;
    return finish(conn);
  }
  conn->authenticated = true;
  conn->expected = length;
  buffered_ += length;
  conn->body.reserve(length);  // address space only: pages are touched as bytes arrive
  const auto left = limits_.exchange_timeout - (std::chrono::steady_clock::now() - conn->accepted);
  conn->timer.expires_after(left);  // cancels the handshake deadline
  conn->timer.async_wait([this, conn](const error_code& tec) {
    if (tec || conn->done) return;
    ++stats_.stream_timeouts;
    finish(conn);
  });
  read_body(conn);
}

void Transport::read_body(const std::shared_ptr<Inbound>& conn) {
  const std::size_t have = conn->body.size();
  const std::size_t chunk = std::min(kBodyChunk, conn->expected - have);
  conn->body.resize(have + chunk);
  asio::async_read(conn->socket, asio::buffer(conn->body.data() + have, chunk),
                   [this, conn](const error_code& ec, std::size_t) {
                     if (conn->done) return;
                     if (ec) return finish(conn);
                     if (conn->body.size() < conn->expected) return read_body(conn);
                     on_body(conn);
                   });
}

void Transport::on_body(const std::shared_ptr<Inbound>& conn) {
  ++stats_.streams_in;
  stats_.bytes_in += conn->body.size();
  const auto context = std::span(conn->challenge).subspan(kChallengeMagic.size());
  StreamBody b = open_stream_body(keyring_ ? &*keyring_ : nullptr, context, std::move(conn->body));
  finish(conn);
  if (b.fault == StreamFault::forged) {
    ++stats_.auth_failures;
    return;
  }
  if (b.fault == StreamFault::malformed) {
    ++stats_.dropped;
    return;
  }
  deliver_(b.from, true, std::span(b.plain).subspan(b.frame_at));
}

StreamHeader open_stream_header(const Keyring* keyring, std::span<const std::uint8_t> context,
                                std::span<const std::uint8_t> header, std::size_t max_frame) {
  if (header.size() != header_size(keyring != nullptr)) return {StreamFault::malformed, 0};
  std::uint32_t length = 0;
  if (keyring != nullptr) {
    auto plain = keyring->open(SealKind::stream_header, header, context);
    if (!plain || plain->size() != 4) return {StreamFault::forged, 0};
    length = get_u32(plain->data());
  } else {
    length = get_u32(header.data());
  }
  const std::size_t overhead = keyring != nullptr ? kSealOverhead : 0;
  if (length < overhead + 2 || length > overhead + 2 + kMaxAddrBytes + max_frame) {
    return {StreamFault::malformed, 0};
  }
  return {StreamFault::none, length};
}

StreamBody open_stream_body(const Keyring* keyring, std::span<const std::uint8_t> context,
                            std::vector<std::uint8_t> body) {
  StreamBody b;
  if (keyring != nullptr) {
    auto opened = keyring->open(SealKind::stream_body, body, context);
    if (!opened) {
      b.fault = StreamFault::forged;
      return b;
    }
    b.plain = std::move(*opened);
  } else {
    b.plain = std::move(body);
  }
  b.fault = StreamFault::malformed;
  if (b.plain.size() < 2) return b;
  const std::size_t alen = (std::size_t{b.plain[0]} << 8) | b.plain[1];
  if (alen > kMaxAddrBytes || 2 + alen > b.plain.size()) return b;
  b.from.assign(b.plain.begin() + 2, b.plain.begin() + 2 + static_cast<long>(alen));
  if (!parse_addr(b.from)) return b;
  b.fault = StreamFault::none;
  b.frame_at = 2 + alen;
  return b;
}

void Transport::finish(const std::shared_ptr<Inbound>& conn) {
  if (conn->done) return;
  conn->done = true;
  error_code ignored;
  conn->timer.cancel();
  conn->socket.close(ignored);
  if (conn->authenticated) buffered_ -= conn->expected;
  conn->body = {};
  inbound_.erase(conn->id);
  if (auto it = per_source_.find(conn->source); it != per_source_.end() && --it->second == 0) {
    per_source_.erase(it);
  }
  stats_.streams_open = inbound_.size();
}

}  // namespace regfs::transport
