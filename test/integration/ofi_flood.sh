#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The pool of connections authenticating (ckptsrv/handshake.c) against silent peers. 200
# at once: a tenant logs in and lists within a second while they are there, and each of
# them is closed either at once (pushed out of the pool by a newer one) or at the
# handshake deadline. A flood held for seconds (a new silent peer for each one closed):
# a real client writes and reads back meanwhile. The log says it in a bounded number of
# lines, with counts.
source "$(dirname "$0")/ofi_lib.sh"

POOL=16
DEADLINE=1500
BURST=5
printf 'alice %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
export HF_TENANT=alice HF_SECRET_FILE="$T/secret"
port=$(free_port)
U="ofi+tcp://127.0.0.1:$port"
start=$SECONDS
start_server srv --pmem "$T/store" --size 64M --secret-file "$T/secret" --listen "$U" \
  --handshake-max $POOL --handshake-timeout-ms $DEADLINE --log-burst $BURST \
  --log-interval-ms 1000
cd "$SRC/test/integration"

python3 silent_peers.py burst "$port" "$T/secret" alice 200 $POOL $DEADLINE >"$T/burst.out" 2>&1 ||
  fail "200 silent peers: $(cat "$T/burst.out")"
cat "$T/burst.out"

python3 silent_peers.py hold "$port" 200 120 200 >"$T/hold.out" 2>&1 &
flood=$!
PIDS+=("$flood")
wait_for 10 log_has "$T/srv.log" "handshake-max.*closed the oldest" || fail "the flood is not on"
"$LOAD" write "$U" during-flood 2000 2 >"$T/during.acks" 2>"$T/during.log" ||
  fail "a client could not write during the flood: $(tail -3 "$T/during.log")"
"$LOAD" verify "$U" during-flood "$T/during.acks" --all 2 2>"$T/verify.log" ||
  fail "what was written during the flood does not read back: $(tail -3 "$T/verify.log")"
# The flood lasts until the client is done however slow the machine (a sanitizer build
# under load took over 4 s), then is told to stop.
kill -0 "$flood" 2>/dev/null || fail "the flood ended before the client did"
kill -TERM "$flood"
wait "$flood" || fail "the flood failed: $(cat "$T/hold.out")"
cat "$T/hold.out"

# Lines about peers that did not authenticate: at most a burst plus a count line per second
# and call site (two sites: pushed out, timed out), however many peers there were.
wait_for 5 log_has "$T/srv.log" "closed the oldest.*more like this in the last" ||
  fail "no count line for the peers pushed out"
wait_for 5 log_has "$T/srv.log" "did not authenticate within.*more like this in the last" ||
  fail "no count line for the peers timed out"
lines=$(grep -c -e "handshake-max" -e "did not authenticate within" "$T/srv.log")
peers=$((200 + $(sed -n 's/.* \([0-9]*\) closed by the server/\1/p' "$T/hold.out")))
bound=$((2 * (BURST + 1) * (SECONDS - start + 1)))
echo "$lines log lines for $peers silent peers closed (bound $bound)"
[ "$lines" -le "$bound" ] || fail "$lines log lines about silent peers (over $bound)"
gone "$SRV_PID" && fail "server died"
stop_server "$T/srv.log"
echo "PASS: silent peers take no tenant's place, are closed at their deadline, and are logged with counts"
