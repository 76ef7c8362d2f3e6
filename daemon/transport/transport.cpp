#include "transport.hpp"

#include "stream.hpp"

#include "core/host_port.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <sys/socket.h>

namespace regfs::transport {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;

namespace {
constexpr std::size_t kMaxDatagram = 65536;
}  // namespace

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::optional<std::pair<asio::ip::address, std::uint16_t>> parse_addr(const std::string& text) {
  const auto parsed = HostPort::parse(text);
  if (!parsed) return std::nullopt;
  error_code ec;
  const auto addr = asio::ip::make_address(parsed->host, ec);
  if (ec) return std::nullopt;
  // An IPv6 zone that is not an interface's name is read as a number with
  // atoi: past 2^31 it comes out as another zone (the text written back reads
  // as yet another), so a zone is kept only when it reads back the same.
  if (addr.is_v6() && addr.to_v6().scope_id() != 0) {
    const auto again = asio::ip::make_address(addr.to_string(), ec);
    if (ec || again != addr || addr.to_string().find('%') == std::string::npos) return std::nullopt;
  }
  return std::make_pair(addr, parsed->port);
}

std::string format_addr(const asio::ip::address& a, std::uint16_t port) {
  return HostPort{a.to_string(), port}.to_string();
}

Transport::Transport(asio::io_context& io, std::optional<Keyring> keyring, StreamLimits limits,
                     Deliver deliver)
    : io_(io),
      keyring_(std::move(keyring)),
      limits_(limits),
      deliver_(std::move(deliver)),
      udp_(io),
      acceptor_(io),
      accept_timer_(io),
      packet_buf_(kMaxDatagram),
      packet_rate_(limits.packets_per_source),
      stream_rate_(limits.streams_per_source) {}

Transport::~Transport() { close(); }

Result<std::unique_ptr<Transport>> Transport::open(asio::io_context& io, const std::string& bind,
                                                   std::optional<Keyring> keyring,
                                                   std::size_t max_stream, Deliver deliver) {
  StreamLimits limits;
  limits.max_frame = max_stream;
  return open(io, bind, std::move(keyring), limits, std::move(deliver));
}

Result<std::unique_ptr<Transport>> Transport::open(asio::io_context& io, const std::string& bind,
                                                   std::optional<Keyring> keyring,
                                                   StreamLimits limits, Deliver deliver) {
  const auto addr = parse_addr(bind);
  if (!addr) return Error{Errc::invalid_line, "--bind: expected IP:PORT, got '" + bind + "'"};
  auto t = std::unique_ptr<Transport>(new Transport(io, std::move(keyring), limits, std::move(deliver)));
  error_code ec;
  tcp::endpoint tep(addr->first, addr->second);
  t->acceptor_.open(tep.protocol(), ec);
  if (!ec) t->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) t->acceptor_.bind(tep, ec);
  if (!ec) t->acceptor_.listen(128, ec);
  if (ec) return Error{Errc::io, "cannot listen on TCP " + bind + ": " + ec.message()};
  t->port_ = t->acceptor_.local_endpoint().port();
  udp::endpoint uep(addr->first, t->port_);
  t->udp_.open(uep.protocol(), ec);
  if (!ec) t->udp_.bind(uep, ec);
  if (ec) return Error{Errc::io, "cannot bind UDP " + format_addr(addr->first, t->port_) + ": " + ec.message()};
  t->receive_packet();
  t->accept_stream();
  return t;
}

std::vector<std::uint8_t> Transport::seal_packet(std::span<const std::uint8_t> frame) const {
  if (!keyring_) return {frame.begin(), frame.end()};
  return keyring_->seal(SealKind::packet, wall_ms(), frame);
}

