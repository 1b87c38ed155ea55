#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Install the Debian packages holdfast builds and tests with. Idempotent and quiet: it does
# nothing when every package is already installed.
set -euo pipefail

pkgs=(
  build-essential meson ninja-build pkg-config clang clang-format libclang-rt-14-dev
  libdpdk-dev dpdk-dev libfabric-dev libfabric-bin libpmem-dev libisal-dev libsodium-dev
  libnftnl-dev libmnl-dev libcmocka-dev libpcap-dev libsystemd-dev libdbus-1-dev
  nftables iproute2 ethtool procps psmisc python3 python3-scapy systemd
  curl python3-pyftpdlib tcpdump python3-prometheus-client groff-base mandoc
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
