#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# No lease lapses by accident (issue 14): a primary and a standby over ckptsrv (tcp); the
# primary is killed -9 and the standby takes over; then the new primary is killed -9 and
# holdfast starts again as the primary (a restart). Across all of it, on an idle system
# (no frames) or a busy one (net_null ports: the worker forwards at full rate on its CPU),
# not one "cannot renew the lease" is logged, and the start and takeover timings are
# printed.
#
#   restart_lease_lapse.sh idle | busy
source "$(dirname "$0")/ofi_lib.sh"
mode=${1:?idle or busy}
prefix="hfll$$"
trap 'rm -rf /var/run/dpdk/${prefix}-*; cleanup' EXIT
case "$mode" in
idle) rx="no-rx=1" ;;
busy) rx="no-rx=0" ;;
*) fail "unknown mode $mode" ;;
esac
port=$(free_port)
printf 'holdfast %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
start_server srv --pmem "$T/store.pmu" --size 64M --secret-file "$T/secret" \
  --listen "ofi+tcp://127.0.0.1:$port"
cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 1024
non-ip pass
ckpt ofi+tcp://127.0.0.1:$port
ckpt-secret-file $T/secret
lease-ms 500
CONF
N=0
start_hf() { # [--standby]
  N=$((N + 1))
  "$BUILD/holdfast" --no-huge -m 128 --no-pci -l 0 --file-prefix "$prefix-$N" \
    --vdev "net_null0,$rx" --vdev "net_null1,$rx" -- --config "$T/holdfast.conf" "$@" \
    >"$T/hf-$N.log" 2>&1 &
  HF_PID=$!
  PIDS+=("$HF_PID")
}
tx() { # n
  /usr/bin/python3 "$SRC/test/integration/telemetry.py" "/var/run/dpdk/$prefix-$1/dpdk_telemetry.v2" \
    /holdfast/stats 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["/holdfast/stats"]["port1_tx"])' 2>/dev/null || echo "?"
}

start_hf
P=$HF_PID
wait_for 30 log_has "$T/hf-1.log" "holdfast: ready" || fail "the primary did not start"
start_hf --standby
S=$HF_PID
wait_for 30 log_has "$T/hf-2.log" "holdfast: standby" || fail "no standby"
sleep 3 # a dozen renewals
echo "primary forwarded $(tx 1) frames"
kill -9 "$P"
wait_for 30 log_has "$T/hf-2.log" "holdfast: took over" || fail "no takeover"
sleep 3
echo "new primary forwarded $(tx 2) frames"
kill -9 "$S"
wait "$S" 2>/dev/null || true
start_hf
wait_for 30 log_has "$T/hf-3.log" "holdfast: ready" || fail "the restart did not start"
sleep 3
echo "restarted primary forwarded $(tx 3) frames"
grep -h "ready in\|took over in" "$T"/hf-*.log | sed 's/^holdfast: //'
n=$(cat "$T"/hf-*.log | grep -c "cannot renew the lease" || true)
slow=$(cat "$T"/hf-*.log | grep -c "a renewal took" || true)
echo "lease lapses: $n; renewals slower than a quarter of the lease: $slow"
[ "$n" -eq 0 ] || fail "$n lease lapses: $(grep -h 'cannot renew the lease' "$T"/hf-*.log)"
kill -INT "$HF_PID"
wait_for 30 gone "$HF_PID" || fail "holdfast did not stop"
echo "no lease lapse over a takeover and a restart ($mode): ok"
