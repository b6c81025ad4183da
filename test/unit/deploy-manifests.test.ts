import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';

// No Kubernetes schema validator (kubeconform, kubeval) is packaged for Debian or npm here, so this is
// the "YAML parse plus required fields" check: every manifest parses, has the fields the API server
// requires, and the objects agree with each other and with the gateway's own config schema.

// dist/test/unit/x.js -> repository root
const root = fileURLToPath(new URL('../../../', import.meta.url));
const k8sDir = path.join(root, 'deploy', 'kubernetes');
const composeDir = path.join(root, 'deploy', 'compose');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are free-form YAML, checked field by field below
type Obj = Record<string, any>;

interface Manifest {
  file: string;
  doc: Obj;
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(name)) out.push(p);
  }
  return out.sort();
}

function loadManifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of yamlFiles(k8sDir)) {
    const docs = parseAllDocuments(readFileSync(file, 'utf8'));
    assert.ok(Array.isArray(docs), `${file}: not a YAML stream`);
    for (const d of docs) {
      assert.deepEqual(
        d.errors.map((e) => e.message),
        [],
        `${file}: YAML errors`,
      );
      assert.deepEqual(
        d.warnings.map((e) => e.message),
        [],
        `${file}: YAML warnings`,
      );
      const doc = d.toJS() as Obj | null;
      if (doc !== null) out.push({ file: path.relative(root, file), doc });
    }
  }
  return out;
}

