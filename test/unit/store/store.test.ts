// The message store against a real SQLite file in a temporary directory.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorCatalogue } from '../../../src/api/errors.ts';
import { MessageStore, perMessageOverheadBytes, StoreFullError, StoreWriteError } from '../../../src/store/index.ts';
import type { EnqueueItem, StoreOptions } from '../../../src/store/index.ts';
import { runs } from '../../../src/store/store.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ieo-store-'));
  dirs.push(dir);
  return dir;
}

// Every behaviour holds whether checkout reads the memory cache, the disk, or both.
let cacheBytes: number | undefined;

async function open(options: Partial<StoreOptions> = {}, dir = tempDir()): Promise<{ store: MessageStore; dir: string }> {
  return { store: await MessageStore.open(dir, { maxBytes: 10_000_000, ...(cacheBytes !== undefined ? { memoryCacheBytes: cacheBytes } : {}), ...options }), dir };
}

const item = (endpointId: string, text: string, priority = 9, expiresAtMs?: number): EnqueueItem => ({ endpointId, priority, expiresAtMs, message: Buffer.from(text) });
const texts = (ms: Array<{ message: Buffer }>) => ms.map((m) => m.message.toString());

describe.each([
  ['with the memory cache', undefined],
  ['reading the disk only', 0],
  ['with a cache of two small messages', 4],
])('MessageStore %s', (_name, cache) => {
  beforeAll(() => {
    cacheBytes = cache;
  });
  it('delivers per endpoint by priority, then in enqueue order', async () => {
    const { store } = await open();
    await store.enqueue([item('a', 'a1', 5), item('b', 'b1', 0)]);
    await store.enqueue([item('a', 'a2', 9)]);
    await store.enqueue([item('a', 'a3', 0)]);
    await store.enqueue([item('a', 'a4', 5)]);
    expect(texts(store.checkout('a', 10))).toEqual(['a3', 'a1', 'a4', 'a2']);
    expect(texts(store.checkout('b', 10))).toEqual(['b1']);
    expect(store.checkout('a', 10)).toEqual([]);
    expect(store.checkout('nowhere', 10)).toEqual([]);
    await store.close();
  });

  it('hands out at most max messages and continues where it stopped', async () => {
    const { store } = await open();
    await store.enqueue(['1', '2', '3', '4', '5'].map((t) => item('a', t)));
    expect(texts(store.checkout('a', 2))).toEqual(['1', '2']);
    expect(texts(store.checkout('a', 2))).toEqual(['3', '4']);
    expect(texts(store.checkout('a', 2))).toEqual(['5']);
    await store.close();
  });

  it('resolves every enqueue of one event-loop turn with a single commit', async () => {
    const { store } = await open();
    const before = store.commits;
    const all = await Promise.all(Array.from({ length: 500 }, (_, i) => store.enqueue([item('a', `m${i}`)])));
    expect(store.commits - before).toBe(1);
    expect(all.flat()).toEqual([...all.flat()].sort((x, y) => x - y));
    expect(store.stats().a?.length).toBe(500);
    await store.close();
  });

  it('forgets acked messages, and after a reopen offers again everything not acked', async () => {
    const { store, dir } = await open();
    await store.enqueue(['1', '2', '3', '4'].map((t) => item('a', t)));
    const out = store.checkout('a', 3);
    store.ack('a', [out[0]!.seq, out[2]!.seq]);
    expect(store.stats().a).toEqual({ length: 2, bytes: 2 * (1 + perMessageOverheadBytes), inFlight: 1, expired: 0, dropped: 0 });
    await store.close();
    const reopened = await MessageStore.open(dir, { maxBytes: 10_000_000 });
    expect(reopened.stats().a).toMatchObject({ length: 2, inFlight: 0 });
    expect(texts(reopened.checkout('a', 10))).toEqual(['2', '4']);
    await reopened.close();
  });

  it('nack returns a message and everything checked out after it, in order', async () => {
    const { store } = await open();
    await store.enqueue(['1', '2', '3', '4'].map((t) => item('a', t)));
    const out = store.checkout('a', 4);
    store.ack('a', [out[0]!.seq]);
    store.nack('a', [out[2]!.seq]);
    expect(store.stats().a).toMatchObject({ length: 3, inFlight: 1 });
    expect(texts(store.checkout('a', 10))).toEqual(['3', '4']);
    store.nack('a', [out[1]!.seq]);
    expect(texts(store.checkout('a', 10))).toEqual(['2', '3', '4']);
    await store.close();
  });

  it('does not hand out a message acked before a nack rewinds past it', async () => {
    const { store } = await open();
    await store.enqueue(['1', '2', '3'].map((t) => item('a', t)));
    const out = store.checkout('a', 3);
    store.ack('a', [out[1]!.seq]);
    store.nack('a', [out[0]!.seq]);
    expect(texts(store.checkout('a', 10))).toEqual(['1', '3']);
    await store.close();
  });

  it('drops and counts expired messages: by expire(), and at checkout', async () => {
    const { store } = await open();
    const now = 1_000_000;
    await store.enqueue([item('a', 'old', 9, now - 1), item('a', 'fresh', 9, now + 60_000), item('a', 'forever', 9), item('b', 'old-b', 9, now)]);
    expect(store.expire(now)).toBe(2);
    expect(store.expire(now)).toBe(0);
    expect(store.stats()).toEqual({
      a: { length: 2, bytes: 5 + 7 + 2 * perMessageOverheadBytes, inFlight: 0, expired: 1, dropped: 0 },
      b: { length: 0, bytes: 0, inFlight: 0, expired: 1, dropped: 0 },
    });
    expect(texts(store.checkout('a', 10, now + 60_000))).toEqual(['forever']);
    expect(store.stats().a).toMatchObject({ length: 1, expired: 2, inFlight: 1 });
    await store.flush();
    await store.close();
  });

  it('does not hand out a message that expired while waiting, even after its row is gone', async () => {
    const { store } = await open();
    await store.enqueue([item('a', 'soon', 9, 10), item('a', 'later', 9, 1000)]);
    expect(store.expire(10)).toBe(1);
    await store.flush();
    expect(texts(store.checkout('a', 10, 20))).toEqual(['later']);
    expect(store.stats().a).toMatchObject({ length: 1, expired: 1, inFlight: 1 });
    await store.close();
  });

  it('keeps order when a backlog outgrows memory and new messages keep arriving', async () => {
    const { store } = await open();
    await store.enqueue(['1', '2', '3'].map((t) => item('a', t)));
    expect(texts(store.checkout('a', 2))).toEqual(['1', '2']);
    await store.enqueue(['4', '5'].map((t) => item('a', t)));
    const three = store.checkout('a', 2);
    expect(texts(three)).toEqual(['3', '4']);
    store.nack('a', [three[0]!.seq]);
    await store.enqueue([item('a', '6')]);
    expect(texts(store.checkout('a', 10))).toEqual(['3', '4', '5', '6']);
    await store.enqueue([item('a', '7')]);
    expect(texts(store.checkout('a', 10))).toEqual(['7']);
    await store.close();
  });

  it('leaves a message that expires behind a longer-lived one to checkout, which drops and counts it', async () => {
    const { store } = await open();
    await store.enqueue([item('a', 'long', 9, 1000), item('a', 'short', 9, 10), item('a', 'none')]);
    expect(store.expire(20)).toBe(0);
    expect(texts(store.checkout('a', 10, 20))).toEqual(['long', 'none']);
    expect(store.stats().a).toMatchObject({ length: 2, expired: 1 });
    await store.close();
  });

  it('expires from the head of a backlog read back from disk', async () => {
    const { store, dir } = await open();
    await store.enqueue([item('a', '1', 9, 10), item('a', '2', 9, 10), item('a', '3', 9, 1000)]);
    await store.close();
    const reopened = await MessageStore.open(dir, { maxBytes: 10_000_000, ...(cacheBytes !== undefined ? { memoryCacheBytes: cacheBytes } : {}) });
    expect(reopened.expire(10)).toBe(2);
    expect(texts(reopened.checkout('a', 10, 10))).toEqual(['3']);
    await reopened.close();
  });

  it('expires checked-out messages too, and ignores their late ack', async () => {
    const { store } = await open();
    await store.enqueue([item('a', 'x', 9, 10)]);
    const [m] = store.checkout('a', 1, 5);
    expect(store.expire(10)).toBe(1);
    store.ack('a', [m!.seq]);
    expect(store.stats().a).toEqual({ length: 0, bytes: 0, inFlight: 0, expired: 1, dropped: 0 });
    await store.close();
  });

  it('refuses with IEO_STORE_FULL beyond the disk budget, stores nothing of the refused enqueue, and accepts again when space returns', async () => {
    const size = 100 + perMessageOverheadBytes;
    const { store, dir } = await open({ maxBytes: 3 * size });
    const body = (c: string) => c.repeat(100);
    await store.enqueue([item('a', body('1')), item('b', body('2'))]);
    const refused = store.enqueue([item('a', body('3')), item('b', body('4'))]);
    await expect(refused).rejects.toBeInstanceOf(StoreFullError);
    await expect(refused).rejects.toMatchObject({ code: 'IEO_STORE_FULL', maxBytes: 3 * size, usedBytes: 2 * size, neededBytes: 2 * size });
    expect(store.stats()).toMatchObject({ a: { length: 1, dropped: 1 }, b: { length: 1, dropped: 1 } });
    await store.enqueue([item('a', body('5'))]);
    await expect(store.enqueue([item('a', body('6'))])).rejects.toBeInstanceOf(StoreFullError);
    store.ack('a', store.checkout('a', 1).map((m) => m.seq));
    await store.enqueue([item('a', body('7'))]);
    expect(texts(store.checkout('a', 10)).map((t) => t[0])).toEqual(['5', '7']);
    await store.close();
    const reopened = await MessageStore.open(dir, { maxBytes: 3 * size });
    expect(reopened.bytesUsed).toBe(3 * size);
    await expect(reopened.enqueue([item('a', 'x')])).rejects.toBeInstanceOf(StoreFullError);
    await reopened.close();
  });

  it('drops every message of an endpoint on request, and keeps serving it afterwards', async () => {
    const { store, dir } = await open();
    await store.enqueue([item('a', '1'), item('a', '2'), item('b', '3')]);
    store.checkout('a', 1);
    const later = store.enqueue([item('a', '4')]);
    expect(store.dropEndpoint('a')).toBe(2);
    await later;
    expect(store.stats().a).toMatchObject({ length: 1, dropped: 2, inFlight: 0 });
    expect(texts(store.checkout('a', 10))).toEqual(['4']);
    await store.close();
    const reopened = await MessageStore.open(dir, { maxBytes: 10_000_000 });
    expect(texts(reopened.checkout('a', 10))).toEqual(['4']);
    expect(texts(reopened.checkout('b', 10))).toEqual(['3']);
    await reopened.close();
  });

  it('continues sequence numbers after a reopen, even when everything was acked', async () => {
    const { store, dir } = await open();
    const [first] = await store.enqueue([item('a', '1')]);
    await store.close();
    const again = await MessageStore.open(dir, { maxBytes: 10_000_000 });
    const [second] = await again.enqueue([item('a', '2')]);
    expect(second).toBeGreaterThan(first!);
    await again.close();
  });

  it('keeps message bytes and metadata intact', async () => {
    const { store } = await open({ durability: 'normal' });
    const bytes = Buffer.from(Array.from({ length: 2048 }, (_, i) => i % 256));
    const [seq] = await store.enqueue([{ endpointId: '/modules/f/inputs/in', priority: 3, expiresAtMs: 4_102_444_800_000, message: bytes }]);
    const [m] = store.checkout('/modules/f/inputs/in', 1);
    expect(m).toMatchObject({ seq, endpointId: '/modules/f/inputs/in', priority: 3, expiresAtMs: 4_102_444_800_000 });
    expect(Buffer.compare(m!.message, bytes)).toBe(0);
    expect(typeof m!.enqueuedAtMs).toBe('number');
    await store.close();
  });

  it('refuses writes after close with a coded error, not a crash', async () => {
    const { store } = await open();
    await store.close();
    await expect(store.enqueue([item('a', 'x')])).rejects.toBeInstanceOf(StoreWriteError);
  });

  it('lets only one process own a store directory at a time', async () => {
    const { store, dir } = await open();
    await store.enqueue([item('a', 'x')]);
    await expect(MessageStore.open(dir, { maxBytes: 1000 }).then(async (s) => s.enqueue([item('a', 'y')]))).rejects.toThrow(/locked|busy/i);
    await store.close();
  });

});

