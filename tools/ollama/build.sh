#!/usr/bin/env bash
# Builds the ollama binary (CPU backend only, compiled in by cgo) from the Go
# module pinned in ./go.mod into a per-user cache, once; prints its path:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/llmprobe/ollama-v0.17.4/ollama
# A cached binary is reused as is: delete it to rebuild.
#
# Needs gcc/g++ and two header-only libraries from Debian
# (apt-get install nlohmann-json3-dev libstb-dev): Ollama's module zip lacks
# llama.cpp's vendor/ headers, because Go module zips drop vendor/
# subdirectories. The third, miniaudio.h, comes from the malgo module pinned
# in ./go.mod.
set -euo pipefail
cd "$(dirname "$0")"

version=v0.17.4
dir="${XDG_CACHE_HOME:-$HOME/.cache}/llmprobe/ollama-$version"
bin="$dir/ollama"

if [ ! -x "$bin" ]; then
	if [ "$(go list -m -f '{{.Version}}' github.com/ollama/ollama)" != "$version" ]; then
		echo "build.sh: go.mod does not pin github.com/ollama/ollama $version" >&2
		exit 1
	fi
	for h in nlohmann/json.hpp nlohmann/json_fwd.hpp stb/stb_image.h; do
		if ! echo "#include <$h>" | g++ -std=c++17 -E -x c++ - >/dev/null 2>&1; then
			echo "build.sh: no <$h>: apt-get install nlohmann-json3-dev libstb-dev" >&2
			exit 1
		fi
	done
	mkdir -p "$dir/include/miniaudio"
	malgo=$(go mod download -json github.com/gen2brain/malgo | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp -f "$malgo/miniaudio.h" "$dir/include/miniaudio/miniaudio.h"

	tmp=$(mktemp "$dir/ollama.XXXXXX")
	trap 'rm -f "$tmp"' EXIT
	echo "build.sh: building ollama $version into $dir (cgo, CPU backend; minutes when cold)" >&2
	# No GPU backends: those are separate cmake-built libraries that this
	# build neither makes nor needs; the CPU backend is part of the binary.
	CGO_ENABLED=1 CGO_CPPFLAGS="-I$dir/include ${CGO_CPPFLAGS:-}" go build -trimpath \
		-ldflags "-s -w -X github.com/ollama/ollama/version.Version=${version#v}" \
		-o "$tmp" github.com/ollama/ollama
	chmod 0755 "$tmp"
	mv -f "$tmp" "$bin"
	trap - EXIT
fi
echo "$bin"
