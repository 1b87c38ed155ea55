#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The real holdfast binary between two net_pcap ports, fed a generated mix of TCP, UDP and
# FTP flows and invalid frames; every frame's fate is checked against its expected verdict.
set -euo pipefail
dir=$(mktemp -d /tmp/hf-e2e.XXXXXX)
prefix="hfe2e$$"
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  rm -rf "$dir" "/var/run/dpdk/$prefix" "/var/run/dpdk/${prefix}b"
}
trap cleanup EXIT

/usr/bin/python3 "$SRC/test/integration/gen_mixed.py" "$dir"
cat > "$dir/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 65536
ckpt pmem:$dir/state.pmu
policy drop
rule accept from inside proto tcp dport 80
rule accept from inside proto tcp dport 21
rule accept from inside proto udp dport 53
rule accept from inside family ip6 proto tcp dport 443
rule reject from inside proto tcp dport 25
rule reject from inside proto udp dport 69
CONF
total=$(( $(/usr/bin/python3 -c "from scapy.all import rdpcap; import sys; print(len(rdpcap(sys.argv[1])) + len(rdpcap(sys.argv[2])))" "$dir/in0.pcap" "$dir/in1.pcap") ))

"$BUILD/holdfast" --no-huge -m 256 --no-pci -l 0 --file-prefix "$prefix" \
  --vdev "net_pcap0,rx_pcap=$dir/in0.pcap,tx_pcap=$dir/out0.pcap" \
  --vdev "net_pcap1,rx_pcap=$dir/in1.pcap,tx_pcap=$dir/out1.pcap" \
  -- --config "$dir/holdfast.conf" >"$dir/log" 2>&1 &
pid=$!

# Wait (bounded) until every frame was received, read the counters, then stop it.
sock="/var/run/dpdk/$prefix/dpdk_telemetry.v2"
rx=0
for _ in $(seq 1 300); do
  if [ -S "$sock" ]; then
    stats=$(/usr/bin/python3 "$SRC/test/integration/telemetry.py" "$sock" /holdfast/stats 2>/dev/null || true)
    rx=$(echo "$stats" | /usr/bin/python3 -c 'import json,sys
try:
  s=json.load(sys.stdin)["/holdfast/stats"]; print(s["port0_rx"]+s["port1_rx"])
except Exception: print(0)')
    [ "$rx" -ge "$total" ] && break
  fi
  kill -0 "$pid" 2>/dev/null || { cat "$dir/log"; echo "FAIL: holdfast exited early"; exit 1; }
  sleep 0.1
done
[ "$rx" -ge "$total" ] || { cat "$dir/log"; echo "FAIL: only $rx of $total frames received"; exit 1; }
conns=$(/usr/bin/python3 "$SRC/test/integration/telemetry.py" "$sock" /holdfast/conns)
printf '%s\n%s\n' "$stats" "$conns" | /usr/bin/python3 -c 'import json,sys
s = json.loads(sys.stdin.readline())["/holdfast/stats"]
c = json.loads(sys.stdin.readline())["/holdfast/conns"]
# Every connection opened is still tracked (none idle long enough to expire), and both
# FTP expectations were taken by their data connections.
assert c["capacity"] == 65536, c
assert c["total"] == c["worker0"] == s["conn_new"] - s["conn_expired"] == 6, (c, s)
assert c["expectations"] == 0 and s["conn_related"] == 2, (c, s)' || { echo "FAIL: /holdfast/conns: $conns"; exit 1; }
kill -INT "$pid"
wait "$pid" || { cat "$dir/log"; echo "FAIL: holdfast exited non-zero"; exit 1; }
pid=
grep -q "final counters" "$dir/log" || { cat "$dir/log"; echo "FAIL: no final counters"; exit 1; }
echo "$stats"
/usr/bin/python3 "$SRC/test/integration/check_pcap.py" "$dir" || { cat "$dir/log"; exit 1; }

# A bad configuration stops the start, naming file, line and reason.
printf 'pair 0 1 inside 0\nckpt none\nrule accept proto tcp dport 99999\n' >"$dir/bad.conf"
if "$BUILD/holdfast" --no-huge -m 64 --no-pci -l 0 --file-prefix "${prefix}b" \
     --vdev net_null0 --vdev net_null1 -- --config "$dir/bad.conf" >"$dir/bad.log" 2>&1; then
  echo "FAIL: holdfast started with a bad configuration"; exit 1
fi
grep -q "bad.conf:3: rule: dport '99999'" "$dir/bad.log" || { cat "$dir/bad.log"; echo "FAIL: no file:line reason"; exit 1; }
echo "bad configuration refused: $(grep -o "bad.conf:3: .*" "$dir/bad.log")"
