#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Build the libFuzzer targets with clang (ASan + UBSan) and run each for a bounded time.
# A crash, a sanitizer report or a broken property fails the test and keeps the input.
set -euo pipefail
secs=${FUZZ_SECONDS:-20}
out="$BUILD/fuzz"
mkdir -p "$out"
cd "$SRC"
cflags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE
        -Iinclude -Imodules -Ilib/conn)
clang "${cflags[@]}" lib/conn/fuzz_parse.c lib/conn/fw_parse.c lib/conn/conn_key.c \
  -lsodium -o "$out/fuzz_parse"
clang "${cflags[@]}" modules/fuzz/fuzz_modules.c modules/modules.c modules/tcp/tcp.c \
  modules/udp/udp.c modules/ftp/ftp.c lib/conn/conn_key.c -lsodium -o "$out/fuzz_modules"
pmu_src=(lib/pmu/pmu.c lib/pmu/pmu_ring.c lib/pmu/ckpt_record.c lib/pmu/hf_log.c)
# ckptsrv's request handlers on a store in /dev/shm: no main, no sockets, no libfabric (the
# target registers memory itself).
clang "${cflags[@]}" -Ilib/pmu -Ilib/ckpt -Ickptsrv ckptsrv/fuzz_dispatch.c ckptsrv/ckptsrv.c \
  ckptsrv/quota.c ckptsrv/config.c lib/ckpt/proto.c lib/ckpt/secret.c "${pmu_src[@]}" \
  -lpmem -lisal -lsodium -lpthread -o "$out/fuzz_dispatch"
for t in fuzz_parse fuzz_modules fuzz_dispatch; do
  mkdir -p "$out/$t.corpus"
  # Committed seeds (test/fuzz/corpus/<target>) are read; new inputs go to the build tree.
  seeds=()
  [ -d "test/fuzz/corpus/$t" ] && seeds=("test/fuzz/corpus/$t")
  echo "== $t for ${secs}s"
  rc=0
  "$out/$t" -max_total_time="$secs" -seed=1 -print_final_stats=1 \
    -artifact_prefix="$out/$t-" "$out/$t.corpus" "${seeds[@]}" >"$out/$t.log" 2>&1 || rc=$?
  grep -E "stat::number_of_executed_units|^Done" "$out/$t.log" || true
  if [ $rc -ne 0 ]; then
    grep -E "ERROR|SUMMARY|runtime error" "$out/$t.log" | head -20
    echo "FAIL: $t exited $rc; inputs kept: $(ls "$out/$t"-* 2>/dev/null | tr '\n' ' ')"
    exit 1
  fi
done
