"""Key then password with paramiko's own calls: t.auth_publickey() then t.auth_password().

Each auth_*() call sends a new SSH_MSG_SERVICE_REQUEST("ssh-userauth") before its USERAUTH_REQUEST, so this
is the client that needs the server to accept a repeated service request (as OpenSSH's sshd does).

usage: key_then_password.py HOST PORT USER KEYFILE PASSWORD [PASSWORD ...]
Tries the passwords in order after the key (a wrong one first shows a third SERVICE_REQUEST is fine too).
Prints one JSON line: {"partial": [...], "attempts": [...], "authenticated": bool, "cwd": str, "error": str}
"""
import json
import socket
import sys

import paramiko


def main():
    host, port, user, keyfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    passwords = sys.argv[5:]
    out = {"authenticated": False, "attempts": []}
    sock = socket.create_connection((host, port), timeout=10)
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=10)
        out["partial"] = list(t.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(keyfile)))
        for pw in passwords:
            try:
                remaining = t.auth_password(user, pw)
                out["attempts"].append({"ok": True, "remaining": list(remaining)})
                break
            except paramiko.AuthenticationException as e:
                out["attempts"].append({"ok": False, "error": f"{type(e).__name__}: {e}"})
        out["authenticated"] = t.is_authenticated()
        if t.is_authenticated():
            sftp = paramiko.SFTPClient.from_transport(t)
            out["cwd"] = sftp.normalize(".")
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        t.close()
    print(json.dumps(out))


main()
