/**
 * The Kubernetes manifests parse and reference each other consistently: selectors, ports, the
 * ConfigMap and its key, probe paths the gateway really serves, the sidecar's DNS name in the
 * gateway config, autoscaler and disruption-budget targets, and the PrometheusRule copy.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { buildConfig } from '../../src/config/index.js';
import { REPO_ROOT, startGateway, type TestGateway } from '../helpers/start-gateway.js';
import { DEPLOY, yamlDocuments } from './deploy-files.js';

type Doc = Record<string, unknown> & {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};
type Labels = Record<string, string>;
interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: { allowPrivilegeEscalation?: boolean };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
  grpc?: { port: number; service?: string };
  tcpSocket?: { port: string | number };
}
interface PodSpec {
  containers: Container[];
  securityContext?: { runAsNonRoot?: boolean };
  volumes?: { name: string; configMap?: { name: string; items?: { key: string; path: string }[] } }[];
}

const K8S = join(DEPLOY, 'k8s');
const files = readdirSync(K8S).filter((f) => f.endsWith('.yaml'));
const docs = files
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((f) => yamlDocuments(`deploy/k8s/${f}`)) as Doc[];

function all(kind: string): Doc[] {
  return docs.filter((d) => d.kind === kind);
}
function one(kind: string, name: string): Doc {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name === name);
  assert.ok(doc, `${kind}/${name} missing`);
  return doc;
}
function spec<T>(doc: Doc): T {
  return doc['spec'] as T;
}
function podSpec(deployment: Doc): PodSpec {
  return spec<{ template: { spec: PodSpec } }>(deployment).template.spec;
}
function podLabels(deployment: Doc): Labels {
  return spec<{ template: { metadata: { labels: Labels } } }>(deployment).template.metadata.labels;
}
function matches(selector: Labels, labels: Labels): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
/** Deployments whose pods a selector picks. */
function selected(selector: Labels): Doc[] {
  return all('Deployment').filter((d) => matches(selector, podLabels(d)));
}
function configFromMap(key: string): ReturnType<typeof buildConfig> {
  const data = one('ConfigMap', 'tiergate-config')['data'] as Record<string, string>;
  const raw = parse(data[key] ?? '') as Record<string, unknown>;
  return buildConfig(raw, { baseDir: K8S, env: {} });
}
function gatewayConfig(): ReturnType<typeof buildConfig> {
  return configFromMap('tiergate.yaml');
}

