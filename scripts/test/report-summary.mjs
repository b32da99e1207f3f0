// Prints the parts of a Node diagnostic report (process.report) that say where a process's memory went:
// its memory figures, the JavaScript stack it was running, and its open handles grouped by kind and peer.
// Environment variables, which the report also holds, are never printed.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const mb = (bytes) => `${Math.round(bytes / 1024 / 1024)} MB`;
const heap = report.javascriptHeap ?? {};
const usage = report.resourceUsage ?? {};
console.log(`pid ${report.header?.processId}: RSS ${mb(usage.rss ?? 0)}, V8 heap used ${mb(heap.usedMemory ?? 0)}, memory outside the V8 heap (Buffers and other external) ${mb(heap.externalMemory ?? 0)}, malloc ${mb(heap.mallocedMemory ?? 0)}`);
console.log('JavaScript stack:');
for (const frame of (report.javascriptStack?.stack ?? []).slice(0, 25)) console.log(`  ${frame}`);
const handles = new Map();
for (const h of report.libuv ?? []) {
  const key = [h.type, h.remoteEndpoint ? `${h.remoteEndpoint.host}:${h.remoteEndpoint.port}` : '', h.localEndpoint && !h.remoteEndpoint ? `listening ${h.localEndpoint.port}` : ''].filter(Boolean).join(' ');
  handles.set(key, (handles.get(key) ?? 0) + 1);
}
console.log('open handles:');
for (const [key, count] of [...handles].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${count} × ${key}`);
