#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Per-tenant quotas (ckptsrv/quota.c), from the defaults (alice) and a quota line (bob):
# regions and bytes (EDQUOT, counted in the store, so a restart keeps them), sessions
# (EUSERS), handles across a tenant's sessions (EMFILE). Bob is served while alice is at
# every limit, and each refusal is logged with tenant, peer, limit and usage.
source "$(dirname "$0")/ofi_lib.sh"

rnd() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
printf 'alice %s\nbob %s\n' "$(rnd)" "$(rnd)" >"$T/secret"
port=$(free_port)
U="ofi+tcp://127.0.0.1:$port"
cat >"$T/ckptsrv.conf" <<CONF
pmem = $T/store
size = 64M
secret-file = $T/secret
listen = $U
tenant-max-regions = 3
tenant-max-bytes = 1M
tenant-max-sessions = 2
tenant-max-handles = 3
quota = bob regions=5 bytes=50% sessions=3 handles=6
CONF
check() { # CHECK: run one quota_client.py check against the server
  python3 "$SRC/test/integration/quota_client.py" "$port" "$T/secret" "$1" >"$T/$1.out" 2>&1 ||
    fail "$1: $(cat "$T/$1.out")"
  cat "$T/$1.out"
}

start_server srv --config "$T/ckptsrv.conf"
check regions
kill -TERM "$SRV_PID"
wait_for 10 gone "$SRV_PID" || fail "server ignored SIGTERM"
start_server srv2 --config "$T/ckptsrv.conf"
check after-restart
check sessions
check handles
check other

for why in "CREATE of region a3 refused for tenant alice from 127.0.0.1:[0-9]* (EDQUOT): it owns 3 region(s), its limit is 3" \
  "CREATE of region big (1048576 bytes) refused for tenant alice from 127.0.0.1:[0-9]* (EDQUOT): its regions hold 131072 bytes, its limit is 1048576" \
  "tenant alice from 127.0.0.1:[0-9]* refused (EUSERS): it has 2 session(s), its limit is 2" \
  "open refused for tenant alice from 127.0.0.1:[0-9]* (EMFILE): its sessions hold 3 handle(s), its limit is 3" \
  "CREATE of region b5 refused for tenant bob from 127.0.0.1:[0-9]* (EDQUOT): it owns 5 region(s), its limit is 5"; do
  log_has "$T/srv.log" "$why" || log_has "$T/srv2.log" "$why" || fail "not logged: $why"
done
gone "$SRV_PID" && fail "server died"
stop_server "$T/srv2.log"
echo "PASS: each tenant's regions, bytes, sessions and handles are limited, and only its own"