describe('deploy/k8s', () => {
  it('kustomization lists every manifest and every object is in the tiergate namespace', () => {
    const [kustomization] = yamlDocuments('deploy/k8s/kustomization.yaml');
    const resources = (kustomization?.['resources'] as string[]).sort();
    assert.deepEqual(resources, files.filter((f) => f !== 'kustomization.yaml').sort());
    for (const doc of docs.filter((d) => d.kind !== 'Namespace')) {
      assert.equal(doc.metadata.namespace, 'tiergate', `${doc.kind}/${doc.metadata.name}`);
    }
  });

  it('each Deployment selector matches its pod labels; pods run as non-root', () => {
    assert.deepEqual(
      all('Deployment')
        .map((d) => d.metadata.name)
        .sort(),
      ['tiergate-gateway', 'tiergate-main-worker', 'tiergate-sidecar'],
    );
    for (const d of all('Deployment')) {
      const selector = spec<{ selector: { matchLabels: Labels } }>(d).selector.matchLabels;
      assert.ok(matches(selector, podLabels(d)), d.metadata.name);
      assert.equal(podSpec(d).securityContext?.runAsNonRoot, true);
      for (const c of podSpec(d).containers) assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    }
  });

  it('each Service selects exactly one Deployment and targets a named container port', () => {
    for (const service of all('Service')) {
      const s = spec<{ selector: Labels; ports: { name: string; port: number; targetPort: string }[] }>(
        service,
      );
      const [deployment, ...others] = selected(s.selector);
      assert.ok(deployment && others.length === 0, `${service.metadata.name} selects one Deployment`);
      const ports = podSpec(deployment).containers.flatMap((c) => c.ports ?? []);
      for (const port of s.ports) {
        const target = ports.find((p) => p.name === port.targetPort);
        assert.ok(target, `${service.metadata.name}: no container port ${port.targetPort}`);
        assert.equal(port.port, target.containerPort);
      }
    }
  });

  it('each Deployment loads the ConfigMap key it mounts; the configs validate', () => {
    const data = one('ConfigMap', 'tiergate-config')['data'] as Record<string, string>;
    for (const d of all('Deployment')) {
      const volume = podSpec(d).volumes?.find((v) => v.configMap !== undefined);
      if (volume === undefined) continue;
      assert.equal(volume.configMap?.name, 'tiergate-config');
      const [container] = podSpec(d).containers;
      const mount = container?.volumeMounts?.find((m) => m.name === volume.name);
      const [item, ...more] = volume.configMap?.items ?? [];
      assert.ok(item && more.length === 0 && item.key in data, `${d.metadata.name}: ConfigMap key`);
      const file = `${mount?.mountPath}/${item.path}`;
      const args = container?.args ?? [];
      assert.equal(args[args.indexOf('--config') + 1], file, `${d.metadata.name}: --config`);
      configFromMap(item.key); // throws with the validator's messages
    }
    const [gateway] = podSpec(one('Deployment', 'tiergate-gateway')).containers;
    const file = '/etc/tiergate/tiergate.yaml';
    assert.equal(gateway?.env?.find((e) => e.name === 'TIERGATE_CONFIG')?.value, file);
    const config = gatewayConfig();
    assert.equal(config.server.host, '0.0.0.0');
    assert.equal(config.server.port, gateway?.ports?.find((p) => p.name === 'http')?.containerPort);
    assert.equal(config.grpc.enabled, true);
    assert.equal(config.grpc.port, gateway?.ports?.find((p) => p.name === 'grpc')?.containerPort);
    assert.ok(Object.keys(config.routing.policies).length > 0, 'policies ship in the ConfigMap');
  });

  it('every remote tier names a headless Service whose pods serve that tier on that port', () => {
    const remotes = Object.entries(gatewayConfig().tiers).filter(([, t]) => t.kind === 'remote');
    assert.deepEqual(remotes.map(([name]) => name).sort(), ['fallback', 'main']);
    for (const [name, tier] of remotes) {
      assert.ok('address' in tier && tier.address !== undefined, name);
      assert.equal(tier.resolve, true, `${name}: resolve the headless Service to every pod`);
      const [host, port] = tier.address.split(':');
      const service = one('Service', host ?? '');
      const s = spec<{ clusterIP?: string; selector: Labels; ports: { port: number }[] }>(service);
      assert.equal(s.clusterIP, 'None', `${host} is headless`);
      assert.ok(s.ports.some((p) => p.port === Number(port)));
      const [deployment] = selected(s.selector);
      assert.ok(deployment);
      const container = podSpec(deployment).containers[0];
      const args = container?.args ?? [];
      const listen = args.includes('--listen')
        ? args[args.indexOf('--listen') + 1]
        : `${args[args.indexOf('--host') + 1]}:${args[args.indexOf('--port') + 1]}`;
      assert.equal(listen, `0.0.0.0:${port}`, `${deployment.metadata.name} listens where ${name} connects`);
      assert.equal(container?.readinessProbe?.grpc?.port, Number(port));
      assert.equal(container?.readinessProbe?.grpc?.service, 'tiergate.v1.Tier');
      if (args.includes('worker')) {
        const served = args[args.indexOf('--tier') + 1] ?? '';
        const key = (args[args.indexOf('--config') + 1] ?? '').split('/').at(-1) ?? '';
        const local = configFromMap(key).tiers[served];
        assert.ok(local && local.kind !== 'remote', `${key} serves ${served} locally`);
      }
    }
  });

  it('HPAs and PDBs target existing Deployments, the ServiceMonitor an existing Service port', () => {
    for (const hpa of all('HorizontalPodAutoscaler')) {
      const ref = spec<{ scaleTargetRef: { kind: string; name: string } }>(hpa).scaleTargetRef;
      one(ref.kind, ref.name);
    }
    for (const pdb of all('PodDisruptionBudget')) {
      const selector = spec<{ selector: { matchLabels: Labels } }>(pdb).selector.matchLabels;
      assert.equal(selected(selector).length, 1, pdb.metadata.name);
    }
    const monitor = spec<{ selector: { matchLabels: Labels }; endpoints: { port: string; path: string }[] }>(
      one('ServiceMonitor', 'tiergate-gateway'),
    );
    const services = all('Service').filter((s) =>
      matches(monitor.selector.matchLabels, s.metadata.labels ?? {}),
    );
    assert.deepEqual(
      services.map((s) => s.metadata.name),
      ['tiergate-gateway'],
    );
    const portNames = spec<{ ports: { name: string }[] }>(services[0] as Doc).ports.map((p) => p.name);
    for (const endpoint of monitor.endpoints) {
      assert.ok(portNames.includes(endpoint.port));
      assert.equal(endpoint.path, '/metrics');
    }
  });

  it('the PrometheusRule carries exactly the rules of deploy/prometheus/alerts.yaml', () => {
    const [alerts] = yamlDocuments('deploy/prometheus/alerts.yaml');
    assert.deepEqual(spec<{ groups: unknown }>(one('PrometheusRule', 'tiergate')).groups, alerts?.['groups']);
  });
});

