// Durable per-endpoint message queues in one SQLite database (Node's built-in node:sqlite, WAL).
// Writes are group-committed: every enqueue and ack of one event-loop turn goes into a single
// transaction, committed (and, with durability 'full', fsynced) once; enqueue promises resolve
// only after that commit is durable. Delivery state (what is checked out) lives in memory: after a
// restart every stored message is pending again, which is what at-least-once allows.
//
// The fsync runs off the event loop (fsync 'background', the default): SQLite commits with
// synchronous=NORMAL, which writes the transaction's WAL frames without syncing them (and still syncs
// around checkpoints, so the database stays consistent), then fdatasync of the WAL file runs on
// libuv's thread pool and the commit's enqueues resolve when it returns. Commits made while a sync
// runs wait for the next one, which covers them all (group commit of the syncs). The result is what
// synchronous=FULL gives, an acknowledged message survives power loss, without the event loop waiting
// on the disk. fsync 'inline' is SQLite's own synchronous=FULL, the sync inside COMMIT.

import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { StatementSync } from 'node:sqlite';
import { StoreFullError, StoreWriteError } from './errors.ts';

export interface StoreOptions {
  /** The disk budget: the most bytes of stored messages (bodies plus a fixed per-message overhead). */
  maxBytes: number;
  /**
   * 'full' (default): each group commit is fsynced before enqueue resolves, so an acknowledged
   * message survives power loss. 'normal': survives a crash of the process but not of the machine.
   */
  durability?: 'full' | 'normal';
  /**
   * With durability 'full': 'background' (default) syncs the WAL on libuv's thread pool after each group
   * commit, off the event loop; 'inline' lets SQLite sync inside COMMIT (synchronous=FULL), on the caller's thread.
   */
  fsync?: 'background' | 'inline';
  /**
   * Committed messages not yet checked out are also kept in memory up to this many bytes (default
   * 32 MiB), so checkout reads the disk only for a backlog beyond it or after a restart.
   */
  memoryCacheBytes?: number;
}

export interface EnqueueItem {
  endpointId: string;
  /** 0 is delivered first. */
  priority: number;
  /** When the message expires (ms since the epoch); undefined = never. */
  expiresAtMs: number | undefined;
  /** Kept by reference until checked out: do not modify it after enqueue. */
  message: Uint8Array;
}

export interface StoredMessage {
  seq: number;
  endpointId: string;
  priority: number;
  expiresAtMs: number | undefined;
  enqueuedAtMs: number;
  message: Buffer;
}

export interface EndpointStats {
  /** Messages stored for the endpoint, checked out or not. */
  length: number;
  /** Their accounted bytes. */
  bytes: number;
  /** Of them, checked out and not yet acked. */
  inFlight: number;
  /** Dropped by expiry since the store was opened. */
  expired: number;
  /** Refused because the store was full, or removed with dropEndpoint, since the store was opened. */
  dropped: number;
}

/** What one stored message costs the budget beyond its bytes: row, index entries, page slack. */
export const perMessageOverheadBytes = 64;

interface CachedMessage {
  seq: number;
  expiresAtMs: number | undefined;
  enqueuedAtMs: number;
  bytes: number;
  message: Uint8Array;
}

interface InFlight {
  priority: number;
  bytes: number;
  expiresAtMs: number | undefined;
}

interface Level {
  /** Highest seq of this priority handed out by checkout; rows above it are pending. */
  cursor: number;
  pending: number;
  /** The oldest pending messages, in seq order from `head`, while they fit the memory cache. */
  cached: CachedMessage[];
  head: number;
  /** Whether pending rows exist beyond the cache, on disk only (after a reopen, a nack, or a full cache). */
  onDisk: boolean;
}

interface Queue {
  id: number;
  name: string;
  levels: Map<number, Level>;
  /** Priorities present in levels, ascending. */
  priorities: number[];
  inFlight: Map<number, InFlight>;
  length: number;
  bytes: number;
  expired: number;
  dropped: number;
}

