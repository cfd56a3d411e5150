#!/usr/bin/python3
"""Clients for scripts/capture.sh (run with /usr/bin/python3: python3-libvirt lives there).

  capture-client.py world DOMAINS IOTHREADS OUT.xml   write a test-driver world of running domains
  capture-client.py lifecycle URI                     python-libvirt calls of a typical session
  capture-client.py domstats URI                      getAllDomainStats / domainListGetStats
  capture-client.py raw-errors HOST PORT              hand-made frames that libvirtd rejects

Only loopback addresses are ever given to it by capture.sh.
"""
import socket
import struct
import sys

REMOTE = 0x20008086


def world(n, k, out):
    with open(out, "w") as f:
        f.write("<node>\n")
        for i in range(1, n + 1):
            f.write(
                "<domain type='test'><name>dom%d</name>"
                "<uuid>%08x-0000-4000-8000-%012x</uuid>"
                "<memory>1048576</memory><vcpu>1</vcpu><iothreads>%d</iothreads>"
                "<os><type>hvm</type></os></domain>\n" % (i, i, i, k)
            )
        f.write("</node>\n")


def lifecycle(uri):
    import libvirt

    conn = libvirt.open(uri)
    conn.getLibVersion()
    conn.getVersion()
    conn.getType()
    conn.getHostname()
    conn.getCapabilities()
    conn.getInfo()
    for d in conn.listAllDomains():
        d.name()
        d.UUIDString()
        d.info()
        d.XMLDesc()
        d.isActive()
        d.autostart()
    dom = conn.lookupByName("test")
    dom.suspend()
    dom.resume()
    dom.setMemory(1048576)
    dom.vcpus()
    xml = (
        "<domain type='test'><name>virtwire-new</name><memory>65536</memory>"
        "<vcpu>1</vcpu><os><type>hvm</type></os></domain>"
    )
    new = conn.defineXML(xml)
    new.create()
    new.state()
    new.destroy()
    new.undefine()
    for n in conn.listAllNetworks():
        n.XMLDesc()
    for p in conn.listAllStoragePools():
        p.info()
        p.listVolumes()
    conn.listDefinedDomains()
    conn.close()


def domstats(uri):
    import libvirt

    conn = libvirt.open(uri)
    conn.getAllDomainStats()
    doms = conn.listAllDomains()[:2]
    conn.domainListGetStats(doms, libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_IOTHREAD)
    conn.close()


def frame(prog, vers, proc, mtype, serial, status, payload=b""):
    return struct.pack(">IIIiiIi", 28 + len(payload), prog, vers, proc, mtype, serial, status) + payload


def recv_frame(s):
    """One whole frame, or None on timeout / close."""
    buf = b""
    try:
        while len(buf) < 4:
            c = s.recv(4 - len(buf))
            if not c:
                return None
            buf += c
        (n,) = struct.unpack(">I", buf)
        while len(buf) < n:
            c = s.recv(n - len(buf))
            if not c:
                return None
            buf += c
    except socket.timeout:
        return None
    return buf


def raw_errors(host, port):
    s = socket.create_connection((host, int(port)), timeout=2)
    s.settimeout(1.0)
    serial = 0

    def call(prog, vers, proc, payload=b"", mtype=0, expect=True):
        nonlocal serial
        serial += 1
        s.sendall(frame(prog, vers, proc, mtype, serial, 0, payload))
        if expect:
            recv_frame(s)

    call(REMOTE, 1, 66)  # AUTH_LIST: OK
    call(REMOTE, 1, 273, struct.pack(">iI", 1, 0))  # LIST_ALL_DOMAINS before CONNECT_OPEN: error
    call(REMOTE, 1, 9999)  # unknown procedure
    call(0x12345678, 1, 1)  # unknown program
    call(REMOTE, 2, 1)  # wrong version
    name = b"test:///default"
    opn = struct.pack(">II", 1, len(name)) + name + b"\0" * (-len(name) % 4) + struct.pack(">I", 0)
    call(REMOTE, 1, 1, opn)  # CONNECT_OPEN: OK
    call(REMOTE, 1, 344, b"\0\0\0")  # GET_ALL_DOMAIN_STATS, 3-byte body: cannot decode
    call(REMOTE, 1, 344, struct.pack(">III", 0, 0, 0) + b"junk")  # trailing bytes: accepted
    call(REMOTE, 1, 60, struct.pack(">i", 10))  # SUPPORTS_FEATURE(keepalive)
    call(REMOTE, 1, 2, mtype=1, expect=False)  # a REPLY from a client: no answer
    call(REMOTE, 1, 2)  # CONNECT_CLOSE
    s.close()


def main():
    cmd = sys.argv[1]
    if cmd == "world":
        world(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif cmd == "lifecycle":
        lifecycle(sys.argv[2])
    elif cmd == "domstats":
        domstats(sys.argv[2])
    elif cmd == "raw-errors":
        raw_errors(sys.argv[2], sys.argv[3])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
