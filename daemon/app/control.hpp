// Fargate mode's door for registrations: a Unix socket DIR/.regfsd.sock in
// the mirror directory, since there is no mount to write into.
//
// One request per connection, then the client shuts down its write side:
//   "WRITE SERVICE append|replace\n" followed by the lines to register
//   "REMOVE SERVICE\n"
// Answer: "OK\n" or "ERR ERRNO MESSAGE\n". Requests over 64 KiB are refused.
// The caller's credentials (SO_PEERCRED) decide, as for writes to the mount.
//
// The socket only registers (reads go to the mirror's files), so only those
// who may register can connect: mode 0600 (root), or 0660 with the writers'
// group. Connections are bounded: at most kMaxPerUser per peer uid and
// kMaxConnections in all (more are answered "ERR EAGAIN" and closed), each
// closed kIdleTimeout after it was accepted if its request has not been
// answered by then. An accept that fails (EMFILE, say) is tried again after
// a pause from 10 ms doubling to 1 s, not at once.
//
// Loop thread only; `io` and `backend` must outlive it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <sys/types.h>

#include "core/instance.hpp"
#include "core/result.hpp"
#include "fs/backend.hpp"

namespace regfs {

class ControlSocket {
 public:
  static constexpr std::size_t kMaxConnections = 64;
  static constexpr std::size_t kMaxPerUser = 8;
  static constexpr std::chrono::seconds kIdleTimeout{5};

  // `writers_gid`: the group that may connect besides root (0: root only).
  static Result<std::unique_ptr<ControlSocket>> open(boost::asio::io_context& io,
                                                     const std::string& path, fs::Backend& backend,
                                                     gid_t writers_gid);
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // The pure part: what a request asks, applied to `backend`, as the answer line.
  static std::string handle(std::string_view request, const fs::Caller& who, fs::Backend& backend);

  // Prometheus text: open connections, refused ones, idle timeouts, accept errors.
  std::string metrics_text() const;

 private:
  class Conn;  // control.cpp
  ControlSocket(boost::asio::io_context& io, std::string path, fs::Backend& backend);
  void accept();
  void accepted(boost::asio::local::stream_protocol::socket socket);
  void closed(Conn* conn, uid_t uid);

  boost::asio::io_context& io_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer pause_;  // after a failed accept
  std::chrono::milliseconds backoff_{0};
  std::string path_;
  fs::Backend& backend_;
  std::map<Conn*, std::weak_ptr<Conn>> conns_;
  std::map<uid_t, std::size_t> per_user_;
  std::uint64_t refused_ = 0, timeouts_ = 0, accept_errors_ = 0;
};

}  // namespace regfs
