#!/usr/bin/env bash
# A private libvirtd (test driver only) on a free loopback TCP port, for captures and tests.
#
#   scripts/libvirtd.sh run [--port N] [--timeout SECS] -- COMMAND [ARGS...]
#       start a daemon, run COMMAND with VIRTWIRE_LIBVIRTD_PORT, VIRTWIRE_LIBVIRTD_URI
#       (test+tcp://127.0.0.1:PORT/default), VIRTWIRE_LIBVIRTD_RUNDIR and VIRTWIRE_LIBVIRTD_SOCK set,
#       stop the daemon whatever happens; COMMAND is killed after --timeout seconds (default 120).
#   scripts/libvirtd.sh start RUNDIR [PORT]   start one in RUNDIR (created), print its port
#   scripts/libvirtd.sh stop RUNDIR           stop the one started in RUNDIR
#
# How: its own config with listen_tcp on 127.0.0.1 and no auth,
# LIBVIRT_DRIVER_DIR pointing at an empty directory so no stateful driver (QEMU…) loads: only the
# test driver, which is built into libvirt.so. Ready = a real RPC round trip answers. Never listens
# anywhere but 127.0.0.1.
set -euo pipefail

say() { printf 'libvirtd.sh: %s\n' "$*" >&2; }

free_port() {
    # Ask the kernel for a free loopback port.
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
    local rundir=$1 port=${2:-}
    command -v libvirtd >/dev/null || { say "libvirtd not installed (scripts/setup.sh installs it)"; return 1; }
    [ -n "$port" ] || port=$(free_port)
    mkdir -p "$rundir"/{sock,empty-driver-dir,home,xdg}
    rundir=$(cd "$rundir" && pwd)
    cat >"$rundir/libvirtd.conf" <<EOF
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$port"
auth_tcp = "none"
auth_unix_rw = "none"
auth_unix_ro = "none"
unix_sock_dir = "$rundir/sock"
log_outputs = "3:file:$rundir/libvirtd.log"
max_client_requests = 20
EOF
    LIBVIRT_DRIVER_DIR=$rundir/empty-driver-dir HOME=$rundir/home XDG_RUNTIME_DIR=$rundir/xdg \
        libvirtd --daemon --listen --config "$rundir/libvirtd.conf" --pid-file "$rundir/libvirtd.pid"
    local i
    for i in $(seq 1 100); do
        if virsh -q -c "test+tcp://127.0.0.1:$port/default" uri >/dev/null 2>&1; then
            echo "$port" >"$rundir/port"
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    say "libvirtd did not answer on 127.0.0.1:$port within 10 s; log: $rundir/libvirtd.log"
    stop "$rundir"
    return 1
}

stop() {
    local rundir=$1 pid i
    [ -f "$rundir/libvirtd.pid" ] || return 0
    pid=$(cat "$rundir/libvirtd.pid" 2>/dev/null || true)
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$rundir/libvirtd.pid"; return 0; }
        sleep 0.1
    done
    say "libvirtd $pid did not stop on SIGTERM within 5 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$rundir/libvirtd.pid"
}

run() {
    local port="" timeout=120
    while [ $# -gt 0 ]; do
        case $1 in
            --port) port=$2; shift 2 ;;
            --timeout) timeout=$2; shift 2 ;;
            --) shift; break ;;
            *) say "unknown option $1"; return 2 ;;
        esac
    done
    [ $# -gt 0 ] || { say "run: no command"; return 2; }
    local rundir
    rundir=$(mktemp -d "${TMPDIR:-/tmp}/virtwire-libvirtd.XXXXXX")
    # shellcheck disable=SC2064
    trap "stop '$rundir'; rm -rf '$rundir'" EXIT INT TERM
    port=$(start "$rundir" "$port")
    VIRTWIRE_LIBVIRTD_PORT=$port \
    VIRTWIRE_LIBVIRTD_URI="test+tcp://127.0.0.1:$port/default" \
    VIRTWIRE_LIBVIRTD_RUNDIR=$rundir \
    VIRTWIRE_LIBVIRTD_SOCK=$rundir/sock/libvirt-sock \
        timeout --kill-after=5 "$timeout" "$@"
}

case ${1:-} in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    run) shift; run "$@" ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac
