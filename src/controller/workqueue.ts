// The controller's work queue, with client-go's semantics: keys (`namespace/name`) are deduplicated
// while they wait, a key is never handed to two workers at once (a key added while it is being
// processed is marked dirty and queued again when its worker calls done), per-key exponential backoff,
// delayed adds, and a worker pool that turns reconcile outcomes into queue actions the way
// controller-runtime does:
//   success → forget; { requeueAfterMs } → forget + addAfter; TemporaryError(delay) → addAfter(delay);
//   PermanentError → forget, no retry, onTerminalError; any other throw or rejection → backoff retry.
// Shutdown stops intake at once: keys still waiting are dropped (reconciliation is level-triggered,
// so whoever runs next lists everything again); work in flight can be drained.
import { PermanentError, TemporaryError } from './errors.ts';
import { silentLogger } from './kube-client.ts';
import type { Logger } from './kube-client.ts';

/** Decides how long a key waits before its next retry. */
export interface RateLimiter {
  /** The delay before the next retry of `key`; counts the retry. */
  when(key: string): number;
  /** The key succeeded: its failure history is cleared. */
  forget(key: string): void;
  numRequeues(key: string): number;
}

/** baseDelay·2^failures per key, capped (client-go ItemExponentialFailureRateLimiter; defaults 5 ms … 1000 s). */
export class ItemExponentialFailureRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  constructor(baseDelayMs = 5, maxDelayMs = 1_000_000) {
    this.baseDelayMs = baseDelayMs;
    this.maxDelayMs = maxDelayMs;
  }
  when(key: string): number {
    const exp = this.failures.get(key) ?? 0;
    this.failures.set(key, exp + 1);
    // 2^exp overflows to Infinity long before it matters; the cap handles both.
    return Math.min(this.baseDelayMs * 2 ** exp, this.maxDelayMs);
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** A token bucket shared by all keys (client-go BucketRateLimiter; default 10 qps, burst 100). */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly now: () => number;
  constructor(qps = 10, burst = 100, now: () => number = Date.now) {
    this.qps = qps;
    this.burst = burst;
    this.now = now;
    this.tokens = burst;
    this.last = now();
  }
  when(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    // Reserving a token may drive the count negative; the debt is the wait (as Go's x/time/rate Reserve does).
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
  forget(): void {}
  numRequeues(): number {
    return 0;
  }
}

/** The longest delay any of its limiters asks for. */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];
  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }
  when(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.when(key)));
  }
  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }
  numRequeues(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.numRequeues(key)));
  }
}

/** controller-runtime's default: per-key 5 ms … 1000 s, and overall 10 qps with a burst of 100. */
export function defaultControllerRateLimiter(now: () => number = Date.now): RateLimiter {
  return new MaxOfRateLimiter(new ItemExponentialFailureRateLimiter(5, 1_000_000), new BucketRateLimiter(10, 100, now));
}

/**
 * Hooks named after controller-runtime's workqueue metrics (`workqueue_<name>{name}`), so a prom-client
 * wiring is one line each. Gauges are called with their new value; counters once per increment.
 */
export interface WorkQueueMetrics {
  depth?(depth: number): void;
  addsTotal?(): void;
  queueDurationSeconds?(seconds: number): void;
  workDurationSeconds?(seconds: number): void;
  retriesTotal?(): void;
  /** Sampled every `metricsSampleMs` while the queue runs. */
  unfinishedWorkSeconds?(seconds: number): void;
  longestRunningProcessorSeconds?(seconds: number): void;
}

/** Hooks named after controller-runtime's controller metrics (`controller_runtime_<name>{controller}`). */
export interface ReconcileMetrics {
  reconcileTotal?(result: 'success' | 'error' | 'requeue_after'): void;
  reconcileErrorsTotal?(): void;
  terminalReconcileErrorsTotal?(): void;
  /** A programming error (TypeError, ReferenceError, RangeError, SyntaxError) or a non-Error value was thrown. */
  reconcilePanicsTotal?(): void;
  reconcileTimeSeconds?(seconds: number): void;
  activeWorkers?(count: number): void;
}

export interface WorkQueueOptions {
  /** The queue's name in logs (controller-runtime uses the controller name). */
  name?: string;
  rateLimiter?: RateLimiter;
  metrics?: WorkQueueMetrics;
  metricsSampleMs?: number;
  logger?: Logger;
  /** Clock in milliseconds, for metrics; defaults to Date.now. */
  now?: () => number;
}

