#!/usr/bin/env bash
# Mutation testing of the protocol crate: cargo-mutants mutates protocol/src and runs
# `cargo test -p virtwire-protocol` against each mutant, then prints the score.
#
#   scripts/mutants.sh               every mutant (about 2,060; about two hours here: a nightly job, not a CI step)
#   scripts/mutants.sh 0/8           one shard of eight (cargo-mutants --shard; the fixed sample)
#   scripts/mutants.sh 0/8 ARGS...   extra cargo-mutants arguments (e.g. --file protocol/src/frame.rs)
#   scripts/mutants.sh - ARGS...     no shard, only the extra arguments
#
# Output goes to mutants.out/ (git-ignored; VIRTWIRE_MUTANTS_OUT=DIR puts it in DIR); the score line is
#   mutants: CAUGHT caught, MISSED missed, TIMEOUT timeout, UNVIABLE unviable: score S% of viable
# where viable = caught + missed + timeout and a timeout counts as caught (the test did not pass).
# Survivors that are equivalent mutants are listed, with the reason, in docs/mutants-equivalent.md;
# the script lists every other survivor and exits 1 when there is one.
#
# cargo-mutants copies the tree without git-ignored files, so without .cache/: the copy is pointed
# at the libvirt .x files through VIRTWIRE_PROTOCOL_DIR, and VIRTWIRE_REQUIRE_ALL=1 makes a schema
# test fail (rather than skip) if they are missing, so no mutant "survives" a skipped test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

shard=${1:-}
[ $# -gt 0 ] && shift
if ! command -v cargo-mutants >/dev/null 2>&1; then
    echo "mutants: installing cargo-mutants (cargo install --locked)" >&2
    cargo install --locked cargo-mutants
fi
if [ -z "${VIRTWIRE_PROTOCOL_DIR:-}" ]; then
    [ -f .cache/libvirt-9.0.0/src/remote/remote_protocol.x ] || scripts/setup.sh --xdr-only >/dev/null
    VIRTWIRE_PROTOCOL_DIR=$PWD/.cache/libvirt-9.0.0
fi
export VIRTWIRE_PROTOCOL_DIR VIRTWIRE_REQUIRE_ALL=1
echo "mutants: libvirt protocol files from $VIRTWIRE_PROTOCOL_DIR" >&2

# VIRTWIRE_MUTANTS_OUT=DIR writes DIR/mutants.out instead of ./mutants.out (two runs at once).
outdir=${VIRTWIRE_MUTANTS_OUT:-.}
mkdir -p "$outdir"
out=$outdir/mutants.out
# --profile mutants (Cargo.toml): no debug info, about 3 s per mutant here instead of 12.
args=(--package virtwire-protocol --no-shuffle --profile mutants --output "$outdir")
[ -n "$shard" ] && [ "$shard" != - ] && args+=(--shard "$shard")
rc=0
cargo mutants "${args[@]}" "$@" || rc=$?
# cargo-mutants exits 0 (all caught), 2 (some missed), 3 (some timed out), 4 (baseline failed).
case $rc in 0 | 2 | 3) ;; *) echo "mutants: cargo-mutants failed (exit $rc)" >&2; exit "$rc" ;; esac

count() { if [ -f "$out/$1.txt" ]; then grep -c . "$out/$1.txt" || true; else echo 0; fi; }
caught=$(count caught) missed=$(count missed) timeout=$(count timeout) unviable=$(count unviable)
viable=$((caught + missed + timeout))
score=$(awk -v k=$((caught + timeout)) -v v=$viable 'BEGIN { printf "%.1f", v ? 100 * k / v : 100 }')
echo "mutants: $caught caught, $missed missed, $timeout timeout, $unviable unviable: score $score% of viable"

# Survivors not listed as equivalent (the list quotes cargo-mutants' own line for each).
unexplained=0
if [ -f "$out/missed.txt" ]; then
    while IFS= read -r m; do
        [ -n "$m" ] || continue
        if ! grep -qF -- "$m" docs/mutants-equivalent.md; then
            echo "mutants: survivor not killed and not listed as equivalent: $m" >&2
            unexplained=$((unexplained + 1))
        fi
    done <"$out/missed.txt"
fi
if [ "$unexplained" -gt 0 ]; then
    echo "mutants: $unexplained unexplained survivor(s): kill each with a test or list it, with the reason, in docs/mutants-equivalent.md" >&2
    exit 1
fi