interface PendingInsert {
  seq: number;
  queue: Queue;
  priority: number;
  expiresAtMs: number | undefined;
  bytes: number;
  message: Uint8Array;
}

interface Waiter {
  inserts: PendingInsert[];
  resolve: (seqs: number[]) => void;
  reject: (err: Error) => void;
}

/** What waits for a commit to be durable: an enqueue's or a flush's completion. */
interface Durable {
  resolve: () => void;
  reject: (err: Error) => void;
}

const schema = `
CREATE TABLE IF NOT EXISTS endpoints (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY,
  endpoint INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  expires_at INTEGER,
  enqueued_at INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  message BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_queue ON messages (endpoint, priority, seq);
DROP INDEX IF EXISTS messages_expiry;
`;

const sqliteFull = 13;

function isDiskFull(err: unknown): boolean {
  const e = err as { errcode?: number; message?: string };
  return (e.errcode !== undefined && (e.errcode & 0xff) === sqliteFull) || /disk is full|database or disk is full/i.test(e.message ?? '');
}

export class MessageStore {
  readonly maxBytes: number;
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly queues = new Map<string, Queue>();
  private readonly memoryCacheBytes: number;
  private cachedBytes = 0;
  private readonly statements: {
    insert: StatementSync;
    removeRange: StatementSync;
    removeEndpoint: StatementSync;
    addEndpoint: StatementSync;
    page: StatementSync;
    head: StatementSync;
  };
  private nextSeq: number;
  private usedBytes = 0;
  /** Budget taken by inserts not yet committed. */
  private reservedBytes = 0;
  private waiters: Waiter[] = [];
  /** Seqs whose rows are to be deleted at the next commit (acked or expired); checkout skips them. */
  private deleting = new Set<number>();
  private droppedEndpoints: number[] = [];
  private flushScheduled = false;
  private flushWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private closed = false;
  private commitCount = 0;
  /** Background fsync: the WAL file, its inode, the completions of commits written but not synced yet, and whether a sync runs. */
  private readonly backgroundSync: boolean;
  private wal: { fd: number; ino: number } | undefined;
  private unsynced: Durable[] = [];
  private syncing = false;
  private syncCount = 0;
  private idleWaiters: Array<() => void> = [];

