import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

// No Docker engine runs here, so the Dockerfile is checked by construction: parsed into stages and
// instructions, then held to what the container must be (Node 24 LTS slim, multi-stage, native ssh2
// binding built and kept, production dependencies only, non-root, ports, health check, volumes, command).

const root = fileURLToPath(new URL('../../../', import.meta.url));

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Joins continuation lines, drops comments and blank lines, splits into stages; ARGs before FROM are substituted. */
export function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      line = line.slice(0, -1);
      let next = lines[++i]!.trim();
      while (next.startsWith('#') && i + 1 < lines.length) next = lines[++i]!.trim();
      line += ` ${next}`;
    }
    const m = /^(\w+)\s+(.*)$/s.exec(line);
    assert.ok(m, `line ${start}: not an instruction: ${line}`);
    const keyword = m[1]!.toUpperCase();
    const rest = m[2]!.replace(/\s+/g, ' ').trim();
    if (keyword === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(f, `line ${start}: bad FROM`);
      const from = f[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => {
        const v = args[(a ?? b)!];
        assert.ok(v !== undefined, `line ${start}: undefined ARG ${a ?? b}`);
        return v;
      });
      stages.push({ from, ...(f[2] ? { name: f[2] } : {}), instructions: [] });
      continue;
    }
    if (stages.length === 0) {
      assert.equal(keyword, 'ARG', `line ${start}: only ARG may come before the first FROM`);
      const [k, v] = rest.split('=', 2);
      args[k!] = v ?? '';
      continue;
    }
    stages.at(-1)!.instructions.push({ keyword, args: rest, line: start });
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
const { stages } = dockerfile;
const build = stages.find((s) => s.name === 'build');
const runtime = stages.at(-1)!;
const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const one = (stage: Stage, keyword: string) => {
  const found = all(stage, keyword);
  assert.equal(found.length, 1, `one ${keyword} in stage ${stage.name ?? stage.from}`);
  return found[0]!;
};
const runs = (stage: Stage) => all(stage, 'RUN').map((i) => i.args);
const indexOf = (stage: Stage, pred: (i: Instruction) => boolean) => stage.instructions.findIndex(pred);

describe('Dockerfile', () => {
  it('is multi-stage on Node 24 LTS slim (bookworm)', () => {
    assert.ok(stages.length >= 2, 'a build stage and a runtime stage');
    for (const s of stages) assert.equal(s.from, 'node:24-bookworm-slim', `stage ${s.name}`);
    assert.ok(build, 'a stage named build');
    assert.notEqual(runtime, build, 'the last stage is the runtime, not the build');
  });

  it('builds with the same commands as the README and CI: npm ci, npm run build', () => {
    const r = runs(build!);
    const ci = r.findIndex((c) => /\bnpm ci\b/.test(c) && !c.includes('--omit'));
    const compile = r.findIndex((c) => /\bnpm run build\b/.test(c));
    assert.ok(ci >= 0, 'npm ci (with dev dependencies: TypeScript) in the build stage');
    assert.ok(compile > ci, 'npm run build after npm ci');
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    assert.ok(pkg.scripts['build'], 'package.json has the build script the Dockerfile runs');
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    assert.match(readme, /\bnpm ci\b/);
    assert.match(readFileSync(path.join(root, '.ci/run'), 'utf8'), /\bnpm ci\b/);
  });

  it('builds ssh2s native binding (python3, make, g++) and checks it in both stages', () => {
    const apt = runs(build!).find((c) => c.includes('apt-get install'));
    assert.ok(apt, 'apt-get install in the build stage');
    for (const p of ['python3', 'make', 'g++']) assert.ok(apt.split(' ').includes(p), p);
    const check = (s: Stage) =>
      runs(s).some((c) => c.includes('require(\'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node\')'));
    assert.ok(check(build!), 'checked after pruning in the build stage');
    assert.ok(check(runtime), 'checked again in the runtime stage, after the copy');
    assert.ok(!runs(runtime).some((c) => c.includes('apt-get')), 'no compilers in the runtime image');
  });

  it('copies the postinstall script before npm ci when package.json has one', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const post = pkg.scripts['postinstall'];
    if (!post) return;
    const script = /node (\S+)/.exec(post)?.[1];
    assert.ok(script && existsSync(path.join(root, script)), `postinstall script ${script} exists`);
    const copied = indexOf(
      build!,
      (i) => i.keyword === 'COPY' && i.args.split(' ')[0] === path.dirname(script),
    );
    const ci = indexOf(build!, (i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
    assert.ok(copied >= 0 && copied < ci, `${path.dirname(script)} is copied before npm ci`);
  });

  it('ships production dependencies only: pruned in the build stage, copied with the compiled code', () => {
    assert.ok(
      runs(build!).some((c) => /npm prune --omit=dev|npm ci [^&]*--omit=dev/.test(c)),
      'dev dependencies removed in the build stage',
    );
    assert.ok(!runs(runtime).some((c) => /\bnpm (ci|install)\b/.test(c)), 'no install in the runtime stage');
    const copies = all(runtime, 'COPY').map((i) => i.args);
    for (const what of ['/app/node_modules', '/app/dist/src', '/app/package.json']) {
      assert.ok(
        copies.some((c) => c.startsWith('--from=build ') && c.includes(what)),
        `${what} copied from the build stage`,
      );
    }
    assert.ok(
      all(runtime, 'ENV').some((i) => /NODE_ENV=production/.test(i.args)),
      'NODE_ENV=production',
    );
  });

  it('runs as a non-root numeric user (uid 1000)', () => {
    const user = one(runtime, 'USER').args;
    const [uid, gid] = user.split(':');
    assert.equal(uid, '1000');
    if (gid !== undefined) assert.equal(gid, '1000');
    const userAt = indexOf(runtime, (i) => i.keyword === 'USER');
    const cmdAt = indexOf(runtime, (i) => i.keyword === 'CMD');
    assert.ok(userAt < cmdAt, 'USER before CMD');
    assert.ok(
      !runtime.instructions.slice(userAt).some((i) => i.keyword === 'USER' && /^(0|root)\b/.test(i.args)),
    );
  });

  it('exposes SSH 2222 and metrics 9100, as the Kubernetes Deployment and compose file do', () => {
    const ports = all(runtime, 'EXPOSE')
      .flatMap((i) => i.args.split(' '))
      .map((p) => p.replace(/\/tcp$/, ''));
    assert.deepEqual(ports.sort(), ['2222', '9100']);
    const deployment = parseYaml(
      readFileSync(path.join(root, 'deploy/kubernetes/deployment.yaml'), 'utf8'),
    ) as { spec: { template: { spec: { containers: { ports: { containerPort: number }[] }[] } } } };
    const containerPorts = deployment.spec.template.spec.containers[0]!.ports.map((p) =>
      String(p.containerPort),
    );
    assert.deepEqual(containerPorts.sort(), ['2222', '9100']);
  });

  it('has a HEALTHCHECK that fetches /healthz with node (no curl in the slim image)', () => {
    const hc = one(runtime, 'HEALTHCHECK').args;
    const cmd = /\bCMD (\[.*\])$/.exec(hc);
    assert.ok(cmd, 'exec form');
    const argv = JSON.parse(cmd[1]!) as string[];
    assert.equal(argv[0], 'node');
    assert.equal(argv[1], '-e');
    assert.match(argv[2]!, /fetch\(/);
    assert.match(argv[2]!, /process\.exit\(r\.ok \? 0 : 1\)/);
    const env = all(runtime, 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /SFTP_GATEWAY_HEALTH_URL=http:\/\/127\.0\.0\.1:9100\/healthz/);
    assert.match(hc, /--interval=\d+s/);
    assert.match(hc, /--timeout=\d+s/);
  });

  it('declares volumes for config and state, and runs the gateway with the config from /etc/sftp-gateway', () => {
    const volumes = all(runtime, 'VOLUME').flatMap((i) =>
      i.args.startsWith('[') ? (JSON.parse(i.args) as string[]) : i.args.split(' '),
    );
    assert.ok(volumes.includes('/etc/sftp-gateway'));
    assert.ok(volumes.includes('/var/lib/sftp-gateway'));
    assert.ok(
      runs(runtime).some((c) => c.includes('chown 1000:1000 /var/lib/sftp-gateway')),
      'the state volume is writable by uid 1000',
    );
    assert.deepEqual(JSON.parse(one(runtime, 'CMD').args), [
      'node',
      // A small young generation (memory with many uploads), a floor under the old generation's limit
      // (CPU per transfer), no pretenuring (memory while listing): the same flags as `npm start` and the bench.
      '--max-semi-space-size=2',
      '--initial-heap-size=64',
      '--no-allocation-site-pretenuring',
      'dist/src/main.js',
      '--config',
      '/etc/sftp-gateway/gateway.yaml',
    ]);
    assert.ok(existsSync(path.join(root, 'src/main.ts')), 'dist/src/main.js is built from src/main.ts');
  });

  it('copies only paths that exist and that .dockerignore keeps in the context', () => {
    const ignore = readFileSync(path.join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['.git', 'node_modules', 'dist', 'state', 'data']) {
      assert.ok(ignore.includes(must), `.dockerignore excludes ${must}`);
    }
    for (const copy of all(build!, 'COPY')) {
      const parts = copy.args.split(' ').filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(path.join(root, src)), `COPY source ${src} exists`);
        assert.ok(!ignore.includes(src), `COPY source ${src} is not excluded by .dockerignore`);
      }
    }
  });
});
