#!/usr/bin/env bash
# The test command (README.md): installs what the tests need, then runs every test of the workspace.
#
#   scripts/test.sh            setup + cargo test --workspace + the fuzz crate's corpus replay tests
#   scripts/test.sh -- ARGS    extra arguments for cargo test (e.g. -- --nocapture)
#
# Environment: VIRTWIRE_SKIP_SETUP=1 skips the install step (packages and .x files already there).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${VIRTWIRE_SKIP_SETUP:-0}" != 1 ]; then
    scripts/setup.sh >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "test: cargo is not on PATH; install Rust (rustup) first" >&2
    exit 2
fi
# Every test that needs an installed tool (libvirtd, virsh, tshark, libvirt.so.0) or the libvirt .x
# files fails instead of skipping (VIRTWIRE_REQUIRE_ALL=0 lets them skip, saying so).
export VIRTWIRE_REQUIRE_ALL=${VIRTWIRE_REQUIRE_ALL:-1}
# The tests' figures (procedure counts, the committed traces) are libvirt 9.0.0's, the daemon they run against;
# the tests that compare versions name each version's directory themselves.
# (9.0.0's by name: `ls` would sort libvirt-11.3.0 before libvirt-9.0.0.)
if [ -z "${VIRTWIRE_PROTOCOL_DIR:-}" ] && [ -f "$PWD/.cache/libvirt-9.0.0/src/remote/remote_protocol.x" ]; then
    VIRTWIRE_PROTOCOL_DIR=$PWD/.cache/libvirt-9.0.0
fi
export VIRTWIRE_PROTOCOL_DIR=${VIRTWIRE_PROTOCOL_DIR:-}
echo "test: libvirt protocol files from ${VIRTWIRE_PROTOCOL_DIR:-<none>}" >&2
[ "${1:-}" = "--" ] && shift
cargo test --workspace --locked "$@"
# The fuzz crate is its own workspace, built with --cfg fuzzing from fuzz/.cargo/config.toml (read only when
# cargo runs inside fuzz/): this builds every target on stable and replays the seeds and regressions.
# With libvirt.so.0 9.0.0 installed (setup.sh does it) the differential oracle and its corpus run too.
fuzz_features=()
if scripts/have-libvirt-oracle.sh; then
    fuzz_features=(--workspace --features libvirt)
elif [ "$VIRTWIRE_REQUIRE_ALL" = 1 ]; then
    echo "test: VIRTWIRE_REQUIRE_ALL=1 but libvirt.so.0 9.0.0 is not installed (scripts/setup.sh installs it): the differential oracle tests cannot run" >&2
    exit 1
else
    echo "test: libvirt.so.0 9.0.0 not found: the differential oracle tests are skipped" >&2
fi
(cd fuzz && cargo test --locked "${fuzz_features[@]}" "$@")
