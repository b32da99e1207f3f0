import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { PermanentError, TemporaryError } from '../../../src/controller/errors.ts';
import type { Logger } from '../../../src/controller/kube-client.ts';
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  WorkQueue,
} from '../../../src/controller/workqueue.ts';
import type { ReconcileFn } from '../../../src/controller/workqueue.ts';

/** A logger that remembers what was logged, to check failures are reported rather than thrown. */
function recordingLogger(): Logger & { lines: { level: string; obj: object; msg?: string }[] } {
  const lines: { level: string; obj: object; msg?: string }[] = [];
  const logger = {
    lines,
    debug: (obj: object, msg?: string) => void lines.push({ level: 'debug', obj, msg }),
    info: (obj: object, msg?: string) => void lines.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg?: string) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg?: string) => void lines.push({ level: 'error', obj, msg }),
    child: () => logger,
  };
  return logger;
}

/** A queue whose only limiter is the per-key one, so delays are exactly 5 ms · 2^n. */
function queue(): WorkQueue {
  return new WorkQueue({ rateLimiter: new ItemExponentialFailureRateLimiter(5, 1_000_000) });
}

afterEach(() => {
  jest.useRealTimers();
});

describe('rate limiters', () => {
  it('per-key backoff doubles from 5 ms and stops at 1000 s', () => {
    const limiter = new ItemExponentialFailureRateLimiter();
    const delays = Array.from({ length: 30 }, () => limiter.when('ns/a'));
    expect(delays.slice(0, 5)).toEqual([5, 10, 20, 40, 80]);
    // 5 ms · 2^17 = 655.36 s is the last step under the cap; 2^18 would exceed 1000 s.
    expect(delays[17]).toBe(655_360);
    expect(delays[18]).toBe(1_000_000);
    expect(delays[29]).toBe(1_000_000);
    expect(limiter.numRequeues('ns/a')).toBe(30);
  });

  it('keeps keys apart, and forget resets one key only', () => {
    const limiter = new ItemExponentialFailureRateLimiter();
    limiter.when('ns/a');
    limiter.when('ns/a');
    limiter.when('ns/b');
    limiter.forget('ns/a');
    expect(limiter.numRequeues('ns/a')).toBe(0);
    expect(limiter.when('ns/a')).toBe(5);
    expect(limiter.when('ns/b')).toBe(10);
  });

  it('never overflows for huge failure counts', () => {
    const limiter = new ItemExponentialFailureRateLimiter(5, 1_000_000);
    let last = 0;
    for (let i = 0; i < 2000; i += 1) last = limiter.when('k');
    expect(last).toBe(1_000_000);
  });

  it('the bucket lets a burst through, then spaces items at its rate', () => {
    let now = 0;
    const bucket = new BucketRateLimiter(10, 100, () => now);
    const burst = Array.from({ length: 100 }, () => bucket.when());
    expect(burst.every((d) => d === 0)).toBe(true);
    expect(bucket.when()).toBeCloseTo(100);
    expect(bucket.when()).toBeCloseTo(200);
    now += 1000;
    // One second refills ten tokens, which pays off the two borrowed and leaves eight.
    expect(bucket.when()).toBe(0);
  });

  it('max-of takes the larger delay', () => {
    let now = 0;
    const limiter = new MaxOfRateLimiter(new ItemExponentialFailureRateLimiter(5, 1_000_000), new BucketRateLimiter(10, 1, () => now));
    expect(limiter.when('a')).toBe(5);
    expect(limiter.when('a')).toBeCloseTo(100);
    now += 10_000;
    expect(limiter.when('a')).toBe(20);
  });
});

