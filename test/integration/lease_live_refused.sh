#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A second primary on the same checkpoint while the first still renews its lease is
# refused (it says to stop the first or start as a standby) and the first forwards on;
# once the first is killed -9, a new start finds the lease free at once (its holder's
# death noticed, not the lease waited out).
#
#   lease_live_refused.sh pmem | tcp
source "$(dirname "$0")/ofi_lib.sh"
mode=${1:-pmem}
prefix="hfll$$"
trap 'rm -rf /var/run/dpdk/${prefix}a /var/run/dpdk/${prefix}b /var/run/dpdk/${prefix}c; cleanup' EXIT
lease=2000
case "$mode" in
pmem) target="pmem:$T/state.pmu" ;;
tcp)
  printf 'holdfast %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
  port=$(free_port)
  start_server srv --pmem "$T/store.pmu" --size 64M --secret-file "$T/secret" \
    --listen "ofi+tcp://127.0.0.1:$port"
  target="ofi+tcp://127.0.0.1:$port"
  ;;
*) fail "unknown mode $mode" ;;
esac
cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt $target
ckpt-secret-file $T/secret
lease-ms $lease
CONF
[ "$mode" = tcp ] || sed -i '/ckpt-secret-file/d' "$T/holdfast.conf"
start() { # name
  "$BUILD/holdfast" --no-huge -m 256 --no-pci -l 0 --file-prefix "$prefix$1" \
    --vdev net_null0 --vdev net_null1 -- --config "$T/holdfast.conf" >"$T/$1.log" 2>&1 &
  HF_PID=$!
  PIDS+=("$HF_PID")
}
start a
A=$HF_PID
wait_for 30 log_has "$T/a.log" "^holdfast: ready" || fail "the first did not start"
wait_for 10 log_has "$T/a.log" "epoch [0-9]* of .* taken" || fail "the first took no epoch"
start b
B=$HF_PID
wait_for 30 gone "$B" || fail "the second primary did not stop"
rc=0
wait "$B" || rc=$?
[ $rc -ne 0 ] || fail "the second primary exited 0"
log_has "$T/b.log" "leased by a running holdfast" || fail "no reason given: $(tail -3 "$T/b.log")"
if log_has "$T/b.log" "^holdfast: ready"; then fail "the second primary forwarded"; fi
kill -0 "$A" || fail "the first primary died"
echo "second primary refused: $(grep -o 'leased by a running holdfast.*' "$T/b.log")"
t0=$(date +%s%3N)
kill -9 "$A"
wait "$A" 2>/dev/null || true
start c
wait_for 30 log_has "$T/c.log" "^holdfast: ready" || fail "no start after the kill: $(tail -3 "$T/c.log")"
t1=$(date +%s%3N)
# Free at once: either the target had released it before the new start asked (ckptsrv saw
# the session end), or the start was told its holder is gone; never waited out.
if log_has "$T/c.log" "previous lease on .* ran out after"; then
  fail "the lease was waited out: $(grep -i lease "$T/c.log")"
fi
echo "after the kill: $(grep -o 'previous holder of.*' "$T/c.log" || echo "lease already free");" \
  "ready $((t1 - t0)) ms after the kill (lease-ms $lease)"
[ $((t1 - t0)) -lt $lease ] || fail "ready only $((t1 - t0)) ms after the kill"
echo "PASS: a live lease refuses a second primary; a dead holder's is free at once ($mode)"
