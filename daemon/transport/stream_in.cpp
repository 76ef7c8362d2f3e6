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
  std::uint32_t length = 0;
  if (keyring_) {
    const auto context = std::span(conn->challenge).subspan(kChallengeMagic.size());
    auto plain = keyring_->open(SealKind::stream_header, std::span(conn->header.data(), n), context);
    if (!plain || plain->size() != 4) {
      ++stats_.auth_failures;
      return finish(conn);
    }
    length = get_u32(plain->data());
  } else {
    length = get_u32(conn->header.data());
  }
  const std::size_t overhead = keyring_ ? kSealOverhead : 0;
  if (length < overhead + 2 || length > overhead + 2 + kMaxAddrBytes + limits_.max_frame) {
    ++stats_.dropped;
    return finish(conn);
  }
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
  std::vector<std::uint8_t> plain;
  if (keyring_) {
    const auto context = std::span(conn->challenge).subspan(kChallengeMagic.size());
    auto opened = keyring_->open(SealKind::stream_body, conn->body, context);
    if (!opened) {
      ++stats_.auth_failures;
      return finish(conn);
    }
    plain = std::move(*opened);
  } else {
    plain = std::move(conn->body);
  }
  finish(conn);
  if (plain.size() < 2) {
    ++stats_.dropped;
    return;
  }
  const std::size_t alen = (std::size_t{plain[0]} << 8) | plain[1];
  if (alen > kMaxAddrBytes || 2 + alen > plain.size()) {
    ++stats_.dropped;
    return;
  }
  const std::string from(plain.begin() + 2, plain.begin() + 2 + static_cast<long>(alen));
  if (!parse_addr(from)) {
    ++stats_.dropped;
    return;
  }
  deliver_(from, true, std::span(plain.data() + 2 + alen, plain.size() - 2 - alen));
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
