#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The rig judged: a wrong expectation is caught and reported with its packet, line, flow,
# both verdicts and holdfast's log; a capture replayed with a crash point decides every
# frame as the run without it; nothing is left behind (namespaces, processes, files).
set -euo pipefail
: "${BUILD:?}" "${SRC:?}"
R="$SRC/test/replay/hf-replay"
T=$(mktemp -d /tmp/hf-replay-selftest.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
before_ns=$(ip netns list | grep -c '^hfr' || true)

cat >"$T/wrong.scn" <<'SCN'
conf rule accept from inside proto tcp dport 80
flow web tcp 198.18.0.1:40001 198.19.0.10:80
flow ssh tcp 198.18.0.1:40002 198.19.0.10:22
web handshake
ssh > S opts=mss,sack,ws note=wrongly-expected-to-pass pass
crash kill-holdfast
web > PA data=x note=wrongly-expected-to-drop drop
SCN
rc=0
"$R" --build "$BUILD" "$T/wrong.scn" >"$T/wrong.out" 2>&1 || rc=$?
cat "$T/wrong.out"
[ "$rc" -eq 1 ] || fail "a wrong expectation gave exit status $rc, not 1"
grep -q "^MISMATCH packet 3 (line 5) flow ssh (tcp4 198.18.0.1:40002 > 198.19.0.10:22): wrongly-expected-to-pass, in port 0 (inside): expected pass, got drop (dropped: policy)" "$T/wrong.out" ||
  fail "packet 3 not reported as expected"
grep -q "^MISMATCH packet 4 (line 7) flow web .*expected drop, got pass" "$T/wrong.out" ||
  fail "packet 4 not reported"
grep -q "holdfast log (holdfast-2.log)" "$T/wrong.out" || fail "no log lines of the restarted holdfast"
grep -q "restored 1 connections" "$T/wrong.out" || fail "the log excerpt lacks the restore line"
grep -q "2 mismatches" "$T/wrong.out" || fail "no mismatch count"

# A capture replayed: the same answers with a kill -9 in the middle as without.
"$R" --write-pcap "$T/mix.pcap" "$SRC/test/replay/scenarios/tcp.scn"
"$R" --build "$BUILD" --pcap "$T/mix.pcap" --crash kill-holdfast@12 --crash kill-holdfast@20 \
  --conf <(printf 'rule accept from inside proto tcp\n') | tee "$T/pcap.out"
grep -q "the answers with and without the crash are identical" "$T/pcap.out" || fail "pcap replay"
grep -q "tcp 198.18.0.1:40001 <> 198.19.0.10:80: drop 3, pass 12" "$T/pcap.out" ||
  fail "per-flow counts of the capture"

after_ns=$(ip netns list | grep -c '^hfr' || true)
[ "$after_ns" -eq "$before_ns" ] || fail "namespaces left behind: $(ip netns list)"
! pgrep -f "file-prefix hfr$$" >/dev/null || fail "processes left behind"
echo "selftest: ok"
