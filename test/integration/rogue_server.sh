#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A checkpoint server that lies (rogue_server.py: it knows the secret, then answers with
# wrong types, impossible region geometry, another tenant's region, authentication messages
# mid-session, a 4 GiB frame header, half a header, random bodies, or a garbage endpoint
# address) must not crash its clients: ckptctl fails every command with a message and exit
# 1 or 2, and holdfast keeps forwarding without checkpoints, says why, and stops cleanly.
# Run under the sanitizer build too, where an overflow would show in the logs.
source "$(dirname "$0")/ofi_lib.sh"
CTL="$BUILD/ckptsrv/ckptctl"
prefix="hfrogue$$"
trap 'rm -rf "/var/run/dpdk/$prefix"; cleanup' EXIT
printf 'holdfast %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
# An empty capture: holdfast's ports stay quiet while it talks to the rogue.
printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x01\x00\x00\x00' \
  >"$T/empty.pcap"

sanitizer_quiet() { ! grep -qE "Sanitizer|runtime error" "$1"; }

start_rogue() { # mode
  ROGUE_PORT=$(free_port)
  python3 "$SRC/test/integration/rogue_server.py" "$ROGUE_PORT" "$1" "$T/secret" \
    >"$T/rogue-$1.out" 2>&1 &
  ROGUE_PID=$!
  PIDS+=("$ROGUE_PID")
  wait_for 10 log_has "$T/rogue-$1.out" ready || fail "rogue server ($1) did not start"
}

ctl_refuses() { # mode, command...
  local mode=$1 rc=0 out="$T/ctl-$1-$2"
  shift
  timeout 60 "$CTL" --target "ofi+tcp://127.0.0.1:$ROGUE_PORT" --secret-file "$T/secret" "$@" \
    >"$out.out" 2>"$out.err" || rc=$?
  case $rc in
  1 | 2) ;;
  0) fail "ckptctl $* believed the $mode server: $(head -3 "$out.out")" ;;
  124) fail "ckptctl $* hung on the $mode server" ;;
  *) fail "ckptctl $* exited $rc on the $mode server: $(tail -5 "$out.err")" ;;
  esac
  sanitizer_quiet "$out.err" || fail "ckptctl $* on the $mode server: $(grep -m3 -E 'Sanitizer|runtime error' "$out.err")"
  [ -s "$out.err" ] || fail "ckptctl $* on the $mode server failed without a word"
}

cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 1024
ckpt-secret-file $T/secret
rule accept from inside proto tcp dport 80
CONF

holdfast_survives() { # mode
  local mode=$1 log="$T/hf-$1.log" rc=0
  "$BUILD/holdfast" --no-huge -m 256 --no-pci -l 0 --file-prefix "$prefix" \
    --vdev "net_pcap0,rx_pcap=$T/empty.pcap,tx_pcap=$T/out0.pcap" \
    --vdev "net_pcap1,rx_pcap=$T/empty.pcap,tx_pcap=$T/out1.pcap" \
    -- --config "$T/holdfast.conf" --ckpt "ofi+tcp://127.0.0.1:$ROGUE_PORT" >"$log" 2>&1 &
  HF_PID=$!
  PIDS+=("$HF_PID")
  # Forwarding without its checkpoints, retrying the target: alive a while later.
  wait_for 30 log_has "$log" "holdfast: ready" || {
    gone "$HF_PID" && { wait "$HF_PID" || rc=$?; }
    fail "holdfast did not start against the $mode server (exit $rc): $(tail -5 "$log")"
  }
  sleep 1 # reconnect attempts against the liar
  gone "$HF_PID" && fail "holdfast died against the $mode server: $(tail -5 "$log")"
  kill -INT "$HF_PID"
  wait "$HF_PID" || rc=$?
  [ $rc -eq 0 ] || fail "holdfast exited $rc after SIGINT against the $mode server: $(tail -5 "$log")"
  sanitizer_quiet "$log" || fail "holdfast on the $mode server: $(grep -m3 -E 'Sanitizer|runtime error' "$log")"
  grep -q "checkpoint target .* unusable\|ckpt.ofi" "$log" ||
    fail "holdfast did not say what was wrong with the $mode server"
  echo "$mode: holdfast: $(grep -m1 "ckpt.ofi" "$log" | sed 's/^.*ckpt.ofi: //')"
}

for mode in bad-endpoint wrong-type bad-geometry wrong-region auth-again huge-frame truncated random; do
  start_rogue "$mode"
  ctl_refuses "$mode" ls
  ctl_refuses "$mode" stat holdfast-state.0
  ctl_refuses "$mode" dump holdfast-state.0
  ctl_refuses "$mode" verify holdfast-state.0
  echo "$mode: ckptctl: $(head -1 "$T/ctl-$mode-ls.err")"
  if [ "$mode" = wrong-region ]; then
    grep -q "asked for region holdfast-state.0 of tenant holdfast, the server answered with region someone-else" \
      "$T/ctl-$mode-dump.err" || fail "ckptctl dump did not say the server answered with another region"
  fi
  # holdfast's client is the same library as ckptctl's: these lies cover its start-up paths
  # (endpoint, answers of the wrong type, geometry, region, anything) at one DPDK start each.
  case $mode in auth-again | huge-frame | truncated) ;; *) holdfast_survives "$mode" ;; esac
  kill "$ROGUE_PID"
  wait "$ROGUE_PID" 2>/dev/null || true
done
echo "PASS: no lie of a checkpoint server crashed ckptctl or holdfast"
