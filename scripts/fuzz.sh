#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 20) — the CI fuzz job.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# - installs cargo-fuzz if it is missing;
# - uses AddressSanitizer when a nightly toolchain is present, `--sanitizer none` on stable
#   (override: VIRTWIRE_FUZZ_SANITIZER=address|none);
# - starts each target from its seeds (corpus/<target>/) plus corpus/regressions/<target>/, works in
#   fuzz/corpus/<target>/ (ignored by git), uses fuzz/virtwire.dict;
# - exits non-zero if any target crashes, leaving the input in fuzz/artifacts/<target>/.
# Longer runs: scripts/fuzz.sh 3600 frame_stream  (or any SECONDS); the working corpus grows across runs.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
secs=${1:-20}
shift || true

say() { printf 'fuzz: %s\n' "$*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet || { say "cannot install cargo-fuzz"; exit 2; }
fi

toolchain=()
sanitizer=${VIRTWIRE_FUZZ_SANITIZER:-}
if [ -z "$sanitizer" ]; then
    if rustc --version 2>/dev/null | grep -q nightly; then
        sanitizer=address
    elif cargo +nightly --version >/dev/null 2>&1; then
        toolchain=(+nightly)
        sanitizer=address
    else
        sanitizer=none
    fi
elif [ "$sanitizer" != none ] && ! rustc --version | grep -q nightly && cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
fi
say "sanitizer: $sanitizer ${toolchain[*]:-(default toolchain)}"
# ASan's fake stack (stack-use-after-return detection) costs a third of a small target's execs/s
# here (header: 32k -> 47k/s measured under load). protocol/ forbids unsafe code, so no return of a
# stack address can come from the code under test: off by default; ASAN_OPTIONS set by the caller
# come after and win (e.g. ASAN_OPTIONS=detect_stack_use_after_return=1).
export ASAN_OPTIONS="detect_stack_use_after_return=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

cd fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
# differential_libvirt links libvirt.so.0 9.0.0 (private symbols): only where that library is installed.
have_libvirt=0
if "$root/scripts/have-libvirt-oracle.sh"; then
    have_libvirt=1
fi
features_for() { [ "$1" = differential_libvirt ] && echo "--features=libvirt"; }
kept=()
for t in "${targets[@]}"; do
    if [ "$t" = differential_libvirt ] && [ $have_libvirt = 0 ]; then
        say "skipping $t: libvirt.so.0 9.0.0 is not installed (scripts/setup.sh installs it)"
        continue
    fi
    kept+=("$t")
    cargo "${toolchain[@]}" fuzz build -O --sanitizer "$sanitizer" $(features_for "$t") "$t" >/dev/null 2>&1 ||
        cargo "${toolchain[@]}" fuzz build -O --sanitizer "$sanitizer" $(features_for "$t") "$t" ||
        { say "build of $t failed"; exit 2; }
done
targets=("${kept[@]}")

failed=()
for t in "${targets[@]}"; do
    work=corpus/$t
    mkdir -p "$work" "artifacts/$t"
    seeds=()
    for d in "$root/corpus/$t" "$root/corpus/regressions/$t"; do
        [ -d "$d" ] && seeds+=("$d")
    done
    dict=()
    [ -f virtwire.dict ] && dict=(-dict=virtwire.dict)
    say "$t: ${secs}s"
    log=$(mktemp)
    cargo "${toolchain[@]}" fuzz run -O --sanitizer "$sanitizer" $(features_for "$t") "$t" "$work" "${seeds[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" "${dict[@]}" >"$log" 2>&1
    rc=$?
    grep -E '^(stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)|#[0-9]+[[:space:]]+DONE)' "$log" | sed "s/^/  $t /" >&2
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        tail -n 40 "$log" >&2
        say "$t FAILED (exit $rc); inputs kept in fuzz/artifacts/$t/:"
        ls -1 "artifacts/$t" >&2
    fi
    rm -f "$log"
done

if [ ${#failed[@]} -gt 0 ]; then
    say "crashes in: ${failed[*]}"
    exit 1
fi
say "all ${#targets[@]} targets ran ${secs}s without a crash"
