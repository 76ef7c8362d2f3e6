#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing, benchmarking and
# the demo need. Idempotent: does nothing when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libfuse3-dev fuse3
  libboost-dev nlohmann-json3-dev libspdlog-dev libfmt-dev catch2 libsodium-dev libssl-dev openssl
  python3 python3-pytest iproute2 nftables procps psmisc
  dnsmasq-base curl openjdk-17-jdk-headless python3-matplotlib golang-go nodejs
  clang-format clang-tidy
  clang-14 libclang-rt-14-dev llvm-14
  python3-yaml python3-botocore python3-kubernetes docker-compose
  buildah busybox-static
  tshark
  etcd-server etcd-client
  libkainjow-mustache-dev nginx-light
  chromium chromium-driver python3-selenium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
