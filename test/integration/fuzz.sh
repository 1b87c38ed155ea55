#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Build every libFuzzer target with clang (ASan + UBSan) and run each for FUZZ_SECONDS
# (10 in make test; make fuzz SECONDS=N for longer), from its committed seeds in
# test/fuzz/corpus/<target>; what a run adds goes to $BUILD/fuzz/<target>.corpus. A crash,
# a sanitizer report or a broken property fails the run and keeps the input.
# FUZZ_TARGETS="a b" runs only those. Builds and runs go FUZZ_JOBS at a time (the number
# of CPUs by default): the test runs alone, and one fuzzer keeps one core busy.
set -euo pipefail
secs=${FUZZ_SECONDS:-10}
jobs_max=${FUZZ_JOBS:-$(nproc)}
out="$BUILD/fuzz"
mkdir -p "$out"
cd "$SRC"
cflags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE
        -Iinclude -Imodules -Ilib/conn -Ilib/pmu -Ilib/ckpt)
pmu_src=(lib/pmu/pmu.c lib/pmu/pmu_check.c lib/pmu/pmu_ring.c lib/pmu/ckpt_record.c
         lib/pmu/hf_log.c)
targets=()

# Wait until fewer than jobs_max jobs of this shell run.
throttle() {
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
}

# target NAME SOURCE... -- LIB...: build one fuzzer (in the background; its exit status in
# $out/NAME.build-rc, its messages in $out/NAME.build-log).
target() {
  local name=$1 src=() libs=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do src+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  libs=("$@")
  if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then
    return
  fi
  throttle
  (rc=0; clang "${cflags[@]}" "${src[@]}" "${libs[@]}" -o "$out/$name" \
     >"$out/$name.build-log" 2>&1 || rc=$?; echo $rc >"$out/$name.build-rc") &
  targets+=("$name")
}

target fuzz_parse lib/conn/fuzz_parse.c lib/conn/fw_parse.c lib/conn/conn_key.c -- -lsodium
target fuzz_modules modules/fuzz/fuzz_modules.c modules/modules.c modules/tcp/tcp.c \
  modules/udp/udp.c modules/ftp/ftp.c lib/conn/conn_key.c lib/conn/conn_planes.c -- -lsodium
target fuzz_proto lib/ckpt/fuzz_proto.c lib/ckpt/proto.c "${pmu_src[@]}" -- -lsodium -lpmem -lisal
target fuzz_layout lib/pmu/fuzz_layout.c "${pmu_src[@]}" -- -lpmem -lisal
# A restore's scan of a pmem: region's slots, read through the file and in place, compared
# (the checkpoint client whole: its core links every backend).
read -r -a fabric_cflags <<<"$(pkg-config --cflags libfabric)"
target fuzz_scan lib/ckpt/fuzz_scan.c lib/ckpt/client.c lib/ckpt/pmem.c lib/ckpt/ofi*.c \
  lib/ckpt/proto.c lib/ckpt/secret.c lib/ckpt/group/{clean,ec,group,member,read,rebuild}.c \
  lib/ckpt/group/{rejoin,segment,shadow,stripe,write}.c "${pmu_src[@]}" -- -Ilib/ckpt/group \
  "${fabric_cflags[@]}" -lpmem -lisal -lsodium -ldl -lpthread
# What a redundancy group reads back from its members: subsegments, descriptors, records.
target fuzz_segment lib/ckpt/group/fuzz_segment.c lib/ckpt/group/segment.c "${pmu_src[@]}" \
  -- -Ilib/ckpt/group -lpmem -lisal
target fuzz_store lib/pmu/fuzz_store.c "${pmu_src[@]}" -- -lpmem -lisal
# The reader of nftables change announcements (the live rules' netlink watch); fw_nft.c's
# importer adds to a rule set that fw_rules.c compiles with rte_acl, hence DPDK.
read -r -a dpdk_cflags <<<"$(pkg-config --cflags libdpdk)"
read -r -a dpdk_libs <<<"$(pkg-config --libs libdpdk)"
target fuzz_nft lib/rules/fuzz_nft.c lib/rules/fw_nft.c lib/rules/fw_rules.c -- -Ilib/rules \
  "${dpdk_cflags[@]}" -lnftnl -lmnl "${dpdk_libs[@]}"
# holdfast.conf through its loader, and its rules formatted back and parsed again; the
# rules' compiler needs DPDK (rte_acl), the settings the modules' registry.
target fuzz_config app/fuzz_config.c app/fw_config.c lib/rules/fw_rules.c modules/modules.c \
  modules/tcp/tcp.c modules/udp/udp.c modules/ftp/ftp.c lib/conn/conn_key.c lib/ckpt/secret.c \
  lib/pmu/hf_log.c -- -Iapp -Ilib/rules "${dpdk_cflags[@]}" "${dpdk_libs[@]}" -lsodium
# ckptsrv's configuration file (ckptsrv.conf, --config).
target fuzz_srvconfig ckptsrv/fuzz_config.c ckptsrv/config.c lib/ckpt/secret.c \
  lib/pmu/hf_log.c -- -Ickptsrv -lsodium
# The parameters of /holdfast/conns,W,CURSOR[,MAX] (hfctl conns), anyone's who reaches
# the telemetry socket.
target fuzz_conns app/fuzz_conns.c app/fw_conns_params.c -- -Iapp
# ckptsrv's request handlers on a store in /dev/shm: no main, no sockets, no libfabric (the
# target registers memory itself).
target fuzz_dispatch ckptsrv/fuzz_dispatch.c ckptsrv/ckptsrv.c ckptsrv/quota.c \
  ckptsrv/config.c lib/ckpt/proto.c lib/ckpt/secret.c "${pmu_src[@]}" -- -Ickptsrv \
  -lpmem -lisal -lsodium -lpthread

wait
for t in "${targets[@]}"; do
  if [ "$(cat "$out/$t.build-rc")" != 0 ]; then
    cat "$out/$t.build-log"
    echo "FAIL: $t did not build"
    exit 1
  fi
done

# run NAME: one fuzzer for secs; its exit status in $out/NAME.rc.
run() {
  local t=$1 rc=0 seeds=()
  mkdir -p "$out/$t.corpus"
  [ -d "test/fuzz/corpus/$t" ] && seeds=("test/fuzz/corpus/$t")
  "$out/$t" -max_total_time="$secs" -seed=1 -print_final_stats=1 \
    -artifact_prefix="$out/$t-" "$out/$t.corpus" "${seeds[@]}" >"$out/$t.log" 2>&1 || rc=$?
  echo $rc >"$out/$t.rc"
}
for t in "${targets[@]}"; do
  throttle
  run "$t" &
done
wait

fail=0
for t in "${targets[@]}"; do
  rc=$(cat "$out/$t.rc")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$out/$t.log" | tail -1)
  echo "$t: ${runs:-?} runs in ${secs}s, ${cov:-no coverage line}"
  if [ "$rc" -ne 0 ]; then
    grep -E "ERROR|SUMMARY|runtime error" "$out/$t.log" | head -20
    echo "FAIL: $t exited $rc; inputs kept: $(ls "$out/$t"-* 2>/dev/null | tr '\n' ' ')"
    fail=1
  fi
done
exit $fail
