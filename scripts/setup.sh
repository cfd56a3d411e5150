#!/usr/bin/env bash
# Install what virtwire's tests and conformance runs need on a fresh Debian bookworm machine,
# and fetch libvirt's .x protocol files into an ignored cache.
#
#   scripts/setup.sh             apt packages (libvirtd 9.0, virtlogd, virtlockd, virsh, tshark,
#                                python3-libvirt, cyrus-sasl tools and DIGEST-MD5 plugin,
#                                systemd-socket-activate), the .x files of libvirt 9.0.0 and 11.3.0,
#                                and libvirt 11.3.0's daemon in a private prefix
#   scripts/setup.sh --xdr-only  only the .x files (9.0.0 and 11.3.0)
#   scripts/setup.sh --no-11.3   leave libvirt 11.3.0 out (its .x files and its daemon)
#
# Idempotent: each step is skipped when its result is already present.
# The .x files are libvirt's and are never committed; they land in $VIRTWIRE_CACHE (default: .cache/ in
# the repository), under libvirt-<version>/ as a pruned copy of libvirt's source tree.
#
# libvirt 11.3.0 comes from Debian's bookworm-backports suite through a private apt state under
# $VIRTWIRE_CACHE/apt (its own sources list and indexes; the system's apt sources and dpkg database are
# not touched). apt checks every download against the suite's signed indexes (SHA256). Its binaries
# (libvirt-daemon, libvirt0, libvirt-clients) are unpacked with dpkg -x into $VIRTWIRE_CACHE/libvirtd-11.3.0/:
#   LD_LIBRARY_PATH=.cache/libvirtd-11.3.0/usr/lib/x86_64-linux-gnu .cache/libvirtd-11.3.0/usr/sbin/libvirtd
# The 11.3 source package's Debian-patches tarball is not served by the archive mirror here; only the
# upstream orig tarball (all the .x files need) is used, so apt-get source's failure on the rest is ignored.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${VIRTWIRE_CACHE:-$here/.cache}
libvirt_version=${VIRTWIRE_LIBVIRT_VERSION:-9.0.0}
xdr_only=0
with_11=1
for arg in "$@"; do
    case "$arg" in
        --xdr-only) xdr_only=1 ;;
        --no-11.3) with_11=0 ;;
        *) echo "setup: unknown argument $arg (--xdr-only, --no-11.3)" >&2; exit 2 ;;
    esac
done
[ "${VIRTWIRE_SKIP_11_3:-0}" = 1 ] && with_11=0

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
    # chromium: the HTML report's test opens it headless (conformance/tests/report_html.rs).
    for cmd_pkg in libvirtd:libvirt-daemon virtlogd:libvirt-daemon virtlockd:libvirt-daemon \
        virsh:libvirt-clients tshark:tshark dumpcap:tshark saslpasswd2:sasl2-bin \
        systemd-socket-activate:systemd chromium:chromium; do
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
            sasl2-bin libsasl2-modules systemd chromium >/dev/null
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

# --- libvirt 11.3.0 (bookworm-backports): .x files and a private daemon prefix --------------------------
v11=11.3.0
apt_private() {
    apt-get -qq -o Dir::Etc::SourceList="$aptdir/sources.list" -o Dir::Etc::SourceParts="$aptdir/empty" \
        -o Dir::Etc::PreferencesParts="$aptdir/empty" -o Dir::State::Lists="$aptdir/lists" \
        -o Dir::Cache="$aptdir/cache" -o APT::Sandbox::User="$(id -un)" -o Debug::NoLocking=1 "$@"
}
private_apt_ready=0
private_apt_update() {
    [ $private_apt_ready = 1 ] && return 0
    aptdir=$cache/apt
    mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/empty"
    cat >"$aptdir/sources.list" <<'SRC'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
SRC
    say "updating the private apt state for bookworm-backports ($aptdir)"
    apt_private update
    private_apt_ready=1
}
if [ $with_11 = 1 ]; then
    dest11=$cache/libvirt-$v11
    if [ -f "$dest11/src/remote/remote_protocol.x" ]; then
        say ".x files present in $dest11"
    else
        private_apt_update
        tmp11=$(mktemp -d)
        say "downloading libvirt's $v11 source (the upstream orig tarball; apt checks its SHA256)"
        # The Debian-patches tarball and the .asc are missing on this mirror: apt-get fails on them after
        # the orig tarball has been fetched and checked; the tarball's presence is what counts.
        (cd "$tmp11" && apt_private source --download-only "libvirt/bookworm-backports" >/dev/null 2>&1 || true)
        orig11=$(ls "$tmp11"/libvirt_"$v11".orig.tar.* 2>/dev/null | head -n1 || true)
        [ -n "$orig11" ] || { say "libvirt_$v11.orig.tar.* was not downloaded"; ls "$tmp11" >&2; rm -rf "$tmp11"; exit 1; }
        tar -xf "$orig11" -C "$tmp11" --wildcards '*.x' '*/src/*protocol-structs' 2>/dev/null \
            || tar -xf "$orig11" -C "$tmp11" --wildcards '*.x'
        rm -rf "$dest11.partial" && mv "$tmp11/libvirt-$v11" "$dest11.partial" && mv "$dest11.partial" "$dest11"
        rm -rf "$tmp11"
        say "cached $(find "$dest11" -name '*.x' | wc -l) .x files in $dest11"
    fi
    root11=$cache/libvirtd-$v11
    if [ $xdr_only = 1 ]; then
        :
    elif [ -x "$root11/usr/sbin/libvirtd" ]; then
        say "libvirtd $v11 present in $root11"
    else
        private_apt_update
        debs=$(mktemp -d)
        say "downloading libvirt-daemon, libvirt0, libvirt-clients $v11 (bookworm-backports)"
        (cd "$debs" && apt_private download libvirt-daemon/bookworm-backports libvirt0/bookworm-backports \
            libvirt-clients/bookworm-backports >/dev/null)
        rm -rf "$root11.partial"
        for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root11.partial"; done
        rm -rf "$debs"
        got=$(LD_LIBRARY_PATH="$root11.partial/usr/lib/x86_64-linux-gnu" "$root11.partial/usr/sbin/libvirtd" --version 2>&1 || true)
        case "$got" in
            *" $v11"*) ;;
            *) say "the unpacked libvirtd does not run: $got"; exit 1 ;;
        esac
        mv "$root11.partial" "$root11"
        say "libvirtd $v11 unpacked in $root11"
    fi
fi
echo "$dest"
