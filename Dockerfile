# syntax=docker/dockerfile:1
#
# sftp-s3-gateway container: Node 24 LTS, non-root, production dependencies only.
#
#   docker build -t sftp-s3-gateway .
#   docker run -p 2222:2222 -p 127.0.0.1:9100:9100 \
#     -v ./gateway.yaml:/etc/sftp-gateway/gateway.yaml:ro -v sftp-state:/var/lib/sftp-gateway sftp-s3-gateway
#
# The config must listen on 0.0.0.0 (server.host, metrics.host) to be reachable from outside the container.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript and ssh2's native crypto binding ----------------------------------------
FROM ${NODE_IMAGE} AS build
# ssh2's install script builds sshcrypto.node (AES-GCM and ChaCha20-Poly1305 at OpenSSH speed) with node-gyp,
# for this Node and its OpenSSL major version (test/smoke-node24.sh builds it the same way and checks every
# cipher through it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The postinstall scripts patch ssh2 (scripts/patch-dependencies.mjs) and build the project's own addon,
# native/sha256 (SHA-256 of upload parts on libuv's thread pool): both must be there before npm ci.
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY native ./native
RUN npm ci --no-audit --no-fund \
 && node -e "require('./native/sha256/build/Release/sha256.node'); console.log('native/sha256: ok')"
# tsconfig also includes test/ and bench/; only src/ is needed (and copied) for the image.
COPY tsconfig.json ./
COPY src ./src
RUN npm run build
# Production dependencies only, keeping the binding built above (prune runs no install scripts).
RUN npm prune --omit=dev --no-audit --no-fund \
 && node -e "require('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node'); console.log('ssh2 native crypto binding: ok')"

# ---- runtime --------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    SFTP_GATEWAY_CONFIG=/etc/sftp-gateway/gateway.yaml \
    SFTP_GATEWAY_HEALTH_URL=http://127.0.0.1:9100/healthz
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/native/sha256/build/Release/sha256.node ./native/sha256/build/Release/sha256.node
# Fail the image build if a native binding did not survive the copy.
RUN node -e "require('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node'); require('./native/sha256/build/Release/sha256.node')" \
 && mkdir -p /etc/sftp-gateway /var/lib/sftp-gateway \
 && chown 1000:1000 /var/lib/sftp-gateway \
 && chmod 0750 /var/lib/sftp-gateway
# uid 1000 is the image's `node` user; numeric so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# Config (gateway.yaml, host keys) and state (generated host keys, spool files).
VOLUME ["/etc/sftp-gateway", "/var/lib/sftp-gateway"]
# 2222: SSH/SFTP; 9100: /metrics, /healthz, /readyz.
EXPOSE 2222 9100
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.SFTP_GATEWAY_HEALTH_URL).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM: stop accepting, let transfers finish up to server.shutdownDeadlineSeconds, abort the rest, exit 0.
STOPSIGNAL SIGTERM
# --max-semi-space-size=2: V8's young generation stays at 2 x 2 MiB instead of growing to 2 x 16 MiB
# under load: 64 concurrent 64 MiB uploads on S3 peaked 27 MiB lower at the same MB/s (bench,
# 2026-11-23). --initial-heap-size=64: a floor under the old generation's limit, so V8 stops running a
# full collection every few MiB of a transfer (a third less CPU per download).
# --no-allocation-site-pretenuring: V8 otherwise may start allocating S3 listing entries straight in the
# old generation, where they wait for a full collection (RSS +20-23 MiB instead of +13-17 while listing
# 100,000 entries on Node 24). src/main.ts says more. The bench and `npm start` use the same flags.
CMD ["node", "--max-semi-space-size=2", "--initial-heap-size=64", "--no-allocation-site-pretenuring", "dist/src/main.js", "--config", "/etc/sftp-gateway/gateway.yaml"]
