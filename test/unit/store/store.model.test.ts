// Model-based test: random sequences of enqueue, checkout, ack, nack, expire, dropEndpoint and
// reopen against the store and against a plain in-memory model of the README's rules; after each
// command the answers and the per-endpoint counts must agree.
import { afterAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageStore, perMessageOverheadBytes, StoreFullError } from '../../../src/store/index.ts';
import type { EndpointStats } from '../../../src/store/index.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface ModelMessage {
  seq: number;
  endpoint: string;
  priority: number;
  expiresAtMs: number | undefined;
  text: string;
  inFlight: boolean;
}

class Model {
  messages: ModelMessage[] = [];
  expired = new Map<string, number>();
  dropped = new Map<string, number>();
  endpoints = new Set<string>();
  now = 1000;

  bytes(ms: ModelMessage[]): number {
    return ms.reduce((n, m) => n + Buffer.byteLength(m.text) + perMessageOverheadBytes, 0);
  }

  count(map: Map<string, number>, endpoint: string, n = 1): void {
    map.set(endpoint, (map.get(endpoint) ?? 0) + n);
  }

  drop(m: ModelMessage): void {
    this.messages = this.messages.filter((x) => x !== m);
    this.count(this.expired, m.endpoint);
  }

  pending(endpoint: string, priority?: number): ModelMessage[] {
    return this.messages
      .filter((m) => m.endpoint === endpoint && !m.inFlight && (priority === undefined || m.priority === priority))
      .sort((a, b) => a.priority - b.priority || a.seq - b.seq);
  }

  stats(): Record<string, EndpointStats> {
    const out: Record<string, EndpointStats> = {};
    for (const e of this.endpoints) {
      const ms = this.messages.filter((m) => m.endpoint === e);
      out[e] = { length: ms.length, bytes: this.bytes(ms), inFlight: ms.filter((m) => m.inFlight).length, expired: this.expired.get(e) ?? 0, dropped: this.dropped.get(e) ?? 0 };
    }
    return out;
  }
}

interface Real {
  store: MessageStore;
  dir: string;
  maxBytes: number;
  cache: number;
}

interface Command {
  run(model: Model, real: Real): Promise<void>;
}

const endpoints = ['a', 'b'];
const endpoint = fc.constantFrom(...endpoints);

class Enqueue implements Command {
  readonly items: Array<{ endpoint: string; priority: number; ttl: number | undefined; text: string }>;
  constructor(items: Array<{ endpoint: string; priority: number; ttl: number | undefined; text: string }>) {
    this.items = items;
  }
  async run(model: Model, real: Real): Promise<void> {
    for (const i of this.items) model.endpoints.add(i.endpoint);
    const needed = this.items.reduce((n, i) => n + Buffer.byteLength(i.text) + perMessageOverheadBytes, 0);
    const request = real.store.enqueue(this.items.map((i) => ({ endpointId: i.endpoint, priority: i.priority, expiresAtMs: i.ttl === undefined ? undefined : model.now + i.ttl, message: Buffer.from(i.text) })));
    if (model.bytes(model.messages) + needed > real.maxBytes) {
      await expect(request).rejects.toBeInstanceOf(StoreFullError);
      for (const i of this.items) model.count(model.dropped, i.endpoint);
      return;
    }
    const seqs = await request;
    this.items.forEach((i, n) => model.messages.push({ seq: seqs[n] as number, endpoint: i.endpoint, priority: i.priority, expiresAtMs: i.ttl === undefined ? undefined : model.now + i.ttl, text: i.text, inFlight: false }));
  }
  [fc.toStringMethod](): string {
    return `enqueue(${JSON.stringify(this.items)})`;
  }
}

class Checkout implements Command {
  readonly endpoint: string;
  readonly max: number;
  constructor(endpoint: string, max: number) {
    this.endpoint = endpoint;
    this.max = max;
  }
  async run(model: Model, real: Real): Promise<void> {
    const expected: ModelMessage[] = [];
    for (const m of model.pending(this.endpoint)) {
      if (expected.length >= this.max) break;
      if (m.expiresAtMs !== undefined && m.expiresAtMs <= model.now) model.drop(m);
      else expected.push(m);
    }
    for (const m of expected) m.inFlight = true;
    const got = real.store.checkout(this.endpoint, this.max, model.now);
    expect(got.map((m) => [m.seq, m.message.toString(), m.priority])).toEqual(expected.map((m) => [m.seq, m.text, m.priority]));
  }
  [fc.toStringMethod](): string {
    return `checkout(${this.endpoint}, ${this.max})`;
  }
}

