#!/usr/bin/env bash
# Sets up a fresh machine for idlerace: Go modules always; Debian packages for the real
# upstreams and reports when running as root (issue-specific packages are added here as
# they are needed, so that `make run` and `make test` need nothing installed by hand).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
	echo "idlerace: Go 1.26 is required (https://go.dev/dl); it was not found on PATH" >&2
	exit 2
fi
go mod download
