#include "peer_finder.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <spdlog/spdlog.h>

#include "transport/transport.hpp"

namespace regfs {

namespace asio = boost::asio;

namespace {
constexpr auto kStaleFile = std::chrono::minutes(5);
}  // namespace

PeerFinder::PeerFinder(asio::io_context& io, std::string node_name, std::string gossip_addr,
                       std::vector<std::string> sources, Duration interval, Found found)
    : io_(io),
      node_name_(std::move(node_name)),
      gossip_addr_(std::move(gossip_addr)),
      sources_(std::move(sources)),
      interval_(interval),
      found_(std::move(found)),
      timer_(io),
      resolver_(io) {}

PeerFinder::~PeerFinder() {
  stopped_ = true;
  timer_.cancel();
  resolver_.cancel();
}

void PeerFinder::start() { refresh(); }

void PeerFinder::stop() {
  stopped_ = true;
  timer_.cancel();
  resolver_.cancel();
  for (const auto& f : own_files_) {
    std::error_code ec;
    std::filesystem::remove(f, ec);
  }
}

void PeerFinder::refresh() {
  for (const auto& source : sources_) {
    if (source.starts_with("file:")) {
      file_sources(source.substr(5));
    } else if (source.starts_with("dns:")) {
      std::string rest = source.substr(4);
      std::string port = "7946";
      if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
        port = rest.substr(colon + 1);
        rest.resize(colon);
      }
      resolve_dns(rest, port);
    } else if (transport::parse_addr(source)) {
      found_(source);
    } else if (const auto colon = source.rfind(':'); colon != std::string::npos) {
      resolve_dns(source.substr(0, colon), source.substr(colon + 1));  // HOST:PORT by name
    }
  }
  timer_.expires_after(interval_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) refresh();
  });
}

void PeerFinder::resolve_dns(const std::string& host, const std::string& port) {
  resolver_.async_resolve(host, port, [this, host](const boost::system::error_code& ec,
                                                   const asio::ip::tcp::resolver::results_type& r) {
    if (ec || stopped_) {
      if (ec && ec != asio::error::operation_aborted) {
        spdlog::debug("join: cannot resolve {}: {}", host, ec.message());
      }
      return;
    }
    for (const auto& entry : r) {
      found_(transport::format_addr(entry.endpoint().address(), entry.endpoint().port()));
    }
  });
}

void PeerFinder::file_sources(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string mine = dir + "/" + node_name_;
  {
    const std::string tmp = mine + ".tmp";
    std::ofstream(tmp) << gossip_addr_ << "\n";
    fs::rename(tmp, mine, ec);  // rewriting keeps our file fresh
    if (std::find(own_files_.begin(), own_files_.end(), mine) == own_files_.end()) {
      own_files_.push_back(mine);
    }
  }
  const auto now = fs::file_time_type::clock::now();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file() || entry.path() == mine || entry.path().extension() == ".tmp") continue;
    if (now - entry.last_write_time(ec) > kStaleFile) continue;
    std::ifstream in(entry.path());
    std::string addr;
    std::getline(in, addr);
    if (transport::parse_addr(addr)) found_(addr);
  }
}

}  // namespace regfs
