// Finds gossip peers from --join sources and hands each address found to
// `found`, again over time so that separately started halves merge:
//   HOST:PORT          an address, or a name looked up like dns:
//   dns:NAME[:PORT]    A/AAAA records (port 7946 by default)
//   file:DIR           each daemon keeps DIR/<node-name> holding its gossip
//                      address and reads the others'; files untouched for
//                      five minutes are stale and ignored
// Sources are read again every `interval`. Loop thread only; `io` must
// outlive the finder.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/time.hpp"

namespace regfs {

class PeerFinder {
 public:
  using Found = std::function<void(const std::string& addr)>;
  PeerFinder(boost::asio::io_context& io, std::string node_name, std::string gossip_addr,
             std::vector<std::string> sources, Duration interval, Found found);
  ~PeerFinder();

  // Reads every source now and then every interval.
  void start();
  // Stops, and removes this node's file:DIR entries so peers stop finding it.
  void stop();

 private:
  void refresh();
  void resolve_dns(const std::string& host, const std::string& port);
  void file_sources(const std::string& dir);

  boost::asio::io_context& io_;
  std::string node_name_;
  std::string gossip_addr_;
  std::vector<std::string> sources_;
  Duration interval_;
  Found found_;
  boost::asio::steady_timer timer_;
  boost::asio::ip::tcp::resolver resolver_;
  std::vector<std::string> own_files_;
  bool stopped_ = false;
};

}  // namespace regfs
