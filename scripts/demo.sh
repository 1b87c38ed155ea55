#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# make demo: what holdfast does, on this machine, in about two minutes.
#  1. A real download outlives the firewall: curl fetches 200 MB from a web server across
#     holdfast (DPDK af_packet ports on veths between network namespaces made here);
#     holdfast is killed -9 a quarter of the way in and started again; it restores the
#     connection from its pmem: checkpoint, the download completes, its sha256 matches.
#  2. The same with a standby (holdfast --standby) that takes over from the killed primary.
#  3. The checkpoint server keeps a primary's slices through a kill -9: ckptsrv serves a
#     persistent-memory file over libfabric tcp, a primary streams checkpoints into it and
#     is killed mid-stream, a backup opens the region and shows what it recovered.
#  4. The firewall forwards a generated mix of TCP, UDP and FTP flows and junk between two
#     net_pcap ports, and every frame's fate is checked.
# Parts 1 and 2 need root (network namespaces), as make demo runs.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
S=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/holdfast-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target="ofi+tcp://127.0.0.1:$port"

# The real-client parts print the download's figures: kill -> ready, kill -> data moving
# again, connections restored.
live() { # restart | standby
  BUILD="$B" SRC="$S" bash "$S/test/integration/clients_http.sh" "$1" 2>&1 |
    grep -v '^EAL:\|^TELEMETRY:\| Killed  '
}
say "1. a 200 MB download across holdfast; holdfast killed -9 a quarter in and started again"
live restart
say "2. the same download; a standby takes over from the killed primary"
live standby

say "3. ckptsrv on $target, store $dir/store.pmu (256 MiB)"
printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$dir/secret"
"$B/ckptsrv/ckptsrv" --pmem "$dir/store.pmu" --size 256M --listen "$target" \
  --secret-file "$dir/secret" >"$dir/ckptsrv.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "serving store" "$dir/ckptsrv.log" && break; sleep 0.05; done
grep -E "listening|serving" "$dir/ckptsrv.log" | sed 's/^[0-9.]* //'

export HF_SECRET_FILE="$dir/secret"
say "primary: 20000 connections x 3 generations of slices, killed -9 after 5000 durable acks"
"$B/test/integration/ckpt_load" write "$target" demo-state 20000 3 --hold \
  >"$dir/acks" 2>"$dir/primary.log" &
primary=$!
pids+=($primary)
for _ in $(seq 600); do
  [ "$(grep -c '^ack' "$dir/acks" 2>/dev/null || true)" -ge 5000 ] && break
  sleep 0.01
done
kill -9 "$primary"
wait "$primary" 2>/dev/null || true
echo "primary killed with $(grep -c '^ack' "$dir/acks") slices acknowledged durable"

say "backup: open the region, read it back, check every acknowledged slice"
"$B/test/integration/ckpt_load" verify "$target" demo-state "$dir/acks" --allow-torn 2>&1 |
  sed 's/^ckpt_load: //'
say "ckptctl stat and the first records of the region"
"$B/ckptsrv/ckptctl" --target "$target" --secret-file "$dir/secret" stat demo-state
"$B/ckptsrv/ckptctl" --target "$target" --secret-file "$dir/secret" dump demo-state | sed -n 1,6p
"$B/ckptsrv/ckptctl" --target "$target" --secret-file "$dir/secret" verify demo-state

say "4. holdfast between two net_pcap ports on a generated TCP/UDP/FTP mix"
BUILD="$B" SRC="$S" bash "$S/test/integration/e2e_pcap.sh" | tail -2 |
  /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        s = json.loads(line)["/holdfast/stats"]
        keep = {k: v for k, v in s.items() if v and not k.startswith("drop_non_ip")}
        print("counters:", ", ".join(f"{k}={v}" for k, v in keep.items()))
    else:
        print(line)'
echo
echo "demo done"