describe('WorkQueue', () => {
  it('deduplicates a key while it waits', async () => {
    const q = queue();
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
    expect(q.len()).toBe(0);
  });

  it('marks a key added during processing dirty and hands it out again only after done', async () => {
    const q = queue();
    q.add('ns/a');
    const key = await q.get();
    expect(key).toBe('ns/a');
    q.add('ns/a');
    q.add('ns/a');
    expect(q.len()).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done('ns/a');
    await Promise.resolve();
    expect(second).toBe('ns/a');
    q.done('ns/a');
    expect(q.len()).toBe(0);
  });

  it('never runs one key on two workers at once, while other keys run in parallel', async () => {
    const q = queue();
    const inFlight = new Set<string>();
    let overlapSameKey = false;
    let maxParallel = 0;
    const runs: string[] = [];
    const releases: (() => void)[] = [];
    const reconcile: ReconcileFn = async (key) => {
      if (inFlight.has(key)) overlapSameKey = true;
      inFlight.add(key);
      maxParallel = Math.max(maxParallel, inFlight.size);
      runs.push(key);
      await new Promise<void>((r) => releases.push(r));
      inFlight.delete(key);
    };
    const workers = q.runWorkers(4, reconcile);
    q.add('ns/a');
    q.add('ns/b');
    await flush();
    // Both keys are in flight; adding them again only marks them dirty.
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    await flush();
    expect(runs).toEqual(['ns/a', 'ns/b']);
    while (releases.length) {
      releases.shift()!();
      await flush();
    }
    await flush();
    while (releases.length) {
      releases.shift()!();
      await flush();
    }
    expect(overlapSameKey).toBe(false);
    expect(maxParallel).toBe(2);
    // Each key ran once more after its dirty re-add, not once per add.
    expect(runs.filter((k) => k === 'ns/a')).toHaveLength(2);
    expect(runs.filter((k) => k === 'ns/b')).toHaveLength(2);
    await q.shutDownWithDrain();
    await workers;
  });

  it('retries a failing key with growing backoff and forgets it on success', async () => {
    jest.useFakeTimers();
    const q = queue();
    const attempts: number[] = [];
    const retriesSeen: number[] = [];
    const errors: number[] = [];
    const workers = q.runWorkers(1, async (_key, ctx) => {
      attempts.push(Date.now());
      retriesSeen.push(ctx.retries);
      if (attempts.length <= 4) throw new Error('API said no');
    }, { onError: (_k, _e, retryInMs) => errors.push(retryInMs) });
    q.add('ns/a');
    await jest.advanceTimersByTimeAsync(1000);
    expect(errors).toEqual([5, 10, 20, 40]);
    expect(retriesSeen).toEqual([0, 1, 2, 3, 4]);
    expect(attempts).toHaveLength(5);
    expect(q.numRequeues('ns/a')).toBe(0);
    q.shutDown();
    await workers;
  });

  it('does not hand a backed-off key out before its delay', async () => {
    jest.useFakeTimers();
    const q = queue();
    let calls = 0;
    const workers = q.runWorkers(1, () => {
      calls += 1;
      if (calls < 4) throw new Error('not yet');
    });
    q.add('ns/a');
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toBe(1);
    await jest.advanceTimersByTimeAsync(4);
    expect(calls).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    await jest.advanceTimersByTimeAsync(9);
    expect(calls).toBe(2);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toBe(3);
    q.shutDown();
    await workers;
  });

  it('requeueAfter forgets the backoff and runs the key again after the delay', async () => {
    jest.useFakeTimers();
    const q = queue();
    const calls: number[] = [];
    const workers = q.runWorkers(1, async () => {
      calls.push(Date.now());
      if (calls.length === 1) throw new Error('first attempt fails');
      if (calls.length === 2) return { requeueAfterMs: 30_000 };
      return undefined;
    });
    const start = Date.now();
    q.add('ns/a');
    await jest.advanceTimersByTimeAsync(5);
    expect(calls).toHaveLength(2);
    expect(q.numRequeues('ns/a')).toBe(0);
    await jest.advanceTimersByTimeAsync(29_999);
    expect(calls).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(3);
    expect(calls[2]! - start).toBe(30_005);
    q.shutDown();
    await workers;
  });

  it('an earlier addAfter wins over a later one, and a plain add does not wait for either', async () => {
    jest.useFakeTimers();
    const q = queue();
    q.addAfter('ns/a', 10_000);
    q.addAfter('ns/a', 2_000);
    q.addAfter('ns/a', 5_000);
    await jest.advanceTimersByTimeAsync(1_999);
    expect(q.len()).toBe(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('ns/a');
    q.done('ns/a');
    q.addAfter('ns/b', 60_000);
    q.add('ns/b');
    expect(q.len()).toBe(1);
    q.shutDown();
  });

  it('a TemporaryError with a delay retries after exactly that delay', async () => {
    jest.useFakeTimers();
    const q = queue();
    let calls = 0;
    const workers = q.runWorkers(1, () => {
      calls += 1;
      if (calls === 1) throw new TemporaryError('module identity not ready', 60_000);
    });
    q.add('ns/a');
    await jest.advanceTimersByTimeAsync(59_999);
    expect(calls).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    q.shutDown();
    await workers;
  });

  it('does not retry a PermanentError and reports it to onTerminalError', async () => {
    jest.useFakeTimers();
    let calls = 0;
    const terminal: [string, string][] = [];
    const retried: string[] = [];
    const log = recordingLogger();
    const q2 = new WorkQueue({ rateLimiter: new ItemExponentialFailureRateLimiter(), logger: log });
    const workers = q2.runWorkers(1, () => {
      calls += 1;
      throw new PermanentError('schemaVersion 9.9 is not supported');
    }, { onTerminalError: (key, e) => terminal.push([key, e.message]), onError: (key) => retried.push(key) });
    q2.add('ns/bad');
    await jest.advanceTimersByTimeAsync(2_000_000);
    expect(calls).toBe(1);
    expect(terminal).toEqual([['ns/bad', 'schemaVersion 9.9 is not supported']]);
    expect(retried).toEqual([]);
    expect(q2.numRequeues('ns/bad')).toBe(0);
    expect(log.lines.some((l) => l.level === 'error' && (l.obj as { key?: string }).key === 'ns/bad')).toBe(true);
    // A new add (a changed spec) runs it again.
    q2.add('ns/bad');
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toBe(2);
    q2.shutDown();
    await workers;
  });

  it('survives synchronous throws, rejections, non-Error values and throwing hooks', async () => {
    jest.useFakeTimers();
    const log = recordingLogger();
    const q = new WorkQueue({ rateLimiter: new ItemExponentialFailureRateLimiter(), logger: log });
    const panics: number[] = [];
    const outcomes: string[] = [];
    let calls = 0;
    const reconcile: ReconcileFn = (key) => {
      calls += 1;
      if (key === 'ns/sync') throw new TypeError("Cannot read properties of undefined (reading 'spec')");
      if (key === 'ns/value') throw 'a string, not an Error';
      return Promise.reject(new Error('rejected'));
    };
    const workers = q.runWorkers(2, reconcile, {
      onError: () => {
        throw new Error('the hook itself is broken');
      },
      metrics: { reconcilePanicsTotal: () => panics.push(1), reconcileTotal: (r) => outcomes.push(r) },
    });
    q.add('ns/sync');
    q.add('ns/value');
    q.add('ns/rejects');
    await jest.advanceTimersByTimeAsync(50);
    // Each key failed and was retried with backoff (5, 10, 20 ms → 4 attempts in 50 ms).
    expect(calls).toBe(12);
    expect(q.numRequeues('ns/sync')).toBe(4);
    expect(q.numRequeues('ns/rejects')).toBe(4);
    expect(panics).toHaveLength(8);
    expect(new Set(outcomes)).toEqual(new Set(['error']));
    expect(log.lines.filter((l) => l.msg === 'work queue error hook threw')).toHaveLength(12);
    expect(await q.shutDownWithDrain()).toBe(true);
    await workers;
  });

  it('shutDown stops intake; shutDownWithDrain waits for work in flight', async () => {
    const q = queue();
    let release!: () => void;
    const finished: string[] = [];
    const workers = q.runWorkers(2, async (key) => {
      if (key === 'ns/slow') await new Promise<void>((r) => (release = r));
      finished.push(key);
    });
    q.add('ns/slow');
    await flush();
    let drained = false;
    const draining = q.shutDownWithDrain().then((ok) => {
      drained = ok;
    });
    q.add('ns/late');
    q.addAfter('ns/later', 1);
    expect(q.len()).toBe(0);
    expect(await q.get()).toBeUndefined();
    await flush();
    expect(drained).toBe(false);
    release();
    await draining;
    await workers;
    expect(drained).toBe(true);
    expect(finished).toEqual(['ns/slow']);
  });

  it('shutDownWithDrain gives up at its deadline and aborts the reconcile signal', async () => {
    jest.useFakeTimers();
    const q = queue();
    let aborted = false;
    const workers = q.runWorkers(1, (_key, ctx) =>
      new Promise<void>((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = true;
          resolve();
        });
      }),
    );
    q.add('ns/stuck');
    await jest.advanceTimersByTimeAsync(0);
    const result = q.shutDownWithDrain(30_000);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(await result).toBe(false);
    expect(aborted).toBe(true);
    await workers;
  });

  it('reports controller-runtime workqueue metrics', async () => {
    jest.useFakeTimers();
    const seen = { adds: 0, retries: 0, depth: [] as number[], queued: [] as number[], work: [] as number[], longest: [] as number[] };
    const q = new WorkQueue({
      rateLimiter: new ItemExponentialFailureRateLimiter(),
      metricsSampleMs: 100,
      metrics: {
        addsTotal: () => void (seen.adds += 1),
        retriesTotal: () => void (seen.retries += 1),
        depth: (d) => void seen.depth.push(d),
        queueDurationSeconds: (s) => void seen.queued.push(s),
        workDurationSeconds: (s) => void seen.work.push(s),
        longestRunningProcessorSeconds: (s) => void seen.longest.push(s),
      },
    });
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(seen.adds).toBe(2);
    expect(seen.depth).toEqual([1, 2]);
    await jest.advanceTimersByTimeAsync(250);
    let attempt = 0;
    const workers = q.runWorkers(1, async (key) => {
      if (key === 'ns/a' && attempt++ === 0) throw new Error('once');
      await new Promise((r) => setTimeout(r, 300));
    });
    await jest.advanceTimersByTimeAsync(2_000);
    expect(seen.queued[0]).toBeCloseTo(0.25);
    expect(seen.retries).toBe(1);
    expect(seen.work).toEqual([0, 0.3, 0.3]);
    expect(Math.max(...seen.longest)).toBeGreaterThanOrEqual(0.2);
    q.shutDown();
    await workers;
  });

  it('rejects a worker count that is not a positive integer', async () => {
    await expect(queue().runWorkers(0, () => undefined)).rejects.toThrow(RangeError);
  });
});

/** Lets queued promise callbacks run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
}
