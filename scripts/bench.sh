#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# make bench: ckpt_bench against the embedded pmem: target and, when ckptsrv is built,
# against a ckptsrv on loopback over ofi+tcp and ofi+shm; then one table of the figures.
# A measurement, not a test: it never passes or fails on timing.
#
#   scripts/bench.sh BUILD_DIR [extra ckpt_bench options, e.g. --seconds 1]
set -euo pipefail
BUILD=${1:?usage: bench.sh BUILD_DIR [ckpt_bench options]}
shift
BUILD=$(cd "$BUILD" && pwd)
bench=$BUILD/ckpt_bench
[ -x "$bench" ] || { echo "bench.sh: $bench not built" >&2; exit 2; }

# ckptsrv and ckptctl are built in the server's folder (a top-level target named ckptsrv
# would collide with that folder in the build tree).
srv=""
for c in "$BUILD/ckptsrv/ckptsrv" "$BUILD/ckptsrv"; do
  [ -f "$c" ] && [ -x "$c" ] && { srv=$c; break; }
done
ctl=""
for c in "$BUILD/ckptsrv/ckptctl" "$BUILD/ckptctl"; do
  [ -f "$c" ] && [ -x "$c" ] && { ctl=$c; break; }
done

dir=$(mktemp -d /dev/shm/hf-bench.XXXXXX)
srv_pid=""
fw_remote=()
fw_group=()
# Stop the server: TERM, and KILL if it has not gone within 5 s; then what it left behind
# (libfabric's shm provider names its segment /dev/shm/<pid>:0:0 and a killed server
# cannot remove it).
stop_server() {
  local i
  [ -n "$srv_pid" ] || return 0
  kill "$srv_pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$srv_pid" 2>/dev/null; then
    echo "ckptsrv ignored SIGTERM for 5 s; killing it" >&2
    kill -KILL "$srv_pid" 2>/dev/null || true
  fi
  wait "$srv_pid" 2>/dev/null || true
  rm -f "/dev/shm/$srv_pid:"*
  srv_pid=""
}
hp_before=""
huge_dir=""
cleanup() {
  stop_server
  [ -z "$hp_before" ] || echo "$hp_before" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
  if [ -n "$huge_dir" ]; then
    umount "$huge_dir" 2>/dev/null || true
    rmdir "$huge_dir" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
results=$dir/results

echo "== pmem:$dir/store.pmem"
"$bench" --target "pmem:$dir/store.pmem" --store-size 1G "$@" | tee -a "$results"
rm -f "$dir/store.pmem"

# Wait until the server answers a listing (it has no readiness file); give up after 10 s.
wait_ready() {
  local target=$1 i
  for i in $(seq 100); do
    kill -0 "$srv_pid" 2>/dev/null || return 1
    if "$ctl" --target "$target" --secret-file "$dir/secret" --tenant bench --allow-shm \
      ls >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

if [ -n "$srv" ] && [ -n "$ctl" ]; then
  umask 077
  printf 'bench %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$dir/secret"
  printf 'holdfast %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >>"$dir/secret"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  shm_name=hf-bench-$$
  tcp=ofi+tcp://127.0.0.1:$port
  shm=ofi+shm://$shm_name
  "$srv" --pmem "$dir/srv.pmem" --size 2G --listen "$tcp" --listen "$shm" \
    --secret-file "$dir/secret" --allow-shm 2>"$dir/ckptsrv.log" &
  srv_pid=$!
  if wait_ready "$tcp"; then
    for target in "$tcp" "$shm"; do
      echo "== $target"
      "$bench" --target "$target" --secret-file "$dir/secret" --tenant bench --allow-shm \
        "$@" | tee -a "$results" || echo "bench.sh: $target run failed" >&2
    done
    fw_remote=(-c "$shm" -c "$tcp" -r "$tcp" -t "$tcp")
  else
    echo "bench.sh: ckptsrv did not come up; its log:" >&2
    tail -20 "$dir/ckptsrv.log" >&2
  fi
  # Redundancy groups over six more servers on tcp loopback; the single tcp server again,
  # beside them, with the same restore size (group restores hold every member's live span
  # in memory, so they restore 256 k records rather than 1 M here).
  group_pids=()
  members=()
  for i in 0 1 2 3 4 5; do
    gport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    members+=("ofi+tcp://127.0.0.1:$gport")
    "$srv" --pmem "$dir/g$i.pmem" --size 1G --listen "ofi+tcp://127.0.0.1:$gport" \
      --secret-file "$dir/secret" 2>"$dir/g$i.log" &
    group_pids+=($!)
  done
  stop_group() {
    local p
    for p in "${group_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${group_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    group_pids=()
  }
  trap 'stop_group; cleanup' EXIT
  ready=1
  main_srv=$srv_pid # wait_ready looks at srv_pid; the first server is still stopped at the end
  for i in 0 1 2 3 4 5; do
    srv_pid=${group_pids[$i]}
    wait_ready "${members[$i]}" || ready=0
  done
  srv_pid=$main_srv
  if [ $ready = 1 ]; then
    m=("${members[@]}")
    for target in "${m[0]}" "group:xor(4)=${m[0]},${m[1]},${m[2]},${m[3]},${m[4]}" \
      "group:rs(4,2)=${m[0]},${m[1]},${m[2]},${m[3]},${m[4]},${m[5]}" \
      "group:mirror=${m[0]},${m[1]},${m[2]}"; do
      echo "== $target"
      "$bench" --target "$target" --secret-file "$dir/secret" --tenant bench \
        --restore-records 262144 "$@" | sed 's/^target=ofi+tcp /target=tcp-256k /' |
        tee -a "$results" || echo "bench.sh: $target run failed" >&2
    done
    # The firewall's churn and restore through groups of the same servers (stopped at the
    # end, after fw_bench).
    fw_group=(-c "group:xor(4)=${m[0]},${m[1]},${m[2]},${m[3]},${m[4]}"
      -c "group:rs(4,2)=${m[0]},${m[1]},${m[2]},${m[3]},${m[4]},${m[5]}"
      -c "group:mirror=${m[0]},${m[1]},${m[2]}"
      -r "group:rs(4,2)=${m[0]},${m[1]},${m[2]},${m[3]},${m[4]},${m[5]}")
  else
    echo "bench.sh: the group's servers did not come up" >&2
  fi
else
  echo "bench.sh: ckptsrv or ckptctl not built; remote targets skipped" >&2
fi

echo
echo "== holdfast checkpoint benchmark ($(nproc) cores, $(uname -r))"
awk '
  function v(k,   i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] }
    return "-"
  }
  BEGIN {
    printf "%-8s %-8s %7s %5s %9s %12s %9s %9s\n", "target", "way", "payload", "batch",
      "slices", "rate", "p50(us)", "p99(us)"
  }
  v("way") != "restore" && v("way") != "encode" {
    printf "%-8s %-8s %7s %5s %9s %12s %9s %9s\n", v("target"), v("way"), v("payload"),
      v("batch"), v("slices"), v("rate"), v("p50_us"), v("p99_us")
  }
  v("way") == "restore" { restore[++nr] = $0 }
  v("way") == "encode" { enc[++ne] = $0 }
  END {
    printf "\n%-8s %9s %9s %9s %12s %8s\n", "target", "records", "slots", "seconds",
      "rate", "invalid"
    for (i = 1; i <= nr; i++) {
      $0 = restore[i]
      printf "%-8s %9s %9s %9s %12s %8s\n", v("target"), v("records"), v("slots"),
        v("seconds"), v("rate"), v("invalid")
    }
    if (ne) printf "\n%-8s %9s %14s %14s %12s\n", "group", "segments", "bytes/segment",
      "encode ns/seg", "encode GB/s"
    for (i = 1; i <= ne; i++) {
      $0 = enc[i]
      printf "%-8s %9s %14s %14s %12s\n", v("target"), v("segments"), v("bytes_per_segment"),
        v("ns_per_segment"), v("encode_GBps")
    }
  }
