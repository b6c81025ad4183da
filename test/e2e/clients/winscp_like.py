"""paramiko plays WinSCP and checks exact SFTP status codes. Usage: winscp_like.py PORT KEYFILE USER WORKDIR

Prints one JSON line of results; exits non-zero on the first unexpected behaviour.
"""
import errno
import hashlib
import io
import json
import os
import sys
import time

import paramiko

port, keyfile, user, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
results = {}

transport = paramiko.Transport(("127.0.0.1", port))
transport.connect(username=user, pkey=paramiko.Ed25519Key.from_private_key_file(keyfile))
sftp = paramiko.SFTPClient.from_transport(transport)
home = sftp.normalize(".")
results["home"] = home


def expect_errno(fn, code, what):
    try:
        fn()
    except IOError as e:
        if e.errno != code:
            raise AssertionError(f"{what}: expected errno {code}, got {e.errno} ({e})")
        results[what] = str(e)
        return
    raise AssertionError(f"{what}: expected an error")


# WinSCP's upload: write name.filepart, delete the target, rename, then SETSTAT the mtime.
data = os.urandom(300_000)
with sftp.open("report.csv", "wb") as f:
    f.write(b"old version")
with sftp.open("report.csv.filepart", "wb") as f:
    f.set_pipelined(True)
    for i in range(0, len(data), 16384):  # FileZilla-sized blocks
        f.write(data[i : i + 16384])
# Plain SFTP v3 RENAME refuses an existing target (SSH_FX_FAILURE)...
expect_errno(lambda: sftp.rename("report.csv.filepart", "report.csv"), None, "rename-over-existing")
# ...so WinSCP removes the target first, then renames.
sftp.remove("report.csv")
sftp.rename("report.csv.filepart", "report.csv")
mtime = int(time.time()) - 3600
sftp.utime("report.csv", (mtime, mtime))
sftp.chmod("report.csv", 0o600)
with sftp.open("report.csv", "rb") as f:
    got = f.read()
assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), "content differs after rename"
results["winscp-upload"] = "ok"

# posix-rename@openssh.com overwrites.
with sftp.open("a.filepart", "wb") as f:
    f.write(b"new")
sftp.posix_rename("a.filepart", "report.csv")
with sftp.open("report.csv", "rb") as f:
    assert f.read() == b"new"
results["posix-rename"] = "ok"

# Exact status codes.
expect_errno(lambda: sftp.stat("no-such-file"), errno.ENOENT, "stat-missing")
expect_errno(lambda: sftp.open("no-such-file", "rb"), errno.ENOENT, "open-missing")
expect_errno(lambda: sftp.listdir(os.path.dirname(home)), errno.EACCES, "list-outside-home")
expect_errno(lambda: sftp.open(os.path.dirname(home) + "/other.txt", "wb"), errno.EACCES, "write-outside-home")
expect_errno(lambda: sftp.readlink("report.csv"), None, "readlink-unsupported")
expect_errno(lambda: sftp.symlink("report.csv", "link"), None, "symlink-unsupported")
sftp.mkdir("full")
with sftp.open("full/x", "wb") as f:
    f.write(b"x")
expect_errno(lambda: sftp.rmdir("full"), None, "rmdir-not-empty")
expect_errno(lambda: sftp.mkdir("full"), None, "mkdir-existing")
# Exclusive create (O_EXCL) of an existing file fails.
expect_errno(lambda: sftp.open("report.csv", "x"), None, "excl-existing")

# Append mode adds to the end.
with sftp.open("log.txt", "wb") as f:
    f.write(b"one\n")
with sftp.open("log.txt", "ab") as f:
    f.write(b"two\n")
with sftp.open("log.txt", "rb") as f:
    assert f.read() == b"one\ntwo\n", "append"
results["append"] = "ok"

# Out-of-order writes reach the store in offset order; a gap reads back as zeros.
with sftp.open("ooo.bin", "wb") as f:
    f.seek(8)
    f.write(b"BBBB")
    f.seek(0)
    f.write(b"AAAA")
with sftp.open("ooo.bin", "rb") as f:
    assert f.read() == b"AAAA\0\0\0\0BBBB", "out-of-order writes"
results["out-of-order"] = "ok"

# stat of a directory and of a file, and READDIR of many entries (several pages).
sftp.mkdir("many")
for i in range(250):
    with sftp.open(f"many/f{i:03d}", "wb") as f:
        f.write(b"z" * i)
names = sorted(sftp.listdir("many"))
assert names == [f"f{i:03d}" for i in range(250)], f"listing: {len(names)} entries"
attrs = {a.filename: a.st_size for a in sftp.listdir_attr("many")}
assert attrs["f123"] == 123
results["listing"] = len(names)

sftp.close()
transport.close()
print(json.dumps(results))
