#!/usr/bin/env node
// Runs the TypeScript sources through tsx in a checkout (after `npm ci`), the compiled dist/ in an image.
import { existsSync } from 'node:fs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const src = new URL('../src/cli.ts', import.meta.url);
const dist = new URL('../dist/cli.js', import.meta.url);
if (existsSync(src)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(src.href);
} else if (existsSync(dist)) {
  await import(dist.href);
} else {
  console.error(
    'gpu-medic: neither src/cli.ts nor dist/cli.js found; run `npm ci` (and `npm run build` for dist/)',
  );
  process.exit(1);
}