describe('store errors', () => {
  it('use codes that the error catalogue documents', () => {
    expect(errorCatalogue).toHaveProperty(new StoreFullError('x', 0, 0, 0).code);
    expect(errorCatalogue).toHaveProperty(new StoreWriteError('x').code);
  });
});

describe('runs', () => {
  it('groups sequence numbers into ranges for deletion', () => {
    expect(runs([8, 1, 3, 2, 7, 10, 3])).toEqual([[1, 3], [7, 8], [10, 10]]);
    expect(runs([])).toEqual([]);
  });
});

describe('durability full with the fsync in the background', () => {
  it('resolves an enqueue only after a sync of the WAL that began after its commit, and covers several commits with one sync', async () => {
    const { store } = await open({ fsync: 'background' });
    const syncsAtStart = store.syncs;
    const resolvedAfter: number[] = [];
    const pending: Promise<unknown>[] = [];
    // Commits in successive event-loop turns while a sync may be running: each resolves only behind a finished sync.
    for (let turn = 0; turn < 20; turn++) {
      const syncsBefore = store.syncs;
      pending.push(store.enqueue([item('e', `m${turn}`)]).then(() => resolvedAfter.push(store.syncs - syncsBefore)));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);
    expect(resolvedAfter).toHaveLength(20);
    expect(resolvedAfter.every((n) => n >= 1)).toBe(true);
    expect(store.commits).toBeGreaterThanOrEqual(20);
    expect(store.syncs - syncsAtStart).toBeLessThanOrEqual(store.commits);
    expect(texts(store.checkout('e', 100))).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    await store.close();
  });

  it('makes no background sync with fsync inline or durability normal (SQLite syncs, or nobody does)', async () => {
    for (const options of [{ fsync: 'inline' as const }, { durability: 'normal' as const }]) {
      const { store } = await open(options);
      await store.enqueue([item('e', 'x')]);
      expect(store.syncs).toBe(0);
      await store.close();
    }
  });

  it('keeps what it stored across a reopen, and closes only after its last sync', async () => {
    const { store, dir } = await open({ fsync: 'background' });
    const writes = Array.from({ length: 50 }, (_, i) => store.enqueue([item('e', `k${i}`)]));
    await store.close();
    await Promise.all(writes);
    const { store: again } = await open({ fsync: 'background' }, dir);
    expect(texts(again.checkout('e', 100))).toEqual(Array.from({ length: 50 }, (_, i) => `k${i}`));
    await again.close();
  });
});
