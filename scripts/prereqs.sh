#!/usr/bin/env bash
# What the build needs on a fresh Debian/Ubuntu machine, installed when it is missing.
#
#   scripts/prereqs.sh            the build: cmake, a C++ compiler, make, pkg-config, OpenSSL headers
#   scripts/prereqs.sh EXTRA...   also these Debian packages' commands (CI: kcat, wrk, chromium, node…)
#
# `make demo` and `make test` call it, and so does .ci/run. As root (or with password-less sudo)
# it runs apt-get; otherwise it stops at once, naming the one command to run.
set -euo pipefail

# command → Debian package providing it.
declare -A package=(
    [cmake]=cmake        # grpcio-sys builds gRPC core with cmake
    [c++]=g++            # …and its C++ sources
    [make]=make
    [pkg-config]=pkg-config
    [kcat]=kcat
    [wrk]=wrk
    [stunnel4]=stunnel4
    [protoc]=protobuf-compiler
    [chromium]=chromium  # the console's browser test (scripts/console-test.sh)
    [node]=nodejs        # …runs playwright-core on Node.js
    [npm]=npm            # …installed from the npm registry
)

missing=()
for cmd in cmake c++ make pkg-config "$@"; do
    command -v "$cmd" >/dev/null 2>&1 && continue
    missing+=("${package[$cmd]:-$cmd}")
done
# Headers, not commands: libssl-dev is found through pkg-config.
if command -v pkg-config >/dev/null 2>&1 && ! pkg-config --exists openssl 2>/dev/null; then
    missing+=(libssl-dev)
elif ! command -v pkg-config >/dev/null 2>&1; then
    missing+=(libssl-dev)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

command -v cargo >/dev/null 2>&1 || { echo "prereqs: no cargo: install Rust (rustup) first" >&2; exit 1; }
if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
else
    echo "prereqs: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || {
    echo "prereqs: missing ${missing[*]} and no apt-get here: install them with your package manager" >&2
    exit 1
}
echo "prereqs: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