const manifests = loadManifests();
const workloads = manifests.filter((m) => m.doc['kind'] !== 'Kustomization');
const byKind = (kind: string) => workloads.filter((m) => m.doc['kind'] === kind).map((m) => m.doc);
const one = (kind: string, name?: string): Obj => {
  const found = byKind(kind).filter((d) => name === undefined || d['metadata']['name'] === name);
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` ${name}` : ''}`);
  return found[0]!;
};

const API_VERSIONS: Record<string, string> = {
  Namespace: 'v1',
  ServiceAccount: 'v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  Deployment: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
  ServiceMonitor: 'monitoring.coreos.com/v1',
  PrometheusRule: 'monitoring.coreos.com/v1',
};
const DNS_1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const deployment = one('Deployment', 'sftp-s3-gateway');
const podSpec: Obj = deployment['spec']['template']['spec'];
const podLabels: Record<string, string> = deployment['spec']['template']['metadata']['labels'];
const container: Obj = podSpec['containers'][0];
const configMap = one('ConfigMap', 'sftp-s3-gateway-config');
const gatewayYaml: string = configMap['data']['gateway.yaml'];

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** A Service targetPort (number or container port name) -> the container port number. */
function resolveTargetPort(target: number | string): number | undefined {
  const ports: Obj[] = container['ports'];
  if (typeof target === 'number') return ports.find((p) => p['containerPort'] === target)?.['containerPort'];
  return ports.find((p) => p['name'] === target)?.['containerPort'];
}

describe('deploy/kubernetes manifests', () => {
  it('every file parses and every object has apiVersion, kind, metadata.name and labels', () => {
    assert.ok(workloads.length >= 7, `only ${workloads.length} objects`);
    for (const { file, doc } of workloads) {
      const kind = doc['kind'];
      assert.equal(typeof kind, 'string', `${file}: kind`);
      assert.ok(kind in API_VERSIONS, `${file}: unexpected kind ${kind}`);
      assert.equal(doc['apiVersion'], API_VERSIONS[kind], `${file}: apiVersion of ${kind}`);
      const name = doc['metadata']?.['name'];
      assert.ok(
        typeof name === 'string' && DNS_1123.test(name) && name.length <= 63,
        `${file}: metadata.name ${name}`,
      );
      assert.equal(
        doc['metadata']['namespace'],
        undefined,
        `${file}: namespace is left to kubectl -n / kustomize`,
      );
      assert.ok(
        doc['metadata']['labels']?.['app.kubernetes.io/name'] ?? kind === 'Namespace',
        `${file}: labels`,
      );
      if (kind !== 'Namespace' && kind !== 'ConfigMap' && kind !== 'Secret' && kind !== 'ServiceAccount') {
        assert.ok(doc['spec'] && typeof doc['spec'] === 'object', `${file}: spec`);
      }
    }
  });

  it('the kustomization lists existing files and every core manifest', () => {
    const k = manifests.find((m) => m.doc['kind'] === 'Kustomization');
    assert.ok(k, 'kustomization.yaml');
    const resources: string[] = k.doc['resources'];
    for (const r of resources) assert.ok(existsSync(path.join(k8sDir, r)), `missing ${r}`);
    for (const f of [
      'deployment.yaml',
      'service.yaml',
      'configmap.yaml',
      'secret-host-keys.yaml',
      'poddisruptionbudget.yaml',
    ]) {
      assert.ok(resources.includes(f), `kustomization lacks ${f}`);
    }
  });

  it('Deployment: 2 replicas, selector matching the pod labels, the image, ports 2222 and 9100', () => {
    assert.equal(deployment['spec']['replicas'], 2);
    assert.ok(selects(deployment['spec']['selector']['matchLabels'], podLabels));
    assert.equal(container['image'], 'ghcr.io/sftp-s3-gateway/sftp-s3-gateway:latest');
    const ports = Object.fromEntries(
      (container['ports'] as Obj[]).map((p) => [p['name'], p['containerPort']]),
    );
    assert.deepEqual(ports, { ssh: 2222, metrics: 9100 });
    for (const p of container['ports'] as Obj[]) assert.equal(p['protocol'], 'TCP');
  });

  it('Deployment: probes on the metrics port, readiness /readyz, liveness /healthz', () => {
    const probePort = (probe: Obj) => {
      const port = probe['httpGet']['port'];
      return typeof port === 'number' ? port : resolveTargetPort(port);
    };
    assert.equal(container['readinessProbe']['httpGet']['path'], '/readyz');
    assert.equal(container['livenessProbe']['httpGet']['path'], '/healthz');
    assert.equal(probePort(container['readinessProbe']), 9100);
    assert.equal(probePort(container['livenessProbe']), 9100);
    if (container['startupProbe']) assert.equal(probePort(container['startupProbe']), 9100);
    const ann = deployment['spec']['template']['metadata']['annotations'];
    assert.equal(ann['prometheus.io/scrape'], 'true');
    assert.equal(Number(ann['prometheus.io/port']), 9100);
    assert.equal(ann['prometheus.io/path'], '/metrics');
  });

  it('Deployment: non-root, no privilege escalation, read-only root filesystem', () => {
    const pod = podSpec['securityContext'];
    assert.equal(pod['runAsNonRoot'], true);
    assert.ok(pod['runAsUser'] > 0);
    assert.ok(pod['runAsGroup'] > 0);
    const c = container['securityContext'];
    assert.equal(c['allowPrivilegeEscalation'], false);
    assert.equal(c['readOnlyRootFilesystem'], true);
    assert.deepEqual(c['capabilities']['drop'], ['ALL']);
    assert.ok(container['resources']['limits']['memory']);
  });

  it('Deployment: config from the ConfigMap, host keys from the Secret, SFTP_GATEWAY_CONFIG pointing at it', () => {
    const volumes = new Map((podSpec['volumes'] as Obj[]).map((v) => [v['name'], v]));
    const mounts: Obj[] = container['volumeMounts'];
    for (const m of mounts) assert.ok(volumes.has(m['name']), `mount of undefined volume ${m['name']}`);
    const cfgMount = mounts.find((m) => m['mountPath'] === '/etc/sftp-gateway/gateway.yaml');
    assert.ok(cfgMount, 'config mount');
    const cfgVolume = volumes.get(cfgMount['name'])!;
    assert.equal(cfgVolume['configMap']['name'], configMap['metadata']['name']);
    assert.ok(cfgMount['subPath'] in configMap['data'], 'subPath is a ConfigMap key');
    const env = Object.fromEntries((container['env'] as Obj[]).map((e) => [e['name'], e['value']]));
    assert.equal(env['SFTP_GATEWAY_CONFIG'], '/etc/sftp-gateway/gateway.yaml');

    const keyMount = mounts.find((m) => m['mountPath'] === '/etc/sftp-gateway/host-keys');
    assert.ok(keyMount, 'host keys mount');
    assert.equal(keyMount['readOnly'], true);
    const secretName = volumes.get(keyMount['name'])!['secret']['secretName'];
    const secret = one('Secret', secretName);
    const secretKeys = Object.keys({ ...secret['data'], ...secret['stringData'] });

    const cfg = parseYaml(gatewayYaml) as Obj;
    for (const hk of cfg['server']['hostKeys'] as string[]) {
      assert.equal(path.posix.dirname(hk), '/etc/sftp-gateway/host-keys', hk);
      assert.ok(secretKeys.includes(path.posix.basename(hk)), `Secret lacks ${path.posix.basename(hk)}`);
    }
    assert.equal(
      podSpec['serviceAccountName'],
      one('ServiceAccount', podSpec['serviceAccountName'])['metadata']['name'],
    );
  });

  it('Deployment: terminationGracePeriodSeconds is above the shutdown deadline', () => {
    const cfg = parseYaml(gatewayYaml) as Obj;
    const deadline: number = cfg['server']['shutdownDeadlineSeconds'];
    assert.equal(typeof deadline, 'number');
    assert.ok(podSpec['terminationGracePeriodSeconds'] > deadline + 5);
  });

  it('ConfigMap: gateway.yaml is a valid gateway config (s3 storage, PROXY protocol, metrics on the probe port)', () => {
    const config = parseConfig(gatewayYaml, '/etc/sftp-gateway/gateway.yaml');
    assert.equal(config.storage.type, 's3');
    assert.equal(config.server.port, resolveTargetPort('ssh'));
    assert.equal(config.server.proxyProtocol.enabled, true);
    assert.ok(config.server.proxyProtocol.trustedSources.length > 0);
    assert.ok(config.metrics !== false);
    assert.equal(config.metrics.port, 9100);
    assert.equal(config.metrics.host, '0.0.0.0', 'the kubelet must reach the probes');
    assert.ok(config.users.size >= 1);
  });

  it('Service: LoadBalancer, 22 -> 2222, externalTrafficPolicy Local, selecting the pods', () => {
    const svc = one('Service', 'sftp-s3-gateway');
    assert.equal(svc['spec']['type'], 'LoadBalancer');
    assert.equal(svc['spec']['externalTrafficPolicy'], 'Local');
    assert.ok(selects(svc['spec']['selector'], podLabels));
    const ports: Obj[] = svc['spec']['ports'];
    assert.equal(ports.length, 1, 'only SSH is exposed');
    assert.equal(ports[0]!['port'], 22);
    assert.equal(resolveTargetPort(ports[0]!['targetPort']), 2222);
  });

  it('Service and ConfigMap agree on PROXY protocol, and the LB health check is /readyz on the metrics port', () => {
    const svc = one('Service', 'sftp-s3-gateway');
    const annotations: Record<string, string> = svc['metadata']['annotations'] ?? {};
    const config = parseConfig(gatewayYaml, '/etc/sftp-gateway/gateway.yaml');
    const lbSendsProxy = annotations['service.beta.kubernetes.io/aws-load-balancer-proxy-protocol'] === '*';
    assert.equal(lbSendsProxy, config.server.proxyProtocol.enabled);
    if (lbSendsProxy) {
      assert.equal(annotations['service.beta.kubernetes.io/aws-load-balancer-healthcheck-path'], '/readyz');
      assert.equal(annotations['service.beta.kubernetes.io/aws-load-balancer-healthcheck-port'], '9100');
    }
  });

  it('PodDisruptionBudget: minAvailable 1 of the pods, below the replica count', () => {
    const pdb = one('PodDisruptionBudget');
    assert.equal(pdb['spec']['minAvailable'], 1);
    assert.ok(pdb['spec']['minAvailable'] < deployment['spec']['replicas']);
    assert.ok(selects(pdb['spec']['selector']['matchLabels'], podLabels));
  });

  it('optional ServiceMonitor: selects the metrics Service, whose port reaches 9100 on the pods', () => {
    const sm = one('ServiceMonitor');
    const metricsSvc = byKind('Service').find((s) =>
      selects(sm['spec']['selector']['matchLabels'], s['metadata']['labels']),
    );
    assert.ok(metricsSvc, 'a Service selected by the ServiceMonitor');
    assert.notEqual(metricsSvc['spec']['type'], 'LoadBalancer');
    assert.ok(selects(metricsSvc['spec']['selector'], podLabels));
    const endpoint: Obj = sm['spec']['endpoints'][0];
    const port = (metricsSvc['spec']['ports'] as Obj[]).find((p) => p['name'] === endpoint['port']);
    assert.ok(port, `Service port ${endpoint['port']}`);
    assert.equal(resolveTargetPort(port['targetPort']), 9100);
    assert.equal(endpoint['path'], '/metrics');
    // The LoadBalancer Service must not select the ServiceMonitor's labels (metrics stay in-cluster).
    assert.ok(
      !selects(
        sm['spec']['selector']['matchLabels'],
        one('Service', 'sftp-s3-gateway')['metadata']['labels'],
      ),
    );
  });

  it('optional PrometheusRule: alerts on metrics the gateway exports, with labels they have, from the ServiceMonitor\'s job', async () => {
    const rules: Obj[] = one('PrometheusRule')['spec']['groups'].flatMap((g: Obj) => g['rules']);
    assert.ok(rules.length > 0);
    // What a gateway exposes: its own registry (no store needed to know the names and label names).
    const metrics = new GatewayMetrics();
    const exported = new Map<string, { type: string; labelNames: string[] }>();
    for (const m of metrics.registry.getMetricsAsArray()) {
      const o = m as unknown as { name: string; type: string; labelNames?: string[] };
      exported.set(o.name, { type: String(o.type), labelNames: o.labelNames ?? [] });
    }
    const lookup = (name: string) => {
      const direct = exported.get(name);
      if (direct) return { labelNames: direct.labelNames };
      const base = /^(.*)_(bucket|count|sum)$/.exec(name);
      const h = base ? exported.get(base[1]!) : undefined;
      if (!h || !['histogram', 'summary'].includes(h.type)) return undefined;
      return { labelNames: base![2] === 'bucket' ? [...h.labelNames, 'le'] : h.labelNames };
    };
    const metricsService = byKind('Service').find((svc) =>
      selects(one('ServiceMonitor')['spec']['selector']['matchLabels'], svc['metadata']['labels']),
    );
    for (const rule of rules) {
      const what = String(rule['alert']);
      assert.match(what, /^SftpGateway[A-Za-z0-9]+$/);
      assert.equal(typeof rule['expr'], 'string', what);
      assert.ok(['critical', 'warning', 'info'].includes(rule['labels']?.['severity']), `${what}: severity`);
      assert.ok(rule['annotations']?.['summary'], `${what}: summary`);
      const expr: string = rule['expr'];
      for (const [, name, selector] of expr.matchAll(/\b((?:sftp_gateway|nodejs|process|up)\w*)(?:\{([^}]*)\})?/g)) {
        if (name === 'up') {
          // The Prometheus Operator names a ServiceMonitor's job after the Service it scrapes.
          assert.match(selector ?? '', new RegExp(`job="${metricsService!['metadata']['name']}"`), what);
          continue;
        }
        const m = lookup(name!);
        assert.ok(m, `${what}: ${name} is not a metric the gateway exports`);
        for (const [, label] of (selector ?? '').matchAll(/(\w+)\s*(?:=|!=|=~|!~)/g))
          assert.ok(m.labelNames.includes(label!), `${what}: ${name} has no label ${label}`);
      }
    }
  });
});

describe('deploy/compose', () => {
  const compose = parseYaml(readFileSync(path.join(composeDir, 'docker-compose.yml'), 'utf8')) as Obj;
  const services: Obj = compose['services'];
  const configText = readFileSync(path.join(composeDir, 'gateway.yaml'), 'utf8');

  it('runs the gateway, MinIO and a bucket-creating init container, in order', () => {
    for (const s of ['gateway', 'minio', 'minio-init']) assert.ok(services[s], s);
    assert.equal(services['minio-init']['depends_on']['minio']['condition'], 'service_healthy');
    assert.equal(
      services['gateway']['depends_on']['minio-init']['condition'],
      'service_completed_successfully',
    );
    assert.ok(services['minio']['healthcheck']);
    assert.equal(services['gateway']['build']['context'], '../..');
    for (const [name, svc] of Object.entries(services) as [string, Obj][]) {
      for (const v of (svc['volumes'] ?? []) as string[]) {
        const [source] = v.split(':');
        if (source!.startsWith('.'))
          assert.ok(existsSync(path.join(composeDir, source!)), `${name}: ${source}`);
        else assert.ok(source! in compose['volumes'], `${name}: undeclared volume ${source}`);
      }
    }
  });

  it('the gateway config is valid and agrees with the compose file', () => {
    const config = parseConfig(configText, path.join(composeDir, 'gateway.yaml'));
    const gw: Obj = services['gateway'];
    const mount = (gw['volumes'] as string[]).find((v) => v.startsWith('./gateway.yaml:'));
    assert.ok(mount);
    assert.equal(mount.split(':')[1], gw['environment']['SFTP_GATEWAY_CONFIG']);

    assert.equal(config.storage.type, 's3');
    if (config.storage.type !== 's3') return;
    assert.equal(new URL(config.storage.endpoint!).hostname, 'minio');
    assert.equal(config.storage.forcePathStyle, true);
    const env = services['minio']['environment'];
    assert.equal(config.storage.credentials?.accessKeyId, env['MINIO_ROOT_USER']);
    assert.equal(config.storage.credentials?.secretAccessKey, env['MINIO_ROOT_PASSWORD']);

    const published = (gw['ports'] as string[]).map((p) => Number(p.split(':').at(-1)));
    assert.ok(published.includes(config.server.port), 'SSH port published');
    assert.ok(config.metrics !== false);
    assert.ok(published.includes(config.metrics.port), 'metrics port published');
    assert.equal(config.metrics.host, '0.0.0.0');

    // The bucket the init container creates is the one the users live in.
    const initCmd = ([] as string[]).concat(services['minio-init']['command']).join(' ');
    const bucket = /mc mb (?:--ignore-existing )?local\/([a-z0-9.-]+)/.exec(initCmd)?.[1];
    assert.ok(bucket, 'mc mb in minio-init');
    for (const user of config.users.values()) {
      assert.equal(user.HomeDirectory?.split('/')[1], bucket, user.UserName);
    }
    // Host keys in the persistent volume, so the key survives `docker compose up --force-recreate`.
    const stateMount = (gw['volumes'] as string[])
      .find((v) => v.startsWith('gateway-state:'))!
      .split(':')[1]!;
    for (const hk of config.server.hostKeys) assert.ok(hk.startsWith(`${stateMount}/`), hk);
  });
});
