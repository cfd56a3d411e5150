#!/usr/bin/env python3
"""Build fuzz seeds from real captures.

    scripts/make-seeds.py [--port PORT]... [--protocol-dir DIR] [--max-stream BYTES] CAPTURE...

For every TCP connection on a libvirt port in each capture (pcap or pcapng), tshark's "follow tcp raw"
gives the byte stream of each direction. From those:
  corpus/header/<prog>-<PROC>-<type>-<status>.bin   one file per distinct (prog, proc, type, status):
                                                   a whole frame (the smallest seen)
  corpus/frame_stream/<capture>-<conn>-<dir>.bin    3-byte prefix + the direction's byte stream, cut at a
                                                   frame boundary to at most --max-stream bytes
The frame_stream prefix: byte 0 = 0x06 | (conn % 8) << 3 (current 32 MiB limits, libvirt mode, reads of up to
1 + 37 * (conn % 8) bytes), bytes 1-2 = chunking seed. See protocol/src/fuzzing/frame.rs.

Needs tshark. Procedure names come from the libvirt .x files (--protocol-dir or VIRTWIRE_PROTOCOL_DIR or
.cache/libvirt-*), numbers are used when they are missing.
"""
import argparse, glob, os, re, struct, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGS = {0x20008086: ("remote", "src/remote/remote_protocol.x", "REMOTE_PROC_"),
         0x20008087: ("qemu", "src/remote/qemu_protocol.x", "QEMU_PROC_"),
         0x00068000: ("lxc", "src/remote/lxc_protocol.x", "LXC_PROC_"),
         0x6b656570: ("keepalive", "src/rpc/virkeepaliveprotocol.x", "KEEPALIVE_PROC_"),
         0x06900690: ("admin", "src/admin/admin_protocol.x", "ADMIN_PROC_")}
TYPES = ["call", "reply", "message", "stream", "call_fds", "reply_fds", "hole"]
STATUS = ["ok", "error", "continue"]


def proc_names(pdir):
    names = {}
    if not pdir:
        return names
    for prog, (_, rel, prefix) in PROGS.items():
        try:
            text = open(os.path.join(pdir, rel)).read()
        except OSError:
            continue
        for m in re.finditer(r"\b" + prefix + r"(\w+)\s*=\s*(\d+)", text):
            names[(prog, int(m.group(2)))] = m.group(1)
    return names


def streams(capture, ports):
    """Yield (conn_index, direction, bytes) for each TCP stream touching one of the ports."""
    filt = " or ".join(f"tcp.port=={p}" for p in ports)
    out = subprocess.run(["tshark", "-r", capture, "-Y", filt, "-T", "fields", "-e", "tcp.stream"],
                         capture_output=True, text=True, check=True).stdout
    for idx in sorted({int(x) for x in out.split() if x.strip()}):
        raw = subprocess.run(["tshark", "-r", capture, "-q", "-z", f"follow,tcp,raw,{idx}"],
                             capture_output=True, text=True, check=True).stdout
        c2s, s2c, started = bytearray(), bytearray(), False
        for line in raw.splitlines():
            if line.startswith("Node 1:"):
                started = True
                continue
            if not started or line.startswith("=") or not line.strip():
                continue
            hexs = line.strip()
            if not re.fullmatch(r"[0-9a-fA-F]+", hexs):
                continue
            (s2c if line.startswith("\t") else c2s).extend(bytes.fromhex(hexs))
        yield idx, "c2s", bytes(c2s)
        yield idx, "s2c", bytes(s2c)


def well_formed(f):
    """A frame whose header libvirt serves (version 1 of a known program) and whose body is a whole
    number of XDR words (stream data is raw bytes: any length)."""
    prog, vers, _, typ = struct.unpack(">IIiI", f[4:20])
    return prog in PROGS and vers == 1 and (typ == 3 or (len(f) - 28) % 4 == 0)


