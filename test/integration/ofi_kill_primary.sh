#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A primary writes 100 000 slices (50 000 pairs x 2 generations) over tcp and over shm, is
# killed -9, and a backup opens the region and reads every one back: all acknowledged
# slices present with the right content, nothing invalid. Then (tcp) a primary killed -9 in
# the middle of a stream: everything it had acknowledged is there.
source "$(dirname "$0")/ofi_lib.sh"

PAIRS=50000
GENS=2
printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
export HF_SECRET_FILE="$T/secret" HF_ALLOW_SHM=1
port=$(free_port)
shm="hf-test-$$"
start_server srv --pmem "$T/store" --size 256M --secret-file "$T/secret" --allow-shm \
  --listen "ofi+tcp://127.0.0.1:$port" --listen "ofi+shm://$shm"

for target in "ofi+tcp://127.0.0.1:$port" "ofi+shm://$shm"; do
  tag=${target%%:*}
  region="full-${tag#ofi+}"
  "$LOAD" write "$target" "$region" $PAIRS $GENS --hold >"$T/$region.acks" 2>"$T/$region.log" &
  pid=$!
  PIDS+=("$pid")
  wait_for 120 log_has "$T/$region.acks" '^done' || fail "$target: primary did not finish"
  kill -9 "$pid"
  wait_for 10 gone "$pid" || fail "$target: primary survived kill -9"
  n=$(grep -c '^ack ' "$T/$region.acks")
  [ "$n" -eq $((PAIRS * GENS)) ] || fail "$target: $n of $((PAIRS * GENS)) slices acknowledged"
  "$LOAD" verify "$target" "$region" "$T/$region.acks" --all $GENS 2>"$T/$region-verify.log" ||
    fail "$target: backup read does not check"
  grep 'slices durable' "$T/$region.log"
  grep 'records' "$T/$region-verify.log"

  # Killed in the middle: the acknowledged prefix must survive, torn slots may not count.
  # Not over shm: a client killed while it holds the spinlock libfabric shm keeps in the
  # server's shared region wedges that endpoint for good (libfabric 1.17, about one kill in
  # four at full rate; ckptsrv detects and reports it, see watch_progress()).
  [ "$tag" = "ofi+shm" ] && continue
  region="mid-${tag#ofi+}"
  "$LOAD" write "$target" "$region" $PAIRS 20 >"$T/$region.acks" 2>"$T/$region.log" &
  pid=$!
  PIDS+=("$pid")
  wait_for 120 lines_at_least "$T/$region.acks" ack 60000 || fail "$target: no acks mid-stream"
  kill -9 "$pid"
  wait_for 10 gone "$pid" || fail "$target: primary survived kill -9"
  if log_has "$T/$region.acks" '^done'; then fail "$target: primary finished before the kill"; fi
  "$LOAD" verify "$target" "$region" "$T/$region.acks" --allow-torn 2>"$T/$region-verify.log" ||
    fail "$target: acknowledged slices lost when the primary was killed mid-stream"
  grep 'records' "$T/$region-verify.log"
done
log_has "$T/srv.log" "ERR" && fail "server logged errors"
echo "PASS: kill -9 of a primary over tcp and shm loses no acknowledged slice"
