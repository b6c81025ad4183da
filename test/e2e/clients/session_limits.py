"""Session-level behaviour through paramiko. Usage: session_limits.py CHECK PORT KEYFILE USER

CHECK is one of: idle, channels, malformed. Prints a JSON line; exits non-zero on unexpected behaviour.
"""
import json
import socket
import struct
import sys
import time

import paramiko

check, port, keyfile, user = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def connect():
    t = paramiko.Transport(("127.0.0.1", port))
    t.connect(username=user, pkey=paramiko.Ed25519Key.from_private_key_file(keyfile))
    return t


if check == "idle":
    t = connect()
    sftp = paramiko.SFTPClient.from_transport(t)
    sftp.listdir(".")
    time.sleep(3.5)  # the test sets idleTimeoutSeconds: 2
    try:
        sftp.listdir(".")
        print(json.dumps({"idle": "still connected"}))
        sys.exit(1)
    except (EOFError, OSError, paramiko.SSHException) as e:
        print(json.dumps({"idle": "disconnected", "error": type(e).__name__}))

elif check == "channels":
    t = connect()
    opened = 0
    refused = None
    for i in range(4):  # the test sets maxChannelsPerConnection: 2
        try:
            ch = t.open_session(timeout=5)
            ch.invoke_subsystem("sftp")
            opened += 1
        except paramiko.ChannelException as e:
            refused = str(e)
            break
    print(json.dumps({"opened": opened, "refused": refused}))
    sys.exit(0 if opened == 2 and refused else 1)

elif check == "malformed":
    t = connect()
    ch = t.open_session()
    ch.invoke_subsystem("sftp")
    # INIT, then a packet that claims 4 GiB.
    ch.sendall(struct.pack(">IBI", 5, 1, 3))
    ch.sendall(struct.pack(">I", 0xFFFFFFF0) + b"\x05garbage")
    deadline = time.time() + 10
    closed = False
    while time.time() < deadline:
        if ch.recv_ready():
            ch.recv(65536)
            continue
        if ch.closed or ch.eof_received:
            closed = True
            break
        time.sleep(0.05)
    # The process must still serve new sessions.
    t2 = connect()
    sftp = paramiko.SFTPClient.from_transport(t2)
    listing = sftp.listdir(".")
    print(json.dumps({"channel_closed": closed, "new_session_ok": True, "entries": len(listing)}))
    sys.exit(0 if closed else 1)
