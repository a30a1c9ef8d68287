/**
 * No Docker engine runs here, so the image cannot be built: these checks catch what would break
 * a build or a compose start — missing COPY sources, files hidden by .dockerignore, services
 * that disagree about names, ports and paths, and a container config the gateway would reject.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, posix } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildConfig } from '../../src/config/index.js';
import { REPO_ROOT, startGateway, type TestGateway } from '../helpers/start-gateway.js';
import { DEPLOY, readRepoFile, yamlDocuments } from './deploy-files.js';

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(): Instruction[] {
  return readRepoFile('Dockerfile')
    .replace(/\\\n(\s*#.*\n)*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [op = '', ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

/** COPY instructions from the build context (not --from another stage): [sources, destination]. */
function contextCopies(): { sources: string[]; dest: string }[] {
  return instructions()
    .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
    .map((i) => {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      return { sources: parts.slice(0, -1), dest: parts.at(-1) ?? '' };
    });
}

function ignored(path: string): boolean {
  const patterns = readRepoFile('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  return patterns.some((p) => {
    if (p.startsWith('**/')) return path.split('/').includes(p.slice(3));
    return path === p || path.startsWith(`${p}/`);
  });
}

/** Where a build-context path ends up in the runtime image (WORKDIR /app). */
function imagePaths(): Set<string> {
  const paths = new Set<string>();
  for (const { sources, dest } of contextCopies()) {
    const base = posix.resolve('/app', dest);
    for (const source of sources) {
      paths.add(dest.endsWith('/') ? posix.join(base, posix.basename(source)) : base);
    }
  }
  return paths;
}

const [compose] = yamlDocuments('deploy/docker-compose.yaml');
type Service = {
  build?: { context: string; dockerfile: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  expose?: string[];
  working_dir?: string;
  depends_on?: Record<string, unknown> | string[];
};
const services = (compose?.['services'] ?? {}) as Record<string, Service>;

function flag(command: string[] | undefined, name: string): string | undefined {
  const i = (command ?? []).indexOf(name);
  return i < 0 ? undefined : command?.[i + 1];
}

describe('Dockerfile', () => {
  it('copies only paths that exist and that .dockerignore keeps in the context', () => {
    const copies = contextCopies();
    assert.ok(copies.length > 5);
    for (const source of copies.flatMap((c) => c.sources)) {
      assert.ok(existsSync(join(REPO_ROOT, source)), `COPY ${source}: missing`);
      assert.ok(!ignored(source), `COPY ${source}: excluded by .dockerignore`);
    }
  });

  it('is multi-stage on Debian bookworm, runs as a non-root user, with a health check on /healthz', () => {
    const all = instructions();
    const froms = all.filter((i) => i.op === 'FROM').map((i) => i.args);
    assert.ok(froms.length >= 2, 'multi-stage');
    for (const from of froms) assert.match(from, /bookworm/);
    assert.ok(
      froms.some((f) => /^node:20-/.test(f)),
      'Node 20',
    );
    const users = all.filter((i) => i.op === 'USER').map((i) => i.args);
    assert.ok(users.length > 0 && users.every((u) => u !== 'root' && u !== '0'));
    assert.match(all.find((i) => i.op === 'HEALTHCHECK')?.args ?? '', /\/healthz/);
    assert.match(all.find((i) => i.op === 'RUN' && i.args.includes('python3-torch'))?.args ?? '', /apt-get/);
  });

  it('ships the files the CMD, the container config and the sidecar need', () => {
    const image = imagePaths();
    const cmd = JSON.parse(instructions().find((i) => i.op === 'CMD')?.args ?? '[]') as string[];
    // The script is the first argument that is not a node option (the CMD passes V8 flags).
    const script = cmd.slice(1).find((a) => !a.startsWith('-')) ?? '';
    assert.ok(image.has(posix.resolve('/app', script).replace(/\/tiergate\.js$/, '')), cmd.join(' '));
    const config = containerConfig();
    for (const tier of Object.values(config.tiers)) {
      if ('model' in tier && tier.kind !== 'remote') {
        assert.ok(image.has(posix.join(config.family.dir, tier.model)), `${tier.model} is not in the image`);
      }
    }
    const sidecarModel = flag(services['sidecar']?.command, '--model') ?? '';
    assert.ok(image.has(sidecarModel), `${sidecarModel} is not in the image`);
    assert.ok(image.has('/app/models/tiny/manifest.json') && image.has('/app/models/lib'));
  });
});

function containerConfig(): ReturnType<typeof buildConfig> {
  const [raw] = yamlDocuments('deploy/config/tiergate.yaml');
  return buildConfig(raw ?? {}, { baseDir: join(DEPLOY, 'config'), env: {} });
}

describe('deploy/docker-compose.yaml', () => {
  it('has the gateway, the sidecar, Prometheus and Grafana', () => {
    assert.deepEqual(Object.keys(services).sort(), ['gateway', 'grafana', 'prometheus', 'sidecar']);
    const build = services['gateway']?.build;
    assert.ok(build && existsSync(join(DEPLOY, build.context, build.dockerfile)));
    assert.equal(
      services['sidecar']?.image,
      services['gateway']?.image,
      'the sidecar runs the gateway image',
    );
  });

  it('mounts only files and folders that exist', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const host = volume.split(':')[0] ?? '';
        assert.ok(existsSync(join(DEPLOY, host)), `${name}: ${host} missing`);
      }
    }
  });

  it('agrees on names and ports: gateway config, sidecar listener, Prometheus target', () => {
    const config = containerConfig();
    const mount = services['gateway']?.volumes?.find((v) => v.startsWith('./config:'))?.split(':')[1];
    assert.equal(services['gateway']?.environment?.['TIERGATE_CONFIG'], `${mount}/tiergate.yaml`);
    const published = services['gateway']?.ports?.[0]?.split(':')[1];
    assert.equal(String(config.server.port), published);
    assert.equal(config.server.host, '0.0.0.0');

    const remote = Object.values(config.tiers).find((t) => t.kind === 'remote');
    assert.ok(
      remote && 'address' in remote && remote.address !== undefined,
      'the PyTorch tier is in address mode',
    );
    const [host, port] = remote.address.split(':');
    assert.equal(host, 'sidecar');
    assert.equal(flag(services['sidecar']?.command, '--listen'), `0.0.0.0:${port}`);
    assert.ok(services['sidecar']?.expose?.includes(port ?? ''));

    const [prometheus] = yamlDocuments('deploy/prometheus/prometheus.yml');
    const jobs = prometheus?.['scrape_configs'] as { static_configs: { targets: string[] }[] }[];
    assert.deepEqual(jobs[0]?.static_configs[0]?.targets, [`gateway:${config.server.port}`]);
  });
});

