#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Two workers (issue 16): holdfast on lcores 0 and 1, each net_af_packet port with two queue
# pairs (the kernel's fanout spreads flows over them by its own hash, and moves a busy flow
# to the other queue under pressure). Parallel curl downloads from python3 -m http.server
# across it, rate-limited so that they are alive at once:
#   clients_workers.sh downloads   they run to the end
#   clients_workers.sh restart     a quarter of the way in, holdfast is killed -9 and
#                                  started again (two workers) on its pmem: checkpoint
#   clients_workers.sh standby     ... and a standby (two workers) takes over instead
#   clients_workers.sh reshard     killed -9 and started again with one worker (2 -> 1),
#                                  later killed again and started with two (1 -> 2): every
#                                  connection is restored into the worker that owns it now
# Every download completes and its checksum matches; both workers own connections; frames
# that reached the worker not owning their connection were handed to the owner
# (handoff_out = handoff_in > 0), and no frame of a live connection was dropped as no_conn.
source "$(dirname "$0")/ofi_lib.sh"
source "$(dirname "$0")/clients_lib.sh"
mode=${1:-downloads}
case "$mode" in downloads | restart | standby | reshard) ;; *) fail "unknown mode $mode" ;; esac
FILES=16
SIZE_MB=4
RATE=300k # per download: each lasts ~14 s, long enough to kill holdfast among them
HF_LCORE=0,1
HF_QPAIRS=2

topology
mkdir -p "$T/www"
for i in $(seq "$FILES"); do
  head -c "${SIZE_MB}M" /dev/urandom >"$T/www/f$i"
  sha256sum <"$T/www/f$i" | cut -d' ' -f1 >"$T/want$i"
done
http_conf "$T/holdfast.conf"

# tel CMD: holdfast's telemetry reply to CMD (JSON) in $T/tel; the telemetry thread shares
# a busy machine: asked again (bounded) when one query times out.
tel_query() {
  /usr/bin/python3 "$SRC/test/integration/telemetry.py" \
    "/var/run/dpdk/$HF_PREFIX/dpdk_telemetry.v2" "$1" >"$T/tel" 2>/dev/null
}
tel() { wait_for 30 tel_query "$1" || fail "holdfast telemetry did not answer $1"; }
# field CMD KEY...: one value of the reply (nested keys for /holdfast/workers), which
# telemetry files under the command without its parameter.
field() {
  local cmd=$1
  shift
  tel "$cmd"
  /usr/bin/python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))[sys.argv[2].split(",")[0]]
for k in sys.argv[3:]:
    v = v[k]
print(v)' "$T/tel" "$cmd" "$@"
}

# What holdfast counted, per worker and in total, and each connection's state (hfctl
# conns), for a failure's report; and which connections the client still has open.
diag() {
  tel_query /holdfast/workers && cat "$T/tel" >&2
  tel_query /holdfast/stats && cat "$T/tel" >&2
  /usr/bin/python3 "$SRC/app/hfctl" --prefix "$HF_PREFIX" conns >&2 || true
  in_c ss -tni "dport = :8080" >&2 || true
  # The last segments of each connection the client still has, as each end saw them.
  local port side
  for port in $(in_c ss -tnH "dport = :8080" | awk '{ split($4, a, ":"); print a[2] }' || true); do
    for side in client server; do
      echo "--- port $port, as the $side's namespace saw it (last 60 segments)" >&2
      # (the capture is still being written: its last record may be cut short)
      tcpdump -nSr "$T/cap-${side:0:1}.pcap" -tt "tcp port $port" 2>/dev/null | tail -60 >&2 ||
        true
    done
  done
}

# Headers of every segment at both ends, for a failure's report (diag).
for side in c s; do
  ns=$NS_C
  [ $side = c ] || ns=$NS_S
  ip netns exec "$ns" tcpdump -i "${side}0" -s 96 -U -w "$T/cap-$side.pcap" tcp 2>/dev/null &
  PIDS+=($!)
done
ip netns exec "$NS_S" /usr/bin/python3 -m http.server 8080 --bind "$SRV_IP" --directory "$T/www" \
  >"$T/http.log" 2>&1 &
PIDS+=($!)
start_hf "$T/holdfast.conf"
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast not ready"
grep -q "2 workers" "$HF_LOG" || fail "holdfast does not run two workers: $(grep forwarding "$HF_LOG")"
wait_for 20 listening "$NS_S" 8080 || fail "http.server did not listen"
[ "$mode" != standby ] || standby_behind "$T/holdfast.conf"

t0=$(now_ms)
curls=()
for i in $(seq "$FILES"); do
  ip netns exec "$NS_C" curl -sS --max-time 90 --limit-rate "$RATE" -o "$T/got$i" \
    "http://$SRV_IP:8080/f$i" 2>"$T/curl$i.log" &
  curls+=($!)
  PIDS+=($!)
done
got_bytes() { cat "$T"/got* 2>/dev/null | wc -c; }
more_bytes() { [ "$(got_bytes)" -ge "$1" ]; }
total=$((FILES * SIZE_MB * 1024 * 1024))

