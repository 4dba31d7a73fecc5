#!/usr/bin/env bash
# Which tests fail now and then? Clones main afresh (from the repository this script
# lives in) into a temp dir, runs `make test` there N times, keeps each run's log and
# prints, per test that ever failed, how often it did.
#
# Usage: scripts/flake-hunt.sh [--busy] [--ref REF] [--repo DIR] [--keep] N
#   --busy      keep one core busy (a spin loop pinned to CPU 1) for the whole hunt, as a
#               loaded CI machine would
#   --ref REF   branch, tag or commit to test (default main)
#   --repo DIR  repository to clone (default: the one this script is in)
#   --keep      keep the temp dir (the clone and every run's log) and print its path
# Environment: FLAKE_PKGS passes PKGS=... to make (default: the Makefile's ./...), e.g.
#   FLAKE_PKGS=./results/ scripts/flake-hunt.sh 3
# FLAKE_TIMEOUT bounds each run (default 30m; a run that hits it counts as failed).
# Exit status: 0 every run passed, 1 some run failed, 2 bad usage or the clone failed.
set -euo pipefail

usage() { sed -n '/^# Usage/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

busy=0 keep=0 ref=main repo=""
while [ $# -gt 0 ]; do
	case "$1" in
	--busy) busy=1 ;;
	--keep) keep=1 ;;
	--ref) [ $# -ge 2 ] || usage; ref=$2; shift ;;
	--repo) [ $# -ge 2 ] || usage; repo=$2; shift ;;
	-h | --help) usage ;;
	-*) echo "flake-hunt: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
	shift
done
[ $# -eq 1 ] || usage
n=$1
if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 1000 ]; then
	echo "flake-hunt: N=$n: want a whole number from 1 to 1000" >&2
	exit 2
fi
if [ -z "$repo" ]; then
	repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/idlerace-flake-hunt.XXXXXX")
spin=""
cleanup() {
	if [ -n "$spin" ]; then kill "$spin" 2>/dev/null || true; wait "$spin" 2>/dev/null || true; fi
	if [ "$keep" -eq 1 ]; then
		echo "flake-hunt: kept $tmp (clone in src/, logs in logs/)" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

src=$tmp/src
mkdir -p "$tmp/logs"
if ! git clone -q --no-checkout "$repo" "$src" || ! git -C "$src" checkout -q "$ref"; then
	echo "flake-hunt: cannot clone $repo at $ref" >&2
	exit 2
fi
echo "flake-hunt: $n x make test${FLAKE_PKGS:+ PKGS=$FLAKE_PKGS} on $ref ($(git -C "$src" rev-parse --short HEAD)) in $src" >&2

if [ "$busy" -eq 1 ]; then
	if command -v taskset >/dev/null 2>&1; then
		taskset -c 1 sh -c 'while :; do :; done' &
	else
		sh -c 'while :; do :; done' &
	fi
	spin=$!
	echo "flake-hunt: --busy: spin loop pid $spin on CPU 1" >&2
fi

run_timeout=${FLAKE_TIMEOUT:-30m}
makeargs=()
[ -n "${FLAKE_PKGS:-}" ] && makeargs+=("PKGS=$FLAKE_PKGS")

# failures LOG: one "package: TestName" line per test (or subtest) that failed in the
# log, and "package: (package FAIL)" per package that failed (also a build failure, a
# panic or a timeout, which name no test). go test prints a package's --- FAIL lines
# before its FAIL/ok line, and make test runs one package at a time (-p 1).
failures() {
	awk '
		/^[ \t]*--- FAIL: / { t = $0; sub(/^[ \t]*--- FAIL: /, "", t); sub(/ .*/, "", t); pend[++np] = t; next }
		/^(FAIL|ok)[ \t]+[^ \t]+/ {
			for (i = 1; i <= np; i++) print $2 ": " pend[i]
			if ($1 == "FAIL") print $2 ": (package FAIL)"
			np = 0; next
		}
		END { for (i = 1; i <= np; i++) print "?: " pend[i] }
	' "$1" | sort -u
}

passed=0
: >"$tmp/all-failures"
for i in $(seq 1 "$n"); do
	log=$tmp/logs/run$i.log
	start=$(date +%s%N)
	rc=0
	timeout --kill-after=30s "$run_timeout" make -C "$src" --no-print-directory test "${makeargs[@]}" >"$log" 2>&1 || rc=$?
	if [ "$rc" -eq 0 ]; then
		status=pass
		passed=$((passed + 1))
	else
		status=FAIL
	fi
	secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	{
		failures "$log"
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "make test: (timed out after $run_timeout)"; fi
	} | tee -a "$tmp/all-failures" >"$tmp/logs/run$i.failures"
	printf 'run %d/%d: %s in %s s (%d failing tests)\n' "$i" "$n" "$status" "$secs" "$(grep -vc '(package FAIL)\|(timed out' "$tmp/logs/run$i.failures" || true)"
	if [ "$status" = FAIL ] && [ ! -s "$tmp/logs/run$i.failures" ]; then
		echo "  make test failed without a failing test or package; its last lines:"
		tail -n 5 "$log" | sed 's/^/  | /'
	fi
done

echo
if [ -s "$tmp/all-failures" ]; then
	printf '%-70s %s\n' TEST "FAILED/RUNS"
	sort "$tmp/all-failures" | uniq -c | sort -k1,1nr -k2 | while read -r count name; do
		printf '%-70s %d/%d\n' "$name" "$count" "$n"
	done
	echo
fi
echo "flake-hunt: $passed/$n runs passed"
[ "$passed" -eq "$n" ]
