// The hub's queues (queues.ts) on src/store's MessageStore: time to live becomes an expiry instant,
// the store's group commit makes each enqueue durable before it resolves, and expiry is counted
// per endpoint from the store's own counters (it also drops expired messages at checkout).
import { MessageStore } from '../store/index.ts';
import type { EnqueueItem, ExpiredCount, HubQueues, StoredEntry } from './queues.ts';

export async function openHubQueues(dir: string, maxBytes: number, durability: 'full' | 'normal' = 'full', fsync: 'background' | 'inline' = 'background'): Promise<HubQueues> {
  const store = await MessageStore.open(dir, { maxBytes, durability, fsync });
  const expiredSeen = new Map<string, number>(Object.entries(store.stats()).map(([e, s]) => [e, s.expired]));
  return {
    async enqueue(items: EnqueueItem[]): Promise<void> {
      const now = Date.now();
      await store.enqueue(items.map((i) => ({
        endpointId: i.endpoint,
        priority: i.priority,
        expiresAtMs: i.ttlSeconds === undefined ? undefined : now + i.ttlSeconds * 1000,
        message: i.payload,
      })));
    },
    checkout(endpoint: string, max: number): StoredEntry[] {
      return store.checkout(endpoint, max).map((m) => ({ id: m.seq, endpoint: m.endpointId, payload: m.message, enqueuedAt: m.enqueuedAtMs, priority: m.priority }));
    },
    release(endpoint: string, ids: number[]): void {
      store.nack(endpoint, ids);
    },
    async ack(endpoint: string, ids: number[]): Promise<void> {
      store.ack(endpoint, ids);
    },
    expire(nowMs: number): ExpiredCount[] {
      store.expire(nowMs);
      const counts: ExpiredCount[] = [];
      for (const [endpoint, s] of Object.entries(store.stats())) {
        const seen = expiredSeen.get(endpoint) ?? 0;
        if (s.expired > seen) counts.push({ endpoint, count: s.expired - seen });
        expiredSeen.set(endpoint, s.expired);
      }
      return counts;
    },
    stats() {
      const all = store.stats();
      return { lengths: new Map(Object.entries(all).map(([e, s]) => [e, s.length])), bytes: store.bytesUsed };
    },
    expiredSinceStart(endpoint: string): number {
      return store.stats()[endpoint]?.expired ?? 0;
    },
    endpoints(): string[] {
      return Object.entries(store.stats()).filter(([, s]) => s.length > 0).map(([e]) => e);
    },
    close(): Promise<void> {
      return store.close();
    },
  };
}