describe('the compose sidecar command, run for real', () => {
  let sidecar: ChildProcess | undefined;
  let gateway: TestGateway | undefined;

  after(async () => {
    await gateway?.shutdown();
    if (sidecar?.exitCode === null) {
      const exited = new Promise((resolve) => sidecar?.once('exit', resolve));
      sidecar.kill('SIGTERM');
      await exited;
    }
  });

  it('serves the PyTorch tier to a gateway in address mode, as the gateway service uses it', async () => {
    const service = services['sidecar'];
    const port = await freePort();
    // The image's /app is this checkout; the sidecar listens on loopback instead of 0.0.0.0.
    const toRepo = (s: string): string => s.replace(/^\/app\//, REPO_ROOT);
    const [command = '', ...args] = (service?.command ?? []).map((a) =>
      a === flag(service?.command, '--listen') ? `127.0.0.1:${port}` : toRepo(a),
    );
    sidecar = spawn(command, args, {
      cwd: toRepo(`${service?.working_dir}/`),
      env: { ...process.env, ...service?.environment },
      stdio: 'ignore',
    });
    const fallback = containerConfig().tiers['fallback'];
    assert.ok(fallback?.kind === 'remote');
    gateway = await startGateway({
      family: { dir: 'models/tiny' },
      tiers: {
        fallback: {
          kind: 'remote',
          address: `127.0.0.1:${port}`,
          model: fallback.model,
          required: true,
          connectTimeoutMs: 90_000,
        },
      },
      models: { 'tiergate-tiny-fallback': { tier: 'fallback' } },
    });
    const completion = await gateway.client.completions.create({
      model: 'tiergate-tiny-fallback',
      prompt: 'The city',
      max_tokens: 4,
      temperature: 0,
    });
    assert.equal(completion.usage?.completion_tokens, 4);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
