#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Turn meson's own summaries (one or more testlog.json files) into the line
# "N passed, N failed", and exit non-zero on any failure.
set -euo pipefail
passed=0
failed=0
for log in "$@"; do
  [ -f "$log" ] || { echo "test-summary: $log missing" >&2; failed=$((failed + 1)); continue; }
  p=$(grep -c '"result": "OK"' "$log" || true)
  f=$(grep -Ec '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
  passed=$((passed + p))
  failed=$((failed + f))
done
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
