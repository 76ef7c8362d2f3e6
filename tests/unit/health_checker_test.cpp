// HealthChecker on a real io_context against loopback listeners.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/health_checker.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using regfs::Check;
using regfs::Endpoint;
using regfs::milliseconds;
using regfs::net::HealthChecker;
using regfs::net::CheckResult;

namespace {

// A loopback HTTP listener: the first connection it accepts is held open and
// never answered; every later one is answered "200 OK".
class SilentThenOk {
 public:
  explicit SilentThenOk(asio::io_context& io)
      : acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    accept();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::size_t accepted() const { return held_.size(); }

 private:
  void accept() {
    auto s = std::make_shared<tcp::socket>(acceptor_.get_executor());
    acceptor_.async_accept(*s, [this, s](const boost::system::error_code& ec) {
      if (ec) return;
      held_.push_back(s);
      if (held_.size() > 1) {
        asio::async_write(*s, asio::buffer(kAnswer, sizeof kAnswer - 1),
                          [](const boost::system::error_code&, std::size_t) {});
      }
      accept();
    });
  }
  static constexpr char kAnswer[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<tcp::socket>> held_;
};

}  // namespace

TEST_CASE("a timed-out check's cancelled handlers do not end the next check of the same target") {
  asio::io_context io;
  SilentThenOk server(io);
  HealthChecker checker(io);
  const Endpoint target{"127.0.0.1", server.port()};
  const Check http{Check::Kind::http, "/health"};

  std::optional<CheckResult> first, second;
  // The first check connects, sends its request and waits for an answer that
  // never comes; its timeout closes the socket, which queues the read handler
  // with operation_aborted. Its callback starts the next check of the same
  // target at once, before that cancelled read handler has run.
  checker.check(target, http, milliseconds(100), [&](const CheckResult& r) {
    first = r;
    checker.check(target, http, milliseconds(5000), [&](const CheckResult& r2) {
      second = r2;
      io.stop();
    });
  });
  io.run_for(std::chrono::seconds(10));

  REQUIRE(first);
  CHECK_FALSE(first->healthy);
  CHECK(first->detail == "timeout after 100 ms");
  REQUIRE(second);
  INFO(second->detail);
  CHECK(second->healthy);
  CHECK(second->detail == "http 200");
  CHECK(server.accepted() == 2);
  CHECK(checker.in_flight() == 0);
}
