#!/usr/bin/env bash
# Exit 0 when libvirt.so.0 of libvirt 9.0.0 is installed, the library the differential oracle
# (fuzz/libvirt-oracle, feature `libvirt`) links against by its private LIBVIRT_PRIVATE_9.0.0 symbols.
# Used by scripts/test.sh, scripts/fuzz.sh and .clusterfuzzlite/build.sh.
lib=$(ldconfig -p 2>/dev/null | awk '/libvirt\.so\.0 /{print $NF; exit}')
[ -n "$lib" ] || exit 1
# grep reads all of nm's output (no -q): under pipefail an early exit would fail the pipe.
nm -D --defined-only "$lib" 2>/dev/null |
    grep 'virNetMessageDecodePayload@@LIBVIRT_PRIVATE_9.0.0' >/dev/null
