#!/usr/bin/env bash
# Fetch a pinned libvirt release's .x protocol files, checksum-checked, without apt: what the
# ClusterFuzzLite / OSS-Fuzz image (.clusterfuzzlite/Dockerfile) and build.sh use.
#
#   scripts/fetch-xdr.sh [VERSION] [DEST]     default 11.3.0 into ./libvirt-xdr
#
# Downloads libvirt_VERSION.orig.tar.xz (the upstream tarball, as Debian's archive keeps it), checks
# its SHA-256 against the value pinned here (the one Debian's signed Sources index lists; the same
# table as `virtwire fetch-protocol`, conformance/src/protocol_files.rs KNOWN_RELEASES), and unpacks
# only the .x files into DEST/libvirt-VERSION/. Prints that directory. Idempotent. Needs curl (or
# wget), sha256sum, tar and xz. The files are libvirt's: never committed.
set -euo pipefail
version=${1:-11.3.0}
dest=${2:-libvirt-xdr}
case "$version" in
    9.0.0)  sha=deca5cff1b7baac297bca9663907c61f71a47183371dc7ac019c107806d5435a ;;
    11.3.0) sha=6bcb0c42c4580436fea262ced56f68a6afe20f7390b1bea2116718cc034a0283 ;;
    *) echo "fetch-xdr: no pinned checksum for libvirt $version (known: 9.0.0, 11.3.0)" >&2; exit 2 ;;
esac
url=${VIRTWIRE_XDR_URL:-http://deb.debian.org/debian/pool/main/libv/libvirt/libvirt_$version.orig.tar.xz}
out=$dest/libvirt-$version
if [ -f "$out/src/remote/remote_protocol.x" ]; then
    echo "$out"; exit 0
fi
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tarball=$tmp/libvirt_$version.orig.tar.xz
if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 --connect-timeout 30 --max-time 600 -o "$tarball" "$url"
else
    wget -q -T 60 -O "$tarball" "$url"
fi
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$sha" ]; then
    echo "fetch-xdr: checksum mismatch for $url: $got, expected $sha (nothing unpacked)" >&2
    exit 1
fi
tar -xf "$tarball" -C "$tmp" --wildcards '*.x'
mv "$tmp/libvirt-$version" "$out"
echo "fetch-xdr: libvirt $version's .x files (sha256 $sha) in $out" >&2
echo "$out"
