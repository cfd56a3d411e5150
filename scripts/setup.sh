#!/usr/bin/env bash
# Install what virtwire's tests and conformance runs need on a fresh Debian bookworm machine,
# and fetch libvirt's .x protocol files into an ignored cache.
#
#   scripts/setup.sh            apt packages (libvirtd, virtlogd, virtlockd, virsh, tshark,
#                               python3-libvirt, cyrus-sasl tools and DIGEST-MD5 plugin,
#                               systemd-socket-activate) + .x cache
#   scripts/setup.sh --xdr-only only the .x cache
#
# Idempotent: each step is skipped when its result is already present.
# The .x files are libvirt's and are never committed; they land in $VIRTWIRE_CACHE (default: .cache/ in
# the repository), under libvirt-<version>/ as a pruned copy of libvirt's source tree.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${VIRTWIRE_CACHE:-$here/.cache}
libvirt_version=${VIRTWIRE_LIBVIRT_VERSION:-9.0.0}
xdr_only=0
[ "${1:-}" = "--xdr-only" ] && xdr_only=1

say() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_update() {
    [ $apt_updated = 1 ] && return 0
    as_root apt-get update -qq
    apt_updated=1
}

# --- apt packages -----------------------------------------------------------------------------------
if [ $xdr_only = 0 ]; then
    need=()
    # sasl2-bin: saslpasswd2 makes the SASL libvirtd's private sasldb; libsasl2-modules: DIGEST-MD5;
    # systemd: systemd-socket-activate hands a root-run private virtlogd/virtlockd their sockets.
    for cmd_pkg in libvirtd:libvirt-daemon virtlogd:libvirt-daemon virtlockd:libvirt-daemon \
        virsh:libvirt-clients tshark:tshark dumpcap:tshark saslpasswd2:sasl2-bin \
        systemd-socket-activate:systemd; do
        command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || need+=("${cmd_pkg##*:}")
    done
    [ -e /usr/lib/x86_64-linux-gnu/wireshark ] && dpkg -s libvirt-wireshark >/dev/null 2>&1 || need+=(libvirt-wireshark)
    /usr/bin/python3 -c 'import libvirt' >/dev/null 2>&1 || need+=(python3-libvirt)
    dpkg -s libsasl2-modules >/dev/null 2>&1 || need+=(libsasl2-modules)
    if [ ${#need[@]} -gt 0 ]; then
        say "installing ${need[*]}"
        echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections
        apt_update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            libvirt-daemon libvirt-clients libvirt-wireshark tshark python3-libvirt \
            sasl2-bin libsasl2-modules systemd >/dev/null
    fi
fi

# --- libvirt .x files ---------------------------------------------------------------------------------
dest=$cache/libvirt-$libvirt_version
if [ -f "$dest/src/remote/remote_protocol.x" ]; then
    say ".x files present in $dest"
else
    mkdir -p "$cache"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    if [ ! -f /etc/apt/sources.list.d/virtwire-src.sources ]; then
        say "adding a deb-src entry for bookworm (source packages only)"
        as_root tee /etc/apt/sources.list.d/virtwire-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        apt_updated=0
    fi
    apt_update
    say "downloading libvirt source package ($libvirt_version)"
    # 9.0.0 is bookworm's own version: pin the suite, so a configured bookworm-backports (11.x) does
    # not win; other versions are looked up by name across the configured suites.
    suite=${VIRTWIRE_LIBVIRT_SUITE:-bookworm}
    (cd "$tmp" && apt-get source --download-only -qq "libvirt/$suite" >/dev/null 2>&1 \
        || apt-get source --download-only -qq libvirt >/dev/null)
    orig=$(ls "$tmp"/libvirt_"$libvirt_version"*.orig.tar.* 2>/dev/null | head -n1 || true)
    [ -n "$orig" ] || { say "no libvirt_$libvirt_version orig tarball was downloaded"; ls "$tmp" >&2; exit 1; }
    say "unpacking the .x files from $(basename "$orig")"
    tar -xf "$orig" -C "$tmp" --wildcards '*.x' '*/src/*protocol-structs' 2>/dev/null \
        || tar -xf "$orig" -C "$tmp" --wildcards '*.x'
    src=$(find "$tmp" -maxdepth 1 -type d -name "libvirt-$libvirt_version*" | head -n1)
    [ -n "$src" ] || { say "the tarball did not hold libvirt-$libvirt_version/"; exit 1; }
    rm -rf "$dest.partial" && mv "$src" "$dest.partial" && mv "$dest.partial" "$dest"
    say "cached $(find "$dest" -name '*.x' | wc -l) .x files in $dest"
fi
echo "$dest"