void Transport::on_packet(std::span<const std::uint8_t> data) {
  ++stats_.packets_in;
  stats_.bytes_in += data.size();
  // Before anything costly (opening the seal): a flood costs one look-up each.
  if (!packet_rate_.admit(packet_from_.address().to_string(), std::chrono::steady_clock::now())) {
    ++stats_.packets_rate_limited;
    return;
  }
  const std::string from = format_addr(packet_from_.address(), packet_from_.port());
  if (!keyring_) return deliver_(from, false, data);
  auto plain = keyring_->open(SealKind::packet, data);
  if (!plain) {
    ++stats_.auth_failures;
    return;
  }
  const auto label = peek_label(data);  // opened, so present and authentic
  const std::uint64_t now = wall_ms();
  switch (replay_.admit(*label, now)) {
    case ReplayGuard::Verdict::fresh:
      return deliver_(from, false, *plain);
    case ReplayGuard::Verdict::replayed:
      ++stats_.replays;
      return;
    case ReplayGuard::Verdict::stale:
      ++stats_.stale;
      stats_.last_stale_skew_ms = static_cast<std::int64_t>(label->time_ms - now);
      stats_.last_stale_from = from;
      return;
  }
}

void Transport::receive_packet() {
  udp_.async_receive_from(asio::buffer(packet_buf_), packet_from_,
                          [this](const error_code& ec, std::size_t n) {
                            if (closed_ || ec == asio::error::operation_aborted) return;
                            if (!ec) on_packet({packet_buf_.data(), n});
                            receive_packet();
                          });
}

void Transport::send_packet(const std::string& to, std::vector<std::uint8_t> frame) {
  const auto addr = parse_addr(to);
  if (!addr || closed_) {
    ++stats_.dropped;
    return;
  }
  auto sealed = seal_packet(frame);
  ++stats_.packets_out;
  stats_.bytes_out += sealed.size();
  queue_sealed(udp::endpoint(addr->first, addr->second), std::move(sealed));
}

void Transport::queue_sealed(const udp::endpoint& to, std::vector<std::uint8_t> sealed) {
  auto buf = std::make_shared<std::vector<std::uint8_t>>(std::move(sealed));
  udp_.async_send_to(asio::buffer(*buf), to, [this, buf](const error_code& ec, std::size_t) {
    if (ec && ec != asio::error::operation_aborted) ++stats_.dropped;
  });
}

void Transport::send_packets(std::vector<Datagram> batch) {
  if (batch.size() == 1) return send_packet(batch.front().to, std::move(batch.front().frame));
  std::vector<std::vector<std::uint8_t>> sealed;
  std::vector<udp::endpoint> to;
  sealed.reserve(batch.size());
  to.reserve(batch.size());
  for (auto& d : batch) {
    const auto addr = parse_addr(d.to);
    if (!addr || closed_) {
      ++stats_.dropped;
      continue;
    }
    sealed.push_back(seal_packet(d.frame));
    to.emplace_back(addr->first, addr->second);
    ++stats_.packets_out;
    stats_.bytes_out += sealed.back().size();
  }
  std::vector<iovec> iov(sealed.size());
  std::vector<mmsghdr> msgs(sealed.size());
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    iov[i] = iovec{sealed[i].data(), sealed[i].size()};
    msghdr& h = msgs[i].msg_hdr;
    h.msg_name = to[i].data();
    h.msg_namelen = static_cast<socklen_t>(to[i].size());
    h.msg_iov = &iov[i];
    h.msg_iovlen = 1;
  }
  std::size_t done = 0;
  while (done < msgs.size()) {
    const int n = ::sendmmsg(udp_.native_handle(), msgs.data() + done,
                             static_cast<unsigned>(msgs.size() - done), MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      break;  // the socket is full: queue the rest
    } else {
      ++stats_.dropped;  // this datagram failed (unreachable, refused): skip it
      ++done;
    }
  }
  for (std::size_t i = done; i < sealed.size(); ++i) queue_sealed(to[i], std::move(sealed[i]));
}

Status Transport::replace_keyring(Keyring keyring) {
  if (!keyring_) {
    return Error{Errc::io, "this daemon started without a key: restart it with one"};
  }
  keyring_ = std::move(keyring);
  ++stats_.keyring_reloads;
  return ok_status();
}

void Transport::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  udp_.close(ignored);
  acceptor_.close(ignored);
  accept_timer_.cancel();
  while (!inbound_.empty()) {
    // A copy: finish() erases the map's own, which a reference would dangle on.
    const std::shared_ptr<Inbound> conn = inbound_.begin()->second;
    if (conn->done) {
      inbound_.erase(inbound_.begin());
    } else {
      finish(conn);
    }
  }
}

}  // namespace regfs::transport
