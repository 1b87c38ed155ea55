#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Connections survive a kill -9: holdfast opens TCP, UDP and FTP connections (phase a,
# checkpointed into a pmem: file), is killed -9 once the checkpoints are durable, starts
# again on the same file, and the same connections go on (phase b): their next packets pass
# with strict window checking, the FTP data connection announced before the crash opens,
# and what was invalid before is still dropped.
set -euo pipefail
dir=$(mktemp -d /tmp/hf-restart.XXXXXX)
prefix="hfrs$$"
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  rm -rf "$dir" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
tel() { /usr/bin/python3 "$SRC/test/integration/telemetry.py" "/var/run/dpdk/$prefix/dpdk_telemetry.v2" "$1" 2>/dev/null || true; }
field() { /usr/bin/python3 -c 'import json,sys
try: print(json.loads(sys.argv[1])[sys.argv[2]][sys.argv[3]])
except Exception: print(-1)' "$1" "$2" "$3"; }

/usr/bin/python3 "$SRC/test/integration/gen_restart.py" "$dir" >/dev/null
cat > "$dir/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt pmem:$dir/state.pmu
rule accept from inside proto tcp dport 80
rule accept from inside proto tcp dport 21
rule accept from inside proto udp dport 53
CONF

start() { # phase
  "$BUILD/holdfast" --no-huge -m 256 --no-pci -l 0 --file-prefix "$prefix" \
    --vdev "net_pcap0,rx_pcap=$dir/$1/in0.pcap,tx_pcap=$dir/$1/out0.pcap" \
    --vdev "net_pcap1,rx_pcap=$dir/$1/in1.pcap,tx_pcap=$dir/$1/out1.pcap" \
    -- --config "$dir/holdfast.conf" >"$dir/$1.log" 2>&1 &
  pid=$!
}
# Wait (bounded) until the phase's frames are all in and every checkpoint is durable.
settle() { # phase
  local total stats ck
  total=$(/usr/bin/python3 -c "from scapy.all import rdpcap; import sys; print(len(rdpcap(sys.argv[1])) + len(rdpcap(sys.argv[2])))" "$dir/$1/in0.pcap" "$dir/$1/in1.pcap")
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { cat "$dir/$1.log"; echo "FAIL: holdfast exited early"; exit 1; }
    stats=$(tel /holdfast/stats)
    ck=$(tel /holdfast/ckpt)
    if [ "$(( $(field "$stats" /holdfast/stats port0_rx) + $(field "$stats" /holdfast/stats port1_rx) ))" -ge "$total" ] &&
       [ "$(field "$ck" /holdfast/ckpt not_durable)" = 0 ]; then
      echo "$1: $stats"
      echo "$1: $ck"
      return 0
    fi
    sleep 0.1
  done
  cat "$dir/$1.log"; echo "FAIL: phase $1 did not settle"; exit 1
}

start a
settle a
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
start b
settle b
grep -E "restored [0-9]+ connections" "$dir/b.log" | sed 's/^.*holdfast.ckpt: //;s/^holdfast: //'
grep -q "restored 3 connections" "$dir/b.log" || { cat "$dir/b.log"; echo "FAIL: expected 3 restored connections"; exit 1; }
kill -INT "$pid"; wait "$pid" || { cat "$dir/b.log"; echo "FAIL: holdfast exited non-zero"; exit 1; }
pid=
/usr/bin/python3 "$SRC/test/integration/check_pcap.py" "$dir/b" || { cat "$dir/b.log"; exit 1; }
