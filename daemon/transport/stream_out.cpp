// The sending side of a stream exchange: connect, wait for the receiver's
// challenge, send the header and body sealed to it (layout in transport.hpp).
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "stream.hpp"

namespace regfs::transport {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

void Transport::send_stream(const std::string& to, std::vector<std::uint8_t> frame) {
  const auto addr = parse_addr(to);
  if (!addr || closed_ || advertised_.size() > kMaxAddrBytes) {
    ++stats_.dropped;
    return;
  }
  auto conn = std::make_shared<Outbound>(io_);
  conn->inner.reserve(2 + advertised_.size() + frame.size());
  conn->inner.push_back(static_cast<std::uint8_t>(advertised_.size() >> 8));
  conn->inner.push_back(static_cast<std::uint8_t>(advertised_.size()));
  conn->inner.insert(conn->inner.end(), advertised_.begin(), advertised_.end());
  conn->inner.insert(conn->inner.end(), frame.begin(), frame.end());
  frame = {};
  ++stats_.streams_out;
  conn->timer.expires_after(limits_.exchange_timeout);
  conn->timer.async_wait([conn](const error_code& ec) {
    if (ec) return;
    error_code ignored;
    conn->socket.close(ignored);
  });
  auto fail = [this, conn] {
    ++stats_.dropped;
    conn->timer.cancel();
    error_code ignored;
    conn->socket.close(ignored);
  };
  conn->socket.async_connect(tcp::endpoint(addr->first, addr->second), [this, conn, fail](const error_code& ec) {
    if (ec) return fail();
    asio::async_read(conn->socket, asio::buffer(conn->challenge), [this, conn, fail](const error_code& rec, std::size_t) {
      if (rec || !std::equal(kChallengeMagic.begin(), kChallengeMagic.end(), conn->challenge.begin())) {
        return fail();
      }
      if (keyring_) {
        const auto context = std::span(conn->challenge).subspan(kChallengeMagic.size());
        const std::uint64_t now = wall_ms();
        auto body = keyring_->seal(SealKind::stream_body, now, conn->inner, context);
        std::vector<std::uint8_t> length;
        put_u32(length, static_cast<std::uint32_t>(body.size()));
        conn->out = keyring_->seal(SealKind::stream_header, now, length, context);
        conn->out.insert(conn->out.end(), body.begin(), body.end());
      } else {
        put_u32(conn->out, static_cast<std::uint32_t>(conn->inner.size()));
        conn->out.insert(conn->out.end(), conn->inner.begin(), conn->inner.end());
      }
      conn->inner = {};
      stats_.bytes_out += conn->out.size();
      asio::async_write(conn->socket, asio::buffer(conn->out), [this, conn](const error_code& wec, std::size_t) {
        if (wec) ++stats_.dropped;
        conn->timer.cancel();
        error_code ignored;
        conn->socket.close(ignored);
      });
    });
  });
}

}  // namespace regfs::transport
