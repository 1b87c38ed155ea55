#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ckptsrv refuses what it must, logs it, and keeps serving good clients: wrong secret and
# unknown tenant (EACCES), a wrong remote key over tcp (the write neither lands nor counts
# as durable), unknown region (ENOENT), another tenant's region (ENOENT, hidden from LIST),
# PERSIST out of bounds (EINVAL), DELETE of a region open elsewhere (EBUSY), garbage on the
# control socket, messages out of place before and after authentication (the server hangs
# up), and a client that connects and says nothing. Leases are the owner's and
# expire; a verbs client on a machine without RDMA fails with ENODATA. A client keeps its
# caller's signal handlers over shm and tcp.
source "$(dirname "$0")/ofi_lib.sh"

rnd() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
printf '# tenants\nalice %s\nbob %s\n' "$(rnd)" "$(rnd)" >"$T/secret"
printf 'alice %s\nmallory %s\n' "$(rnd)" "$(rnd)" >"$T/wrong"
port=$(free_port)
U="ofi+tcp://127.0.0.1:$port"
start_server srv --pmem "$T/store" --size 64M --secret-file "$T/secret" --listen "$U" \
  --log-level info

probe() { # TENANT SECRETFILE CHECK [ARG]
  local tenant=$1 file=$2
  shift 2
  HF_TENANT=$tenant HF_SECRET_FILE=$file "$PROBE" "$U" "$@" || fail "probe $tenant $*"
}

# A silent client and a garbage-speaking one must not stall anybody.
exec 5<>"/dev/tcp/127.0.0.1/$port"
exec 6<>"/dev/tcp/127.0.0.1/$port"
# (the server may hang up mid-write: that is its right, not the script's death)
(
  trap '' PIPE
  printf 'GET / HTTP/1.0\r\n\r\nthis is not the protocol at all' >&6
) 2>/dev/null || true

probe alice "$T/wrong" refused
wait_for 10 log_has "$T/srv.log" "auth refused for tenant alice from 127.0.0.1" ||
  fail "wrong secret not logged"
probe mallory "$T/wrong" refused
wait_for 10 log_has "$T/srv.log" "auth refused for tenant mallory" || fail "unknown tenant not logged"
wait_for 10 log_has "$T/srv.log" "a malformed message or another type instead of a well-formed HELLO" ||
  fail "garbage not logged"
probe alice "$T/secret" wrong-key
# The wrong-key client died with its region open: the server dropped that registration.
wait_for 10 log_has "$T/srv.log" "tenant alice from 127.0.0.1:[0-9]* disconnected (1 region handle" ||
  fail "registration of a vanished client not released"
probe alice "$T/secret" unknown-region
probe bob "$T/secret" make bob-region
probe alice "$T/secret" other-tenant bob-region
probe bob "$T/secret" owned bob-region
probe alice "$T/secret" oob-persist
wait_for 10 log_has "$T/srv.log" "PERSIST from tenant alice .* refused" || fail "bad PERSIST not logged"
probe alice "$T/secret" busy
probe alice "$T/secret" lease
probe alice "$T/secret" control
# An operator's own ofi_rxm setting wins over the client's default.
FI_OFI_RXM_MSG_RX_SIZE=32 HF_WANT_RXM_MSG_RX_SIZE=32 probe alice "$T/secret" lease
# The same control port named as verbs: authentication passes, then the client finds no
# verbs provider on this machine and says so (ENODATA), without hanging.
HF_TENANT=alice HF_SECRET_FILE="$T/secret" "$PROBE" "ofi+verbs://127.0.0.1:$port" no-provider ||
  fail "verbs client did not fail cleanly"

# Messages out of place, before and after authenticating (a LIST reply where a HELLO
# belongs crashed the server once): each connection is hung up on, the server lives on.
python3 "$SRC/test/integration/hostile_client.py" "$port" "$T/secret" alice >"$T/hostile.log" 2>&1 ||
  fail "ckptsrv did not hang up on a message out of place: $(cat "$T/hostile.log")"
gone "$SRV_PID" && fail "server died of a message out of place"
wait_for 10 log_has "$T/srv.log" "auth from 127.0.0.1:[0-9]*: a malformed message or another type" ||
  fail "a message out of place before authentication was not logged"

# After all that, with the silent client still connected, a good client works end to end.
HF_TENANT=bob HF_SECRET_FILE="$T/secret" "$LOAD" write "$U" bob-after 2000 2 >"$T/after.acks" \
  2>"$T/after.log" || fail "good client refused after the bad ones"
HF_TENANT=bob HF_SECRET_FILE="$T/secret" "$LOAD" verify "$U" bob-after "$T/after.acks" --all 2 \
  2>"$T/after-verify.log" || fail "good client's data does not check"
exec 5>&- 6>&-
gone "$SRV_PID" && fail "server died"
# Under the sanitizer build this is where leaks and overflows would show.
stop_server "$T/srv.log"
# And the other direction: a server that cannot prove it knows the secret is refused.
rogue=$(free_port)
python3 "$SRC/test/integration/rogue_server.py" "$rogue" >"$T/rogue.out" 2>&1 &
PIDS+=($!)
wait_for 10 log_has "$T/rogue.out" ready || fail "rogue server did not start"
HF_TENANT=alice HF_SECRET_FILE="$T/secret" "$PROBE" "ofi+tcp://127.0.0.1:$rogue" refused \
  2>"$T/rogue-client.log" || fail "client accepted a server that does not know the secret"
grep -q "could not prove it knows tenant alice's secret" "$T/rogue-client.log" ||
  fail "client did not say why it refused the server"
wait_for 10 log_has "$T/rogue.out" "client hung up" || fail "client did not hang up on the rogue"
# The client keeps the caller's signal handlers: libfabric's shm provider installs its own at
# the first endpoint, which unlink the process's endpoint files on SIGINT and chain. A
# firewall's shutdown after SIGINT still made endpoints; the server could not map them and
# crashed inside libfabric (smr_progress_connreq), and the firewall spun on its lock.
port2=$(free_port)
start_server srv-shm --pmem "$T/store-shm" --size 64M --secret-file "$T/secret" --allow-shm \
  --listen "ofi+tcp://127.0.0.1:$port2" --listen "ofi+shm://hf-sec-$$"
for u in "ofi+shm://hf-sec-$$" "ofi+tcp://127.0.0.1:$port2"; do
  HF_ALLOW_SHM=1 HF_TENANT=alice HF_SECRET_FILE="$T/secret" "$PROBE" "$u" signals ||
    fail "probe signals over $u"
done
gone "$SRV_PID" && fail "the server died after a client's SIGINT"
stop_server "$T/srv-shm.log"
echo "PASS: refusals are refused, logged, and good clients still served"
