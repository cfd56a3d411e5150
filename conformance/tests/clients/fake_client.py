#!/usr/bin/python3
"""A fake libvirt client for check-client's own tests (conformance/tests/client_fake.rs): it speaks
just enough of the RPC protocol over TCP to run the session support/fake_client.rs writes, and it
misbehaves as told, so that each verdict of check-client can be seen to come out right.

    fake_client.py MODES URI        (MODES: comma-separated, e.g. "go" or "quiet,nokeepalive")

Session: CONNECT_SUPPORTS_FEATURE(VIR_DRV_FEATURE_PROGRAM_KEEPALIVE = 10) unless "nokeepalive",
CONNECT_OPEN, then CONNECT_LIST_ALL_DOMAINS (printing the names) or, with "screenshot",
DOMAIN_SCREENSHOT and its stream, then CONNECT_CLOSE. PINGs are answered once keepalive is on.

How it refuses what it cannot take (a bad length word, a closed connection, an error reply, a
value over its maximum):
  (default)   "error: WHAT" on stderr, exit 1 (a graceful refusal)
  go          a Go runtime panic and goroutine frames, exit 2
  python      an uncaught ValueError (traceback, exit 1)
  rust        a Rust panic, exit 101
Other modes:
  accept      no maxima checked; the names printed (an over-max name is shown)
  quiet       no maxima checked; nothing printed
  silent      an over-max value is dropped without a word (exit 0); names printed otherwise
  nokeepalive never asks for keepalive (and so never answers PINGs)
  badbool     CONNECT_OPEN's optional name flag encoded 0x01000000 (libvirt's xdr_bool takes it,
              strict XDR does not)
  flaky       a reply with a serial already answered crashes it (SIGSEGV) on every second such
              run (counted in the file $FAKE_CLIENT_COUNTER)
  screenshot  download a screenshot instead of listing domains
  nofinish    (with screenshot) stop after the first data packet, never finishing the stream
"""

import os
import signal
import socket
import struct
import sys

REMOTE = 0x20008086
KEEPALIVE = 0x6B656570
CALL, REPLY, MESSAGE, STREAM = 0, 1, 2, 3
OK, ERROR, CONTINUE = 0, 1, 2
FRAME_MAX = 32 * 1024 * 1024 + 4  # the largest length word: the message maximum + the word itself
STRING_MAX = 4194304
DOMAIN_LIST_MAX = 16384

MODES = set(sys.argv[1].split(",")) if len(sys.argv) == 3 else set()


def refuse(what):
    if "go" in MODES:
        sys.stderr.write(
            "panic: runtime error: makeslice: len out of range\n\n"
            "goroutine 1 [running]:\nmain.readFrame(...)\n\t/src/client/frame.go:42 +0x1d\n"
            "main.main()\n\t/src/client/main.go:17 +0x3c\n"
        )
        sys.exit(2)
    if "python" in MODES:
        raise ValueError(what)
    if "rust" in MODES:
        sys.stderr.write(
            "thread 'main' panicked at src/frame.rs:31:9:\n"
            f"{what}\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
        )
        sys.exit(101)
    sys.stderr.write(f"error: {what}\n")
    sys.exit(1)


class Conn:
    def __init__(self, uri):
        hostport = uri.split("://", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=None)
        self.serial = 0
        self.keepalive = False
        self.answered = set()

    def send(self, prog, proc, mtype, serial, status, body=b""):
        head = struct.pack(">IIiiII", prog, 1, proc, mtype, serial, status)
        self.s.sendall(struct.pack(">I", 4 + len(head) + len(body)) + head + body)

    def exact(self, n):
        buf = b""
        while len(buf) < n:
            got = self.s.recv(n - len(buf))
            if not got:
                refuse("the connection was closed")
            buf += got
        return buf

    def frame(self):
        (length,) = struct.unpack(">I", self.exact(4))
        if length < 28 or length > FRAME_MAX:
            refuse(f"bad length word {length}")
        data = self.exact(length - 4)
        prog, _vers, proc, mtype, serial, status = struct.unpack(">IIiiII", data[:24])
        return prog, proc, mtype, serial, status, data[24:]

    def next(self, want_serial):
        """The next frame for call want_serial (reply or stream), answering PINGs on the way."""
        while True:
            prog, proc, mtype, serial, status, body = self.frame()
            if prog == KEEPALIVE:
                if proc == 1 and self.keepalive:
                    self.send(KEEPALIVE, 2, MESSAGE, 0, OK)
                continue
            if mtype == MESSAGE:
                continue
            if serial != want_serial:
                if mtype == REPLY and serial in self.answered and "flaky" in MODES:
                    flaky_crash()
                continue
            return proc, mtype, status, body

    def call(self, proc, body=b""):
        self.serial += 1
        self.send(REMOTE, proc, CALL, self.serial, OK, body)
        _, mtype, status, reply = self.next(self.serial)
        if mtype != REPLY:
            refuse(f"a stream packet instead of the reply to call {proc}")
        if status != OK:
            refuse(f"the server answered call {proc} with an error")
        self.answered.add(self.serial)
        return reply


