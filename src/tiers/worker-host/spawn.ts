import { Worker } from 'node:worker_threads';

/** A worker script: `name` (without extension) next to the module whose import.meta.url is `from`. */
export interface WorkerEntry {
  readonly from: string;
  readonly name: string;
}

/**
 * Spawns the worker script. Compiled (dist/) it is a .js file and runs as it is. Under tsx
 * (tests, benchmarks) it is a .ts file, and Node 20 checks a worker entry's extension before any
 * --import hook runs in the new thread, so a small bootstrap registers tsx's loader in the worker
 * first and then imports the entry.
 */
export function spawnWorker(entry: WorkerEntry, workerData: unknown): Worker {
  const here = new URL(entry.from);
  if (!here.pathname.endsWith('.ts')) return new Worker(new URL(`./${entry.name}.js`, here), { workerData });
  const script = new URL(`./${entry.name}.ts`, here).href;
  const bootstrap =
    `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(script)}); })` +
    `.catch((err) => { throw err; });`;
  return new Worker(bootstrap, { eval: true, workerData });
}
