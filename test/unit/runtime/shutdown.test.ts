// Real signals to a real child process: the only faithful test of signal handling.
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ShutdownCoordinator } from '../../../src/runtime/shutdown.ts';

const fixture = fileURLToPath(new URL('./fixtures/shutdown-child.ts', import.meta.url));

interface Child {
  pid: number;
  /** Resolves once stdout has printed `line`. */
  printed(line: string): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
}

const alive = new Set<number>();
afterEach(() => {
  // A failed assertion must not leave a hanging child behind; only our own children are touched.
  for (const pid of alive) process.kill(pid, 'SIGKILL');
  alive.clear();
});

function startChild(mode: string): Child {
  const child = spawn(process.execPath, [fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  alive.add(child.pid!);
  let stdout = '';
  let stderr = '';
  const waiters: { line: string; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (stdout.split('\n').includes(w.line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    check();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) => {
    child.on('exit', (code, signal) => {
      alive.delete(child.pid!);
      // Let the last stdout chunks arrive before reporting.
      setImmediate(() => resolve({ code, signal, stdout }));
    });
  });
  return {
    pid: child.pid!,
    exited,
    printed: (line) =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ line, resolve });
        check();
        void exited.then(() => reject(new Error(`child exited before printing "${line}"; stdout:\n${stdout}\nstderr:\n${stderr}`)));
      }),
  };
}

/** The `step …` lines in the order the child printed them. */
function steps(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.startsWith('step '));
}

describe('onShutdownSignal in a real process', () => {
  it('runs the steps once, in registration order, on SIGTERM and exits 0', async () => {
    const child = startChild('normal');
    await child.printed('ready');
    process.kill(child.pid, 'SIGTERM');
    const { code, stdout } = await child.exited;
    expect(steps(stdout)).toEqual(['step stop-intake', 'step drain', 'step drain done', 'step release-lease']);
    expect(code).toBe(0);
    expect(stdout).toContain('"msg":"graceful shutdown finished"');
  });

  it('handles SIGINT the same way', async () => {
    const child = startChild('normal');
    await child.printed('ready');
    process.kill(child.pid, 'SIGINT');
    const { code, stdout } = await child.exited;
    expect(steps(stdout)).toEqual(['step stop-intake', 'step drain', 'step drain done', 'step release-lease']);
    expect(code).toBe(0);
  });

  it('exits 1 at once on a second signal while a step hangs', async () => {
    const child = startChild('hang');
    await child.printed('ready');
    process.kill(child.pid, 'SIGTERM');
    await child.printed('step drain');
    process.kill(child.pid, 'SIGTERM');
    const { code, stdout } = await child.exited;
    expect(code).toBe(1);
    expect(stdout).toContain('second signal during graceful shutdown');
    expect(steps(stdout)).toEqual(['step stop-intake', 'step drain']);
  });

  it('exits 1 when the steps outlast the overall deadline, without running the rest', async () => {
    const child = startChild('timeout');
    await child.printed('ready');
    process.kill(child.pid, 'SIGTERM');
    const { code, stdout } = await child.exited;
    expect(code).toBe(1);
    expect(stdout).toContain('graceful shutdown did not finish in time');
    expect(steps(stdout)).toEqual(['step stop-intake', 'step drain']);
  });

  it('still runs later steps after one fails, and exits 1', async () => {
    const child = startChild('failing-release');
    await child.printed('ready');
    process.kill(child.pid, 'SIGTERM');
    const { code, stdout } = await child.exited;
    expect(steps(stdout)).toEqual(['step stop-intake', 'step drain', 'step drain done', 'step release-lease']);
    expect(stdout).toContain('lease release refused');
    expect(code).toBe(1);
  });
});

describe('ShutdownCoordinator', () => {
  it('runs the sequence only once however often shutdown is asked for, and aborts its signal first', async () => {
    const order: string[] = [];
    const coordinator = new ShutdownCoordinator({ exit: () => order.push('exit') });
    coordinator.add('first', () => {
      order.push(`first (signal aborted: ${coordinator.signal.aborted})`);
    });
    const remove = coordinator.add('removed', () => {
      order.push('removed');
    });
    coordinator.add('second', async () => {
      order.push('second');
    });
    remove();
    const [a, b] = await Promise.all([coordinator.shutdown('SIGTERM'), coordinator.shutdown('SIGINT')]);
    expect([a, b]).toEqual([0, 0]);
    expect(order).toEqual(['first (signal aborted: true)', 'second']);
  });
});
