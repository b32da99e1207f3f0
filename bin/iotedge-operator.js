#!/usr/bin/env node
// Entry point of the iotedge-operator command. In a checkout it runs the TypeScript sources directly
// (Node's type stripping); an installed package runs the compiled dist/, since Node does not strip
// types under node_modules.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22) {
  process.stderr.write(`iotedge-operator needs Node.js 22 or newer; this is Node.js ${process.versions.node}.\n`);
  process.exit(2);
}

const source = new URL('../src/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/cli/main.js', import.meta.url);
const installed = fileURLToPath(import.meta.url).includes('/node_modules/');
const canRunSource = existsSync(fileURLToPath(source)) && !installed && Boolean(process.features.typescript);
if (!canRunSource && !existsSync(fileURLToPath(compiled))) {
  process.stderr.write(
    `iotedge-operator runs its TypeScript sources directly, which Node.js ${major}.${minor} does not do by default: ` +
      'use Node.js 22.18+ or 23.6+, or run npm run build first.\n',
  );
  process.exit(2);
}
const { main } = await import(canRunSource ? source.href : compiled.href);
process.exitCode = await main(process.argv.slice(2));
