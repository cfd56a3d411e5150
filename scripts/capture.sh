#!/usr/bin/env bash
# Make libvirt RPC captures against a private libvirtd (test driver) on loopback.
#
#   scripts/capture.sh SCENARIO OUT.pcapng          one scenario
#   scripts/capture.sh big OUT.pcapng [DOMAINS [IOTHREADS]]
#                                                   one GET_ALL_DOMAIN_STATS over a custom world of
#                                                   DOMAINS running domains × IOTHREADS iothreads each
#                                                   (default 2000 × 64: a 14.5 MB reply, 390,000 typed
#                                                   params); NOT for committing
#   scripts/capture.sh all DIR                      every committed scenario into DIR/<scenario>.pcapng
#   scripts/capture.sh measure [FILE]               time and peak RSS of `virtwire decode` (release build;
#                                                   JSON and text) and of tshark's libvirt dissector on
#                                                   the big capture FILE (made first if missing; default
#                                                   ${TMPDIR:-/tmp}/virtwire-big.pcapng)
#
# Scenarios (what the committed traces in corpus/traces/ hold):
#   lifecycle   virsh and python-libvirt: open, list, dominfo, XML, suspend/resume, destroy/start,
#               define/undefine, networks, pools, capabilities, close
#   domstats    GET_ALL_DOMAIN_STATS and DOMAIN_LIST_GET_STATS over a small custom world (20 × 8)
#   screenshot  virsh screenshot: a STREAM of PNG data (about 33 KB) and its end
#   events      virsh event --all --loop while a second client suspends/resumes/destroys/starts
#   keepalive   virsh -k 1 event --timeout 4: keepalive PING/PONG every second
#   list        one short virsh session (list, dominfo): the smallest trace, used for link-type variants
#   errors      failing calls from virsh (no such domain, QEMU program on the test driver…) and raw
#               frames from python: unknown procedure, unknown program, wrong version, a body that does
#               not decode, trailing bytes, a REPLY sent by a client
#
# Each run: scripts/libvirtd.sh starts a daemon on a free 127.0.0.1 port, dumpcap captures
# "tcp port PORT" on lo with a 256 MiB buffer (-B 256: the default buffer drops packets of big replies),
# the clients run, dumpcap is stopped with SIGTERM, the daemon is stopped. Only 127.0.0.1 is contacted.
# CAPTURE_IFACE=any CAPTURE_LINKTYPE=LINUX_SLL2 (dumpcap -y) and CAPTURE_PCAP=1 (classic pcap instead of
# pcapng) make the other link types and the other file format.
# Needs: libvirtd, virsh, dumpcap, /usr/bin/python3 with python3-libvirt (scripts/setup.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf 'capture.sh: %s\n' "$*" >&2; }

scenario_clients() {
    local scenario=$1 uri=$VIRTWIRE_LIBVIRTD_URI port=$VIRTWIRE_LIBVIRTD_PORT
    local tmp=$VIRTWIRE_LIBVIRTD_RUNDIR
    case $scenario in
        lifecycle)
            virsh -c "$uri" 'version; hostname; uri; list --all; dominfo test; domstate test; dumpxml test;
                suspend test; resume test; destroy test; start test; domid test; net-list --all;
                pool-list --all; nodeinfo' >/dev/null
            /usr/bin/python3 "$here/capture-client.py" lifecycle "$uri"
            ;;
        domstats)
            /usr/bin/python3 "$here/capture-client.py" world 20 8 "$tmp/world.xml"
            local wuri="test+tcp://127.0.0.1:$port$tmp/world.xml"
            virsh -c "$wuri" 'domstats; domstats --list-active --state dom1 dom2' >/dev/null
            /usr/bin/python3 "$here/capture-client.py" domstats "$wuri"
            ;;
        list)
            virsh -c "$uri" 'list --all; dominfo test' >/dev/null
            ;;
        screenshot)
            virsh -c "$uri" screenshot test "$tmp/shot.png" >/dev/null
            ;;
        events)
            virsh -c "$uri" event --all --loop --timeout 3 >/dev/null &
            local ev=$!
            sleep 1
            virsh -c "$uri" 'suspend test; resume test; destroy test; start test' >/dev/null
            wait "$ev" || true
            ;;
        keepalive)
            virsh -k 1 -c "$uri" event --all --timeout 4 >/dev/null || true
            ;;
        errors)
            virsh -c "$uri" 'dominfo no-such-domain' >/dev/null 2>&1 || true
            virsh -c "$uri" 'start test' >/dev/null 2>&1 || true
            virsh -c "$uri" "qemu-monitor-command test '{\"execute\":\"query-status\"}'" >/dev/null 2>&1 || true
            /usr/bin/python3 "$here/capture-client.py" raw-errors 127.0.0.1 "$port"
            ;;
        big)
            local n=${CAPTURE_BIG_DOMAINS:-2000} k=${CAPTURE_BIG_IOTHREADS:-64}
            /usr/bin/python3 "$here/capture-client.py" world "$n" "$k" "$tmp/world.xml"
            virsh -c "test+tcp://127.0.0.1:$port$tmp/world.xml" domstats >/dev/null
            ;;
        *) say "unknown scenario $scenario"; return 2 ;;
    esac
}