describe('the main-worker Deployment and the gateway config, run for real', () => {
  let worker: ChildProcess | undefined;
  let gateway: TestGateway | undefined;
  let dir: string | undefined;

  before(async () => {
    // The worker Deployment's own args, with the image's /app mapped to this checkout and the
    // listener on a free loopback port; tsx runs the CLI from source (the image runs dist/).
    const [container] = podSpec(one('Deployment', 'tiergate-main-worker')).containers;
    const args = [...(container?.args ?? [])];
    assert.deepEqual(args.slice(0, 3), ['node', 'bin/tiergate.js', 'worker']);
    dir = mkdtempSync(join(tmpdir(), 'tiergate-k8s-'));
    const key = (args[args.indexOf('--config') + 1] ?? '').split('/').at(-1) ?? '';
    const data = one('ConfigMap', 'tiergate-config')['data'] as Record<string, string>;
    writeFileSync(join(dir, key), (data[key] ?? '').replaceAll('/app/', REPO_ROOT));
    args[args.indexOf('--config') + 1] = join(dir, key);
    args[args.indexOf('--host') + 1] = '127.0.0.1';
    args[args.indexOf('--port') + 1] = '0';
    worker = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args.slice(2)],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, TIERGATE_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    const address = await listeningAddress(worker);

    const main = gatewayConfig().tiers['main'];
    assert.ok(main?.kind === 'remote');
    gateway = await startGateway({
      family: { dir: 'models/tiny' },
      tiers: { main: { ...main, address: address, required: true, connectTimeoutMs: 60_000 } },
      models: { 'tiergate-tiny-main': { tier: 'main' } },
    });
  });

  after(async () => {
    await gateway?.shutdown();
    if (worker?.exitCode === null) {
      const exited = new Promise((resolve) => worker?.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the gateway completes through the worker over the remote tier config', async () => {
    const completion = await gateway?.client.completions.create({
      model: 'tiergate-tiny-main',
      prompt: 'The city',
      max_tokens: 4,
      temperature: 0,
    });
    assert.equal(completion?.usage?.completion_tokens, 4);
  });

  it('every HTTP probe and scrape path answers 200', async () => {
    const paths = new Set<string>();
    for (const d of all('Deployment')) {
      for (const c of podSpec(d).containers) {
        for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
          if (probe?.httpGet !== undefined) paths.add(probe.httpGet.path);
        }
      }
    }
    assert.deepEqual([...paths].sort(), ['/healthz', '/readyz']);
    const monitor = spec<{ endpoints: { path: string }[] }>(one('ServiceMonitor', 'tiergate-gateway'));
    for (const e of monitor.endpoints) paths.add(e.path);
    for (const path of paths) {
      const response = await fetch(`${gateway?.baseUrl}${path}`);
      assert.equal(response.status, 200, path);
    }
  });
});

/** The worker prints "listening <host:port>" on stdout once it serves. */
async function listeningAddress(child: ChildProcess): Promise<string> {
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const m = /^listening (\S+)$/m.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code} before listening`)));
  });
}
