#!/usr/bin/python3
"""A small python-libvirt client for `virtwire check-client`: it does what an application does
through libvirt.so's remote driver (open, keepalive, list, look up, info, a screenshot stream,
close) against the URI given as its only argument.

    virtwire check-client -- python3 conformance/tests/clients/python_libvirt.py {uri}

Exit status: 0 when every call succeeded; 1 when libvirt reported an error (printed on stderr).
"""

import sys
import threading

import libvirt


def run_event_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


def main(uri):
    # libvirt prints errors itself by default; keep stderr to our one line per error.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    # Keepalive (and events) need an event loop: libvirt's default one, in a daemon thread.
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=run_event_loop, daemon=True).start()
    conn = libvirt.open(uri)
    try:
        # Detect a dead server within about 3 seconds (interval 1 s, 2 unanswered PINGs).
        conn.setKeepAlive(1, 2)
        names = [d.name() for d in conn.listAllDomains(0)]
        print("domains:", " ".join(names))
        dom = conn.lookupByName("test")
        state, maxmem, mem, vcpus, cputime = dom.info()
        print(f"test: state {state} memory {mem}/{maxmem} KiB vcpus {vcpus}")
        stream = conn.newStream(0)
        mime = dom.screenshot(stream, 0, 0)
        got = bytearray()
        stream.recvAll(lambda _st, data, acc: acc.extend(data) or 0, got)
        stream.finish()
        print(f"screenshot: {mime}, {len(got)} bytes")
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python_libvirt.py URI", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(main(sys.argv[1]))
    except libvirt.libvirtError as e:
        print(f"libvirt error: {e}", file=sys.stderr)
        sys.exit(1)
