// Finding this host's address for ":port" registrations.
#pragma once

#include <string>

namespace regfs {

// The first IPv4 address of an interface that is up and not loopback;
// "127.0.0.1" when there is none.
std::string detect_advertise_address();

// Whether `host` (from ADDR:PORT) is a loopback address.
bool is_loopback_host(const std::string& host);

}  // namespace regfs
