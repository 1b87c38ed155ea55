#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A real download through holdfast survives losing it: curl fetches 200 MB from
# python3 -m http.server across holdfast (net_af_packet on veths between two namespaces);
# a quarter of the way in, holdfast is killed -9, and
#   clients_http.sh restart   it is started again on its pmem: checkpoint
#   clients_http.sh standby   a standby (holdfast --standby, following the same target)
#                             takes over
# The download completes and its checksum matches. Prints the figures: time from the kill
# to forwarding again, frames lost in the gap, connections restored vs established.
source "$(dirname "$0")/ofi_lib.sh"
source "$(dirname "$0")/clients_lib.sh"
mode=${1:-restart}
case "$mode" in restart | standby) ;; *) fail "unknown mode $mode" ;; esac
SIZE_MB=200

topology
mkdir -p "$T/www"
head -c "${SIZE_MB}M" /dev/urandom >"$T/www/big"
want=$(sha256sum <"$T/www/big" | cut -d' ' -f1)
http_conf "$T/holdfast.conf"

ip netns exec "$NS_S" /usr/bin/python3 -m http.server 8080 --bind "$SRV_IP" --directory "$T/www" \
  >"$T/http.log" 2>&1 &
PIDS+=($!)
start_hf "$T/holdfast.conf"
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast not ready"
wait_for 20 listening "$NS_S" 8080 || fail "http.server did not listen"
[ "$mode" = restart ] || standby_behind "$T/holdfast.conf"

t0=$(now_ms)
ip netns exec "$NS_C" curl -sS --max-time 60 -o "$T/got" "http://$SRV_IP:8080/big" 2>"$T/curl.log" &
curl_pid=$!
PIDS+=("$curl_pid")
got_bytes() { stat -c %s "$T/got" 2>/dev/null || echo 0; }
quarter() { [ "$(got_bytes)" -ge $((SIZE_MB * 1024 * 1024 / 4)) ]; }
wait_for 120 quarter || fail "the download did not reach a quarter: $(cat "$T/curl.log")"
gone "$curl_pid" && fail "the download ended before the kill (too fast to test)"

established=$(in_c ss -tnH state established "dport = :8080" | wc -l)
tracked=$(hf_conns)
at_kill=$(got_bytes)
rx0=$(fw_rx)
kill_and_recover "$mode" "$T/holdfast.conf"
t_kill=$T_KILL
t_ready=$T_READY
rx1=$(fw_rx)
moving() { [ "$(got_bytes)" -gt "$at_kill" ]; }
wait_for 30 moving || fail "the download did not move again after the restart"
t_fwd=$(now_ms)
if ! wait "$curl_pid"; then
  /usr/bin/python3 "$SRC/test/integration/telemetry.py" \
    "/var/run/dpdk/$HF_PREFIX/dpdk_telemetry.v2" /holdfast/stats >&2 || true
  fail "curl failed: $(cat "$T/curl.log")"
fi
t_done=$(now_ms)
have=$(sha256sum <"$T/got" | cut -d' ' -f1)
[ "$have" = "$want" ] || fail "checksum mismatch: $(got_bytes) bytes"

if [ "$mode" = restart ]; then
  restored=$(grep -oE "restored [0-9]+ connections" "$HF_LOG" | grep -oE "[0-9]+" || echo 0)
  how="restored"
else # "took over in N ms (reason; K connections)"
  restored=$(grep -oE "took over in [0-9.]+ ms \([^;]*; [0-9]+ connections" "$HF_LOG" |
    grep -oE "[0-9]+ connections" | grep -oE "[0-9]+" || echo 0)
  how="taken over by the standby"
fi
took=$(grep -oE "took over in [0-9.]+ ms" "$HF_LOG" || true)
echo "http $mode: $SIZE_MB MB in $(((t_done - t0))) ms, sha256 matches"
echo "  kill -9 at $((at_kill / 1048576)) MB; ready again after $((t_ready - t_kill)) ms" \
  "${took:+($took) }; data moving again after $((t_fwd - t_kill)) ms"
echo "  frames that reached the firewall's veths between the kill and ready: $((rx1 - rx0))"
echo "  connections at the kill: $established established at the client, $tracked tracked" \
  "by holdfast; $how: $restored"
[ "$restored" -eq "$tracked" ] || fail "not every connection $how"
