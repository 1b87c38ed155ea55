#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# holdfast's background threads never share the worker's CPU (issue 14): holdfast runs on
# lcore 0 (the main lcore is the only worker) against a ckptsrv over tcp, and every thread
# of the process but the worker itself -- the lease keeper (hf-lease), a checkpointer's
# reconnect attempt (hf-reconnect, made to happen by killing and restarting the server),
# DPDK's and libfabric's -- is not allowed on the worker's CPU. It needs two CPUs (the
# project's machines have two); on one it fails saying so rather than pass unchecked.
source "$(dirname "$0")/ofi_lib.sh"
prefix="hfth$$"
trap 'rm -rf "/var/run/dpdk/$prefix"; cleanup' EXIT
[ "$(nproc)" -ge 2 ] || fail "one CPU: this test needs two to show threads kept off the worker's"


port=$(free_port)
printf 'holdfast %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
serve() { start_server srv --pmem "$T/store.pmu" --size 64M --secret-file "$T/secret" \
  --listen "ofi+tcp://127.0.0.1:$port"; }
serve
cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 1024
ckpt ofi+tcp://127.0.0.1:$port
ckpt-secret-file $T/secret
lease-ms 500
CONF
"$BUILD/holdfast" --no-huge -m 128 --no-pci -l 0 --file-prefix "$prefix" \
  --vdev net_null0 --vdev net_null1 -- --config "$T/holdfast.conf" >"$T/hf.log" 2>&1 &
HF_PID=$!
PIDS+=("$HF_PID")
wait_for 30 log_has "$T/hf.log" "holdfast: ready" || fail "holdfast did not start"
worker_cpu=$(awk '/^Cpus_allowed_list/ {print $2}' "/proc/$HF_PID/status")
echo "worker (main lcore) allowed on CPU $worker_cpu"

# Every thread but the worker: its name and CPUs, judged. @return 1 if one may use the
# worker's CPU. Threads come and go (a reconnect attempt): one that went meanwhile is skipped.
# Do two CPU lists ("0-2,5") share a CPU?
cpus_meet() {
  awk -v a="$1" -v b="$2" 'function add(s, set,   n, i, p, r, c) {
      n = split(s, p, ",")
      for (i = 1; i <= n; i++) { split(p[i], r, "-"); if (r[2] == "") r[2] = r[1]
        for (c = r[1] + 0; c <= r[2] + 0; c++) set[c] = 1 } }
    BEGIN { add(a, x); add(b, y); for (c in x) if (c in y) exit 0; exit 1 }'
}
seen="$T/seen"
: >"$seen"
check_threads() {
  local st name cpus bad=0
  for st in /proc/"$HF_PID"/task/*/status; do
    [ "$(dirname "$st")" = "/proc/$HF_PID/task/$HF_PID" ] && continue
    name=$(awk -F'\t' '/^Name:/ {print $2}' "$st" 2>/dev/null) || continue
    cpus=$(awk '/^Cpus_allowed_list/ {print $2}' "$st" 2>/dev/null) || continue
    [ -n "$name" ] && [ -n "$cpus" ] || continue
    grep -qx "$name $cpus" "$seen" || echo "$name $cpus" >>"$seen"
    if cpus_meet "$cpus" "$worker_cpu"; then
      echo "thread $name may run on the worker's CPU $worker_cpu (allowed: $cpus)" >&2
      bad=1
    fi
  done
  return $bad
}
check_threads || fail "a background thread shares the worker's CPU"
grep -q '^hf-lease ' "$seen" || fail "no hf-lease thread: $(cat "$seen")"

# The server goes and comes back: the checkpointer's reconnect attempts run meanwhile.
kill -9 "$SRV_PID"
wait_for 10 log_has "$T/hf.log" "lost" || fail "holdfast did not notice the server go"
for _ in $(seq 40); do check_threads || fail "a background thread shares the worker's CPU"; sleep 0.02; done
serve
wait_for 10 log_has "$T/hf.log" "back after" || fail "no reconnect"
check_threads || fail "a background thread shares the worker's CPU"
sort -u "$seen" | sed 's/^/  thread /'
grep -q '^hf-reconnect ' "$seen" || echo "(no reconnect attempt was caught running)"
echo "background threads off the worker's CPU: ok"
