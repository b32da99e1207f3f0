// What the hub needs of the durable store (src/store): per-endpoint queues of encoded messages.
// The hub talks to this interface only; store-adapter.ts maps it onto src/store's MessageStore.

export interface StoredEntry {
  /** Increases with every enqueue; per endpoint, delivery follows priority, then id. */
  id: number;
  endpoint: string;
  payload: Buffer;
  /** Milliseconds since the epoch. */
  enqueuedAt: number;
  priority: number;
}

export interface EnqueueItem {
  endpoint: string;
  priority: number;
  /** undefined: never expires. */
  ttlSeconds: number | undefined;
  payload: Buffer;
}

export interface QueueStats {
  /** Messages held per endpoint (delivered-but-unacknowledged included). */
  lengths: Map<string, number>;
  bytes: number;
}

export interface HubQueues {
  /** Stores every item in one durable write; rejects with StoreFullError when the disk budget would be exceeded. */
  enqueue(items: EnqueueItem[]): Promise<void>;
  /** The next `max` entries of an endpoint not already checked out (in memory; a restart checks everything in again). */
  checkout(endpoint: string, max: number): StoredEntry[];
  /** Puts checked-out entries back, to be checked out again in order. */
  release(endpoint: string, ids: number[]): void;
  /** Deletes delivered entries. */
  ack(endpoint: string, ids: number[]): Promise<void>;
  /** Deletes entries whose time to live has passed; returns how many per endpoint and sender. */
  expire(nowMs: number): ExpiredCount[];
  stats(): QueueStats;
  /** Messages of an endpoint dropped because their time to live passed, since the store was opened. */
  expiredSinceStart(endpoint: string): number;
  /** Endpoints that hold at least one entry. */
  endpoints(): string[];
  close(): Promise<void>;
}

export interface ExpiredCount {
  endpoint: string;
  count: number;
}

/** The store's refusal when its disk budget (or the disk) is full: code IEO_STORE_FULL. */
export { StoreFullError } from '../store/index.ts';
