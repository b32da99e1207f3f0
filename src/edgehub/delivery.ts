// One deliverer per endpoint drains its queue: it checks entries out of the store in order, sends up
// to `window` at a time, acknowledges each to the store only once the receiver has acknowledged it
// (a module's PUBACK, IoT Hub's PUBACK), and puts failed sends back at the head of its queue so order
// holds across retries. Delivery is at least once: a send whose acknowledgement was lost is sent again.
import type { HubQueues, StoredEntry } from './queues.ts';

export interface DeliveryTarget {
  /** Whether sending can start now (receiver connected and subscribed, IoT Hub not backing off). */
  ready(): boolean;
  /** Sends one entry; resolves when the receiver acknowledged it. */
  send(entry: StoredEntry): Promise<void>;
  /** A send failed: the target decides when it is ready again (and calls kick). */
  failed(entry: StoredEntry, error: Error): void;
  delivered(entry: StoredEntry): void;
}

export class Deliverer {
  readonly endpoint: string;
  private readonly queues: HubQueues;
  private readonly target: DeliveryTarget;
  private readonly window: number;
  private readonly inflight = new Map<number, StoredEntry>();
  /** Entries whose send failed, to go again before anything new. */
  private retry: StoredEntry[] = [];
  private acks: number[] = [];
  private ackScheduled = false;
  private kicking = false;
  private stopped = false;
  /** Entries sent more than once (a retry after a failure). */
  redelivered = 0;

  constructor(endpoint: string, queues: HubQueues, target: DeliveryTarget, window: number) {
    this.endpoint = endpoint;
    this.queues = queues;
    this.target = target;
    this.window = window;
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  /** Sends what the window allows. Safe to call at any time, as often as wanted. */
  kick(): void {
    if (this.kicking || this.stopped) return;
    this.kicking = true;
    try {
      while (this.inflight.size < this.window && this.target.ready()) {
        const batch = this.retry.length > 0 ? this.retry.splice(0, this.window - this.inflight.size) : this.queues.checkout(this.endpoint, this.window - this.inflight.size);
        if (batch.length === 0) break;
        for (const entry of batch) this.start(entry);
      }
    } finally {
      this.kicking = false;
    }
  }

  private start(entry: StoredEntry): void {
    this.inflight.set(entry.id, entry);
    this.target.send(entry).then(
      () => this.onDelivered(entry),
      (error: unknown) => this.onFailed(entry, error instanceof Error ? error : new Error(String(error))),
    );
  }

  private onDelivered(entry: StoredEntry): void {
    if (!this.inflight.delete(entry.id)) return;
    this.target.delivered(entry);
    this.acks.push(entry.id);
    if (!this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => this.flushAcks());
    }
    this.kick();
  }

  private flushAcks(): void {
    this.ackScheduled = false;
    const ids = this.acks;
    this.acks = [];
    if (ids.length > 0 && !this.stopped) {
      this.queues.ack(this.endpoint, ids).catch(() => {
        // Not deleted: the entries stay stored and are delivered again after a restart (at least once).
      });
    }
  }

  private onFailed(entry: StoredEntry, error: Error): void {
    if (!this.inflight.delete(entry.id)) return;
    this.redelivered += 1;
    // Keep the retry list in queue order (priority, then id), whatever order the failures arrive in.
    this.retry.push(entry);
    this.retry.sort((a, b) => a.priority - b.priority || a.id - b.id);
    this.target.failed(entry, error);
  }

  stop(): void {
    this.flushAcks();
    this.stopped = true;
    this.queues.release(this.endpoint, [...this.inflight.keys(), ...this.retry.map((e) => e.id)]);
    this.inflight.clear();
    this.retry = [];
  }
}
