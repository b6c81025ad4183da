"""Logs in with paramiko (password, key, or key then password) and lists the home directory.

usage: login.py HOST PORT USER [--key FILE] [--password PW]
Prints one JSON line: {"ok": bool, "partial": [...allowed after the key...], "listing": [...], "error": str}
"""
import json
import socket
import sys
import threading

import paramiko
import logging, os
if os.environ.get("PDEBUG"): logging.basicConfig(level=logging.DEBUG)


def password_step(t, user, password):
    h = t.auth_handler
    event = threading.Event()
    h.auth_event = event
    h.auth_method = "password"
    h.username = user
    h.password = password
    m = paramiko.Message()
    m.add_byte(paramiko.common.cMSG_USERAUTH_REQUEST)
    m.add_string(user)
    m.add_string("ssh-connection")
    m.add_string("password")
    m.add_boolean(False)
    m.add_string(password)
    t._send_message(m)
    h.wait_for_response(event)


def main():
    host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    args = sys.argv[4:]
    key = args[args.index("--key") + 1] if "--key" in args else None
    password = args[args.index("--password") + 1] if "--password" in args else None
    out = {"ok": False}
    sock = socket.create_connection((host, port), timeout=10)
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=10)
        if key:
            pkey = paramiko.Ed25519Key.from_private_key_file(key)
            remaining = t.auth_publickey(user, pkey)
            out["partial"] = list(remaining)
        if password is not None and not t.is_authenticated():
            if key:
                # Second step as OpenSSH's client does it: only a USERAUTH_REQUEST on the same auth
                # handler. paramiko's auth_password() sends a new SERVICE_REQUEST first; ssh2's server
                # disconnected on that until scripts/patch-dependencies.mjs fixed it (that path is
                # tested by key_then_password.py).
                password_step(t, user, password)
            else:
                t.auth_password(user, password)
        if t.is_authenticated():
            sftp = paramiko.SFTPClient.from_transport(t)
            out["cwd"] = sftp.normalize(".")
            out["listing"] = sorted(sftp.listdir("."))
            out["ok"] = True
    except paramiko.AuthenticationException as e:
        out["error"] = f"auth: {e}"
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        t.close()
    print(json.dumps(out))


main()