if [ "$mode" != downloads ]; then
  # Most downloads under way (connected, an eighth of the bytes in): on a loaded machine the
  # 16 curls start over seconds, and waiting for every one let the first ones finish.
  established() { in_c ss -tnH state established "dport = :8080" | wc -l; }
  under_way() {
    [ "$(established)" -ge $((FILES * 3 / 4)) ] && [ "$(got_bytes)" -ge $((total / 8)) ]
  }
  wait_for 60 under_way || {
    diag
    fail "$(established) of $FILES downloads under way before the kill"
  }
  # recover_as MODE LCORES QPAIRS: kill -9 and recover with that many workers; every
  # tracked connection restored (moved to its owner when the count changed: MOVED).
  recover_as() {
    local w0 w1 alive tracked at_kill restored
    alive=$(established)
    tracked=$(hf_conns)
    w0=$(field /holdfast/workers worker0 conns)
    w1=$(field /holdfast/workers worker1 conns 2>/dev/null || echo -)
    at_kill=$(got_bytes)
    HF_LCORE=$2
    HF_QPAIRS=$3
    kill_and_recover "$1" "$T/holdfast.conf"
    echo "kill -9 at $((at_kill / 1048576)) of $((total / 1048576)) MB: $alive downloads alive," \
      "$tracked connections tracked (worker0 $w0, worker1 $w1); ready again after" \
      "$((T_READY - T_KILL)) ms on lcores $2"
    if [ "$1" = restart ]; then
      restored=$(grep -oE "restored [0-9]+ connections" "$HF_LOG" | grep -oE "[0-9]+" || echo 0)
      MOVED=$(grep -oE "[0-9]+ moved to their owners" "$HF_LOG" | grep -oE "^[0-9]+" || echo 0)
      echo "  restored: $restored, moved to another worker: $MOVED"
      grep -E "another number of workers" "$HF_LOG" | sed 's/^/  /' || true
      [ "$restored" -eq "$tracked" ] || fail "not every connection restored"
    else
      grep -oE "took over in [0-9.]+ ms.*connections\)" "$HF_LOG" || true
    fi
  }
  if [ "$mode" = reshard ]; then
    recover_as restart 0 1
    grep -q "1 worker" "$HF_LOG" || fail "holdfast does not run one worker: $(grep forwarding "$HF_LOG")"
    [ "$MOVED" -gt 0 ] || fail "2 -> 1: no connection moved from worker 1's region"
    grep -q "1 region of workers past 1 drained, 1 deleted" "$HF_LOG" ||
      fail "2 -> 1: worker 1's regions not drained and deleted"
    # Live on one worker for a while: its frames all reach it, nothing unknown.
    wait_for 60 more_bytes $((total * 3 / 8)) || fail "downloads stalled on one worker"
    [ "$(field /holdfast/stats drop_no_conn)" -eq 0 ] || fail "one worker dropped frames as no_conn"
    recover_as restart 0,1 2
    [ "$MOVED" -gt 0 ] || fail "1 -> 2: no connection moved to worker 1"
  else
    recover_as "$mode" 0,1 2
  fi
fi

for i in $(seq "$FILES"); do
  if ! wait "${curls[$((i - 1))]}"; then
    diag
    fail "download $i failed: $(cat "$T/curl$i.log")"
  fi
  [ "$(sha256sum <"$T/got$i" | cut -d' ' -f1)" = "$(cat "$T/want$i")" ] ||
    fail "download $i: checksum mismatch ($(stat -c %s "$T/got$i") bytes)"
done
t_done=$(now_ms)
echo "$mode: $FILES downloads of $SIZE_MB MB in parallel in $((t_done - t0)) ms, every sha256 matches"

tel /holdfast/workers
echo "  per worker: $(cat "$T/tel")"
out=$(field /holdfast/stats handoff_out)
in=$(field /holdfast/stats handoff_in)
no_conn=$(field /holdfast/stats drop_no_conn)
full=$(field /holdfast/stats drop_handoff_full)
echo "  handed off $out, received $in, drop no_conn $no_conn, handoff_full $full"
new0=$(field /holdfast/workers worker0 conn_new)
new1=$(field /holdfast/workers worker1 conn_new)
# A restarted holdfast opened nothing itself: its connections came back from the regions.
if [ "$mode" = downloads ]; then
  [ "$new0" -gt 0 ] && [ "$new1" -gt 0 ] || fail "connections not spread: $new0 / $new1"
fi
[ "$out" -gt 0 ] || fail "no frame handed to its connection's owner"
[ "$out" -eq "$in" ] || fail "handed off $out, received $in"
[ "$no_conn" -eq 0 ] || fail "$no_conn frames dropped as no_conn"
# The per-worker view adds up to the totals.
out1=$(field /holdfast/stats,1 handoff_out)
out0=$(field /holdfast/stats,0 handoff_out)
[ $((out0 + out1)) -eq "$out" ] || fail "per-worker handoff_out $out0 + $out1 != $out"
