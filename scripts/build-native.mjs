// Runs after `npm install` / `npm ci`: builds the project's own native addon, native/sha256 (SHA-256 of
// upload parts on libuv's thread pool, see src/storage/s3/async-sha256.ts), with the node-gyp that npm
// ships, as npm builds any package's addon. The addon is optional: where it cannot be built (no compiler),
// the gateway hashes parts on a worker thread instead, and this script only warns. .ci/run and the
// Dockerfile check that it loads.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dir = path.join(root, 'native', 'sha256');

function nodeGyp() {
  // npm passes its own node-gyp to lifecycle scripts; npm_execpath is npm-cli.js beside it otherwise.
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath &&
      path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((c) => c && existsSync(c));
}

const gyp = nodeGyp();
const result = gyp
  ? spawnSync(process.execPath, [gyp, 'rebuild', '--loglevel=warn'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
  : undefined;
if (result?.status === 0) {
  console.log('build-native: native/sha256 built');
} else {
  console.warn(
    `build-native: could not build native/sha256 (${gyp ? `node-gyp exited ${result?.status}` : 'node-gyp not found'}); ` +
      'upload parts will be hashed on a worker thread instead',
  );
}