' "$results"

# The appliance: one worker against a minimal stateful loop (the denominator: parse, key,
# bulk hash lookup, one state line per flow) and a plain io-forwarding loop, alternating
# three times per figure, flows in random order and in sequence, net_ring ports, each
# loop's rate per second of its thread's CPU time (-u: a pass preempted by other work on
# this core loses nothing, and the two sides of a ratio lose it evenly);
# then forwarding under 100k new connections/s with checkpointing off / off with lcore 1
# busy-polling (spin: what a busy neighbour alone costs) / pmem: / shm / tcp / groups, per
# second of the worker's CPU time too (-u; each line says the worker's share of the wall
# clock and its preemptions), restore and standby takeover of 100k and 1M connections;
# and (-W) forwarding with one worker and with two side by side (each lcore feeds its own
# worker's queue: on a 2-core machine the feed shares the workers' cores) and the cost of a
# frame handed to the worker that owns its connection, both workers driven from one thread.
# With 2 MB hugepages when they can be reserved (as holdfast runs in production): a million
# connections spread over 4 KB pages spend the restore in TLB misses.
eal=(--no-huge -m 4096 --no-shconf)
hp_before=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo "")
if [ -n "$hp_before" ] && echo 1536 >/proc/sys/vm/nr_hugepages 2>/dev/null &&
  [ "$(cat /proc/sys/vm/nr_hugepages)" -ge 1536 ]; then
  eal=(--in-memory -m 3000)
  echo; echo "(fw_bench on 2 MB hugepages)"
