#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ckptsrv killed -9 while a primary streams into it over tcp, then restarted on the same pmem
# file: every record the primary saw acknowledged as durable is there, with its content.
source "$(dirname "$0")/ofi_lib.sh"

printf 'fw1 %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
export HF_SECRET_FILE="$T/secret" HF_TENANT=fw1
port=$(free_port)
target="ofi+tcp://127.0.0.1:$port"
start_server srv1 --pmem "$T/store" --size 256M --secret-file "$T/secret" --listen "$target"
srv1=$SRV_PID

for mode in direct batched; do
  region="stream-$mode"
  flag=()
  [ $mode = batched ] && flag=(--batched)
  "$LOAD" write "$target" "$region" 50000 40 "${flag[@]}" >"$T/$region.acks" 2>"$T/$region.log" &
  pid=$!
  PIDS+=("$pid")
  wait_for 120 lines_at_least "$T/$region.acks" ack 80000 || fail "$mode: no acks"
  kill -9 "$srv1"
  # The primary must notice by itself (connection reset or its own timeout) and stop.
  wait_for 20 gone "$pid" || fail "$mode: primary did not notice the dead server"
  rc=0
  wait "$pid" || rc=$?
  [ $rc -eq 3 ] || fail "$mode: primary exited $rc, want 3 (write error)"
  grep 'write stopped.*Connection reset by peer' "$T/$region.log" ||
    fail "$mode: the primary did not report the dead server as ECONNRESET"

  start_server "srv-$mode" --pmem "$T/store" --size 256M --secret-file "$T/secret" --listen "$target"
  srv1=$SRV_PID
  "$LOAD" verify "$target" "$region" "$T/$region.acks" --allow-torn 2>"$T/$region-verify.log" ||
    fail "$mode: acknowledged records lost across a server crash"
  grep 'records' "$T/$region-verify.log"
done
echo "PASS: a server killed -9 mid-stream keeps every acknowledged record"
