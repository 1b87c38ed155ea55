# SPDX-License-Identifier: BSD-3-Clause
# Shared by the real-client tests: three network namespaces made here and deleted on any
# exit (client 198.18.0.1/15 --- holdfast --- server 198.19.0.1/15, and with `topology
# ipv6` also 2001:db8:18::1/64 and 2001:db8:18::2/64), holdfast on net_af_packet ports
# bound to the firewall namespace's veths, process bookkeeping with a trap, bounded waits.
# Sourced after ofi_lib.sh (scratch dir $T, PIDS, wait_for, fail).
NS_C="hfcli$$"
NS_F="hffw$$"
NS_S="hfsrv$$"
CLI_IP=198.18.0.1
SRV_IP=198.19.0.1
CLI_IP6=2001:db8:18::1
SRV_IP6=2001:db8:18::2
HF_N=0
HF_PREFIXES=()

clients_cleanup() {
  local ns pre
  # Whatever still runs in the namespaces made here was started here.
  for ns in "$NS_C" "$NS_F" "$NS_S"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  cleanup # ofi_lib.sh: kills every PID started, removes $T
  for pre in "${HF_PREFIXES[@]}"; do rm -rf "/var/run/dpdk/$pre"; done
  for ns in "$NS_C" "$NS_F" "$NS_S"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap clients_cleanup EXIT

# Run in a namespace. In the background, call `ip netns exec` directly, not these: a
# function behind & is a subshell, and $! would name it instead of the program.
in_c() { ip netns exec "$NS_C" "$@"; }
in_f() { ip netns exec "$NS_F" "$@"; }
in_s() { ip netns exec "$NS_S" "$@"; }

# topology [ipv6]: the hosts speak IPv4, and IPv6 too when asked (neighbour discovery
# then crosses holdfast like ARP does); the firewall's namespace never speaks IPv6.
topology() {
  local ns v6
  for ns in "$NS_C" "$NS_F" "$NS_S"; do
    ip netns add "$ns"
    v6=1
    [ "${1:-}" = ipv6 ] && [ "$ns" != "$NS_F" ] && v6=0
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=$v6 \
      net.ipv6.conf.default.disable_ipv6=$v6
    ip netns exec "$ns" ip link set lo up
  done
  ip link add c0 netns "$NS_C" type veth peer name fc netns "$NS_F"
  ip link add s0 netns "$NS_S" type veth peer name fs netns "$NS_F"
  in_c ip addr add "$CLI_IP/15" dev c0
  in_s ip addr add "$SRV_IP/15" dev s0
  if [ "${1:-}" = ipv6 ]; then
    in_c ip addr add "$CLI_IP6/64" dev c0 nodad
    in_s ip addr add "$SRV_IP6/64" dev s0 nodad
  fi
  # The hosts finish their own checksums and segments: holdfast forwards frames as they
  # are, so a checksum left to offload would arrive unfinished.
  in_c ethtool -K c0 tx off tso off gso off >/dev/null
  in_s ethtool -K s0 tx off tso off gso off >/dev/null
  in_f ethtool -K fc gro off >/dev/null
  in_f ethtool -K fs gro off >/dev/null
  in_c ip link set c0 up
  in_s ip link set s0 up
  in_f ip link set fc up
  in_f ip link set fs up
}

# start_hf CONF [ARGS...]: holdfast in the firewall namespace, port 0 (inside) on fc, port
# 1 on fs, on lcores $HF_LCORE (0 unless set: one worker per lcore), each port with one
# queue pair per worker ($HF_QPAIRS, 1 unless set); logs to $T/hf-N.log. Sets HF_PID,
# HF_LOG and HF_PREFIX; does not wait.
start_hf() {
  local conf=$1
  shift
  HF_N=$((HF_N + 1))
  HF_PREFIX="hfcl$$-$HF_N"
  HF_PREFIXES+=("$HF_PREFIX")
  HF_LOG="$T/hf-$HF_N.log"
  ip netns exec "$NS_F" "$BUILD/holdfast" --no-huge -m 256 --no-pci -l "${HF_LCORE:-0}" --file-prefix "$HF_PREFIX" \
    --vdev "net_af_packet0,iface=fc,qpairs=${HF_QPAIRS:-1}" \
    --vdev "net_af_packet1,iface=fs,qpairs=${HF_QPAIRS:-1}" \
    -- --config "$conf" "$@" >"$HF_LOG" 2>&1 &
  HF_PID=$!
  PIDS+=("$HF_PID")
}

# http_conf FILE: holdfast.conf for the HTTP tests: checkpoints to pmem:$T/state.pmu, only
# connections from the inside to port 8080 open.
http_conf() {
  cat >"$1" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt pmem:$T/state.pmu
policy drop
rule accept from inside proto tcp dport 8080
CONF
}

# standby_behind CONF: a standby (holdfast --standby) behind the running primary, waited
# for until it follows; HF_PID, HF_LOG and HF_PREFIX stay the primary's. Sets SB_PID,
# SB_LOG and SB_PREFIX.
standby_behind() {
  local pid=$HF_PID log=$HF_LOG prefix=$HF_PREFIX
  start_hf "$1" --standby
  SB_PID=$HF_PID
  SB_LOG=$HF_LOG
  SB_PREFIX=$HF_PREFIX
  wait_for 30 log_has "$SB_LOG" "holdfast: standby" ||
    fail "the standby did not synchronise: $(tail -5 "$SB_LOG")"
  HF_PID=$pid
  HF_LOG=$log
  HF_PREFIX=$prefix
}

# kill_and_recover restart|standby CONF: kill -9 the primary (HF_PID), then start holdfast
# again on CONF, or make the standby of standby_behind the one in HF_*; wait until it is
# ready. Sets T_KILL and T_READY (ms).
kill_and_recover() {
  kill -9 "$HF_PID"
  T_KILL=$(now_ms)
  if [ "$1" = restart ]; then
    start_hf "$2"
  else
    HF_PID=$SB_PID
    HF_LOG=$SB_LOG
    HF_PREFIX=$SB_PREFIX
  fi
  wait_for 30 hf_ready "$HF_LOG" || fail "holdfast did not come back"
  T_READY=$(now_ms)
}

hf_ready() { # log
  grep -q "holdfast: ready" "$1" && return 0
  kill -0 "$HF_PID" 2>/dev/null || fail "holdfast exited: $(tail -5 "$1")"
  return 1
}

# Frames the firewall namespace's veths received (from either host), holdfast or not.
fw_rx() {
  echo $(($(in_f cat /sys/class/net/fc/statistics/rx_packets) +
    $(in_f cat /sys/class/net/fs/statistics/rx_packets)))
}

now_ms() { date +%s%3N; }

listening() { # ns port
  ip netns exec "$1" ss -ltnH "sport = :$2" | grep -q .
}

# Connections holdfast tracks now (telemetry /holdfast/conns total). The telemetry thread
# shares a busy machine: ask again (bounded) when one query times out.
conns_query() {
  /usr/bin/python3 "$SRC/test/integration/telemetry.py" \
    "/var/run/dpdk/$HF_PREFIX/dpdk_telemetry.v2" /holdfast/conns 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["/holdfast/conns"]["total"])' \
      >"$T/conns" 2>/dev/null
}
hf_conns() {
  wait_for 30 conns_query || fail "holdfast telemetry did not answer /holdfast/conns"
  cat "$T/conns"
}