def flaky_crash():
    path = os.environ.get("FAKE_CLIENT_COUNTER")
    n = 0
    if path:
        try:
            with open(path) as f:
                n = int(f.read() or "0")
        except FileNotFoundError:
            n = 0
        with open(path, "w") as f:
            f.write(str(n + 1))
    if n % 2 == 1:
        os.kill(os.getpid(), signal.SIGSEGV)


def xdr_string(s):
    pad = (4 - len(s) % 4) % 4
    return struct.pack(">I", len(s)) + s + b"\0" * pad


class Body:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def u32(self):
        if self.i + 4 > len(self.d):
            refuse("the reply is too short")
        (v,) = struct.unpack(">I", self.d[self.i : self.i + 4])
        self.i += 4
        return v

    def opaque(self, n):
        if self.i + n > len(self.d):
            refuse("the reply is too short")
        v = self.d[self.i : self.i + n]
        self.i += (n + 3) // 4 * 4
        return v


def list_domains(c):
    check = not ({"accept", "quiet", "silent"} & MODES)
    b = Body(c.call(273, struct.pack(">iI", 1, 0)))
    count = b.u32()
    if check and count > DOMAIN_LIST_MAX:
        refuse(f"{count} domains is over REMOTE_DOMAIN_LIST_MAX")
    if "silent" in MODES and count > DOMAIN_LIST_MAX:
        return
    names = []
    for _ in range(count):
        n = b.u32()
        if check and n > STRING_MAX:
            refuse(f"a domain name of {n} bytes is over REMOTE_STRING_MAX")
        name = b.opaque(n)
        b.opaque(16)
        b.u32()
        if "silent" in MODES and n > STRING_MAX:
            continue
        names.append(name.decode("latin-1"))
    if "quiet" not in MODES:
        print("domains:", " ".join(names))


def screenshot(c):
    dom = xdr_string(b"test") + b"\x11" * 16 + struct.pack(">i", 1)
    c.call(211, dom + struct.pack(">II", 0, 0))
    got = 0
    while True:
        _, mtype, status, data = c.next(c.serial)
        if mtype != STREAM:
            refuse("not a stream packet")
        if status == ERROR:
            refuse("the stream failed")
        if status == OK or not data:
            break  # an empty data packet is the end of the stream
        got += len(data)
        if "nofinish" in MODES:
            print(f"screenshot: {got} bytes, not finished")
            return
    c.send(REMOTE, 211, STREAM, c.serial, OK)
    _, mtype, status, _ = c.next(c.serial)
    if mtype != STREAM or status != OK:
        refuse("the stream did not finish")
    print(f"screenshot: {got} bytes")


def main(uri):
    c = Conn(uri)
    if "nokeepalive" not in MODES:
        c.keepalive = Body(c.call(60, struct.pack(">i", 10))).u32() == 1
    flag = 0x01000000 if "badbool" in MODES else 1
    c.call(1, struct.pack(">I", flag) + xdr_string(b"test:///default") + struct.pack(">I", 0))
    if "screenshot" in MODES:
        screenshot(c)
    else:
        list_domains(c)
    c.call(2)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: fake_client.py MODES URI", file=sys.stderr)
        sys.exit(64)
    sys.exit(main(sys.argv[2]))
