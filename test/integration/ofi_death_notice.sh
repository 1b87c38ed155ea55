#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Death notice through a real ckptsrv over ofi+tcp (issue 14): a process holding a lease of
# 10 s is killed -9; a client waiting in ckpt_lease_watch() returns 0 at once (asserted
# under 2 s, the time from the kill printed), the server logs the release, and STAT shows
# the lease expired. A watch on a live holder returns ETIMEDOUT at its timeout, across the
# server's cap on one long poll (idle-timeout-ms 5000: 2.5 s per WATCH, asked again).
source "$(dirname "$0")/ofi_lib.sh"
FENCE="$BUILD/test/integration/ckpt_fence"

rnd() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
printf 'alice %s\n' "$(rnd)" >"$T/secret"
port=$(free_port)
U="ofi+tcp://127.0.0.1:$port"
start_server srv --pmem "$T/store" --size 64M --secret-file "$T/secret" --listen "$U" \
  --idle-timeout-ms 5000 --log-level info
run() { HF_TENANT=alice HF_SECRET_FILE="$T/secret" "$FENCE" "$U" "$@"; }
now_ns() { date +%s%N; }

# Started directly, not through run(): $! must be the holder itself, for the kill.
HF_TENANT=alice HF_SECRET_FILE="$T/secret" "$FENCE" "$U" hold fw-dn.0 10000 >"$T/hold.out" \
  2>"$T/hold.log" &
HOLD=$!
PIDS+=("$HOLD")
wait_for 10 log_has "$T/hold.out" "holding" || fail "the holder did not take the lease"

# A live holder (renewing every 3.3 s): the watch runs out (4 s: two long polls of at most
# 2.5 s each).
run watch fw-dn.0 4000 ETIMEDOUT >"$T/live.out" 2>"$T/live.log" ||
  fail "watch on a live holder: $(cat "$T/live.out")"
cat "$T/live.out"
ms=$(sed -n 's/^watch: .* after \([0-9]*\) ms$/\1/p' "$T/live.out")
[ "$ms" -ge 3900 ] || fail "the watch on a live holder returned after $ms ms, before its 4000"

# The holder dies while a watcher waits.
HF_TENANT=alice HF_SECRET_FILE="$T/secret" "$FENCE" "$U" watch fw-dn.0 8000 ok \
  >"$T/dead.out" 2>"$T/dead.log" &
WATCH=$!
PIDS+=("$WATCH")
wait_for 10 log_has "$T/dead.out" "watching" || fail "the watcher did not start"
sleep 0.3 # into its WATCH
killed=$(now_ns)
kill -9 "$HOLD"
wait_for 10 gone "$WATCH" || fail "the watcher did not return within 10 s of the kill"
rc=0
wait "$WATCH" || rc=$?
cat "$T/dead.out"
[ $rc -eq 0 ] || fail "watch across the holder's death: $(cat "$T/dead.out")"
at=$(sed -n 's/^returned-at //p' "$T/dead.out")
ms=$(( (at - killed) / 1000000 ))
echo "death notice: kill -9 -> watch returned in $ms ms (lease ttl 10000 ms)"
[ "$ms" -lt 2000 ] || fail "the death notice took $ms ms (want under 2000)"
log_has "$T/srv.log" "tenant alice's session from 127.0.0.1:[0-9]* holding the lease on fw-dn.0 ended: lease released" ||
  fail "the release was not logged"
# Free for anyone now: a watch returns at once.
run watch fw-dn.0 1000 ok >"$T/after.out" 2>"$T/after.log" || fail "lease still held after the release"
stop_server "$T/srv.log"
echo "ofi_death_notice: ok"
