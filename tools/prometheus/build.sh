#!/usr/bin/env bash
# Builds Prometheus and promtool from the Go module pinned in ./go.mod into a
# per-user cache, once; prints the directory that holds both:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/llmprobe/prometheus-v0.316.0/{prometheus,promtool}
# (module v0.316.0 is Prometheus 3.16.0). A cached binary is reused as is:
# delete it to rebuild.
#
# Built with the remove_all_sd tag: only the file and HTTP service discovery
# (and static_configs) stay, which is all the tests use; the cloud SDs
# (Kubernetes, AWS, Azure, GCE, ...) are most of the build. Without the
# builtinassets tag the web UI is not embedded; the HTTP API does not need it.
set -euo pipefail
cd "$(dirname "$0")"

module=v0.316.0
version=3.16.0
dir="${XDG_CACHE_HOME:-$HOME/.cache}/llmprobe/prometheus-$module"

if [ ! -x "$dir/prometheus" ] || [ ! -x "$dir/promtool" ]; then
	if [ "$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)" != "$module" ]; then
		echo "build.sh: go.mod does not pin github.com/prometheus/prometheus $module" >&2
		exit 1
	fi
	mkdir -p "$dir"
	tmp=$(mktemp -d "$dir/build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "build.sh: building Prometheus $version and promtool into $dir (minutes when cold)" >&2
	ldflags="-s -w -X github.com/prometheus/common/version.Version=$version -X github.com/prometheus/common/version.Branch=module-$module"
	CGO_ENABLED=0 go build -trimpath -tags remove_all_sd -ldflags "$ldflags" -o "$tmp/" \
		github.com/prometheus/prometheus/cmd/prometheus \
		github.com/prometheus/prometheus/cmd/promtool
	mv -f "$tmp/prometheus" "$tmp/promtool" "$dir/"
	rm -rf "$tmp"
	trap - EXIT
fi
echo "$dir"