# Runs inside scripts/libvirtd.sh run: capture while the clients run.
inner() {
    local scenario=$1 out=$2
    rm -f "$out"
    local opts=(-q -i "${CAPTURE_IFACE:-lo}" -f "tcp port $VIRTWIRE_LIBVIRTD_PORT" -B 256 -w "$out")
    [ -n "${CAPTURE_LINKTYPE:-}" ] && opts+=(-y "$CAPTURE_LINKTYPE")
    [ "${CAPTURE_PCAP:-0}" = 1 ] && opts+=(-P)
    dumpcap "${opts[@]}" 2>"$VIRTWIRE_LIBVIRTD_RUNDIR/dumpcap.err" &
    local dc=$!
    # shellcheck disable=SC2064
    trap "kill -TERM $dc 2>/dev/null || true" EXIT
    local i
    for i in $(seq 1 100); do
        [ -s "$out" ] && break
        kill -0 "$dc" 2>/dev/null || { cat "$VIRTWIRE_LIBVIRTD_RUNDIR/dumpcap.err" >&2; return 1; }
        sleep 0.05
    done
    sleep 0.3
    scenario_clients "$scenario"
    sleep 0.5
    kill -TERM "$dc"
    wait "$dc" || true
    trap - EXIT
    if grep -qi 'dropped' "$VIRTWIRE_LIBVIRTD_RUNDIR/dumpcap.err" 2>/dev/null; then
        grep -i 'dropped' "$VIRTWIRE_LIBVIRTD_RUNDIR/dumpcap.err" >&2 || true
    fi
    say "$scenario: $(stat -c %s "$out") bytes in $out"
}

# libvirt's own port when it is free (so the traces decode without --port, and tshark's dissector
# picks them up by itself), else any free port. CAPTURE_PORT overrides.
pick_port() {
    if [ -n "${CAPTURE_PORT:-}" ]; then echo "$CAPTURE_PORT"; return; fi
    /usr/bin/python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", 16509)); print(16509)
except OSError:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

one() {
    local scenario=$1 out=$2
    mkdir -p "$(dirname "$out")"
    out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
    "$here/libvirtd.sh" run --port "$(pick_port)" --timeout 300 -- "$0" _inner "$scenario" "$out"
}

measure() {
    local file=${1:-${TMPDIR:-/tmp}/virtwire-big.pcapng} root
    root=$(cd "$here/.." && pwd)
    [ -s "$file" ] || { CAPTURE_BIG_DOMAINS=2000 CAPTURE_BIG_IOTHREADS=64 one big "$file"; }
    (cd "$root" && cargo build --release -q -p virtwire-conformance)
    local out; out=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$out'" RETURN
    run() {  # label, command...
        local label=$1; shift
        /usr/bin/time -v "$@" >"$out/stdout" 2>"$out/time" || true
        printf '%-28s %8s s  %8s KB peak RSS  %10s bytes out\n' "$label" \
            "$(awk -F': ' '/Elapsed/ {print $2}' "$out/time")" \
            "$(awk -F': ' '/Maximum resident/ {print $2}' "$out/time")" "$(stat -c %s "$out/stdout")"
    }
    echo "capture: $file ($(stat -c %s "$file") bytes)"
    run "virtwire decode --format json" "$root/target/release/virtwire" decode --format json "$file"
    local ours; ours=$(grep -o '"field":' "$out/stdout" | wc -l)
    run "virtwire decode --format text" "$root/target/release/virtwire" decode --format text "$file"
    if command -v tshark >/dev/null; then
        run "tshark -T json -J libvirt" tshark -r "$file" -T json --no-duplicate-keys -J libvirt
        local theirs; theirs=$(grep -o 'remote_typed_param.field' "$out/stdout" | wc -l)
        run "tshark -V -O libvirt" tshark -r "$file" -V -O libvirt
        echo "typed params decoded: virtwire $ours, tshark $theirs"
    fi
}

case ${1:-} in
    _inner) shift; inner "$@" ;;
    measure) shift; measure "$@" ;;
    all)
        dir=${2:?usage: capture.sh all DIR}
        for s in lifecycle domstats screenshot events keepalive errors; do
            one "$s" "$dir/$s.pcapng"
        done
        ;;
    big)
        out=${2:?usage: capture.sh big OUT.pcapng [DOMAINS [IOTHREADS]]}
        export CAPTURE_BIG_DOMAINS=${3:-2000} CAPTURE_BIG_IOTHREADS=${4:-64}
        one big "$out"
        ;;
    lifecycle|domstats|screenshot|events|keepalive|errors|list)
        one "$1" "${2:?usage: capture.sh $1 OUT.pcapng}"
        ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac
