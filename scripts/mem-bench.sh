#!/usr/bin/env bash
# Memory benchmark (issue 8, "Long runs"): one cell of 1,000,000 requests at constant load
# against the builtin upstream (in the same process, as `idlerace run` runs every cell),
# measured with /usr/bin/time -v. Prints the peak RSS and the requests/s reached, and fails
# (exit 1) when the peak is above MEMBENCH_LIMIT_MIB.
#
#   make membench                                   # or: bash scripts/mem-bench.sh
#   MEMBENCH_RATE=20000 make membench               # a slower machine
#   MEMBENCH_BIN=/tmp/old/idlerace bash scripts/mem-bench.sh   # measure another build
#
# The load is constant:rate=R/s with requests=N, so the cell has exactly N requests
# whatever rate the machine sustains (the duration is only an upper bound); requests/s is
# N over the cell's measured duration. Loopback only; bounded by N and the duration.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${MEMBENCH_BIN:-bin/idlerace}
requests=${MEMBENCH_REQUESTS:-1000000}
rate=${MEMBENCH_RATE:-40000}
duration=${MEMBENCH_DURATION:-120s}
strategy=${MEMBENCH_STRATEGY:-blind}
limit_mib=${MEMBENCH_LIMIT_MIB:-32}

need() { # command, Debian package
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "mem-bench: $1 is missing: sudo apt-get install -y $2" >&2
		exit 3
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
[ -x /usr/bin/time ] || need /usr/bin/time time
need jq jq
if [ -z "${MEMBENCH_BIN:-}" ]; then
	go build -o "$bin" ./cmd/idlerace
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load="constant:rate=${rate}/s,duration=${duration},requests=${requests}"
echo "mem-bench: $bin run --strategy $strategy --skew none --idle-timeout 1s --load $load" >&2
/usr/bin/time -v -o "$tmp/time.txt" "$bin" run --strategy "$strategy" --skew none --latency 0 \
	--idle-timeout 1s --load "$load" --out - --no-report -q --format json >"$tmp/summary.json"

peak_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/time.txt")
cpu=$(awk -F': ' '/Percent of CPU/ {print $2}' "$tmp/time.txt")
read -r got ms stale p99 < <(jq -r '.cells[0] | "\(.requests) \(.duration_ms) \(.stale) \(.latency_us.p99)"' "$tmp/summary.json")
rps=$(awk -v n="$got" -v ms="$ms" 'BEGIN {printf "%.0f", n / (ms / 1000)}')
peak_mib=$(awk -v k="$peak_kib" 'BEGIN {printf "%.1f", k / 1024}')
printf 'mem-bench: %d requests (%s) in %.1f s: %s requests/s, peak RSS %s MiB (limit %s MiB), stale %d, p99 %.1f ms, wall %s, CPU %s\n' \
	"$got" "$strategy" "$(awk -v ms="$ms" 'BEGIN {print ms / 1000}')" "$rps" "$peak_mib" "$limit_mib" "$stale" \
	"$(awk -v us="$p99" 'BEGIN {print us / 1000}')" "$wall" "$cpu"
if [ "$got" -ne "$requests" ]; then
	echo "mem-bench: FAIL: the cell sent $got of $requests requests within $duration (raise MEMBENCH_DURATION)" >&2
	exit 1
fi
if awk -v p="$peak_kib" -v l="$limit_mib" 'BEGIN {exit !(p > l * 1024)}'; then
	echo "mem-bench: FAIL: peak RSS $peak_mib MiB is above $limit_mib MiB" >&2
	exit 1
fi
