// npm run bench -- fuzz [--cases 10000] [--seed 42]: mutated real manifests (test/security/fuzz-cases.ts)
// through validate and translate. Prints crashes (an exception escaping the pipeline), hangs (a case over
// 1 s; a case still running after 10 s is killed and counted), and memory growth (heap after a full GC,
// from the first tenth of the run to its end), beside a same-run baseline: the unmutated seeds.
// Cases run in a worker thread so that a hang can be cut off and the run goes on.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { option } from './support.ts';
import { caseText, fuzzCaseArbitrary, runPipeline, seedManifests, type FuzzCase } from '../test/security/fuzz-cases.ts';

const hangMs = 1_000;
const killMs = 10_000;
/** Heap growth after GC above this is reported as unbounded memory. */
const leakBytes = 32 * 1024 * 1024;

interface Task { seed: number; from: number; to: number }
type Report =
  | { kind: 'done'; index: number; ms: number; result: string }
  | { kind: 'crash'; index: number; ms: number; error: string }
  | { kind: 'started'; index: number }
  | { kind: 'heap'; index: number; bytes: number };

function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Worker side: generates case `i` from (seed, i) alone, so a restarted worker picks up where it left. */
function work(task: Task): void {
  const seeds = seedManifests();
  const arbitrary = fuzzCaseArbitrary(seeds.length);
  const post = (r: Report) => parentPort!.postMessage(r);
  for (let i = task.from; i < task.to; i++) {
    const [c] = fc.sample(arbitrary, { seed: task.seed + i, numRuns: 1 }) as [FuzzCase];
    post({ kind: 'started', index: i });
    const started = performance.now();
    try {
      const result = runPipeline(caseText(seeds, c), c.settings);
      post({ kind: 'done', index: i, ms: performance.now() - started, result });
    } catch (error) {
      post({ kind: 'crash', index: i, ms: performance.now() - started, error: error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error) });
    }
    if ((i + 1) % 500 === 0 || i + 1 === task.to) {
      gc();
      post({ kind: 'heap', index: i, bytes: process.memoryUsage().heapUsed });
    }
  }
}

if (!isMainThread && (workerData as { fuzz?: Task } | undefined)?.fuzz) work((workerData as { fuzz: Task }).fuzz);

interface Tally {
  crashes: { index: number; error: string }[];
  hangs: { index: number; ms: number | 'killed' }[];
  results: Record<string, number>;
  heap: { index: number; bytes: number }[];
  slowestMs: number;
}

function runCampaign(seed: number, cases: number): Promise<Tally> {
  const tally: Tally = { crashes: [], hangs: [], results: {}, heap: [], slowestMs: 0 };
  return new Promise((resolve) => {
    const start = (from: number) => {
      if (from >= cases) {
        resolve(tally);
        return;
      }
      const worker = new Worker(new URL(import.meta.url), { workerData: { fuzz: { seed, from, to: cases } } });
      let current = from;
      let watchdog: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          tally.hangs.push({ index: current, ms: 'killed' });
          void worker.terminate();
          start(current + 1);
        }, killMs);
      };
      arm();
      worker.on('message', (r: Report) => {
        if (r.kind === 'started') {
          current = r.index;
          arm();
        } else if (r.kind === 'heap') {
          tally.heap.push({ index: r.index, bytes: r.bytes });
          if (r.index + 1 === cases) resolve(tally);
        } else {
          tally.slowestMs = Math.max(tally.slowestMs, r.ms);
          if (r.ms > hangMs) tally.hangs.push({ index: r.index, ms: Math.round(r.ms) });
          if (r.kind === 'crash') tally.crashes.push({ index: r.index, error: r.error });
          else tally.results[r.result] = (tally.results[r.result] ?? 0) + 1;
        }
      });
      worker.on('exit', () => clearTimeout(watchdog));
      worker.on('error', (error) => {
        tally.crashes.push({ index: current, error: `worker: ${error.message}` });
        clearTimeout(watchdog);
        start(current + 1);
      });
    };
    start(0);
  });
}

/** Baseline: the unmutated seeds through the same pipeline, timed the same way. */
function baseline(): { cases: number; slowestMs: number; meanMs: number } {
  const seeds = seedManifests();
  const times: number[] = [];
  for (let round = 0; round < 20; round++) {
    for (const seed of seeds) {
      const started = performance.now();
      runPipeline(JSON.stringify(seed), 'default');
      times.push(performance.now() - started);
    }
  }
  return { cases: times.length, slowestMs: Math.max(...times), meanMs: times.reduce((a, b) => a + b, 0) / times.length };
}

export async function main(args: string[]): Promise<void> {
  const cases = Number(option(args, '--cases') ?? 10_000);
  const seed = Number(option(args, '--seed') ?? 42);
  const base = baseline();
  const started = performance.now();
  const tally = await runCampaign(seed, cases);
  const seconds = (performance.now() - started) / 1000;
  const tenth = tally.heap.find((h) => h.index + 1 >= cases / 10) ?? tally.heap[0];
  const last = tally.heap.at(-1);
  const growth = tenth && last ? last.bytes - tenth.bytes : 0;
  const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
  console.log(`fuzz: ${cases} mutated manifests (seed ${seed}) through validate + translate in ${seconds.toFixed(1)} s`);
  console.log(`  outcomes:      ${Object.entries(tally.results).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`  crashes:       ${tally.crashes.length}`);
  console.log(`  hangs > 1 s:   ${tally.hangs.length} (slowest case ${tally.slowestMs.toFixed(1)} ms)`);
  console.log(`  heap after GC: ${tenth ? mb(tenth.bytes) : '?'} MB at case ${tenth ? tenth.index + 1 : '?'} -> ${last ? mb(last.bytes) : '?'} MB at the end (growth ${mb(growth)} MB)`);
  console.log(`  unbounded memory: ${growth > leakBytes ? 1 : 0} (growth over ${mb(leakBytes)} MB counts)`);
  console.log(`  baseline: ${base.cases} runs of the unmutated seeds, mean ${base.meanMs.toFixed(2)} ms, slowest ${base.slowestMs.toFixed(1)} ms`);
  for (const c of tally.crashes.slice(0, 10)) console.log(`  crash at case ${c.index} (--seed ${seed}): ${c.error}`);
  for (const h of tally.hangs.slice(0, 10)) console.log(`  hang at case ${h.index} (--seed ${seed}): ${h.ms}${h.ms === 'killed' ? '' : ' ms'}`);
}
