#!/usr/bin/env bash
# Sets up a fresh machine for idlerace, one set of dependencies at a time:
#
#   scripts/deps.sh run    Go modules only: all that `make build` and `make run` (the
#                          embedded default, builtin upstream) need. Installs nothing else.
#   scripts/deps.sh real   run's, plus the Debian packages of the real upstreams and the
#                          netem path: nginx, python3-uvicorn, nodejs, iproute2, gcc
#                          for the packet capture's cgo, python3-requests, -aiohttp, -httpx,
#                          -pycurl, a JDK with Jackson, and Debian's cargo with the hyper
#                          0.14 crates for the client kinds (for `idlerace run -f
#                          examples/real-upstreams.yaml`, --latency netem:D)
#   scripts/deps.sh test   real's, plus what only tests use: chromium (the report's browser
#                          tests) and prometheus (the Grafana dashboard's queries). The
#                          default, and what `make test` and `make ci` call.
#
# Debian packages are installed only when running as root. Without root it says what to
# install and goes on (the tests that need them say so, and fail in CI, where
# IDLERACE_REQUIRE_REAL=1).
set -euo pipefail
cd "$(dirname "$0")/.."

set_name=${1:-test}
case "$set_name" in
run | real | test) ;;
*)
	echo "idlerace: scripts/deps.sh $set_name: want run, real or test" >&2
	exit 2
	;;
esac

if ! command -v go >/dev/null 2>&1; then
	echo "idlerace: Go 1.26 is required (https://go.dev/dl); it was not found on PATH" >&2
	exit 2
fi
go mod download
[ "$set_name" = run ] && exit 0

# command -> Debian package that provides it
declare -A want=(
	[nginx]=nginx
	[haproxy]=haproxy
	[caddy]=caddy
	[apache2]=apache2
	[ip]=iproute2
	[tc]=iproute2
	[node]=nodejs
	# The java client kind runs the JDK's single-file launcher (JDK 17 is Debian 12's).
	[java]=openjdk-17-jdk-headless
	# The wire view (upstreams/wire) captures through gopacket's afpacket, which is cgo:
	# without a C compiler Go builds without cgo and cells say "built without cgo".
	[gcc]="gcc libc6-dev"
)
if [ "$set_name" = test ]; then
	want[chromium]=chromium
	want[prometheus]=prometheus
fi
missing=()
for cmd in "${!want[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then
		missing+=("${want[$cmd]}")
	fi
done
# Debian's uvicorn and the Python client kinds' libraries (attack/agent) are modules of
# Debian's python3 (not whatever python3 is first on PATH).
declare -A pymods=(
	[uvicorn]=python3-uvicorn
	[requests]=python3-requests
	[aiohttp]=python3-aiohttp
	[httpx]=python3-httpx
	[pycurl]=python3-pycurl
)
for mod in "${!pymods[@]}"; do
	if ! /usr/bin/python3 -c "import $mod" >/dev/null 2>&1; then
		missing+=("${pymods[$mod]}")
	fi
done
# The java client kind reads and writes the agent protocol's JSON with Debian's Jackson.
if [ ! -e /usr/share/java/jackson-databind.jar ]; then
	missing+=(libjackson2-databind-java)
fi
# The hyper client kind builds hyper 0.14 with Debian's cargo against Debian's crates.
if [ ! -x /usr/bin/cargo ] || ! compgen -G "/usr/share/cargo/registry/hyper-0.14*" >/dev/null ||
	! compgen -G "/usr/share/cargo/registry/tokio-1.*" >/dev/null || ! compgen -G "/usr/share/cargo/registry/serde_json-1.*" >/dev/null; then
	missing+=(cargo rustc librust-hyper-dev librust-tokio-dev librust-serde-json-dev librust-libc-dev)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
pkgs=${pkgs% }
if [ "$(id -u)" -ne 0 ]; then
	if [ "$set_name" = test ]; then
		echo "idlerace: not root, so not installing Debian packages; the real-upstream, netem and report tests need: sudo apt-get install -y $pkgs" >&2
	else
		echo "idlerace: not root, so not installing Debian packages; the real upstreams and the netem path need: sudo apt-get install -y $pkgs" >&2
	fi
	exit 0
fi
echo "idlerace: installing Debian packages: $pkgs" >&2
export DEBIAN_FRONTEND=noninteractive
if [ ! -d /var/lib/apt/lists ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || [ -n "$(find /var/lib/apt/lists -maxdepth 0 -mmin +720 2>/dev/null)" ]; then
	apt-get update -qq
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
# Debian starts nginx, haproxy, caddy, apache2 and prometheus as services on install; idlerace
# starts its own.
for svc in nginx haproxy caddy apache2 prometheus; do
	if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" 2>/dev/null || true; fi
	if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
pkill -x nginx 2>/dev/null || true
pkill -x haproxy 2>/dev/null || true
pkill -x caddy 2>/dev/null || true
pkill -x apache2 2>/dev/null || true
pkill -x prometheus 2>/dev/null || true
