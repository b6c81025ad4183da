#!/usr/bin/env bash
# test/support/s3-server.sh DATA_DIR PORT [start|stop]
#
# The project's S3 test server (adapted from the team recipe start-s3.sh/stop-s3.sh).
# start (default): installs (if missing) and starts a single-node OpenStack Swift cluster
# (Debian 12 packages, Swift 2.30) with the s3api + tempauth middlewares,
# listening only on 127.0.0.1:
#   PORT    proxy-server (S3 endpoint)        PORT+1  object-server
#   PORT+2  container-server                  PORT+3  account-server
#   PORT+4  memcached
# plus swift-object-updater (every 30 s retries container-listing updates that timed out).
# (override the backend base with S3_BACKEND_PORT_BASE=N -> N..N+3).
# All configs, rings, data, logs and PID files live under DATA_DIR
# (except /etc/swift/swift.conf, which Swift 2.30 always reads from that fixed
# path; the Debian package ships it, it is only created here if missing).
# Creates bucket "test". Idempotent: if everything is already running it only
# checks health and prints the credentials. Progress goes to stderr; the last
# (only) stdout line is:
#   S3_ENDPOINT=http://127.0.0.1:PORT S3_ACCESS_KEY=test:tester S3_SECRET_KEY=testing
# Needs root only when packages must be installed (apt-get, Debian 12).
# stop: stops exactly the processes started for DATA_DIR (PID files in DATA_DIR/run, each checked
# against its command line so a recycled PID is never signalled); data is kept.
# Optional env: S3_PROXY_WORKERS (default 2), S3_OBJECT_WORKERS (default 2)
#   (0 = no forked workers, smallest footprint), S3_READY_TIMEOUT (default
#   90 s), S3_BUCKET (default test), S3_CHUNK_SIZE (default 65536),
#   S3_COMPAT (default 1): 1 = put the small "s3compat" WSGI shim (written to
#   DATA_DIR/lib/s3compat.py) around s3api so that current AWS SDKs work with
#   default settings (DeleteObjects without Content-MD5, aws-chunked
#   STREAMING-UNSIGNED-PAYLOAD-TRAILER uploads, x-amz-checksum-* verification,
#   PutObject If-None-Match: *). 0 = stock Swift s3api only.
#   S3_RAM (default 0): 1 = keep the objects in /dev/shm (tmpfs, if it supports user xattrs): no disk
#   fsync per object, for test suites on a busy disk. The stop action keeps them like any data.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 DATA_DIR PORT [start|stop]" >&2
    exit 2
fi
ACTION=${3:-start}
case "$ACTION" in start|stop) ;; *) echo "action must be start or stop" >&2; exit 2;; esac
PORT=$2
case "$PORT" in ''|*[!0-9]*) echo "PORT must be numeric" >&2; exit 2;; esac
mkdir -p "$1"
DATA_DIR=$(cd "$1" && pwd -P)
BASE=${S3_BACKEND_PORT_BASE:-$((PORT + 1))}
OBJ_PORT=$BASE; CONT_PORT=$((BASE + 1)); ACCT_PORT=$((BASE + 2)); MC_PORT=$((BASE + 3))
PROXY_WORKERS=${S3_PROXY_WORKERS:-2}
OBJECT_WORKERS=${S3_OBJECT_WORKERS:-2}
READY_TIMEOUT=${S3_READY_TIMEOUT:-90}
BUCKET=${S3_BUCKET:-test}
COMPAT=${S3_COMPAT:-1}
CHUNK=${S3_CHUNK_SIZE:-65536}
ACCOUNT="test"; S3USER="tester"; SECRET="testing"
ACCESS_KEY="$ACCOUNT:$S3USER"
PY=/usr/bin/python3
ETC=$DATA_DIR/etc; LIB=$DATA_DIR/lib; SRV=$DATA_DIR/srv; LOG=$DATA_DIR/log; RUN=$DATA_DIR/run; CACHE=$DATA_DIR/cache
RUNUSER=$(id -un)
SERVERS="account container object proxy"   # start order (memcached first)
ALL="memcached $SERVERS object-updater"     # everything we run (stopped in reverse order)
PKGS="swift swift-proxy swift-account swift-container swift-object python3-swift memcached"
T0=$(date +%s.%N)

