#include "health_checker.hpp"

#include "core/host_port.hpp"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "http_status.hpp"

namespace regfs::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct HealthChecker::Attempt {
  explicit Attempt(asio::io_context& io) : socket(io), timer(io) {}
  tcp::socket socket;
  std::unique_ptr<tcp::resolver> resolver;  // only for host names
  asio::steady_timer timer;
  std::string request;
  std::array<char, kMaxStatusLine> buffer{};
  std::size_t received = 0;
  std::vector<Callback> callbacks;
};

HealthChecker::HealthChecker(asio::io_context& io) : io_(io) {}

HealthChecker::~HealthChecker() { cancel_all(); }

void HealthChecker::check(const Endpoint& endpoint, const Check& check, Duration timeout,
                          Callback cb) {
  if (check.kind == Check::Kind::none) {
    asio::post(io_, [cb = std::move(cb)] { cb(CheckResult{true, "no check"}); });
    return;
  }
  Key key{endpoint.host, endpoint.port, check};
  if (const auto it = checks_.find(key); it != checks_.end()) {
    it->second->callbacks.push_back(std::move(cb));  // single flight
    return;
  }
  auto p = std::make_shared<Attempt>(io_);
  p->callbacks.push_back(std::move(cb));
  checks_.emplace(key, p);

  const auto ms = std::chrono::duration_cast<milliseconds>(timeout).count();
  p->timer.expires_after(timeout);
  // Every handler below filters operation_aborted (its check was ended and
  // its socket closed) and finds its check by identity, not only by key.
  p->timer.async_wait([this, key, weak = std::weak_ptr<Attempt>(p), ms](const error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    if (auto live = weak.lock()) {
      finish(key, std::move(live),
             CheckResult{false, "timeout after " + std::to_string(ms) + " ms"});
    }
  });

  auto on_connected = [this, key, p, check, endpoint](const error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) return finish(key, p, CheckResult{false, ec.message()});
    if (check.kind == Check::Kind::tcp) return finish(key, p, CheckResult{true, "connected"});
    p->request = "GET " + check.path + " HTTP/1.1\r\nHost: " +
                 HostPort{endpoint.host, endpoint.port}.to_string() +
                 "\r\nUser-Agent: regfs\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    asio::async_write(p->socket, asio::buffer(p->request),
                      [this, key, p](const error_code& wec, std::size_t) {
                        if (wec == asio::error::operation_aborted) return;
                        if (wec) return finish(key, p, CheckResult{false, wec.message()});
                        read_status(key, p);
                      });
  };

  error_code ec;
  const auto address = asio::ip::make_address(endpoint.host, ec);
  if (!ec) {
    p->socket.async_connect(tcp::endpoint(address, endpoint.port), on_connected);
    return;
  }
  p->resolver = std::make_unique<tcp::resolver>(io_);
  p->resolver->async_resolve(
      endpoint.host, std::to_string(endpoint.port),
      [this, key, p, on_connected](const error_code& rec, const tcp::resolver::results_type& results) {
        if (rec == asio::error::operation_aborted) return;
        if (rec) return finish(key, p, CheckResult{false, "resolve: " + rec.message()});
        asio::async_connect(p->socket, results,
                            [on_connected](const error_code& cec, const tcp::endpoint&) {
                              on_connected(cec);
                            });
      });
}

void HealthChecker::read_status(const Key& key, const std::shared_ptr<Attempt>& p) {
  auto space = asio::buffer(p->buffer.data() + p->received, p->buffer.size() - p->received);
  p->socket.async_read_some(space, [this, key, p](const error_code& ec, std::size_t n) {
    if (ec == asio::error::operation_aborted) return;
    p->received += n;
    const HttpStatus status =
        parse_status_line(std::string_view(p->buffer.data(), p->received));
    switch (status.state) {
      case HttpStatus::State::good: {
        const bool ok = status.code >= 200 && status.code < 400;
        return finish(key, p, CheckResult{ok, "http " + std::to_string(status.code)});
      }
      case HttpStatus::State::bad:
        return finish(key, p, CheckResult{false, "not an HTTP response"});
      case HttpStatus::State::need_more:
        if (ec) return finish(key, p, CheckResult{false, "http: " + ec.message()});
        return read_status(key, p);
    }
  });
}

void HealthChecker::finish(const Key& key, std::shared_ptr<Attempt> p, const CheckResult& result) {
  const auto it = checks_.find(key);
  if (it == checks_.end() || it->second != p) return;  // this check has ended already
  checks_.erase(it);
  error_code ignored;
  p->timer.cancel();
  if (p->resolver) p->resolver->cancel();
  p->socket.close(ignored);
  for (const auto& cb : p->callbacks) cb(result);
}

void HealthChecker::cancel_all() {
  while (!checks_.empty()) {
    finish(checks_.begin()->first, checks_.begin()->second, CheckResult{false, "cancelled"});
  }
}

}  // namespace regfs::net
