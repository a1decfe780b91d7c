#!/usr/bin/env bash
# The whole test suite, from a fresh machine (run as root): installs what the
# tests need (Debian's prometheus and promtool, for the end-to-end scrape test
# and the rule tests; chromium, which renders the status page), checks
# formatting, vet, staticcheck and deadcode, then tests every package.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
fi
if ! command -v chromium >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
(cd tools/ollama && go vet ./...)
# Pinned linters, built from the module proxy into a cache once (a warm
# machine does not rebuild them; a new pin or Go release does).
bin=$HOME/.cache/llmprobe/bin
tool() { # tool NAME MODULE VERSION PACKAGE
	if ! go version -m "$bin/$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$2[[:space:]]+$3[[:space:]]" ||
		[ "$(go version "$bin/$1" | awk '{print $2}')" != "$(go env GOVERSION)" ]; then
		GOBIN=$bin go install "$4@$3"
	fi
}
tool staticcheck honnef.co/go/tools v0.8.2 honnef.co/go/tools/cmd/staticcheck
tool deadcode golang.org/x/tools v0.52.0 golang.org/x/tools/cmd/deadcode
"$bin/staticcheck" ./...
(cd tools/ollama && "$bin/staticcheck" ./...)
# deadcode reports and exits 0: any line is a failure. The simulator's
# exported API is for importers (and left out); everything else must be
# reachable from a main or a test.
dead=$("$bin/deadcode" -test -filter '^github.com/llmprobe/llmprobe/(cmd|internal|bench)(/|$)' ./...
	cd tools/ollama && "$bin/deadcode" -test ./...)
if [ -n "$dead" ]; then
	printf 'unreachable code:\n%s\n' "$dead" >&2
	exit 1
fi
go build -o /dev/null ./cmd/llmprobe
# Ollama, for the test against a real engine (cmd/llmprobe/ollama_test.go):
# built once from its Go module into a cache (minutes cold, instant after;
# tools/ollama/README.md), with the C++ compiler and header-only libraries
# that its cgo build needs from Debian.
if ! command -v g++ >/dev/null 2>&1 || [ ! -e /usr/include/nlohmann/json_fwd.hpp ] || [ ! -e /usr/include/stb/stb_image.h ]; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ nlohmann-json3-dev libstb-dev
fi
LLMPROBE_OLLAMA=$(tools/ollama/build.sh)
export LLMPROBE_OLLAMA
# Prometheus 3.x, for the real-Prometheus tests (cmd/llmprobe/prometheus_test.go)
# beside Debian's 2.42: built once from its Go module into a cache (minutes
# cold, instant after; tools/prometheus/README.md).
prom3=$(tools/prometheus/build.sh)
LLMPROBE_PROMETHEUS3=$prom3/prometheus
LLMPROBE_PROMTOOL3=$prom3/promtool
LLMPROBE_PROMETHEUS2=$(command -v prometheus)
LLMPROBE_PROMTOOL2=$(command -v promtool)
export LLMPROBE_PROMETHEUS3 LLMPROBE_PROMTOOL3 LLMPROBE_PROMETHEUS2 LLMPROBE_PROMTOOL2
# One package at a time: several tests drive load and read timings (with
# tolerances that hold beside a CPU hog), and would load each other if run
# side by side on a 2-core machine.
go test -p 1 -count=1 -timeout 20m ./...
# Again under the race detector. The accuracy test is left to the run above:
# its best-case bound (2 ms) does not hold under the detector's slowdown.
go test -race -p 1 -count=1 -timeout 20m -skip 'TestAccuracyAgainstGroundTruth' ./...
