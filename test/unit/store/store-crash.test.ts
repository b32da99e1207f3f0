// Crash safety: a process enqueues and reports what resolved; it is SIGKILLed mid-stream; the
// reopened store holds every message whose enqueue had resolved.
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageStore } from '../../../src/store/index.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Runs the child until it has reported `target` resolved messages, then kills it with SIGKILL. */
function runAndKill(dir: string, target: number): Promise<Set<number>> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./crash-child.ts', import.meta.url)), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const resolved = new Set<number>();
  let partial = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) resolved.add(Number(line));
      if (resolved.size >= target && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(resolved);
      else reject(new Error(`child exited with ${code ?? signal} before it was killed: ${stderr}`));
    });
  });
}

describe('a store killed mid-stream', () => {
  it('keeps every message whose enqueue resolved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ieo-store-crash-'));
    dirs.push(dir);
    const reported = await runAndKill(dir, 3000);
    expect(reported.size).toBeGreaterThanOrEqual(3000);

    const store = await MessageStore.open(dir, { maxBytes: 1024 * 1024 * 1024 });
    const found = new Set<number>();
    for (const endpoint of ['even', 'odd']) {
      for (const m of store.checkout(endpoint, 1_000_000)) found.add(Number(m.message.toString().slice('message-'.length)));
    }
    const missing = [...reported].filter((id) => !found.has(id));
    expect(missing).toEqual([]);
    // Messages the child stored but had not yet reported may be there too; nothing else.
    expect([...found].every((id) => Number.isInteger(id) && id >= 0)).toBe(true);
    await store.close();
  });
});
