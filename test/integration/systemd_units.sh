#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# systemd: the units `meson install` puts in place verify (systemd-analyze verify, with the
# build's binaries in their ExecStart), and the daemons tell a Type=notify unit what it
# needs: ckptsrv READY=1 once it serves; holdfast READY=1 only after its "ready" line
# (connections restored, ports started) with a STATUS naming the restored count; a standby
# READY=1 once it follows, then STATUS "took over" after its primary's kill -9; STOPPING=1
# at SIGTERM. PID 1 here is no systemd, so the notify socket is a test's own.
source "$(dirname "$0")/ofi_lib.sh"
prefix="hfsd$$"
trap 'rm -rf "/var/run/dpdk/$prefix" "/var/run/dpdk/${prefix}sb"; cleanup' EXIT

# -- the units, verified
mkdir -p "$T/units" "$T/etc/holdfast"
for u in ckptsrv.service holdfast@.service holdfast-standby@.service; do
  sed -e "s|@BINDIR@/ckptsrv |$BUILD/ckptsrv/ckptsrv |; s|@BINDIR@|$BUILD|g" \
    -e "s|@SYSCONFDIR@|$T/etc|g" "$SRC/config/systemd/$u.in" >"$T/units/$u"
done
ln -s holdfast@.service "$T/units/holdfast@demo.service"
ln -s holdfast-standby@.service "$T/units/holdfast-standby@demo.service"
out=$(cd "$T/units" && systemd-analyze verify --man=no ./ckptsrv.service \
  ./holdfast@demo.service ./holdfast-standby@demo.service 2>&1) ||
  fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warned: $out"
echo "units verify"

# -- notify: one socket per daemon
listen() { # name
  /usr/bin/python3 "$SRC/test/integration/notify_listen.py" "$T/$1.sock" "$T/$1.notify" &
  PIDS+=($!)
  wait_for 10 log_has "$T/$1.notify" listening || fail "notify listener $1 did not start"
}
listen srv
listen primary
listen standby

printf 'holdfast %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
port=$(free_port)
NOTIFY_SOCKET="$T/srv.sock" start_server srv --pmem "$T/store.pmu" --size 64M \
  --secret-file "$T/secret" --listen "ofi+tcp://127.0.0.1:$port"
wait_for 10 log_has "$T/srv.notify" "READY=1|STATUS=serving" || fail "ckptsrv: no READY=1"

cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt pmem:$T/state.pmu
lease-ms 500
CONF
start() { # name prefix [--standby]
  NOTIFY_SOCKET="$T/$1.sock" "$BUILD/holdfast" --no-huge -m 256 --no-pci -l 0 \
    --file-prefix "$2" --vdev net_null0 --vdev net_null1 -- --config "$T/holdfast.conf" \
    ${3:-} >"$T/$1.log" 2>&1 &
  HF_PID=$!
  PIDS+=("$HF_PID")
}
start primary "$prefix"
P=$HF_PID
wait_for 30 log_has "$T/primary.notify" "READY=1" || fail "holdfast: no READY=1"
# READY is sent after the ready line and the timings, never before.
log_has "$T/primary.log" "^holdfast: ready in" || fail "READY=1 before holdfast said ready"
grep -q "READY=1|STATUS=forwarding: 1 pairs, 1 workers; 0 connections restored in" \
  "$T/primary.notify" || fail "holdfast's STATUS: $(tail -1 "$T/primary.notify")"

start standby "${prefix}sb" --standby
S=$HF_PID
wait_for 30 log_has "$T/standby.notify" "READY=1|STATUS=standby: following" ||
  fail "standby: no READY=1 while following"
kill -9 "$P"
wait "$P" 2>/dev/null || true
wait_for 30 log_has "$T/standby.notify" "STATUS=forwarding: took over" ||
  fail "standby: no STATUS after the takeover: $(tail -2 "$T/standby.notify")"
term_and_reap "$S" "the standby" 30
log_has "$T/standby.notify" "STOPPING=1" || fail "no STOPPING=1"
stop_server "$T/srv.log"
log_has "$T/srv.notify" "STOPPING=1" || fail "ckptsrv: no STOPPING=1"
sed 's/^/  notify: /' "$T/standby.notify"
echo "PASS: units verify; READY, STATUS and STOPPING as systemd needs them"
