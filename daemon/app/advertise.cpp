#include "advertise.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <vector>

namespace regfs {

std::string pick_advertise_address(std::span<const std::uint32_t> up) {
  const auto link_local = [](std::uint32_t a) { return (a >> 16) == 0xA9FE; };  // 169.254/16
  const std::uint32_t* chosen = nullptr;
  for (const std::uint32_t& a : up) {
    if (!link_local(a)) {
      chosen = &a;
      break;
    }
    if (chosen == nullptr) chosen = &a;
  }
  if (chosen == nullptr) return "127.0.0.1";
  in_addr addr{htonl(*chosen)};
  char text[INET_ADDRSTRLEN] = {};
  return inet_ntop(AF_INET, &addr, text, sizeof text) != nullptr ? text : "127.0.0.1";
}

std::string detect_advertise_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "127.0.0.1";
  std::vector<std::uint32_t> up;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
    if ((it->ifa_flags & IFF_UP) == 0 || (it->ifa_flags & IFF_LOOPBACK) != 0) continue;
    sockaddr_in addr{};
    std::memcpy(&addr, it->ifa_addr, sizeof addr);
    up.push_back(ntohl(addr.sin_addr.s_addr));
  }
  freeifaddrs(list);
  return pick_advertise_address(up);
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  in_addr addr{};
  if (inet_pton(AF_INET, host.c_str(), &addr) == 1) return (ntohl(addr.s_addr) >> 24) == 127;
  return false;
}

}  // namespace regfs
