#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Append regions through ckptsrv --distribute group:xor(2)=M0,M1,M2: the distributing server
# consumes a log record only once the group holds it durably.
#   a. all members up: records reach the group and are consumed at the server.
#   b. members 1 and 2 killed -9 (one of three left, xor(2) needs two): records appended to
#      the server stay there, unconsumed; once the members are back, the same running
#      server forwards them and only then consumes them.
#   c. the same, and the distributing server is killed -9 and restarted while the group is
#      down: the restarted server still holds the records and forwards them once it can.
# The group must hold every record exactly once, in order.
source "$(dirname "$0")/ofi_lib.sh"
CTL="$BUILD/ckptsrv/ckptctl"

printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
export HF_SECRET_FILE="$T/secret"

declare -a ADDR PID
start_member() { # start_member I: member I on its store, at the address it had
  local i=$1
  [ -n "${ADDR[$i]:-}" ] || ADDR[$i]="ofi+tcp://127.0.0.1:$(free_port)"
  start_server "m$i-$RANDOM" --pmem "$T/store$i" --size 64M --secret-file "$T/secret" \
    --listen "${ADDR[$i]}"
  PID[$i]=$SRV_PID
}
for i in 0 1 2; do start_member "$i"; done
group="group:xor(2)=$(IFS=,; echo "${ADDR[*]}")"
front="ofi+tcp://127.0.0.1:$(free_port)"
FRONT_LOG=
start_front() {
  FRONT_LOG="front-$RANDOM"
  start_server "$FRONT_LOG" --pmem "$T/front" --size 64M --secret-file "$T/secret" \
    --listen "$front" --distribute "$group"
  FRONT_PID=$SRV_PID
  FRONT_LOG="$T/$FRONT_LOG.log"
}
start_front

# pairs TARGET OUT: the pairs of the records of region "log" (peeked), in log order.
pairs() {
  "$CTL" --target "$1" --secret-file "$T/secret" dump log >"$2.raw" 2>"$2.log" || return 1
  { grep -v '^#' "$2.raw" || true; } | sed -n 's/^pair=\([0-9]*\) .*/\1/p' >"$2"
}
count_at_front() { pairs "$front" "$T/front.pairs" && [ "$(wc -l <"$T/front.pairs")" -eq "$1" ]; }
group_holds() { # group_holds N: the group holds pairs 0 .. N-1, once each, in order
  seq 0 $(($1 - 1)) >"$T/want" && pairs "$group" "$T/group.pairs" && cmp -s "$T/want" "$T/group.pairs"
}
append() { # append FIRST COUNT
  "$LOAD" append "$front" log "$1" "$2" >/dev/null 2>"$T/append.log" || fail "append to the server"
}
members_down() {
  kill -9 "${PID[1]}" "${PID[2]}"
  for p in "${PID[1]}" "${PID[2]}"; do wait_for 10 gone "$p" || fail "$p survived kill -9"; done
  # Said once the server has seen the group fall below k (it polls every pass); the records
  # are appended after that, so that no segment reaches the one member left alone.
  wait_for 10 log_has "$FRONT_LOG" "cannot take writes" ||
    echo "the server did not say that the group cannot take writes"
}
# Records stay at the server: N there, looked at for 2 s and more (40 passes and more of the
# distributor, and two attempts to reach the group again).
stay_at_front() { # stay_at_front N WHY
  local end=$((SECONDS + 3))
  while [ $SECONDS -lt $end ]; do
    count_at_front "$1" ||
      fail "$2: the server holds $(wc -l <"$T/front.pairs") records, not $1 (the old behaviour consumed them)"
    sleep 0.2
  done
}

append 0 100
wait_for 30 group_holds 100 || fail "a: the group never got the records"
wait_for 10 count_at_front 0 || fail "a: the server did not consume what the group holds"
echo "a: 100 records in the group, consumed at the server"

members_down
append 100 100
stay_at_front 100 "b, one member of three"
start_member 1
start_member 2
wait_for 30 group_holds 200 || fail "b: the records never reached the group: $(tail -3 "$T/group.pairs.log")"
wait_for 10 count_at_front 0 || fail "b: the server did not consume them once the group held them"
log_has "$FRONT_LOG" "takes writes again" || fail "b: the server did not say the group is back"
echo "b: with one member of three nothing was consumed; members back: 200 records in the group"

members_down
append 200 100
stay_at_front 100 "c, one member of three"
kill -9 "$FRONT_PID"
wait_for 10 gone "$FRONT_PID" || fail "the server survived kill -9"
start_front
wait_for 10 log_has "$FRONT_LOG" "cannot reach" || fail "c: the restarted server reached the group"
stay_at_front 100 "c, restarted server"
start_member 1
start_member 2
wait_for 30 group_holds 300 || fail "c: the records never reached the group: $(tail -3 "$T/group.pairs.log")"
wait_for 10 count_at_front 0 || fail "c: the restarted server did not consume them"
echo "PASS: log records leave the distributing server only once the group holds them"