  private constructor(path: string, options: StoreOptions) {
    this.path = path;
    this.maxBytes = options.maxBytes;
    this.memoryCacheBytes = options.memoryCacheBytes ?? 32 * 1024 * 1024;
    this.db = new DatabaseSync(path);
    // 16 KiB pages (only applies when the file is created): fewer, larger page writes per commit
    // for rows of about 1 KiB; measured about 1.5x the default 4 KiB in bench/store.ts's setting.
    this.db.exec('PRAGMA page_size = 16384');
    // EXCLUSIVE: one process owns the queues (a second opener gets SQLITE_BUSY), and WAL needs no shared memory file.
    this.db.exec('PRAGMA locking_mode = EXCLUSIVE');
    this.db.exec('PRAGMA journal_mode = WAL');
    this.backgroundSync = options.durability !== 'normal' && options.fsync !== 'inline';
    // Background sync: SQLite does not sync at COMMIT (NORMAL); this store syncs the WAL itself, off the event loop.
    this.db.exec(`PRAGMA synchronous = ${options.durability === 'normal' || this.backgroundSync ? 'NORMAL' : 'FULL'}`);
    // Checkpoint every ~40 MB of WAL rather than 4 MB: messages acked soon after they are stored
    // then rarely reach the database file at all. The WAL is truncated back to 64 MB at most.
    this.db.exec('PRAGMA wal_autocheckpoint = 2500');
    this.db.exec('PRAGMA journal_size_limit = 67108864');
    this.db.exec(schema);
    this.statements = {
      insert: this.db.prepare('INSERT INTO messages (seq, endpoint, priority, expires_at, enqueued_at, bytes, message) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      removeRange: this.db.prepare('DELETE FROM messages WHERE seq BETWEEN ? AND ?'),
      removeEndpoint: this.db.prepare('DELETE FROM messages WHERE endpoint = ?'),
      addEndpoint: this.db.prepare('INSERT INTO endpoints (name) VALUES (?) RETURNING id'),
      page: this.db.prepare('SELECT seq, expires_at, enqueued_at, bytes, message FROM messages WHERE endpoint = ? AND priority = ? AND seq > ? ORDER BY seq LIMIT ?'),
      head: this.db.prepare('SELECT seq, expires_at, bytes FROM messages WHERE endpoint = ? AND priority = ? AND seq > ? ORDER BY seq LIMIT 256'),
    };
    this.nextSeq = this.load();
    // The schema was just written (or the file opened): make the WAL and its directory entry durable once.
    if (this.backgroundSync) this.syncWalNow();
  }

  /** Opens (creating if needed) the store in `dir`. Everything stored before is pending again. */
  static async open(dir: string, options: StoreOptions): Promise<MessageStore> {
    if (!(options.maxBytes > 0)) throw new RangeError('maxBytes must be a positive number');
    mkdirSync(dir, { recursive: true });
    return new MessageStore(join(dir, 'messages.sqlite'), options);
  }

  private load(): number {
    for (const row of this.db.prepare('SELECT id, name FROM endpoints').all() as Array<{ id: number; name: string }>) {
      this.queues.set(row.name, newQueue(row.id, row.name));
    }
    const byId = new Map([...this.queues.values()].map((q) => [q.id, q]));
    const groups = this.db.prepare('SELECT endpoint, priority, COUNT(*) AS n, SUM(bytes) AS bytes FROM messages GROUP BY endpoint, priority').all() as Array<{ endpoint: number; priority: number; n: number; bytes: number }>;
    for (const g of groups) {
      const q = byId.get(g.endpoint);
      if (!q) continue;
      const level = levelOf(q, g.priority);
      level.pending += g.n;
      level.onDisk = true;
      q.length += g.n;
      q.bytes += g.bytes;
      this.usedBytes += g.bytes;
    }
    const max = this.db.prepare('SELECT MAX(seq) AS max FROM messages').get() as { max: number | null };
    return (max.max ?? 0) + 1;
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      const row = this.statements.addEndpoint.get(name) as { id: number };
      q = newQueue(row.id, name);
      this.queues.set(name, q);
    }
    return q;
  }

