#!/usr/bin/env bash
# The main job (README.md): on a fresh Debian bookworm machine, install what is needed (libvirtd and
# libvirt's .x files, as scripts/test.sh does), build virtwire, and run the conformance catalogue
# against a private libvirtd that virtwire starts on a free loopback port and stops at the end.
#
#   scripts/check.sh                       the whole catalogue, verdict tree on stdout
#   scripts/check.sh --jobs 2 --junit F    any `virtwire check` option (see `virtwire check --help`)
#   scripts/check.sh test+tcp://HOST:PORT/default    another server instead of the private libvirtd
#
# Unless --known-failing is given, libvirtd 9.0's committed list is used
# (corpus/known-failing/libvirtd-9.0.txt). Exit status is virtwire check's: 0 as expected,
# 1 unexpected failures, 2 a known-failing case passed, 3 harness error.
# Environment: VIRTWIRE_SKIP_SETUP=1 skips the install step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${VIRTWIRE_SKIP_SETUP:-0}" != 1 ]; then
    scripts/setup.sh >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "check: cargo is not on PATH; install Rust (rustup) first" >&2
    exit 3
fi
# The schema of the daemon it starts (libvirtd 9.0.0) unless told otherwise.
# (9.0.0's by name: `ls` would sort libvirt-11.3.0 before libvirt-9.0.0.)
if [ -z "${VIRTWIRE_PROTOCOL_DIR:-}" ] && [ -f "$PWD/.cache/libvirt-9.0.0/src/remote/remote_protocol.x" ]; then
    VIRTWIRE_PROTOCOL_DIR=$PWD/.cache/libvirt-9.0.0
fi
export VIRTWIRE_PROTOCOL_DIR=${VIRTWIRE_PROTOCOL_DIR:-}
cargo build --release --locked --quiet -p virtwire-conformance
known=(--known-failing corpus/known-failing/libvirtd-9.0.txt)
for a in "$@"; do
    case $a in --known-failing|--known-failing=*) known=() ;; esac
done
exec target/release/virtwire check "${known[@]}" "$@"
