#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Fencing and the race for the epoch (issue 14).
#
#   standby_fence.sh fence-pmem | fence-tcp
#       a primary and a standby on one pair of veths (net_af_packet, non-IP frames passed):
#       the primary is stopped (SIGSTOP) past its lease, the standby takes over, the primary
#       is continued (SIGCONT): it forwards not one more frame (its tx count, and frames
#       sent through after it came back arrive once, from the new primary only), and exits
#       with status 3 saying it was fenced.
#   standby_fence.sh lapse-hold-tcp | lapse-forward-tcp
#       a primary alone; its ckptsrv is killed -9 and the lease runs out: with lease-lapse
#       hold it forwards nothing (dropped as lease_lapsed) until the server is back and the
#       lease renewed, then forwards again; with lease-lapse forward it forwards throughout.
#   standby_fence.sh race-pmem | race-tcp
#       one primary and two standbys; the primary is killed -9: exactly one standby takes
#       over, the other says another took over and is still a following standby after.
source "$(dirname "$0")/ofi_lib.sh"
mode=${1:?mode}
NS="hffe$$"
PREFIXES=()
fence_cleanup() {
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  cleanup
  for p in "${PREFIXES[@]}"; do rm -rf "/var/run/dpdk/$p"; done
  ip netns del "$NS" 2>/dev/null || true
}
trap fence_cleanup EXIT
tel() { # prefix path
  /usr/bin/python3 "$SRC/test/integration/telemetry.py" "/var/run/dpdk/$1/dpdk_telemetry.v2" "$2" 2>/dev/null || true
}

printf 'holdfast %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
ip netns add "$NS"
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$NS" link set lo up
case "$mode" in
*-pmem) target="pmem:$T/state.pmu" ;;
*-tcp)
  # The server beside holdfast, in its namespace (its loopback).
  printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$CKPTSRV" >"$T/ckptsrv-ns"
  chmod +x "$T/ckptsrv-ns"
  CKPTSRV="$T/ckptsrv-ns"
  port=$(free_port)
  target="ofi+tcp://127.0.0.1:$port"
  start_server srv --pmem "$T/store.pmu" --size 64M --secret-file "$T/secret" --listen "$target"
  ;;
*) fail "unknown mode $mode" ;;
esac
cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 1024
non-ip pass
ckpt $target
ckpt-secret-file $T/secret
lease-ms 500
CONF
case "$mode" in
lapse-forward-*) echo "lease-lapse forward" >>"$T/holdfast.conf" ;;
lapse-hold-*) echo "lease-lapse hold" >>"$T/holdfast.conf" ;;
esac

N=0
# start_hf PORTS-ARGS... -- [--standby]: holdfast N (log $T/hf-N.log), HF_PID set.
start_hf() {
  local vdevs=()
  N=$((N + 1))
  PREFIXES+=("hffe$$-$N")
  while [ "$1" != -- ]; do vdevs+=(--vdev "$1"); shift; done
  shift
  ip netns exec "$NS" "$BUILD/holdfast" --no-huge -m 128 --no-pci -l 0 --file-prefix "hffe$$-$N" \
    "${vdevs[@]}" -- --config "$T/holdfast.conf" "$@" >"$T/hf-$N.log" 2>&1 &
  HF_PID=$!
  PIDS+=("$HF_PID")
}
case "$mode" in
fence-* | lapse-*)
  ip -n "$NS" link add a0 type veth peer name f0
  ip -n "$NS" link add a1 type veth peer name f1
  for i in a0 f0 a1 f1; do ip -n "$NS" link set "$i" up; done
  ports=(net_af_packet0,iface=f0 net_af_packet1,iface=f1)
  start_hf "${ports[@]}" --
  P=$HF_PID
  wait_for 30 log_has "$T/hf-1.log" "holdfast: ready" || fail "the primary did not start"
  if [ "${mode#fence-}" != "$mode" ]; then
    start_hf "${ports[@]}" -- --standby
    S=$HF_PID
    wait_for 30 log_has "$T/hf-2.log" "holdfast: standby" || fail "no standby"
  fi
  # N frames of an unassigned ethertype into a0; how many came out of a1.
  send() { # count tag
    ip netns exec "$NS" python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("a0", 0))
for i in range(int(sys.argv[1])):
    s.send(b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" +
           (sys.argv[2] + ":%06d" % i).encode().ljust(50, b"."))
