// The message store: 1 KB messages enqueued (one enqueue per message, `--window` of them in flight,
// as a broker with many unacknowledged QoS 1 publishes would), checked out and acked, until all are
// gone. Printed next to the physical floor measured in the same run: the same bytes appended to a
// plain file, one write and one fsync per batch of the same size the store committed. Durability
// 'full' runs twice, fsync in the background (the default) and inline (SQLite's synchronous=FULL, the
// store before the background sync): the event loop's utilisation and delay say what each costs the
// hub's other work. Figures only.
//   npm run bench -- store [--messages 50000] [--size 1024] [--window 1000] [--ttl 7200 (seconds; 0 = none)]
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { MessageStore } from '../src/store/index.ts';
import { option, percentile } from './support.ts';

interface StoreRun {
  seconds: number;
  commits: number;
  syncs: number;
  enqueueLatencyMs: number[];
  /** How late a 1 ms timer fired: the longest synchronous stretches, the store's commits among them. */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
}

type Mode = { name: string; durability: 'full' | 'normal'; fsync: 'background' | 'inline' };

async function runStore(dir: string, mode: Mode, messages: number, size: number, window: number, ttlMs: number | undefined): Promise<StoreRun> {
  const store = await MessageStore.open(dir, { maxBytes: 8 * 1024 * 1024 * 1024, durability: mode.durability, fsync: mode.fsync });
  const body = Buffer.alloc(size, 0x61);
  const latencies: number[] = [];
  let issued = 0;
  let acked = 0;
  const start = performance.now();
  const commitsBefore = store.commits;
  const syncsBefore = store.syncs;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();

  await new Promise<void>((resolve, reject) => {
    const issue = (): void => {
      if (issued >= messages) return;
      issued++;
      const t0 = performance.now();
      store.enqueue([{ endpointId: '/modules/filter/inputs/input1', priority: 9, expiresAtMs: ttlMs === undefined ? undefined : Date.now() + ttlMs, message: body }]).then(() => {
        latencies.push(performance.now() - t0);
        issue();
      }, reject);
    };
    for (let i = 0; i < window; i++) issue();
    const consume = (): void => {
      const batch = store.checkout('/modules/filter/inputs/input1', 500);
      if (batch.length > 0) {
        store.ack('/modules/filter/inputs/input1', batch.map((m) => m.seq));
        acked += batch.length;
      }
      if (acked >= messages) resolve();
      else setImmediate(consume);
    };
    setImmediate(consume);
  });
  await store.flush();
  const seconds = (performance.now() - start) / 1000;
  delay.disable();
  const commits = store.commits - commitsBefore;
  const syncs = store.syncs - syncsBefore;
  await store.close();
  return { seconds, commits, syncs, enqueueLatencyMs: latencies, eventLoopDelayP99Ms: delay.percentile(99) / 1e6, eventLoopDelayMaxMs: delay.max / 1e6 };
}

/** The floor: the same bytes appended to one file, one write (and fsync when durable) per batch. */
function runFileBaseline(dir: string, fsync: boolean, messages: number, size: number, batch: number): number {
  const fd = openSync(join(dir, 'baseline.log'), 'a');
  const chunk = Buffer.alloc(size * batch, 0x61);
  const start = performance.now();
  for (let written = 0; written < messages; written += batch) {
    const n = Math.min(batch, messages - written);
    writeSync(fd, chunk, 0, n * size);
    if (fsync) fsyncSync(fd);
  }
  const seconds = (performance.now() - start) / 1000;
  closeSync(fd);
  return seconds;
}

const rate = (n: number, seconds: number): string => `${Math.round(n / seconds).toLocaleString('en-US')} msg/s`;

export async function main(args: string[]): Promise<void> {
  const messages = Number(option(args, '--messages') ?? 50_000);
  const size = Number(option(args, '--size') ?? 1024);
  const window = Number(option(args, '--window') ?? 1000);
  const ttl = Number(option(args, '--ttl') ?? 7200);
  console.log(`store bench: ${messages} messages of ${size} B with a ${ttl > 0 ? `${ttl} s` : 'no'} time to live, ${window} enqueues in flight, enqueue + checkout + ack`);
  const modes: Mode[] = [
    { name: 'durability full, fsync in the background (default)', durability: 'full', fsync: 'background' },
    { name: 'durability full, fsync inline (synchronous=FULL: the store before background sync)', durability: 'full', fsync: 'inline' },
    { name: 'durability normal (synchronous=NORMAL, no fsync per commit)', durability: 'normal', fsync: 'background' },
  ];
  for (const mode of modes) {
    const dir = mkdtempSync(join(tmpdir(), 'ieo-bench-store-'));
    try {
      const run = await runStore(dir, mode, messages, size, window, ttl > 0 ? ttl * 1000 : undefined);
      const batch = Math.max(1, Math.round(messages / Math.max(1, run.commits)));
      const durable = mode.durability === 'full';
      const fileSeconds = runFileBaseline(dir, durable, messages, size, batch);
      console.log(`\n${mode.name}`);
      console.log(`  store (enqueue+ack):           ${rate(messages, run.seconds)}  (${run.commits} group commits, ~${batch} messages each${mode.fsync === 'background' && durable ? `; ${run.syncs} background syncs` : ''})`);
      console.log(`  enqueue → durable latency:      p50 ${percentile(run.enqueueLatencyMs, 50).toFixed(1)} ms, p99 ${percentile(run.enqueueLatencyMs, 99).toFixed(1)} ms`);
      console.log(`  event loop delay:               p99 ${run.eventLoopDelayP99Ms.toFixed(1)} ms, max ${run.eventLoopDelayMaxMs.toFixed(1)} ms`);
      console.log(`  baseline (append${durable ? ' + fsync' : ''} per batch): ${rate(messages, fileSeconds)}`);
      console.log(`  store / baseline:               ${(fileSeconds / run.seconds).toFixed(2)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
