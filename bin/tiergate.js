#!/usr/bin/env -S node --max-semi-space-size=64
// Entry point of the `tiergate` command: runs the compiled CLI (npm run build makes dist/).
// The V8 flag (also in `npm start` and the Dockerfile) gives the young generation room for a few
// thousand requests between scavenges: docs/gateway.md, "Runtime flags".
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('tiergate: dist/ is missing; run `npm run build` (or scripts/install.sh) first\n');
  process.exit(1);
}
await import(main);