  /**
   * Stores one message for several endpoints (or any items) all together. Resolves with their
   * sequence numbers once the group commit holding them is durable; rejects with StoreFullError,
   * storing none of them, when they do not fit the budget.
   */
  enqueue(items: readonly EnqueueItem[]): Promise<number[]> {
    if (this.closed) return Promise.reject(new StoreWriteError('the store is closed'));
    let queues: Queue[];
    try {
      queues = items.map((item) => this.queue(item.endpointId));
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      return Promise.reject(isDiskFull(err) ? new StoreFullError(`message store full: the disk is full (${detail})`, 0, this.bytesUsed, this.maxBytes) : new StoreWriteError(`message store write failed: ${detail}`));
    }
    let needed = 0;
    for (const item of items) needed += item.message.byteLength + perMessageOverheadBytes;
    if (this.usedBytes + this.reservedBytes + needed > this.maxBytes) {
      for (const q of queues) q.dropped++;
      return Promise.reject(new StoreFullError(
        `message store full: ${needed} bytes do not fit (${this.usedBytes + this.reservedBytes} of ${this.maxBytes} used)`,
        needed, this.usedBytes + this.reservedBytes, this.maxBytes,
      ));
    }
    this.reservedBytes += needed;
    const inserts = items.map((item, n): PendingInsert => ({
      seq: this.nextSeq++,
      queue: queues[n] as Queue,
      priority: item.priority,
      expiresAtMs: item.expiresAtMs,
      bytes: item.message.byteLength + perMessageOverheadBytes,
      message: item.message,
    }));
    return new Promise((resolve, reject) => {
      this.waiters.push({ inserts, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.commit());
  }

  /** The group commit: every enqueue and delete gathered since the last one, in one transaction. */
  private commit(): void {
    this.flushScheduled = false;
    const waiters = this.waiters;
    const deleting = [...this.deleting];
    const dropped = this.droppedEndpoints;
    this.waiters = [];
    this.droppedEndpoints = [];
    const flushWaiters = this.flushWaiters;
    this.flushWaiters = [];
    const now = Date.now();
    try {
      this.db.exec('BEGIN');
      for (const id of dropped) this.statements.removeEndpoint.run(id);
      for (const [from, to] of runs(deleting)) this.statements.removeRange.run(from, to);
      for (const w of waiters) {
        for (const i of w.inserts) {
          this.statements.insert.run(i.seq, i.queue.id, i.priority, i.expiresAtMs ?? null, now, i.bytes, i.message);
        }
      }
      this.db.exec('COMMIT');
      this.commitCount++;
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      this.failCommit(err, waiters, dropped, flushWaiters);
      return;
    }
    for (const seq of deleting) this.deleting.delete(seq);
    const done: Durable[] = [];
    for (const w of waiters) {
      const seqs: number[] = [];
      for (const i of w.inserts) {
        this.reservedBytes -= i.bytes;
        this.usedBytes += i.bytes;
        i.queue.length++;
        i.queue.bytes += i.bytes;
        this.addPending(levelOf(i.queue, i.priority), i, now);
        seqs.push(i.seq);
      }
      done.push({ resolve: () => w.resolve(seqs), reject: w.reject });
    }
    done.push(...flushWaiters);
    // The commit is in memory and on disk (not yet synced with background fsync): what it stored may be
    // checked out now; a crash before the sync loses it unacknowledged, and the sender sends it again.
    if (this.backgroundSync) this.syncInBackground(done);
    else for (const d of done) d.resolve();
  }

  /** Resolves `done` once an fdatasync of the WAL that began after this commit returns. */
  private syncInBackground(done: Durable[]): void {
    // A commit of deletes alone waits for nobody: the next sync makes it durable with the rest.
    if (done.length === 0) return;
    this.unsynced.push(...done);
    if (!this.syncing) this.startSync();
  }

  private startSync(): void {
    const batch = this.unsynced;
    this.unsynced = [];
    let fd: number;
    try {
      fd = this.walFd();
    } catch (err) {
      this.failSync(batch, err);
      return;
    }
    this.syncing = true;
    fdatasync(fd, (err) => {
      this.syncing = false;
      this.syncCount++;
      if (err) this.failSync(batch, err);
      else for (const d of batch) d.resolve();
      if (this.unsynced.length > 0) this.startSync();
      else for (const idle of this.idleWaiters.splice(0)) idle();
    });
  }

  private failSync(batch: Durable[], err: unknown): void {
    // The rows are committed but may not be on the disk: nothing of them is acknowledged (their senders send
    // again; duplicates are what at-least-once allows), and the next commit syncs again.
    const error = new StoreWriteError(`message store sync failed: ${err instanceof Error ? err.message : String(err)}`);
    for (const d of batch) d.reject(error);
  }

  /**
   * The WAL's descriptor for fdatasync. SQLite keeps its WAL file while it holds the database in EXCLUSIVE
   * mode; should the file ever be another (deleted and made again), it is opened again and its directory synced.
   */
  private walFd(): number {
    const walPath = `${this.path}-wal`;
    const ino = statSync(walPath).ino;
    if (this.wal?.ino === ino) return this.wal.fd;
    if (this.wal) closeSync(this.wal.fd);
    this.wal = undefined;
    const fd = openSync(walPath, 'r');
    this.wal = { fd, ino };
    const dir = openSync(dirname(walPath), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    return fd;
  }

  /** A synchronous sync of the WAL, at open. */
  private syncWalNow(): void {
    fsyncSync(this.walFd());
  }

  /** A committed message joins its level: in the cache when it fits and nothing older waits on disk. */
  private addPending(level: Level, i: PendingInsert, now: number): void {
    level.pending++;
    if (level.onDisk || this.cachedBytes + i.message.byteLength > this.memoryCacheBytes) {
      level.onDisk = true;
      return;
    }
    level.cached.push({ seq: i.seq, expiresAtMs: i.expiresAtMs, enqueuedAtMs: now, bytes: i.bytes, message: i.message });
    this.cachedBytes += i.message.byteLength;
  }

  private failCommit(err: unknown, waiters: Waiter[], dropped: number[], flushWaiters: Array<{ reject: (err: Error) => void }>): void {
    // Deletes are retried with the next commit; the inserts are refused.
    this.droppedEndpoints.push(...dropped);
    const full = isDiskFull(err);
    for (const w of waiters) {
      let bytes = 0;
      for (const i of w.inserts) {
        this.reservedBytes -= i.bytes;
        bytes += i.bytes;
        if (full) i.queue.dropped++;
      }
      const detail = err instanceof Error ? err.message : String(err);
      w.reject(full ? new StoreFullError(`message store full: the disk is full (${detail})`, bytes, this.usedBytes, this.maxBytes) : new StoreWriteError(`message store write failed: ${detail}`));
    }
    const error = new StoreWriteError(`message store write failed: ${err instanceof Error ? err.message : String(err)}`);
    for (const f of flushWaiters) f.reject(error);
    if (this.deleting.size > 0 || this.droppedEndpoints.length > 0) this.scheduleFlush();
  }

  /**
   * Up to `max` messages of one endpoint not yet checked out: highest priority first, in enqueue
   * order within a priority. Expired ones are dropped (and counted) instead of returned.
   */
  checkout(endpointId: string, max: number, nowMs: number = Date.now()): StoredMessage[] {
    const q = this.queues.get(endpointId);
    const out: StoredMessage[] = [];
    if (!q || max <= 0) return out;
    for (const priority of q.priorities) {
      const level = q.levels.get(priority) as Level;
      while (level.pending > 0 && out.length < max) {
        if (level.head < level.cached.length) this.takeCached(q, level, priority, nowMs, out);
        else if (!this.readFromDisk(q, level, priority, max - out.length, nowMs, out)) break;
      }
      if (out.length >= max) break;
    }
    return out;
  }

  /** Hands out (or drops, if expired) the oldest cached message of a level. */
  private takeCached(q: Queue, level: Level, priority: number, nowMs: number, out: StoredMessage[]): void {
    const c = level.cached[level.head] as CachedMessage;
    level.cached[level.head++] = undefined as unknown as CachedMessage;
    if (level.head === level.cached.length) {
      level.cached = [];
      level.head = 0;
    }
    this.cachedBytes -= c.message.byteLength;
    level.cursor = c.seq;
    level.pending--;
    if (c.expiresAtMs !== undefined && c.expiresAtMs <= nowMs) {
      this.dropExpired(q, c.seq, c.bytes);
      return;
    }
    q.inFlight.set(c.seq, { priority, bytes: c.bytes, expiresAtMs: c.expiresAtMs });
    const m = c.message;
    out.push({ seq: c.seq, endpointId: q.name, priority, expiresAtMs: c.expiresAtMs, enqueuedAtMs: c.enqueuedAtMs, message: Buffer.isBuffer(m) ? m : Buffer.from(m.buffer, m.byteOffset, m.byteLength) });
  }

  /** Reads the next page of a level's pending rows from disk; false when there was nothing to read. */
  private readFromDisk(q: Queue, level: Level, priority: number, max: number, nowMs: number, out: StoredMessage[]): boolean {
    const rows = this.statements.page.all(q.id, priority, level.cursor, max) as Array<{ seq: number; expires_at: number | null; enqueued_at: number; bytes: number; message: Uint8Array }>;
    if (rows.length === 0) {
      level.pending = 0; // cannot happen unless the counts drifted; never spin
      level.onDisk = false;
      return false;
    }
    for (const row of rows) {
      level.cursor = row.seq;
      if (this.deleting.has(row.seq)) continue;
      level.pending--;
      if (row.expires_at !== null && row.expires_at <= nowMs) {
        this.dropExpired(q, row.seq, row.bytes);
        continue;
      }
      q.inFlight.set(row.seq, { priority, bytes: row.bytes, expiresAtMs: row.expires_at ?? undefined });
      out.push({ seq: row.seq, endpointId: q.name, priority, expiresAtMs: row.expires_at ?? undefined, enqueuedAtMs: row.enqueued_at, message: Buffer.from(row.message.buffer, row.message.byteOffset, row.message.byteLength) });
    }
    // Everything pending has been read: later commits may use the cache again.
    if (level.pending === 0) level.onDisk = false;
    return true;
  }

  private dropExpired(q: Queue, seq: number, bytes: number): void {
    this.forget(q, seq, bytes);
    q.expired++;
  }

  /** Removes a stored message from the counts and marks its row for deletion at the next commit. */
  private forget(q: Queue, seq: number, bytes: number): void {
    this.deleting.add(seq);
    q.length--;
    q.bytes -= bytes;
    this.usedBytes -= bytes;
    this.scheduleFlush();
  }

  /** Delivered: the messages leave the store (their rows are deleted with the next group commit). Unknown seqs are ignored. */
  ack(endpointId: string, seqs: readonly number[]): void {
    const q = this.queues.get(endpointId);
    if (!q) return;
    for (const seq of seqs) {
      const f = q.inFlight.get(seq);
      if (!f) continue;
      q.inFlight.delete(seq);
      this.forget(q, seq, f.bytes);
    }
  }

  /**
   * Not delivered: each nacked message and everything checked out after it in its priority go back
   * to the queue, and the next checkout hands them out again in order (go-back-N, so order holds).
   */
  nack(endpointId: string, seqs: readonly number[]): void {
    const q = this.queues.get(endpointId);
    if (!q) return;
    const firstPerPriority = new Map<number, number>();
    for (const seq of seqs) {
      const f = q.inFlight.get(seq);
      if (!f) continue;
      const first = firstPerPriority.get(f.priority);
      if (first === undefined || seq < first) firstPerPriority.set(f.priority, seq);
    }
    for (const [priority, first] of firstPerPriority) {
      const level = q.levels.get(priority) as Level;
      for (const [seq, f] of q.inFlight) {
        if (f.priority !== priority || seq < first) continue;
        q.inFlight.delete(seq);
        level.pending++;
      }
      level.cursor = Math.min(level.cursor, first - 1);
      // The rewound messages are read back from disk, and with them the cached ones after them.
      this.clearCache(level);
      level.onDisk = true;
    }
  }

  /**
   * Drops expired messages and returns how many: every checked-out one whose time has passed, and
   * at the head of each queue (per priority) every one up to the first that has not expired. No
   * index on expiry is kept (it cost about a fifth of the write throughput): a message that expires
   * behind one with a longer time to live is dropped, and counted, when checkout reaches it.
   */
  expire(nowMs: number = Date.now()): number {
    let count = 0;
    for (const q of this.queues.values()) {
      for (const [seq, f] of q.inFlight) {
        if (f.expiresAtMs === undefined || f.expiresAtMs > nowMs) continue;
        q.inFlight.delete(seq);
        this.dropExpired(q, seq, f.bytes);
        count++;
      }
      for (const [priority, level] of q.levels) count += this.expireHead(q, level, priority, nowMs);
    }
    return count;
  }

  /** Drops a level's expired messages from its head (cache first, then disk) until one is still valid. */
  private expireHead(q: Queue, level: Level, priority: number, nowMs: number): number {
    let count = 0;
    while (level.pending > 0 && level.head < level.cached.length) {
      const c = level.cached[level.head] as CachedMessage;
      if (c.expiresAtMs === undefined || c.expiresAtMs > nowMs) return count;
      this.takeCached(q, level, priority, nowMs, []);
      count++;
    }
    while (level.pending > 0 && level.onDisk) {
      const rows = this.statements.head.all(q.id, priority, level.cursor) as Array<{ seq: number; expires_at: number | null; bytes: number }>;
      for (const row of rows) {
        if (this.deleting.has(row.seq)) {
          level.cursor = row.seq;
          continue;
        }
        if (row.expires_at === null || row.expires_at > nowMs) return count;
        level.cursor = row.seq;
        level.pending--;
        this.dropExpired(q, row.seq, row.bytes);
        count++;
      }
      if (level.pending === 0) level.onDisk = false;
      if (rows.length < 256) break;
    }
    return count;
  }

  /** Removes every message of an endpoint (e.g. no route leads there any more); counted as dropped. */
  dropEndpoint(endpointId: string): number {
    const q = this.queues.get(endpointId);
    if (!q) return 0;
    const count = q.length;
    this.usedBytes -= q.bytes;
    q.dropped += count;
    q.length = 0;
    q.bytes = 0;
    q.inFlight.clear();
    // Cursors stay: the rows above them are deleted by the same commit that makes later enqueues visible.
    for (const level of q.levels.values()) {
      level.pending = 0;
      level.onDisk = false;
      this.clearCache(level);
    }
    this.droppedEndpoints.push(q.id);
    this.scheduleFlush();
    return count;
  }

  stats(): Record<string, EndpointStats> {
    const out: Record<string, EndpointStats> = {};
    for (const q of this.queues.values()) {
      out[q.name] = { length: q.length, bytes: q.bytes, inFlight: q.inFlight.size, expired: q.expired, dropped: q.dropped };
    }
    return out;
  }

  private clearCache(level: Level): void {
    for (let i = level.head; i < level.cached.length; i++) this.cachedBytes -= (level.cached[i] as CachedMessage).message.byteLength;
    level.cached = [];
    level.head = 0;
  }

  /** Group commits made since the store was opened (for the benchmark and tests). */
  get commits(): number {
    return this.commitCount;
  }

  /** Background fsyncs of the WAL made since the store was opened (each covers one or more commits). */
  get syncs(): number {
    return this.syncCount;
  }

  /** Bytes of the budget in use (stored plus being stored). */
  get bytesUsed(): number {
    return this.usedBytes + this.reservedBytes;
  }

  /** Waits until everything enqueued, acked or expired so far is committed. */
  flush(): Promise<void> {
    if (!this.flushScheduled && this.waiters.length === 0 && !this.syncing && this.unsynced.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.flushWaiters.push({ resolve, reject });
      this.scheduleFlush();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush().catch(() => undefined);
    this.closed = true;
    if (this.syncing) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.db.close();
    if (this.wal) closeSync(this.wal.fd);
    this.wal = undefined;
  }
}

function newQueue(id: number, name: string): Queue {
  return { id, name, levels: new Map(), priorities: [], inFlight: new Map(), length: 0, bytes: 0, expired: 0, dropped: 0 };
}

function levelOf(q: Queue, priority: number): Level {
  let level = q.levels.get(priority);
  if (!level) {
    level = { cursor: 0, pending: 0, cached: [], head: 0, onDisk: false };
    q.levels.set(priority, level);
    q.priorities.push(priority);
    q.priorities.sort((a, b) => a - b);
  }
  return level;
}

/** Sorted runs of consecutive integers: [1,2,3,7,8] gives [1,3] and [7,8]. */
export function runs(values: readonly number[]): Array<[number, number]> {
  const sorted = [...values].sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (const v of sorted) {
    const last = out[out.length - 1];
    if (last && v === last[1] + 1) last[1] = v;
    else if (!last || v > last[1]) out.push([v, v]);
  }
  return out;
}