log() { echo "[start-s3 $(date +%T)] $*" >&2; }
die() { echo "[start-s3] ERROR: $*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# Clean environment for everything we launch (no pyenv / PYTHONPATH leakage,
# no proxies for loopback traffic).
SAFE_ENV=(env -u PYTHONPATH -u PYTHONHOME -u PYTHONSTARTUP -u http_proxy -u https_proxy
          -u HTTP_PROXY -u HTTPS_PROXY -u all_proxy -u ALL_PROXY
          PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8)

mkdir -p "$ETC" "$LIB" "$SRV" "$LOG" "$RUN" "$CACHE"
exec 9>"$RUN/.lock"
flock -w 600 9 || die "could not get lock $RUN/.lock"

# ---------------------------------------------------------------- packages
install_packages() {
    local missing="" p
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    [ "$(id -u)" = 0 ] || die "packages missing ($missing) and not root"
    local t tmp_policy=0
    t=$(date +%s.%N)
    log "installing:$missing"
    # never let the Debian postinst scripts start the stock services
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; tmp_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    local apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300
                    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    if ! apt-cache show swift-proxy >/dev/null 2>&1 || ! apt-get install "${apt_opts[@]}" $missing >"$LOG/apt.log" 2>&1; then
        log "apt-get install failed or package lists missing; running apt-get update"
        apt-get update -q -o DPkg::Lock::Timeout=300 >>"$LOG/apt.log" 2>&1 || true
        apt-get install "${apt_opts[@]}" $missing >>"$LOG/apt.log" 2>&1 || rc=$?
    fi
    if [ "$tmp_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
    [ "$rc" = 0 ] || { tail -20 "$LOG/apt.log" >&2; die "apt-get install failed (see $LOG/apt.log)"; }
    log "packages installed in $(elapsed "$t") s"
}

# ---------------------------------------------------------------- process helpers
# PID files: line 1 = pid, line 2 = a string that must appear in /proc/PID/cmdline
alive() {       # pid -> 0 if it exists and is not a zombie
    local st
    [ -n "$1" ] && st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
group_alive() { # pgid -> 0 if a live (non-zombie) process is in that process group
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v g="$1" '{ s = $0; sub(/.*\) /, "", s); split(s, a, " ")
        if (a[3] == g && a[1] != "Z" && a[1] != "X") f = 1 } END { exit !f }'
}
pid_alive() {   # name -> 0 if the recorded process is alive and is ours
    local f="$RUN/$1.pid" pid marker
    [ -f "$f" ] || return 1
    pid=$(sed -n 1p "$f"); marker=$(sed -n 2p "$f")
    alive "$pid" || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

stop_one() {    # name
    local f="$RUN/$1.pid" pid i
    [ -f "$f" ] || return 0
    if pid_alive "$1"; then
        pid=$(sed -n 1p "$f")
        log "stopping $1 (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
        # it was started as a session/process-group leader (pgid == pid):
        # make sure no forked worker of it survives
        for _ in $(seq 1 30); do group_alive "$pid" || break; sleep 0.1; done
        group_alive "$pid" && kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

stop_all() {
    local s
    for s in object-updater proxy object container account memcached; do stop_one "$s"; done
}

start_bg() {    # name marker logfile cmd...
    local name=$1 marker=$2 logfile=$3; shift 3
    echo "=== $(date -u +%FT%TZ) starting: $*" >>"$logfile"
    # new session (so signals to the caller's process group don't hit it);
    # exec keeps the PID, so $! is the server's PID.
    # 9>&- : the lock fd must not be inherited by the daemons
    "${SAFE_ENV[@]}" "$PY" -c 'import os,sys
try: os.setsid()
except OSError: pass
os.execvp(sys.argv[1], sys.argv[1:])' "$@" </dev/null >>"$logfile" 2>&1 9>&- &
    local pid=$!
    printf '%s\n%s\n' "$pid" "$marker" > "$RUN/$name.pid"
    # Until the forked subshell has exec'd, /proc/PID/cmdline is this script's own command line, so
    # pid_alive would call a server that is merely slow to be scheduled (a loaded machine) "exited during
    # startup". Wait for the exec (or the death) before anyone checks it.
    local _
    for _ in $(seq 1 200); do
        alive "$pid" || break
        tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" && break
        sleep 0.05
    done
}

port_free() {   # port -> 0 if nothing listens on 127.0.0.1:port
    "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(('127.0.0.1', int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# ---------------------------------------------------------------- S3 client helper
write_s3req() {
cat > "$ETC/s3req.py" <<'EOF'
#!/usr/bin/python3
"""Minimal SigV4 S3 request: s3req.py HOST PORT AK SK METHOD PATH -> prints HTTP status."""
import datetime, hashlib, hmac, http.client, sys
host, port, ak, sk, method, path = sys.argv[1:7]
region = 'us-east-1'
now = datetime.datetime.now(datetime.timezone.utc)
amzdate, day = now.strftime('%Y%m%dT%H%M%SZ'), now.strftime('%Y%m%d')
payload = hashlib.sha256(b'').hexdigest()
hosthdr = '%s:%s' % (host, port)
signed = 'host;x-amz-content-sha256;x-amz-date'
creq = '\n'.join([method, path, '', 'host:%s\nx-amz-content-sha256:%s\nx-amz-date:%s\n'
                  % (hosthdr, payload, amzdate), signed, payload])
scope = '%s/%s/s3/aws4_request' % (day, region)
sts = '\n'.join(['AWS4-HMAC-SHA256', amzdate, scope, hashlib.sha256(creq.encode()).hexdigest()])
k = ('AWS4' + sk).encode()
for m in (day, region, 's3', 'aws4_request'):
    k = hmac.new(k, m.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
hdrs = {'Host': hosthdr, 'x-amz-date': amzdate, 'x-amz-content-sha256': payload,
        'Authorization': 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s'
                         % (ak, scope, signed, sig)}
if method == 'PUT':
    hdrs['Content-Length'] = '0'
try:
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request(method, path, headers=hdrs)
    r = c.getresponse()
    body = r.read()
    print(r.status)
    if r.status >= 300 and '-v' in sys.argv[7:]:
        sys.stderr.write(body.decode('utf-8', 'replace')[:500] + '\n')
except Exception as e:
    print('000')
    if '-v' in sys.argv[7:]:
        sys.stderr.write('%r\n' % e)
EOF
}
s3req() { "${SAFE_ENV[@]}" "$PY" "$ETC/s3req.py" 127.0.0.1 "$PORT" "$ACCESS_KEY" "$SECRET" "$@"; }

ensure_bucket() {
    local st i
    # Right after a restart the account and container servers can still answer 503 ("Please reduce
    # your request rate") while they warm up: retry those for up to 30 s; anything else is an error.
    for i in $(seq 1 60); do
        st=$(s3req PUT "/$BUCKET")
        [ "$st" = 503 ] || break
        sleep 0.5
    done
    case "$st" in 200|409) ;; *) s3req PUT "/$BUCKET" -v >/dev/null; die "CreateBucket $BUCKET returned HTTP $st";; esac
    for i in $(seq 1 60); do
        st=$(s3req HEAD "/$BUCKET")
        [ "$st" = 503 ] || break
        sleep 0.5
    done
    [ "$st" = 200 ] || die "HeadBucket $BUCKET returned HTTP $st"
}

print_result() {
    log "ready in $(elapsed "$T0") s; logs in $LOG, region us-east-1, path-style, bucket '$BUCKET'"
    echo "S3_ENDPOINT=http://127.0.0.1:$PORT S3_ACCESS_KEY=$ACCESS_KEY S3_SECRET_KEY=$SECRET"
}

# ---------------------------------------------------------------- main
if [ "$ACTION" = stop ]; then
    stop_all
    rm -f "$RUN/params"
    failed=0
    for s in $ALL; do pid_alive "$s" && { log "could not stop $s"; failed=1; }; done
    # A start right after this stop (a fault test's halt/resume) must find every port free: wait
    # until nothing listens on them any more.
    for p in "$PORT" "$OBJ_PORT" "$CONT_PORT" "$ACCT_PORT" "$MC_PORT"; do
        for _ in $(seq 1 100); do port_free "$p" && break; sleep 0.1; done
        port_free "$p" || { log "127.0.0.1:$p is still in use after stop"; failed=1; }
    done
    exit $failed
fi
install_packages
command -v swift-ring-builder >/dev/null || die "swift-ring-builder not found"
write_s3req

# anything that changes the generated configs forces a restart (incl. edits of this script)
PARAMS="port=$PORT obj=$OBJ_PORT cont=$CONT_PORT acct=$ACCT_PORT mc=$MC_PORT pw=$PROXY_WORKERS ow=$OBJECT_WORKERS user=$RUNUSER compat=$COMPAT chunk=$CHUNK script=$(md5sum < "${BASH_SOURCE[0]}" | cut -c1-12)"
all_running=1
for s in $ALL; do pid_alive "$s" || all_running=0; done
if [ "$all_running" = 1 ] && [ "$(cat "$RUN/params" 2>/dev/null)" = "$PARAMS" ] \
   && [ "$(s3req GET /)" = 200 ]; then
    log "already running"
    ensure_bucket
    print_result
    exit 0
fi

stop_all   # stop whatever is left of a previous (partial) start of ours
for p in "$PORT" "$OBJ_PORT" "$CONT_PORT" "$ACCT_PORT" "$MC_PORT"; do
    port_free "$p" || die "127.0.0.1:$p is already in use by another process"
done

# /etc/swift/swift.conf (hash prefix/suffix + storage policies) is read from a
# fixed path by Swift 2.30; Debian's swift package ships one.
if [ ! -f /etc/swift/swift.conf ]; then
    mkdir -p /etc/swift
    cat > /etc/swift/swift.conf <<'EOF'
[swift-hash]
swift_hash_path_suffix = changeme
swift_hash_path_prefix = changeme
[storage-policy:0]
name = Policy-0
default = yes
EOF
fi
POLICIES=$("$PY" - <<'EOF'
import configparser
c = configparser.ConfigParser(); c.read('/etc/swift/swift.conf')
idx = sorted(int(s.split(':')[1]) for s in c.sections() if s.startswith('storage-policy:'))
for s in c.sections():
    if s.startswith('storage-policy:') and c.get(s, 'policy_type', fallback='replication') != 'replication':
        raise SystemExit('non-replication policy %s in /etc/swift/swift.conf is not supported' % s)
print(' '.join(map(str, idx or [0])))
EOF
) || die "cannot use /etc/swift/swift.conf"

# ---- storage device: a directory with user xattr support
mkdir -p "$SRV"
xattr_ok() {
    "$PY" - "$1" <<'EOF'
import os, sys, tempfile
fd, p = tempfile.mkstemp(dir=sys.argv[1])
try:
    os.setxattr(p, 'user.swift.metadata', b'x' * 1024)
    assert os.getxattr(p, 'user.swift.metadata') == b'x' * 1024
except (OSError, AssertionError):
    sys.exit(1)
finally:
    os.close(fd); os.unlink(p)
EOF
}
ram_dir=/dev/shm/s3real-$(printf %s "$DATA_DIR" | md5sum | cut -c1-12)
if [ ! -e "$SRV/d1" ] && [ "${S3_RAM:-0}" = 1 ]; then
    mkdir -p "$ram_dir/d1"
    if xattr_ok "$ram_dir/d1"; then
        log "storing objects in $ram_dir/d1 (RAM, S3_RAM=1)"
        ln -s "$ram_dir/d1" "$SRV/d1"
    else
        rm -rf "$ram_dir"
        log "S3_RAM=1 but /dev/shm has no user xattr support: storing objects in $SRV"
    fi
fi
if [ ! -e "$SRV/d1" ]; then
    if xattr_ok "$SRV"; then
        mkdir -p "$SRV/d1"
    else
        alt=$ram_dir
        mkdir -p "$alt/d1"
        xattr_ok "$alt/d1" || die "no filesystem with user xattrs found (tried $SRV and $alt); use a DATA_DIR on ext4/xfs"
        log "WARNING: $SRV has no user xattr support; storing objects in $alt/d1 (RAM)"
        ln -s "$alt/d1" "$SRV/d1"
    fi
fi
xattr_ok "$SRV/d1/" || die "$SRV/d1 does not support user xattrs"

# ---- rings (1 replica, 1 device, part power 8); rebuilt only if params change
RINGPARAMS="pp=8 obj=$OBJ_PORT cont=$CONT_PORT acct=$ACCT_PORT policies=$POLICIES"
if [ "$(cat "$ETC/ring.params" 2>/dev/null)" != "$RINGPARAMS" ]; then
    log "building rings"
    rm -rf "$ETC"/*.builder "$ETC"/*.ring.gz "$ETC/backups"
    build_ring() {  # builder port   (swift-ring-builder exits 1 for mere warnings)
        cd "$ETC" || exit 1
        "${SAFE_ENV[@]}" swift-ring-builder "$1" create 8 1 1 >/dev/null || exit 2
        "${SAFE_ENV[@]}" swift-ring-builder "$1" add --region 1 --zone 1 --ip 127.0.0.1 \
            --port "$2" --device d1 --weight 100 >/dev/null || exit 2
        local rc=0
        "${SAFE_ENV[@]}" swift-ring-builder "$1" rebalance >/dev/null || rc=$?
        [ "$rc" -le 1 ] || exit 2
    }
    jobs_pids=()
    ( build_ring account.builder "$ACCT_PORT" ) & jobs_pids+=($!)
    ( build_ring container.builder "$CONT_PORT" ) & jobs_pids+=($!)
    for i in $POLICIES; do
        b=object.builder; [ "$i" = 0 ] || b="object-$i.builder"
        ( build_ring "$b" "$OBJ_PORT" ) & jobs_pids+=($!)
    done
    for j in "${jobs_pids[@]}"; do wait "$j" || die "building rings failed"; done
    echo "$RINGPARAMS" > "$ETC/ring.params"
fi

# ---- server configs
common_default() {  # port workers name
cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = $2
user = $RUNUSER
swift_dir = $ETC
devices = $SRV
mount_check = false
log_name = $3
log_level = INFO
recon_cache_path = $CACHE
EOF
}
{ common_default "$ACCT_PORT" 1 account-server; cat <<EOF

[pipeline:main]
pipeline = healthcheck account-server

[app:account-server]
use = egg:swift#account

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} > "$ETC/account-server.conf"

{ common_default "$CONT_PORT" 1 container-server; cat <<EOF

[pipeline:main]
pipeline = healthcheck container-server

[app:container-server]
use = egg:swift#container

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} > "$ETC/container-server.conf"

{ common_default "$OBJ_PORT" "$OBJECT_WORKERS" object-server; cat <<EOF

[pipeline:main]
pipeline = healthcheck object-server

[app:object-server]
use = egg:swift#object
network_chunk_size = $CHUNK
disk_chunk_size = $CHUNK

[object-updater]
interval = 30
concurrency = 2

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} > "$ETC/object-server.conf"

if [ "$COMPAT" = 1 ]; then
    PIPE_PRE="s3compat "; PIPE_POST=" s3compat_post"
    COMPAT_SECTIONS='[filter:s3compat]
paste.filter_factory = s3compat:filter_factory

[filter:s3compat_post]
paste.filter_factory = s3compat:post_filter_factory

'
    cat > "$LIB/s3compat.py" <<'PYEOF'
"""s3compat -- small WSGI shim in front of Swift 2.30's s3api so that current
AWS SDKs (which default to "flexible checksums") work unchanged.

Two filters, both pure WSGI (no Swift code is patched):
  s3compat       placed immediately before s3api
  s3compat_post  placed immediately after tempauth
What it changes:
 1. DeleteObjects (POST ?delete) without Content-MD5: adds Content-MD5
    (SDKs >= 3.729 send x-amz-checksum-crc32 instead; AWS accepts that).
 2. Bodies sent as aws-chunked with x-amz-content-sha256 =
    STREAMING-UNSIGNED-PAYLOAD-TRAILER (SDK default for stream bodies): the
    framing is decoded, the decoded length and the trailing checksum
    (crc32/sha1/sha256) are verified, Swift gets a plain chunked body.
 3. x-amz-checksum-crc32/-sha1/-sha256 request headers are verified
    (BadDigest on mismatch); crc32c/crc64nvme are accepted unverified.
 4. PutObject with If-None-Match: * is handed to Swift's native conditional
    PUT (412 if the key exists) instead of s3api's 501.
SigV4 is still checked by s3api + tempauth: s3api signs over the raw request
headers (eventlet's headers_raw), which are left untouched.
"""
import base64
import hashlib
import io
import zlib
from urllib.parse import parse_qs

from swift.common import swob
from swift.common.exceptions import ChunkReadError

STREAMING_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'
MAX_DELETE_BODY = 4 * 1024 * 1024


class _Crc32(object):
    def __init__(self):
        self.v = 0

    def update(self, data):
        self.v = zlib.crc32(data, self.v)

    def digest(self):
        return self.v.to_bytes(4, 'big')


HASHERS = {'crc32': _Crc32, 'sha1': hashlib.sha1, 'sha256': hashlib.sha256}


def _bad_digest(algo):
    return swob.HTTPUnprocessableEntity(
        body=('The %s you specified did not match the calculated checksum.'
              % algo.upper()).encode())


class ChecksumInput(object):
    """Verifies a checksum (from a header) when the body reaches EOF."""

    def __init__(self, raw, algo, expected_b64):
        self.raw, self.algo, self.expected = raw, algo, expected_b64.strip()
        self.h = HASHERS[algo]()
        self.done = False

    def _check(self, data):
        if data:
            self.h.update(data)
        elif not self.done:
            self.done = True
            if base64.b64encode(self.h.digest()).decode() != self.expected:
                raise _bad_digest(self.algo)
        return data

    def read(self, *args):
        return self._check(self.raw.read(*args))

    def readline(self, *args):
        return self._check(self.raw.readline(*args))

    def close(self):
        getattr(self.raw, 'close', lambda: None)()


class AwsChunkedReader(object):
    """Decodes an aws-chunked body (unsigned chunks + trailer)."""

    def __init__(self, raw, decoded_length, trailer):
        self.raw = raw
        self.left = 0
        self.eof = False
        self.total = 0
        self.expected_length = (int(decoded_length)
                                if decoded_length not in (None, '') else None)
        self.trailer = (trailer or '').strip().lower()
        algo = self.trailer[len('x-amz-checksum-'):] \
            if self.trailer.startswith('x-amz-checksum-') else None
        self.algo = algo
        self.h = HASHERS[algo]() if algo in HASHERS else None

    def _line(self):
        line = self.raw.readline(8192)
        if not line.endswith(b'\n'):
            raise ChunkReadError('truncated aws-chunked body')
        return line.rstrip(b'\r\n')

    def _finish(self):
        trailers = {}
        while True:
            line = self.raw.readline(8192)
            if line.strip() == b'':
                break
            k, _, v = line.decode('latin1').partition(':')
            trailers[k.strip().lower()] = v.strip()
        self.eof = True
        if self.expected_length is not None and \
                self.total != self.expected_length:
            raise swob.HTTPUnprocessableEntity(
                body=b'aws-chunked: decoded length does not match '
                     b'x-amz-decoded-content-length')
        if self.trailer and self.trailer not in trailers:
            raise swob.HTTPUnprocessableEntity(
                body=b'aws-chunked: announced trailer is missing')
        if self.h is not None:
            got = base64.b64encode(self.h.digest()).decode()
            if got != trailers[self.trailer]:
                raise _bad_digest(self.algo)

    def read(self, size=-1):
        while not self.eof and self.left == 0:
            hdr = self._line()
            if not hdr.strip():
                continue        # tolerate an empty line between chunks
            try:
                n = int(hdr.split(b';', 1)[0].strip(), 16)
            except ValueError:
                raise swob.HTTPUnprocessableEntity(body=b'malformed aws-chunked body')
            if n == 0:
                self._finish()
            else:
                self.left = n
        if self.eof:
            return b''
        want = self.left if size is None or size < 0 else min(size, self.left)
        data = self.raw.read(want)
        if not data:
            raise ChunkReadError('truncated aws-chunked body')
        self.left -= len(data)
        self.total += len(data)
        if self.h is not None:
            self.h.update(data)
        if self.left == 0 and self.raw.read(2) != b'\r\n':
            raise swob.HTTPUnprocessableEntity(body=b'malformed aws-chunked body')
        return data

    def close(self):
        getattr(self.raw, 'close', lambda: None)()


def _s3_error(start_response, status, code, message):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message></Error>' % (code, message)).encode()
    start_response(status, [('Content-Type', 'application/xml'),
                            ('Content-Length', str(len(body)))])
    return [body]


def _header_checksum(env):
    for algo in ('crc32', 'sha1', 'sha256'):
        v = env.get('HTTP_X_AMZ_CHECKSUM_' + algo.upper())
        if v:
            return algo, v
    return None, None


class S3Compat(object):
    def __init__(self, app, conf):
        self.app = app

    def __call__(self, env, start_response):
        method = env.get('REQUEST_METHOD')
        if 'HTTP_AUTHORIZATION' not in env and \
                'X-Amz-Credential' not in env.get('QUERY_STRING', ''):
            return self.app(env, start_response)     # not an S3 request
        qs = parse_qs(env.get('QUERY_STRING', ''), keep_blank_values=True)

        # 1. multi-object delete without Content-MD5
        if method == 'POST' and 'delete' in qs and \
                'HTTP_CONTENT_MD5' not in env:
            body = env['wsgi.input'].read(MAX_DELETE_BODY + 1)
            if len(body) > MAX_DELETE_BODY:
                return _s3_error(start_response, '400 Bad Request',
                                 'MalformedXML', 'Request body too large')
            algo, expected = _header_checksum(env)
            if algo and base64.b64encode(_digest(algo, body)).decode() \
                    != expected.strip():
                return _s3_error(
                    start_response, '400 Bad Request', 'BadDigest',
                    'The %s you specified did not match the calculated '
                    'checksum.' % algo.upper())
            env['HTTP_CONTENT_MD5'] = base64.b64encode(
                hashlib.md5(body).digest()).decode()
            env['wsgi.input'] = io.BytesIO(body)
            env['CONTENT_LENGTH'] = str(len(body))
            env.pop('HTTP_TRANSFER_ENCODING', None)

        # 2. aws-chunked, unsigned payload with trailing checksum
        elif env.get('HTTP_X_AMZ_CONTENT_SHA256') == STREAMING_TRAILER and \
                'aws-chunked' in env.get('HTTP_CONTENT_ENCODING', '').lower():
            ce = [p.strip() for p in env['HTTP_CONTENT_ENCODING'].split(',')
                  if p.strip() and p.strip().lower() != 'aws-chunked']
            if ce:
                env['HTTP_CONTENT_ENCODING'] = ', '.join(ce)
            else:
                del env['HTTP_CONTENT_ENCODING']
            env['wsgi.input'] = AwsChunkedReader(
                env['wsgi.input'],
                env.pop('HTTP_X_AMZ_DECODED_CONTENT_LENGTH', None),
                env.get('HTTP_X_AMZ_TRAILER'))
            # no Content-Length => s3api does not try to sha256 the body
            # (the signature covers the literal STREAMING-... value)
            env.pop('CONTENT_LENGTH', None)
            env['HTTP_TRANSFER_ENCODING'] = 'chunked'

        # 3. checksum request headers on uploads
        elif method in ('PUT', 'POST'):
            algo, expected = _header_checksum(env)
            if algo:
                env['wsgi.input'] = ChecksumInput(env['wsgi.input'], algo,
                                                  expected)

        # 4. PutObject If-None-Match: * -> Swift's native conditional PUT
        if method == 'PUT' and env.get('HTTP_IF_NONE_MATCH', '').strip() == '*' \
                and not any(k in env for k in (
                    'HTTP_IF_MATCH', 'HTTP_IF_MODIFIED_SINCE',
                    'HTTP_IF_UNMODIFIED_SINCE', 'HTTP_X_AMZ_COPY_SOURCE')) \
                and 'uploadId' not in qs and 'partNumber' not in qs:
            env['s3compat.if_none_match'] = env.pop('HTTP_IF_NONE_MATCH')
        return self.app(env, start_response)


def _digest(algo, body):
    h = HASHERS[algo]()
    h.update(body)
    return h.digest()


class S3CompatPost(object):
    """After auth: restore If-None-Match on the object PUT sent to Swift."""

    def __init__(self, app, conf):
        self.app = app

    def __call__(self, env, start_response):
        inm = env.get('s3compat.if_none_match')
        if inm is not None and env.get('REQUEST_METHOD') == 'PUT':
            parts = env.get('PATH_INFO', '').split('/', 4)
            if len(parts) == 5 and parts[4] and \
                    not parts[3].endswith('+segments') and \
                    'HTTP_X_COPY_FROM' not in env:
                env['HTTP_IF_NONE_MATCH'] = inm
        return self.app(env, start_response)


def filter_factory(global_conf, **local_conf):
    return lambda app: S3Compat(app, local_conf)


def post_filter_factory(global_conf, **local_conf):
    return lambda app: S3CompatPost(app, local_conf)
PYEOF
else
    PIPE_PRE=""; PIPE_POST=""; COMPAT_SECTIONS=""; rm -f "$LIB/s3compat.py"
fi

cat > "$ETC/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = $PROXY_WORKERS
user = $RUNUSER
swift_dir = $ETC
log_name = proxy-server
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats ${PIPE_PRE}s3api tempauth${PIPE_POST} copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
object_chunk_size = $CHUNK
client_chunk_size = $CHUNK
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
max_upload_part_num = 10000
min_segment_size = 5242880

${COMPAT_SECTIONS}[filter:tempauth]
use = egg:swift#tempauth
user_${ACCOUNT}_${S3USER} = $SECRET .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MC_PORT

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000
max_manifest_size = 33554432

[filter:dlo]
use = egg:swift#dlo

[filter:copy]
use = egg:swift#copy

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_object_versioning = true

[filter:symlink]
use = egg:swift#symlink

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:catch_errors]
use = egg:swift#catch_errors
EOF

# ---- start
MCUSER=(); [ "$(id -u)" = 0 ] && MCUSER=(-u root)
start_bg memcached "memcached -l 127.0.0.1 -p $MC_PORT" "$LOG/memcached.log" \
    /usr/bin/memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64 -t 1 "${MCUSER[@]}"
for s in $SERVERS; do
    extra=(); [ "$s" = proxy ] && [ "$COMPAT" = 1 ] && extra=(env "PYTHONPATH=$LIB")
    start_bg "$s" "swift-$s-server $ETC/$s-server.conf" "$LOG/$s.log" "${extra[@]}" "/usr/bin/swift-$s-server" "$ETC/$s-server.conf" -v
done
start_bg object-updater "swift-object-updater $ETC/object-server.conf" "$LOG/object-updater.log" \
    /usr/bin/swift-object-updater "$ETC/object-server.conf" -v
echo "$PARAMS" > "$RUN/params"

# ---- wait until it answers S3 requests
deadline=$(( $(date +%s) + READY_TIMEOUT ))
while :; do
    for s in $ALL; do
        pid_alive "$s" || { tail -30 "$LOG/$s.log" >&2 2>/dev/null; stop_all; die "$s exited during startup (log: $LOG/$s.log)"; }
    done
    st=$(s3req GET /)
    [ "$st" = 200 ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
        s3req GET / -v >/dev/null || true
        for s in proxy account container object; do echo "--- $s.log" >&2; tail -15 "$LOG/$s.log" >&2; done
        stop_all
        die "S3 endpoint not ready after ${READY_TIMEOUT}s (last HTTP status $st)"
    fi
    sleep 0.3
done
ensure_bucket
print_result
