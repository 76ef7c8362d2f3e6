// Fargate mode's door for registrations: a Unix socket DIR/.regfsd.sock in
// the mirror directory, since there is no mount to write into.
//
// One request per connection, then the client shuts down its write side:
//   "WRITE SERVICE append|replace\n" followed by the lines to register
//   "REMOVE SERVICE\n"
// Answer: "OK\n" or "ERR ERRNO MESSAGE\n". Requests over 64 KiB are refused.
// The caller's credentials (SO_PEERCRED) decide, as for writes to the mount.
//
// Loop thread only; `io` and `backend` must outlive it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <memory>
#include <string>

#include "core/instance.hpp"
#include "core/result.hpp"
#include "fs/backend.hpp"

namespace regfs {

class ControlSocket {
 public:
  static Result<std::unique_ptr<ControlSocket>> open(boost::asio::io_context& io,
                                                     const std::string& path, fs::Backend& backend);
  ~ControlSocket();

  // The pure part: what a request asks, applied to `backend`, as the answer line.
  static std::string handle(std::string_view request, const fs::Caller& who, fs::Backend& backend);

 private:
  ControlSocket(boost::asio::io_context& io, std::string path, fs::Backend& backend);
  void accept();

  boost::asio::io_context& io_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  fs::Backend& backend_;
};

}  // namespace regfs