def split_frames(data):
    at = 0
    while at + 28 <= len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        if n < 28 or at + n > len(data):
            break
        yield at, data[at:at + n]
        at += n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", action="append", type=int, default=[])
    ap.add_argument("--protocol-dir", default=os.environ.get("VIRTWIRE_PROTOCOL_DIR"))
    ap.add_argument("--max-stream", type=int, default=16384)
    ap.add_argument("--out", default=os.path.join(ROOT, "corpus"))
    ap.add_argument("captures", nargs="+")
    a = ap.parse_args()
    ports = a.port or [16509, 16514]
    pdir = a.protocol_dir or next(iter(sorted(glob.glob(os.path.join(ROOT, ".cache/libvirt-*")))), None)
    names = proc_names(pdir)
    hdir, sdir = os.path.join(a.out, "header"), os.path.join(a.out, "frame_stream")
    os.makedirs(hdir, exist_ok=True)
    os.makedirs(sdir, exist_ok=True)
    best = {}
    nstreams = 0
    for cap in a.captures:
        base = os.path.splitext(os.path.basename(cap))[0]
        for conn, d, data in streams(cap, ports):
            if not data:
                continue
            end = 0
            for at, f in split_frames(data):
                prog, _, proc, typ, _, status = struct.unpack(">IIiiIi", f[4:28])
                pname = PROGS.get(prog, (f"{prog:08x}",))[0]
                proc_s = names.get((prog, proc), str(proc))
                t = TYPES[typ] if 0 <= typ < len(TYPES) else f"type{typ}"
                s = STATUS[status] if 0 <= status < len(STATUS) else f"status{status}"
                key = f"{pname}-{proc_s}-{t}-{s}".lower()
                # The smallest well-formed frame names the body; a malformed one (a version libvirt
                # does not serve, a body that is no whole number of XDR words) is kept beside it,
                # so the plain name always reaches the body's decoder (and its value comparison).
                if not well_formed(f):
                    key += "-malformed"
                if key not in best or len(f) < len(best[key]):
                    best[key] = f
                if at + len(f) <= a.max_stream:
                    end = at + len(f)
            if end:
                with open(os.path.join(sdir, f"{base}-c{conn}-{d}.bin"), "wb") as fh:
                    # Chunk sizes up to 1 + 37 * (conn % 8): byte-wise for conn 0, up to 260 bytes.
                    fh.write(bytes([0x06 | (conn % 8) << 3, conn & 0xff, 0x5a]) + data[:end])
                nstreams += 1
    # Hostile frames seen in the field or built to sit on an edge (docs/protocol.md §2, §11).
    hdr = lambda prog, proc, t, serial, st: struct.pack(">IIiiIi", prog, 1, proc, t, serial, st)
    frame = lambda body: struct.pack(">I", 4 + len(body)) + body
    synthetic = {
        "synthetic-http-get": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "synthetic-sunrpc-record-mark": struct.pack(">I", 0x80000028) + bytes(40),
        "synthetic-length-too-small": struct.pack(">I", 3) + bytes(24),
        "synthetic-length-no-header": struct.pack(">I", 20) + bytes(16),
        "synthetic-length-over-32m": struct.pack(">I", 33554437) + hdr(0x20008086, 1, 0, 1, 0),
        "synthetic-keepalive-ping": frame(hdr(0x6b656570, 1, 2, 0, 0)),
        "synthetic-keepalive-pong": frame(hdr(0x6b656570, 2, 2, 0, 0)),
        "synthetic-call-with-fds-32": frame(hdr(0x20008086, 1, 4, 7, 0) + struct.pack(">I", 32)),
        "synthetic-call-with-fds-33": frame(hdr(0x20008086, 1, 4, 7, 0) + struct.pack(">I", 33)),
        "synthetic-unknown-type-7": frame(hdr(0x20008086, 1, 7, 1, 0)),
        "synthetic-call-status-error": frame(hdr(0x20008086, 1, 0, 1, 1)),
        "synthetic-stream-hole": frame(hdr(0x20008086, 208, 6, 5, 2) + struct.pack(">qI", 1 << 20, 0)),
        "synthetic-error-bool-2": frame(hdr(0x20008086, 1, 1, 1, 1) + struct.pack(">iiI", 1, 7, 2)
                                        + struct.pack(">I", 1) + b"x\0\0\0" + bytes(32)),
    }
    # Well-formed bodies whose values the differential oracle maps but that the captures lack
    # (virsh asks CONNECT_GET_URI only of a probed URI): built here so each mapped body has a seed.
    xstr = lambda b: struct.pack(">I", len(b)) + b + bytes((4 - len(b) % 4) % 4)
    built = {
        "remote-connect_get_uri-reply-ok": frame(hdr(0x20008086, 110, 1, 3, 0) + xstr(b"test:///default")),
    }
    for key, f in built.items():
        best.setdefault(key, f)
    for key, f in synthetic.items():
        best[key] = f
    for key, f in best.items():
        with open(os.path.join(hdir, key + ".bin"), "wb") as fh:
            fh.write(f)
    # body / validate_vs_decode: byte 0 = 0x02 (current limits), then the frame without its length word.
    # differential_libvirt: the whole frame, as for header.
    nbody = 0
    for target in ("body", "validate_vs_decode", "differential_libvirt"):
        os.makedirs(os.path.join(a.out, target), exist_ok=True)
    for key, f in best.items():
        with open(os.path.join(a.out, "differential_libvirt", key + ".bin"), "wb") as fh:
            fh.write(f)
        if key.startswith("synthetic-") or len(f) < 28:
            continue
        nbody += 1
        for target in ("body", "validate_vs_decode"):
            with open(os.path.join(a.out, target, key + ".bin"), "wb") as fh:
                fh.write(b"\x02" + f[4:])
    print(f"make-seeds: {len(best)} header seeds, {nstreams} frame_stream seeds, {nbody} body seeds",
          file=sys.stderr)


if __name__ == "__main__":
    main()
