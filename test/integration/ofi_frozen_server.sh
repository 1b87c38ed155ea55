#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A frozen server (SIGSTOP) hangs every provider; the client must give up on its own
# timeout (5 s here) with ETIMEDOUT. Thawed, the server still holds every acknowledged slice.
# Over tcp only: shm keeps a spinlock in the server's shared region, and a server stopped
# while holding it leaves the client spinning inside libfabric, where no timeout of ours
# can reach (seen about one run in four under load). shm is for trusted same-host use and
# its servers are supervised; README says so.
source "$(dirname "$0")/ofi_lib.sh"

printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
export HF_SECRET_FILE="$T/secret" HF_ALLOW_SHM=1
port=$(free_port)
start_server srv --pmem "$T/store" --size 256M --secret-file "$T/secret" \
  --listen "ofi+tcp://127.0.0.1:$port"

for target in "ofi+tcp://127.0.0.1:$port"; do
  region="frozen-${target%%:*}"
  region=${region/+/-}
  "$LOAD" write "$target" "$region" 50000 40 >"$T/$region.acks" 2>"$T/$region.log" &
  pid=$!
  PIDS+=("$pid")
  wait_for 60 lines_at_least "$T/$region.acks" ack 20000 || fail "$target: no acks"
  kill -STOP "$SRV_PID"
  start=$(date +%s)
  wait_for 30 gone "$pid" || fail "$target: primary hangs on a frozen server"
  took=$(($(date +%s) - start))
  rc=0
  wait "$pid" || rc=$?
  [ $rc -eq 3 ] || fail "$target: primary exited $rc, want 3"
  grep -q 'write stopped.*Connection timed out' "$T/$region.log" ||
    fail "$target: primary did not report ETIMEDOUT"
  [ $took -ge 4 ] || fail "$target: gave up after ${took}s, before its 5 s timeout"
  echo "$target: primary gave up after about ${took}s"
  kill -CONT "$SRV_PID"
  "$LOAD" verify "$target" "$region" "$T/$region.acks" --allow-torn 2>"$T/$region-verify.log" ||
    fail "$target: acknowledged slices lost"
  grep 'records' "$T/$region-verify.log"
done
echo "PASS: a frozen server costs the client one timeout, not a hang"
