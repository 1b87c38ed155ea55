#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# holdfast's background threads never share the worker's CPU (issue 14): holdfast runs on
# lcore 0 (the main lcore is the only worker) against a ckptsrv over tcp, and every thread
# of the process but the worker itself -- the lease keeper (hf-lease), a checkpointer's
# reconnect attempt (hf-reconnect, made to happen by killing and restarting the server),
# DPDK's and libfabric's, and the checkpoint I/O (hf-ckpt, issue 15) -- is not allowed on
# the worker's CPU. Then `ckpt-lcore`: an lcore outside EAL's list is refused, saying which
# are; with -l 0,1 and `ckpt-lcore 1` the checkpoint I/O runs on lcore 1's CPU and lcore 0
# is the only worker. It needs two CPUs (the project's machines have two); on one it fails
# saying so rather than pass unchecked.
source "$(dirname "$0")/ofi_lib.sh"
prefix="hfth$$"
trap 'rm -rf "/var/run/dpdk/$prefix" "/var/run/dpdk/${prefix}x" "/var/run/dpdk/${prefix}l"; cleanup' EXIT
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
grep -q '^hf-ckpt ' "$seen" || fail "no hf-ckpt thread (checkpoint I/O): $(cat "$seen")"

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

# ckpt-lcore: one not in EAL's list is refused at start, naming the list.
kill -INT "$HF_PID"
wait_for 30 gone "$HF_PID" || fail "holdfast did not stop within 30 s of SIGINT"
printf 'ckpt-lcore 5\n' >>"$T/holdfast.conf"
if "$BUILD/holdfast" --no-huge -m 128 --no-pci -l 0 --file-prefix "${prefix}x" \
  --vdev net_null0 --vdev net_null1 -- --config "$T/holdfast.conf" >"$T/hf-x.log" 2>&1; then
  fail "ckpt-lcore 5 with -l 0 was accepted"
fi
log_has "$T/hf-x.log" "ckpt-lcore 5: lcore 5 is not in the EAL core list (lcores 0)" ||
  fail "no clear refusal of ckpt-lcore 5: $(cat "$T/hf-x.log")"
grep "ckpt-lcore 5" "$T/hf-x.log" | sed 's/^/  /'

# With -l 0,1 and ckpt-lcore 1: the I/O on lcore 1 (its own CPU), lcore 0 the only worker.
sed -i 's/^ckpt-lcore 5$/ckpt-lcore 1/' "$T/holdfast.conf"
"$BUILD/holdfast" --no-huge -m 128 --no-pci -l 0,1 --file-prefix "${prefix}l" \
  --vdev net_null0 --vdev net_null1 -- --config "$T/holdfast.conf" >"$T/hf-l.log" 2>&1 &
HF_PID=$!
PIDS+=("$HF_PID")
wait_for 30 log_has "$T/hf-l.log" "holdfast: ready" || fail "holdfast -l 0,1 did not start: $(cat "$T/hf-l.log")"
lcore_io() {
  /usr/bin/python3 - "/var/run/dpdk/${prefix}l/dpdk_telemetry.v2" "$SRC" "$HF_PID" <<'PY'
import sys
sys.path.insert(0, sys.argv[2] + "/test/integration")
from telemetry import query
k = query(sys.argv[1], "/holdfast/ckpt")["/holdfast/ckpt"]
c = query(sys.argv[1], "/holdfast/conns")["/holdfast/conns"]
tid, pid = k["io_tid"], int(sys.argv[3])
cpus = main = ""
if tid:
    for line in open("/proc/%d/task/%d/status" % (pid, tid)):
        if line.startswith("Cpus_allowed_list"):
            cpus = line.split()[1]
for line in open("/proc/%d/status" % pid):
    if line.startswith("Cpus_allowed_list"):
        main = line.split()[1]
print("checkpoint I/O on %s: thread %d, CPUs %s (the worker's: %s); workers: %s" %
      (k["io"], tid, cpus, main, ",".join(x for x in c if x.startswith("worker"))))
ok = (k["io"] == "lcore 1" and tid not in (0, pid) and cpus == "1" and main == "0" and
      k["worker_io_passes"] == 0 and "worker0" in c and "worker1" not in c)
sys.exit(0 if ok else 1)
PY
}
wait_for 10 lcore_io >/dev/null || { lcore_io; fail "checkpoint I/O is not on lcore 1 alone"; }
lcore_io
kill -INT "$HF_PID"
wait_for 30 gone "$HF_PID" || fail "holdfast -l 0,1 did not stop within 30 s of SIGINT"
wait "$HF_PID" || fail "holdfast -l 0,1 exited non-zero"
echo "ckpt-lcore: refused outside EAL's list, and runs the checkpoint I/O on its lcore: ok"
