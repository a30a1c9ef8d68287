import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './schema.js';
import { ConfigError, loadConfigFile, type LoadOptions } from './load.js';

/** The symlink a Kubernetes ConfigMap volume swaps atomically on every update. */
const KUBERNETES_DATA_LINK = '..data';
/** Editors write a file in several steps (truncate, write, rename): wait for them to settle. */
const DEBOUNCE_MS = 200;

export interface ReloadTarget {
  /** Swaps the config in; returns the changed sections that only apply after a restart. */
  applyConfig(next: Config): string[];
}

export type ReloadResult = 'applied' | 'rejected';

/**
 * Hot reload (SIGHUP or a change of the file on disk): re-reads and validates the whole file;
 * a valid one is handed to the gateway in one call (an atomic swap), an invalid one is rejected
 * with the validator's messages and the old config stays. Each outcome is logged and counted.
 */
export class ConfigReloader {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly path: string;

  constructor(
    path: string,
    private readonly target: ReloadTarget,
    private readonly logger: Logger,
    private readonly count: (result: ReloadResult) => void,
    private readonly options: LoadOptions = {},
  ) {
    this.path = resolve(path);
  }

  reload(trigger: string): ReloadResult {
    let next: Config;
    try {
      next = loadConfigFile(this.path, this.options);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      this.logger.error(
        { file: this.path, trigger, problems },
        'config reload rejected; the previous config stays in force',
      );
      this.count('rejected');
      return 'rejected';
    }
    const restart = this.target.applyConfig(next);
    this.count('applied');
    this.logger.info({ file: this.path, trigger }, 'config reloaded');
    if (restart.length > 0) {
      this.logger.warn(
        { sections: restart },
        `config sections changed that only take effect after a restart: ${restart.join(', ')} (tier model files, ports, keys, the tracer and the limits store are set up once)`,
      );
    }
    return 'applied';
  }

  /** Watches the file's directory (a rename-on-save replaces the file and would end a file watch). */
  watch(): void {
    const name = basename(this.path);
    this.watcher = watch(dirname(this.path), (_event, file) => {
      // Kubernetes updates a mounted ConfigMap by swapping the `..data` symlink, never by
      // touching the file's own name in this directory.
      if (file !== null && file !== name && file !== KUBERNETES_DATA_LINK) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload('file-change'), DEBOUNCE_MS);
    });
    this.watcher.unref();
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