PY
  }
  out_a1() { ip netns exec "$NS" cat /sys/class/net/a1/statistics/rx_packets; }
  tx_of() { # prefix: frames the process sent out of port 1
    tel "$1" /holdfast/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["/holdfast/stats"]["port1_tx"])'
  }
  b0=$(out_a1)
  send 100 before
  sleep 0.5
  [ $(($(out_a1) - b0)) -eq 100 ] || fail "before: $(($(out_a1) - b0)) of 100 frames through the primary"
  if [ "${mode#lapse-}" != "$mode" ]; then
    kill -9 "$SRV_PID"
    wait_for 10 log_has "$T/hf-1.log" "cannot renew the lease.*it ran out" ||
      fail "no lapse said after the server went"
    grep "cannot renew the lease" "$T/hf-1.log" | sed 's/^holdfast: //'
    b1=$(out_a1)
    send 100 away
    sleep 0.5
    got=$(($(out_a1) - b1))
    case "$mode" in
    lapse-hold-*)
      [ "$got" -eq 0 ] || fail "lease-lapse hold: $got of 100 frames forwarded with the lease run out"
      lapsed=$(tel "hffe$$-1" /holdfast/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["/holdfast/stats"]["drop_lease_lapsed"])')
      [ "$lapsed" -ge 100 ] || fail "lease-lapse hold: $lapsed frames counted lease_lapsed"
      start_server srv2 --pmem "$T/store.pmu" --size 64M --secret-file "$T/secret" --listen "$target"
      wait_for 10 log_has "$T/hf-1.log" "renewed again: forwarding" || fail "the lease was not renewed"
      b2=$(out_a1)
      send 100 back
      sleep 0.5
      [ $(($(out_a1) - b2)) -eq 100 ] || fail "server back: $(($(out_a1) - b2)) of 100 forwarded"
      echo "lease-lapse hold: 0 of 100 forwarded while the lease was out ($lapsed lease_lapsed), 100 of 100 once renewed"
      ;;
    *)
      [ "$got" -eq 100 ] || fail "lease-lapse forward: $got of 100 frames forwarded with the server away"
      echo "lease-lapse forward: 100 of 100 forwarded with the server away"
      ;;
    esac
    kill -INT "$P"
    wait_for 30 gone "$P" || fail "the primary did not stop"
    wait "$P" || fail "the primary exited non-zero"
    exit 0
  fi
  tx_stop=$(tx_of "hffe$$-1")
  echo "primary forwarded 100 of 100; its port 1 tx: $tx_stop"
  kill -STOP "$P"
  wait_for 30 log_has "$T/hf-2.log" "holdfast: took over" || fail "the standby did not take over"
  grep -E "taking over|took over|takeover" "$T/hf-2.log" | sed 's/^holdfast: //'
  b1=$(out_a1)
  kill -CONT "$P"
  send 100 after # while the old primary wakes up: it must forward none of them
  wait_for 20 gone "$P" || fail "the fenced primary did not exit"
  rc=0
  wait "$P" || rc=$?
  sleep 0.5
  got=$(($(out_a1) - b1))
  grep -E "fenced|lease_lapsed|drop fenced|port 1:" "$T/hf-1.log" | sed 's/^holdfast: //'
  [ "$rc" -eq 3 ] || fail "the fenced primary exited $rc, not 3"
  log_has "$T/hf-1.log" "fenced: a standby took over the checkpoint (epoch 2, ours 1); stopping" ||
    fail "no fenced message"
  tx_end=$(awk '/port 1: rx/ {print $6}' "$T/hf-1.log")
  [ "$tx_end" = "$tx_stop" ] || fail "the old primary forwarded $((tx_end - tx_stop)) frames after SIGCONT"
  [ "$got" -eq 100 ] || fail "after: $got frames out of a1 for 100 sent (the old primary forwarded too?)"
  echo "after SIGCONT: 100 sent, $got out (new primary only); old primary tx $tx_stop -> $tx_end, exit 3"
  kill -INT "$S"
  wait_for 30 gone "$S" || fail "the new primary did not stop"
  wait "$S" || fail "the new primary exited non-zero"
  echo "fencing over ${mode#fence-}: ok"
  ;;
race-*)
  start_hf net_null0 net_null1 --
  P=$HF_PID
  wait_for 30 log_has "$T/hf-1.log" "holdfast: ready" || fail "the primary did not start"
  start_hf net_null0 net_null1 -- --standby
  S1=$HF_PID
  start_hf net_null0 net_null1 -- --standby
  S2=$HF_PID
  wait_for 30 log_has "$T/hf-2.log" "holdfast: standby" || fail "no standby 1"
  wait_for 30 log_has "$T/hf-3.log" "holdfast: standby" || fail "no standby 2"
  kill -9 "$P"
  won() { log_has "$T/hf-2.log" "holdfast: took over" || log_has "$T/hf-3.log" "holdfast: took over"; }
  wait_for 30 won || fail "nobody took over"
  sleep 3 # the loser's patience, and lease renewals by the winner
  w=0
  for i in 2 3; do
    if log_has "$T/hf-$i.log" "holdfast: took over"; then
      w=$((w + 1))
      winner=$i
    fi
  done
  [ "$w" -eq 1 ] || fail "$w standbys took over"
  loser=$((5 - winner))
  grep -E "took over|taking over|another standby" "$T/hf-$winner.log" "$T/hf-$loser.log" | sed 's/holdfast: //'
  lp=$([ $loser = 2 ] && echo "$S1" || echo "$S2")
  kill -0 "$lp" 2>/dev/null || fail "the losing standby exited"
  if log_has "$T/hf-$loser.log" "holdfast: ready"; then fail "the losing standby forwards"; fi
  # It lost the race, or woke after the winner's renewal and never raced: either way a standby.
  st=$(tel "hffe$$-$loser" /holdfast/standby)
  echo "loser: $st"
  echo "$st" | grep -q '"state": "following"' || fail "the loser does not say it follows"
  echo "one of two standbys took over ($mode): ok"
  ;;
esac
