#!/usr/bin/env bash
# How often does the gate fail two runs of the same build by chance? Runs the CI gate
# matrix N+1 times with one build and gates each run against the one before it.
# Usage: scripts/gate-trials.sh [N] [matrix] [policy]   (defaults: 20, examples/ci-gate.yaml, examples/gate.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
matrix=${2:-examples/ci-gate.yaml}
policy=${3:-examples/gate.yaml}
make -s build >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for i in $(seq 0 "$n"); do
	bin/idlerace run -f "$matrix" --out "$dir/run$i" -q >/dev/null
done
pass=0 fail=0
for i in $(seq 1 "$n"); do
	if bin/idlerace gate "$dir/run$i" --baseline "$dir/run$((i - 1))" --policy "$policy" >"$dir/gate$i.txt" 2>&1; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		grep -E '^FAIL' "$dir/gate$i.txt" | sed "s/^/trial $i: /"
	fi
done
echo "gate trials: $pass passed, $fail failed"
