#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Forming in a server: a firewall (ckpt_load) checkpoints into one ckptsrv started with
# --distribute group:rs(4,2)=...; that server forms every region into the group. The group
# then restores the same records as the distributing server itself, and the same as a
# region the client formed itself; and it still does with the distributing server and two
# members killed -9.
source "$(dirname "$0")/ofi_lib.sh"
CTL="$BUILD/ckptsrv/ckptctl"

PAIRS=20000
GENS=3
printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
export HF_SECRET_FILE="$T/secret"

declare -a ADDR PID
for i in 0 1 2 3 4 5; do
  ADDR[$i]="ofi+tcp://127.0.0.1:$(free_port)"
  start_server "m$i" --pmem "$T/store$i" --size 96M --secret-file "$T/secret" --listen "${ADDR[$i]}"
  PID[$i]=$SRV_PID
done
group="group:rs(4,2)=$(IFS=,; echo "${ADDR[*]}")"
front="ofi+tcp://127.0.0.1:$(free_port)"
start_server front --pmem "$T/front" --size 96M --secret-file "$T/secret" --listen "$front" \
  --distribute "$group"
front_pid=$SRV_PID

records() { # records TARGET REGION OUT
  "$CTL" --target "$1" --secret-file "$T/secret" dump "$2" >"$3.raw" 2>"$3.log" || return 1
  grep -v '^#' "$3.raw" >"$3" || true
}
same_as_want() { records "$group" st "$T/got" && cmp -s "$T/want" "$T/got"; }

"$LOAD" write "$front" st $PAIRS $GENS --batched >"$T/st.acks" 2>"$T/st.log" ||
  fail "write to the distributing server"
records "$front" st "$T/want" || fail "dump of the distributing server"
[ "$(wc -l <"$T/want")" -eq $PAIRS ] || fail "the distributing server holds $(wc -l <"$T/want") records"
wait_for 60 same_as_want || fail "the group never caught up with the distributing server"
log_has "$T/front.log" "region st (tenant default): distributed to group:rs(4,2)" ||
  fail "the server did not say it distributes"
echo "forming in ckptsrv: the group restores what the server holds"

"$LOAD" write "$group" cs $PAIRS $GENS --batched >"$T/cs.acks" 2>"$T/cs.log" ||
  fail "client-side forming"
records "$group" cs "$T/cs" || fail "dump of the client-formed region"
cmp -s "$T/want" "$T/cs" || fail "forming in the client and in the server differ"
echo "forming in the client gives the same records"

kill -9 "$front_pid" "${PID[1]}" "${PID[4]}"
for p in "$front_pid" "${PID[1]}" "${PID[4]}"; do wait_for 10 gone "$p" || fail "$p survived kill -9"; done
same_as_want || fail "without the distributing server and members 1, 4: $(tail -3 "$T/got.log")"
log_has "$T/front.log" "ERR" && fail "the distributing server logged errors"
echo "PASS: --distribute forms the same group as the client; it survives losing the server and two members"
