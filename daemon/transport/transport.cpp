#include "transport.hpp"

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
constexpr auto kStreamTimeout = std::chrono::seconds(5);

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::uint32_t get_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// One inbound or outbound TCP exchange, alive while its handlers run.
struct StreamConn : std::enable_shared_from_this<StreamConn> {
  explicit StreamConn(asio::io_context& io) : socket(io), timer(io) {}
  tcp::socket socket;
  asio::steady_timer timer;
  std::array<std::uint8_t, 4> header{};
  std::vector<std::uint8_t> body;
  void arm() {
    timer.expires_after(kStreamTimeout);
    timer.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec) {
        error_code ignored;
        self->socket.close(ignored);
      }
    });
  }
};

}  // namespace

std::optional<std::pair<asio::ip::address, std::uint16_t>> parse_addr(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size()) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  char* end = nullptr;
  const unsigned long port = std::strtoul(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port > 65535) return std::nullopt;
  return std::make_pair(addr, static_cast<std::uint16_t>(port));
}

std::string format_addr(const asio::ip::address& a, std::uint16_t port) {
  return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(port)
                   : a.to_string() + ":" + std::to_string(port);
}

Transport::Transport(asio::io_context& io, std::optional<Keyring> keyring, std::size_t max_stream,
                     Deliver deliver)
    : io_(io),
      keyring_(std::move(keyring)),
      max_stream_(max_stream),
      deliver_(std::move(deliver)),
      udp_(io),
      acceptor_(io),
      packet_buf_(kMaxDatagram) {}

Transport::~Transport() { close(); }

Result<std::unique_ptr<Transport>> Transport::open(asio::io_context& io, const std::string& bind,
                                                   std::optional<Keyring> keyring,
                                                   std::size_t max_stream, Deliver deliver) {
  const auto addr = parse_addr(bind);
  if (!addr) return Error{Errc::invalid_line, "--bind: expected IP:PORT, got '" + bind + "'"};
  auto t = std::unique_ptr<Transport>(new Transport(io, std::move(keyring), max_stream, std::move(deliver)));
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

std::vector<std::uint8_t> Transport::seal(std::span<const std::uint8_t> plain) const {
  if (!keyring_) return {plain.begin(), plain.end()};
  return keyring_->seal(plain);
}

std::optional<std::vector<std::uint8_t>> Transport::open_frame(std::span<const std::uint8_t> sealed) {
  if (!keyring_) return std::vector<std::uint8_t>(sealed.begin(), sealed.end());
  auto plain = keyring_->open(sealed);
  if (!plain) {
    ++stats_.auth_failures;
    return std::nullopt;
  }
  return std::move(*plain);
}

void Transport::receive_packet() {
  udp_.async_receive_from(asio::buffer(packet_buf_), packet_from_,
                          [this](const error_code& ec, std::size_t n) {
                            if (closed_ || ec == asio::error::operation_aborted) return;
                            if (!ec) {
                              ++stats_.packets_in;
                              stats_.bytes_in += n;
                              if (auto plain = open_frame({packet_buf_.data(), n})) {
                                deliver_(format_addr(packet_from_.address(), packet_from_.port()),
                                         false, *plain);
                              }
                            }
                            receive_packet();
                          });
}

void Transport::send_packet(const std::string& to, std::vector<std::uint8_t> frame) {
  const auto addr = parse_addr(to);
  if (!addr || closed_) {
    ++stats_.dropped;
    return;
  }
  auto sealed = seal(frame);
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
    sealed.push_back(seal(d.frame));
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

void Transport::send_stream(const std::string& to, std::vector<std::uint8_t> frame) {
  const auto addr = parse_addr(to);
  if (!addr || closed_) {
    ++stats_.dropped;
    return;
  }
  std::vector<std::uint8_t> inner;
  inner.reserve(2 + advertised_.size() + frame.size());
  inner.push_back(static_cast<std::uint8_t>(advertised_.size() >> 8));
  inner.push_back(static_cast<std::uint8_t>(advertised_.size()));
  inner.insert(inner.end(), advertised_.begin(), advertised_.end());
  inner.insert(inner.end(), frame.begin(), frame.end());
  const auto sealed = seal(inner);
  auto conn = std::make_shared<StreamConn>(io_);
  conn->body.reserve(4 + sealed.size());
  put_u32(conn->body, static_cast<std::uint32_t>(sealed.size()));
  conn->body.insert(conn->body.end(), sealed.begin(), sealed.end());
  ++stats_.streams_out;
  stats_.bytes_out += conn->body.size();
  conn->arm();
  conn->socket.async_connect(tcp::endpoint(addr->first, addr->second), [this, conn](const error_code& ec) {
    if (ec) {
      ++stats_.dropped;
      conn->timer.cancel();
      return;
    }
    asio::async_write(conn->socket, asio::buffer(conn->body), [this, conn](const error_code& wec, std::size_t) {
      if (wec) ++stats_.dropped;
      conn->timer.cancel();
      error_code ignored;
      conn->socket.close(ignored);
    });
  });
}

void Transport::accept_stream() {
  auto conn = std::make_shared<StreamConn>(io_);
  acceptor_.async_accept(conn->socket, [this, conn](const error_code& ec) {
    if (closed_ || ec == asio::error::operation_aborted) return;
    if (!ec) {
      conn->arm();
      asio::async_read(conn->socket, asio::buffer(conn->header), [this, conn](const error_code& hec, std::size_t) {
        if (hec) return;
        const std::uint32_t len = get_u32(conn->header.data());
        if (len > max_stream_ + kSealOverhead + 2 + 300) {
          ++stats_.dropped;
          return;
        }
        conn->body.resize(len);
        asio::async_read(conn->socket, asio::buffer(conn->body), [this, conn](const error_code& bec, std::size_t) {
          conn->timer.cancel();
          if (bec || closed_) return;
          ++stats_.streams_in;
          stats_.bytes_in += 4 + conn->body.size();
          auto plain = open_frame(conn->body);
          if (!plain) return;
          if (plain->size() < 2) {
            ++stats_.dropped;
            return;
          }
          const std::size_t alen = (std::size_t{(*plain)[0]} << 8) | (*plain)[1];
          if (2 + alen > plain->size()) {
            ++stats_.dropped;
            return;
          }
          const std::string from(plain->begin() + 2, plain->begin() + 2 + static_cast<long>(alen));
          if (!parse_addr(from)) {
            ++stats_.dropped;
            return;
          }
          deliver_(from, true, std::span(plain->data() + 2 + alen, plain->size() - 2 - alen));
        });
      });
    }
    accept_stream();
  });
}

void Transport::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  udp_.close(ignored);
  acceptor_.close(ignored);
}

}  // namespace regfs::transport