export interface ReconcileContext {
  /** Aborted when shutDownWithDrain gives up waiting; long reconciles should pass it to their requests. */
  signal: AbortSignal;
  /** How many times this key has been retried with backoff since it last succeeded. */
  retries: number;
}

export type ReconcileResult = { requeueAfterMs?: number } | void;
export type ReconcileFn = (key: string, context: ReconcileContext) => Promise<ReconcileResult> | ReconcileResult;

export interface RunWorkersOptions {
  /** A PermanentError ended this key's retries: log it, record an Event, set a condition. */
  onTerminalError?(key: string, error: PermanentError): void;
  /** Any other failure; the key has been requeued after `retryInMs`. */
  onError?(key: string, error: unknown, retryInMs: number): void;
  metrics?: ReconcileMetrics;
}

export class WorkQueue {
  readonly name: string;
  private readonly rateLimiter: RateLimiter;
  private readonly metrics: WorkQueueMetrics;
  private readonly log: Logger;
  private readonly now: () => number;

  private queue: string[] = [];
  private head = 0;
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>();
  private readonly queuedAt = new Map<string, number>();
  private readonly waiting = new Map<string, { readyAt: number; timer: NodeJS.Timeout }>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private readonly drainWaiters: (() => void)[] = [];
  private readonly abortInFlight = new AbortController();
  private shuttingDown = false;
  private sampler: NodeJS.Timeout | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.name = options.name ?? 'workqueue';
    this.rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter();
    this.metrics = options.metrics ?? {};
    this.log = (options.logger ?? silentLogger).child({ queue: this.name });
    this.now = options.now ?? Date.now;
    if (this.metrics.unfinishedWorkSeconds || this.metrics.longestRunningProcessorSeconds) {
      this.sampler = setInterval(() => this.sampleUnfinishedWork(), options.metricsSampleMs ?? 500);
      this.sampler.unref();
    }
  }

  /** Queues `key` unless it is already waiting; a key being processed is queued again once done. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics.addsTotal?.();
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /** Adds `key` after `delayMs`; if it is already scheduled, the earlier time wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing && existing.readyAt <= readyAt) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { readyAt, timer });
  }

  /** Adds `key` after the rate limiter's backoff for it, and counts a retry. */
  addRateLimited(key: string): number {
    const delay = this.rateLimiter.when(key);
    if (!this.shuttingDown) this.metrics.retriesTotal?.();
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /** Keys waiting to be handed out (not those in flight or scheduled for later). */
  len(): number {
    return this.queue.length - this.head;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** The next key to process, marking it in flight; undefined once the queue is shut down. Call done(key) after. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    if (this.len() > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** The worker finished `key`; if it was added meanwhile it goes back in the queue. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.enqueue(key);
    if (this.processing.size === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** Stops intake: adds are ignored, scheduled adds are cancelled, waiting workers get undefined. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    this.queue = [];
    this.head = 0;
    this.dirty.clear();
    this.queuedAt.clear();
    this.metrics.depth?.(0);
    for (const resolve of this.getters.splice(0)) resolve(undefined);
    if (this.sampler) clearInterval(this.sampler);
  }

  /** Resolves once no key is in flight. */
  drain(): Promise<void> {
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * shutDown, then wait for work in flight. With a timeout, gives up after it, aborts the in-flight
   * reconciles' signals, and resolves false; resolves true when everything finished.
   */
  async shutDownWithDrain(timeoutMs?: number): Promise<boolean> {
    this.shutDown();
    if (timeoutMs === undefined) {
      await this.drain();
      return true;
    }
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.drain().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!drained) {
      this.log.warn({ inFlight: [...this.processing.keys()] }, 'work still in flight at the shutdown deadline; aborting it');
      this.abortInFlight.abort(new Error(`work queue ${this.name} shut down`));
    }
    return drained;
  }

  /** Seconds of work in flight and the longest single one (controller-runtime's unfinished_work / longest_running_processor). */
  unfinishedWork(): { unfinishedWorkSeconds: number; longestRunningProcessorSeconds: number } {
    const t = this.now();
    let total = 0;
    let longest = 0;
    for (const started of this.processing.values()) {
      const s = (t - started) / 1000;
      total += s;
      longest = Math.max(longest, s);
    }
    return { unfinishedWorkSeconds: total, longestRunningProcessorSeconds: longest };
  }

  /**
   * Runs `count` workers until the queue shuts down; resolves when all of them have stopped.
   * Nothing a reconcile throws or rejects with escapes: it is logged and turned into a queue action.
   */
  async runWorkers(count: number, reconcile: ReconcileFn, options: RunWorkersOptions = {}): Promise<void> {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`runWorkers: count must be a positive integer, got ${count}`);
    let active = 0;
    const m = options.metrics ?? {};
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        active += 1;
        m.activeWorkers?.(active);
        const started = this.now();
        try {
          await this.processOne(key, reconcile, options);
        } finally {
          const seconds = (this.now() - started) / 1000;
          m.reconcileTimeSeconds?.(seconds);
          this.metrics.workDurationSeconds?.(seconds);
          active -= 1;
          m.activeWorkers?.(active);
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: count }, () => worker()));
  }

  private async processOne(key: string, reconcile: ReconcileFn, options: RunWorkersOptions): Promise<void> {
    const m = options.metrics ?? {};
    let result: ReconcileResult;
    try {
      // Calling inside an async step turns a synchronous throw into a rejection we handle below.
      result = await (async () => reconcile(key, { signal: this.abortInFlight.signal, retries: this.numRequeues(key) }))();
    } catch (error) {
      m.reconcileTotal?.('error');
      m.reconcileErrorsTotal?.();
      if (error instanceof PermanentError) {
        m.terminalReconcileErrorsTotal?.();
        this.forget(key);
        this.log.error({ key, err: error }, 'reconcile failed permanently; not retrying until the key is added again');
        this.callHook(() => options.onTerminalError?.(key, error), key);
        return;
      }
      if (isPanic(error)) m.reconcilePanicsTotal?.();
      let retryInMs: number;
      if (error instanceof TemporaryError && error.delayMs !== undefined) {
        retryInMs = error.delayMs;
        if (!this.shuttingDown) this.metrics.retriesTotal?.();
        this.addAfter(key, retryInMs);
      } else {
        retryInMs = this.addRateLimited(key);
      }
      this.log.warn({ key, err: error, retryInMs }, 'reconcile failed; retrying');
      this.callHook(() => options.onError?.(key, error, retryInMs), key);
      return;
    }
    const requeueAfterMs = result && typeof result === 'object' ? result.requeueAfterMs : undefined;
    this.forget(key);
    if (requeueAfterMs !== undefined && requeueAfterMs > 0) {
      m.reconcileTotal?.('requeue_after');
      this.addAfter(key, requeueAfterMs);
    } else {
      m.reconcileTotal?.('success');
    }
  }

  private callHook(hook: () => void, key: string): void {
    try {
      hook();
    } catch (error) {
      this.log.error({ key, err: error }, 'work queue error hook threw');
    }
  }

  private enqueue(key: string): void {
    this.queuedAt.set(key, this.now());
    const getter = this.getters.shift();
    if (getter) {
      this.queue.push(key);
      getter(this.take());
      return;
    }
    this.queue.push(key);
    this.metrics.depth?.(this.len());
  }

  private take(): string {
    const key = this.queue[this.head]!;
    this.head += 1;
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    const t = this.now();
    const queuedAt = this.queuedAt.get(key);
    this.queuedAt.delete(key);
    if (queuedAt !== undefined) this.metrics.queueDurationSeconds?.((t - queuedAt) / 1000);
    this.metrics.depth?.(this.len());
    this.dirty.delete(key);
    this.processing.set(key, t);
    return key;
  }

  private sampleUnfinishedWork(): void {
    const { unfinishedWorkSeconds, longestRunningProcessorSeconds } = this.unfinishedWork();
    this.metrics.unfinishedWorkSeconds?.(unfinishedWorkSeconds);
    this.metrics.longestRunningProcessorSeconds?.(longestRunningProcessorSeconds);
  }
}

function isPanic(error: unknown): boolean {
  return !(error instanceof Error) || error instanceof TypeError || error instanceof ReferenceError || error instanceof RangeError || error instanceof SyntaxError;
}