else
  echo; echo "(fw_bench on 4 KB pages: no hugepages could be reserved)"
fi
# The restore from pmem: twice: the store in $dir (/dev/shm: tmpfs on 4 KB pages, read
# through the file), and on 2 MB pages, a tmpfs of this script's own mounted huge=always,
# as fsdax maps real persistent memory (a restore then reads the slots in place). Needs
# root to mount; unmounted at exit.
fw_huge=()
if [ "$(id -u)" -eq 0 ]; then
  huge_dir=$(mktemp -d /tmp/hf-bench-2mb-pages.XXXXXX)
  if mount -t tmpfs -o huge=always,size=2G tmpfs "$huge_dir" 2>/dev/null; then
    fw_huge=(-r "pmem:$huge_dir/fwr.pmem")
    echo "(restore also with the store on 2 MB pages: tmpfs huge=always at $huge_dir," \
      "as fsdax maps pmem)"
  else
    rmdir "$huge_dir"
    huge_dir=""
  fi
fi
echo
echo "== holdfast forwarding (one worker on lcore 0, 64-byte frames, established TCP flows;"
echo "   under churn, checkpoint I/O by the worker itself and on lcore 1, compared;"
echo "   then one worker against two, and the cost of a hand-off between them)"
"$BUILD/fw_bench" "${eal[@]}" --no-pci -l 0,1 --log-level=lib.eal:error \
  --log-level=pmd.net.ring:error -- -f 1000,100000,1000000 -o both -R 3 -p 1 -u -s 2 -I inline,lcore \
  -W 100000 \
  -S "$dir/secret" \
  -k "pmem:$dir/fw.pmem" -c none -c spin -c "pmem:$dir/fwc.pmem" "${fw_remote[@]:0:4}" \
  "${fw_group[@]:0:6}" -c none -r "pmem:$dir/fwr.pmem" "${fw_huge[@]}" "${fw_remote[@]:4:2}" \
  "${fw_group[@]:6:2}" -t "pmem:$dir/fwt.pmem" "${fw_remote[@]:6:2}" 2>&1 |
  grep -v '^TELEMETRY'
if declare -F stop_group >/dev/null; then stop_group; fi
stop_server

# Failover: 20 kill -9s of the primary at random points of a replayed stream, each taken
# over by the standby started behind the last primary, over pmem: and over ckptsrv
# (ofi+tcp); every packet checked. Then real TCP clients (50 echoing connections between
# two namespaces) through 20 kills. Needs root (network namespaces).
echo
if [ "$(id -u)" -ne 0 ]; then
  echo "== failover: skipped (needs root for network namespaces)"
else
  src=$(cd "$(dirname "$0")/.." && pwd)
  echo "== failover: 20 kill -9s of the primary, a standby behind each (ms: min/p50/p99/max)"
  # Each target twice: the standby on its own (death notice from the target), then also
  # told at once (SIGUSR1 right after the kill, as a manager that saw the death would).
  # On 4 KB pages, then on 2 MB pages when 256 are free (as in production: a killed
  # process's memory goes ~10 ms faster, and its sockets close only after it).
  pages=("")
  hp_free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
  [ "${hp_free:-0}" -ge 256 ] && pages+=(--hugepages)
  for hp in "${pages[@]}"; do
    for target in pmem tcp; do
      for how in "" --takeover-signal; do
        "$src/test/replay/hf-replay" --build "$BUILD" --failovers 20 --seed 14 \
          --ckpt "$target" $how $hp | grep -v '^hf-replay: every' ||
          echo "bench.sh: the $target ${how:+$how }${hp:+$hp }failover run failed" >&2
      done
    done
  done
  echo "== failover: 50 real TCP connections echoing through 20 kill -9s (ms: min/p50/max)"
  BUILD=$BUILD SRC=$src bash "$src/test/integration/clients_failover.sh" 20 |
    grep -v '^kill [0-9]' || echo "bench.sh: the real-client failover run failed" >&2
fi

# Restart: kill -9 of a running holdfast and a new start, timed from the kill to "ready",
# over pmem: and over a ckptsrv on ofi+tcp (hugepages when it can set them).
echo
/usr/bin/python3 "$(dirname "$0")/../bench/restart_bench.py" --build "$BUILD" --runs 10 ||
  echo "bench.sh: the restart run failed" >&2
