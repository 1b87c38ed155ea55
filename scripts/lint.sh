#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The lint step of make test: every C file is clang-formatted and opens with an SPDX line.
set -euo pipefail
cd "${SRC:-$(dirname "$0")/..}"
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
rc=0
for f in "${files[@]}"; do
  head -1 "$f" | grep -q 'SPDX-License-Identifier' || { echo "lint: $f: no SPDX line first"; rc=1; }
done
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/lint.$$; then
  head -40 /tmp/lint.$$
  rc=1
fi
rm -f /tmp/lint.$$
[ $rc -eq 0 ] && echo "lint: ${#files[@]} files clean"
exit $rc
