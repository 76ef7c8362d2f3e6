// Finding this host's address for ":port" registrations.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace regfs {

// The first IPv4 address of an interface that is up and not loopback, and
// not link-local (169.254.0.0/16: a cloud's metadata or an ECS task's
// internal interface, which peers cannot reach) while another one exists;
// "127.0.0.1" when there is none.
std::string detect_advertise_address();

// The choice detect_advertise_address makes among `up` (the addresses of
// interfaces that are up and not loopback, host byte order, in the system's order).
std::string pick_advertise_address(std::span<const std::uint32_t> up);

// Whether `host` (from ADDR:PORT) is a loopback address.
bool is_loopback_host(const std::string& host);

}  // namespace regfs
