#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ckptsrv's command line and config file: the example config is accepted, config errors name
# file:line and why, shm needs --allow-shm, verbs fails cleanly without an RDMA device, and a
# wiped store is refused until --format makes it new.
source "$(dirname "$0")/ofi_lib.sh"

printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
port=$(free_port)
sed -e "s|^pmem = .*|pmem = $T/store|" -e "s|^secret-file = .*|secret-file = $T/secret|" \
  -e "s|^listen = ofi+tcp://.*|listen = ofi+tcp://127.0.0.1:$port|" \
  -e "s|^listen = ofi+shm://.*|listen = ofi+shm://hf-cli-$$|" \
  "$SRC/config/ckptsrv.conf" >"$T/ok.conf"
start_server conf --config "$T/ok.conf"
log_has "$T/conf.log" "listening on ofi+tcp://127.0.0.1:$port" || fail "config listener missing"
log_has "$T/conf.log" "SHM LISTENER ENABLED" || fail "shm warning missing"
kill -TERM "$SRV_PID"
wait_for 10 gone "$SRV_PID" || fail "SIGTERM ignored"

expect_refusal() { # WANT-IN-LOG ARGS...
  local want=$1 rc=0
  shift
  "$CKPTSRV" "$@" 2>"$T/refused.log" || rc=$?
  [ $rc -ne 0 ] || fail "ckptsrv $* started"
  grep -q -- "$want" "$T/refused.log" || fail "ckptsrv $*: log lacks \"$want\""
}

printf 'pmem = %s\nsize = 64M\nlisten = ofi+tcp://127.0.0.1:1\nbogus = 1\n' "$T/s" >"$T/bad.conf"
expect_refusal "$T/bad.conf:4: bogus: unknown key" --config "$T/bad.conf" --secret-file "$T/secret"
printf 'size = 64Q\n' >"$T/bad2.conf"
expect_refusal "$T/bad2.conf:1: size: not a size" --config "$T/bad2.conf"
printf 'allow-shm\n' >"$T/bad3.conf"
expect_refusal "$T/bad3.conf:1: expected \"key = value\"" --config "$T/bad3.conf"
expect_refusal "pass --allow-shm" --pmem "$T/s2" --size 64M --secret-file "$T/secret" \
  --listen "ofi+shm://hf-cli-noshm-$$"
expect_refusal "no usable verbs;ofi_rxm provider" --pmem "$T/s3" --size 64M \
  --secret-file "$T/secret" --listen "ofi+verbs://127.0.0.1:$(free_port)"
expect_refusal "unknown scheme" --pmem "$T/s4" --size 64M --secret-file "$T/secret" \
  --listen "http://127.0.0.1:80"
expect_refusal "required" --pmem "$T/s5" --size 64M
# A store whose superblock was wiped is refused and said so; only --format makes it new.
truncate -s 4M "$T/wiped"
wiped=(--pmem "$T/wiped" --size 64M --secret-file "$T/secret" --listen "ofi+tcp://127.0.0.1:$port")
expect_refusal "$T/wiped: superblock is zeroed (never formatted, or wiped); refusing" "${wiped[@]}"
start_server format "${wiped[@]}" --format
log_has "$T/format.log" "formatted as asked: a new, empty store of 4194304 bytes" ||
  fail "--format did not say it formatted"
log_has "$T/format.log" "kept its size of 4194304 bytes (67108864 asked" || fail "size not said"
kill -TERM "$SRV_PID"
wait_for 10 gone "$SRV_PID" || fail "SIGTERM ignored"
echo "PASS: ckptsrv configuration is checked and explained"