/** Acks or nacks a chosen subset of what is checked out (picked by index, so it applies to any state). */
class Settle implements Command {
  readonly endpoint: string;
  readonly picks: number[];
  readonly kind: 'ack' | 'nack';
  constructor(endpoint: string, picks: number[], kind: 'ack' | 'nack') {
    this.endpoint = endpoint;
    this.picks = picks;
    this.kind = kind;
  }
  async run(model: Model, real: Real): Promise<void> {
    const inFlight = model.messages.filter((m) => m.endpoint === this.endpoint && m.inFlight).sort((a, b) => a.seq - b.seq);
    const chosen = [...new Set(this.picks.map((p) => inFlight[p % Math.max(1, inFlight.length)]).filter((m): m is ModelMessage => m !== undefined))];
    if (this.kind === 'ack') {
      model.messages = model.messages.filter((m) => !chosen.includes(m));
      real.store.ack(this.endpoint, chosen.map((m) => m.seq));
      return;
    }
    for (const priority of new Set(chosen.map((m) => m.priority))) {
      const first = Math.min(...chosen.filter((m) => m.priority === priority).map((m) => m.seq));
      for (const m of inFlight) if (m.priority === priority && m.seq >= first) m.inFlight = false;
    }
    real.store.nack(this.endpoint, chosen.map((m) => m.seq));
  }
  [fc.toStringMethod](): string {
    return `${this.kind}(${this.endpoint}, ${JSON.stringify(this.picks)})`;
  }
}

class Expire implements Command {
  readonly advanceMs: number;
  constructor(advanceMs: number) {
    this.advanceMs = advanceMs;
  }
  async run(model: Model, real: Real): Promise<void> {
    model.now += this.advanceMs;
    const expiredNow = (m: ModelMessage) => m.expiresAtMs !== undefined && m.expiresAtMs <= model.now;
    let count = 0;
    for (const m of model.messages.filter((x) => x.inFlight && expiredNow(x))) {
      model.drop(m);
      count++;
    }
    for (const e of model.endpoints) {
      for (const priority of new Set(model.messages.filter((m) => m.endpoint === e).map((m) => m.priority))) {
        for (const m of model.pending(e, priority)) {
          if (!expiredNow(m)) break;
          model.drop(m);
          count++;
        }
      }
    }
    expect(real.store.expire(model.now)).toBe(count);
  }
  [fc.toStringMethod](): string {
    return `expire(+${this.advanceMs})`;
  }
}

class DropEndpoint implements Command {
  readonly endpoint: string;
  constructor(endpoint: string) {
    this.endpoint = endpoint;
  }
  async run(model: Model, real: Real): Promise<void> {
    const gone = model.messages.filter((m) => m.endpoint === this.endpoint);
    model.messages = model.messages.filter((m) => m.endpoint !== this.endpoint);
    model.count(model.dropped, this.endpoint, gone.length);
    expect(real.store.dropEndpoint(this.endpoint)).toBe(model.endpoints.has(this.endpoint) ? gone.length : 0);
  }
  [fc.toStringMethod](): string {
    return `dropEndpoint(${this.endpoint})`;
  }
}

class Reopen implements Command {
  async run(model: Model, real: Real): Promise<void> {
    await real.store.close();
    real.store = await MessageStore.open(real.dir, { maxBytes: real.maxBytes, memoryCacheBytes: real.cache });
    for (const m of model.messages) m.inFlight = false;
    model.expired.clear();
    model.dropped.clear();
    // Endpoints known to the store survive a reopen even when empty.
  }
  [fc.toStringMethod](): string {
    return 'reopen';
  }
}

// Weighted so that state builds up: wiping commands (dropEndpoint, reopen) are rare.
const commands = [
  { weight: 5, arbitrary: fc.array(fc.record({ endpoint, priority: fc.integer({ min: 0, max: 2 }), ttl: fc.option(fc.integer({ min: 1, max: 80 }), { nil: undefined }), text: fc.string({ maxLength: 12 }) }), { minLength: 1, maxLength: 3 }).map((items): Command => new Enqueue(items)) },
  { weight: 4, arbitrary: fc.tuple(endpoint, fc.integer({ min: 1, max: 4 })).map(([e, max]): Command => new Checkout(e, max)) },
  { weight: 4, arbitrary: fc.tuple(endpoint, fc.array(fc.nat(9), { minLength: 1, maxLength: 3 }), fc.constantFrom('ack' as const, 'nack' as const)).map(([e, picks, kind]): Command => new Settle(e, picks, kind)) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 30 }).map((dt): Command => new Expire(dt)) },
  { weight: 1, arbitrary: endpoint.map((e): Command => new DropEndpoint(e)) },
  { weight: 1, arbitrary: fc.constant<Command>(new Reopen()) },
];

describe('MessageStore against a model', () => {
  it('agrees on every answer and count over random command sequences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(...commands), { minLength: 10, maxLength: 50 }), fc.constantFrom(0, 150, 32 * 1024 * 1024), fc.constantFrom(600, 100_000), async (cmds, cache, maxBytes) => {
        const dir = mkdtempSync(join(tmpdir(), 'ieo-store-model-'));
        dirs.push(dir);
        const real: Real = { store: await MessageStore.open(dir, { maxBytes, memoryCacheBytes: cache }), dir, maxBytes, cache };
        const model = new Model();
        try {
          for (const c of cmds) {
            await c.run(model, real);
            const got = real.store.stats();
            for (const e of model.endpoints) expect({ e, ...got[e] }).toEqual({ e, ...model.stats()[e] });
          }
        } finally {
          await real.store.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 150 },
    );
  });
});
