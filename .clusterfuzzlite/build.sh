#!/usr/bin/env bash
# Build virtwire's fuzz targets the way OSS-Fuzz / ClusterFuzzLite expect: binaries in $OUT, each with
# <target>_seed_corpus.zip (corpus/<target>/ + corpus/regressions/<target>/) and <target>.dict.
#
# Inside the base-builder-rust image this runs as is. Outside Docker it works too, given the variables
# OSS-Fuzz sets (at least OUT; SRC, WORK and SANITIZER are optional):
#   OUT=$(mktemp -d) WORK=$(mktemp -d) SRC=$PWD/.. SANITIZER=address .clusterfuzzlite/build.sh
# SANITIZER: address (default; needs nightly, else falls back to none with a warning), none, or any
# sanitizer cargo-fuzz knows (memory, thread, leak). SANITIZER=coverage builds with coverage
# instrumentation (cargo fuzz coverage's flags are not needed: OSS-Fuzz's coverage build sets RUSTFLAGS).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -d "${SRC:-/nonexistent}/virtwire/fuzz" ]; then
    repo=$SRC/virtwire
else
    repo=$(cd "$here/.." && pwd)
fi
: "${OUT:?set OUT to the output directory}"
mkdir -p "$OUT"
[ -n "${WORK:-}" ] && mkdir -p "$WORK"
san=${SANITIZER:-address}
case "$san" in
    coverage|introspector|undefined) san=none ;;   # instrumentation comes from RUSTFLAGS there
esac

cd "$repo/fuzz"
toolchain=()
if [ "$san" != none ] && ! rustc --version | grep -q nightly; then
    if cargo +nightly --version >/dev/null 2>&1; then
        toolchain=(+nightly)
    else
        echo "build.sh: no nightly toolchain; building with --sanitizer none" >&2
        san=none
    fi
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

# Keep build products out of the source tree when WORK is given (OSS-Fuzz's scratch dir).
target_dir=${WORK:+$WORK/cargo-target}
target_dir=${target_dir:-$repo/fuzz/target}
triple=$(rustc -vV | sed -n 's/^host: //p')

cargo "${toolchain[@]}" fuzz build -O --sanitizer "$san" --target-dir "$target_dir"
# differential_libvirt needs libvirt.so.0 9.0.0 (feature libvirt): build it only where that is installed,
# and never ship a binary left over from an earlier build.
rm -f "$target_dir/$triple/release/differential_libvirt"
if "$repo/scripts/have-libvirt-oracle.sh"; then
    cargo "${toolchain[@]}" fuzz build -O --sanitizer "$san" --target-dir "$target_dir" --features libvirt differential_libvirt
fi
mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)

zip_dirs() {  # zip_dirs OUT.zip DIR... (flat, files only; python3 so no zip binary is needed)
    python3 - "$@" <<'PY'
import os, sys, zipfile
out, dirs = sys.argv[1], sys.argv[2:]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for d in dirs:
        if os.path.isdir(d):
            for n in sorted(os.listdir(d)):
                p = os.path.join(d, n)
                if os.path.isfile(p):
                    z.write(p, os.path.basename(d) + "-" + n)
PY
}

for t in "${targets[@]}"; do
    # Targets with unmet required features (differential_libvirt needs libvirt0) are not built.
    [ -f "$target_dir/$triple/release/$t" ] || { echo "build.sh: $t not built (needs a feature), skipped" >&2; continue; }
    cp "$target_dir/$triple/release/$t" "$OUT/$t"
    zip_dirs "$OUT/${t}_seed_corpus.zip" "$repo/corpus/$t" "$repo/corpus/regressions/$t"
    cp "$repo/fuzz/virtwire.dict" "$OUT/$t.dict"
    printf '[libfuzzer]\ndict = %s.dict\nmax_len = 65536\ntimeout = 10\n' "$t" > "$OUT/$t.options"
done
# The schema-backed targets load libvirt's .x files at run time from libvirt-protocol/ beside the binary
# (protocol/src/fuzzing/setup.rs). They are libvirt's files, never committed. Where they come from, first found:
# $VIRTWIRE_PROTOCOL_DIR; $SRC/libvirt-xdr/libvirt-* (the Dockerfile fetches a pinned release there with
# scripts/fetch-xdr.sh, SHA-256 checked); the checkout's .cache (scripts/setup.sh); else scripts/fetch-xdr.sh
# now (network; into $WORK, or a temporary directory).
pinned=${VIRTWIRE_LIBVIRT_VERSION:-11.3.0}
xdr_src=${VIRTWIRE_PROTOCOL_DIR:-}
[ -n "$xdr_src" ] || xdr_src=$(ls -d "${SRC:-/nonexistent}"/libvirt-xdr/libvirt-* 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$xdr_src" ] || xdr_src=$(ls -d "$repo"/.cache/libvirt-[0-9]* 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$xdr_src" ]; then
    xdr_dest=${WORK:-$(mktemp -d)}/libvirt-xdr
    xdr_src=$("$repo/scripts/fetch-xdr.sh" "$pinned" "$xdr_dest" || true)
fi
if [ -n "$xdr_src" ] && [ -f "$xdr_src/src/remote/remote_protocol.x" ]; then
    rm -rf "$OUT/libvirt-protocol"
    (cd "$xdr_src" && find ./src -name '*.x' -print0 | while IFS= read -r -d '' f; do
        mkdir -p "$OUT/libvirt-protocol/$(dirname "$f")" && cp "$f" "$OUT/libvirt-protocol/$f"
    done)
    echo "build.sh: libvirt .x files from $xdr_src in $OUT/libvirt-protocol" >&2
else
    echo "build.sh: WARNING: no libvirt .x files (set VIRTWIRE_PROTOCOL_DIR, or give the build network for scripts/fetch-xdr.sh); body, validate_vs_decode, differential_libvirt, roundtrip_structured (typed bodies) panic on their first input that needs the schema, capture_file (its decoder) on its first input" >&2
fi
echo "build.sh: ${#targets[@]} targets in $OUT (sanitizer $san)" >&2
