#!/usr/bin/env node
// Entry point of the `tiergate` command: runs the compiled CLI (npm run build makes dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('tiergate: dist/ is missing; run `npm run build` (or scripts/install.sh) first\n');
  process.exit(1);
}
await import(main);
