// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics, so this operator
// and Go controllers agree on what a Lease means:
// - A candidate takes the Lease when it has no holder, or when the candidate itself has seen the
//   same record unchanged for leaseDurationSeconds. Expiry is judged by the local clock from when
//   this process *observed* the last change, never by renewTime, so clock skew between
//   machines cannot make two leaders.
// - Every write carries the resourceVersion that was read, so of two candidates racing for the
//   same record the API server accepts one and rejects the other with 409.
// - The leader renews every retryPeriod. When no renewal has succeeded for renewDeadline it stops
//   leading: its AbortSignal fires and onStoppedLeading('lost') runs. renewDeadline is shorter
//   than leaseDuration, so the old leader has stopped before anyone else may take over.
// - On a graceful stop the leader releases the Lease (empty holder, leaseDurationSeconds 1, as
//   client-go's ReleaseOnCancel does) so the next candidate takes over within one retry period.
//
// What the caller must do on losing the Lease: stop all work (workers, requeues, timers, twin
// sync) before anything else. The safe reaction is to exit the process non-zero and let the
// Deployment restart it as a fresh candidate; controller-runtime does the same.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Observable, V1MicroTime } from '@kubernetes/client-node';
import type { ConfigurationOptions, CoordinationV1Api, ObservableMiddleware, RequestContext, ResponseContext, V1Lease, V1LeaseSpec } from '@kubernetes/client-node';
import { withDeadline } from './deadline.ts';
import { silentLogger } from './logger.ts';
import type { Logger } from './logger.ts';
import type { OperatorMetrics } from './metrics.ts';

/** client-go's JitterFactor for the acquire loop: each wait is retryPeriod × [1, 2.2). */
const jitterFactor = 1.2;

export type StoppedReason = 'lost' | 'stopped';

export interface LeaderElectionOptions {
  coordination: CoordinationV1Api;
  namespace: string;
  /** The Lease's name; also the `name` label of leader_election_master_status. */
  name: string;
  /** Unique per process; defaults to `<hostname>_<uuid>`. */
  identity?: string;
  /** Whole seconds (the Lease stores seconds). Default 15 s. */
  leaseDurationMs?: number;
  /** Default 10 s. */
  renewDeadlineMs?: number;
  /** Default 2 s. */
  retryPeriodMs?: number;
  /** Deadline of one API call; a renewal's calls are also cut at the renew deadline. Default renewDeadline / 2. */
  requestTimeoutMs?: number;
  /** Release the Lease when stopped gracefully. Default true. */
  releaseOnCancel?: boolean;
  /**
   * Runs once this process leads. The signal aborts when leadership ends for any reason; everything
   * started here must stop on it. It is not awaited: a long-running start is fine.
   */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Runs once after leading ends: 'lost' when renewal failed, 'stopped' after stop(). Not called if it never led. */
  onStoppedLeading?: (reason: StoppedReason) => void;
  /** Runs when the observed holder changes to another identity (or to none, as ''). */
  onNewLeader?: (identity: string) => void;
  logger?: Logger;
  metrics?: OperatorMetrics;
}

export function defaultIdentity(): string {
  return `${hostname()}_${randomUUID()}`;
}

/** Sets the abort signal on a client-node request, so a deadline also ends the HTTP exchange. */
function abortable(signal: AbortSignal): ConfigurationOptions<ObservableMiddleware> {
  return {
    middleware: [{
      pre: (context: RequestContext) => {
        context.setSignal(signal);
        return new Observable(Promise.resolve(context));
      },
      post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
    }],
    middlewareMergeStrategy: 'append',
  };
}

function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function describe(error: unknown): string {
  const code = statusCode(error);
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return code === undefined ? `${message}` : `HTTP ${code}: ${message}`;
}

/** The fields that make up client-go's LeaderElectionRecord; any change restarts the expiry clock. */
function recordKey(spec: V1LeaseSpec | undefined): string {
  const time = (t: unknown) => (t instanceof Date ? t.toISOString() : String(t ?? ''));
  return JSON.stringify([spec?.holderIdentity ?? '', spec?.leaseDurationSeconds ?? 0, time(spec?.acquireTime), time(spec?.renewTime), spec?.leaseTransitions ?? 0]);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export class LeaderElector {
  readonly identity: string;
  readonly #o: LeaderElectionOptions;
  readonly #leaseDurationSeconds: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #requestTimeoutMs: number;
  readonly #log: Logger;

  /** Aborts the election loops (acquire sleeps, renew sleeps and in-flight reads). */
  readonly #stop = new AbortController();
  #release = true;
  #running: Promise<void> | undefined;

  #leaderAbort: AbortController | undefined;
  /** The last Lease read or written: its resourceVersion guards the next write. */
  #lease: V1Lease | undefined;
  #observedKey = '';
  #observedHolder = '';
  #observedDurationSeconds = 0;
  /** performance.now() when the record last changed, as this process saw it. */
  #observedAt = 0;
  #reportedLeader: string | undefined;

  constructor(options: LeaderElectionOptions) {
    const leaseDurationMs = options.leaseDurationMs ?? 15_000;
    const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    const retryPeriodMs = options.retryPeriodMs ?? 2_000;
    const where = `leader election ${options.namespace}/${options.name}`;
    if (!Number.isInteger(leaseDurationMs / 1000) || leaseDurationMs < 1000) {
      throw new Error(`${where}: leaseDurationMs ${leaseDurationMs} must be a whole number of seconds (the Lease stores seconds)`);
    }
    if (leaseDurationMs <= renewDeadlineMs) throw new Error(`${where}: leaseDurationMs (${leaseDurationMs}) must be greater than renewDeadlineMs (${renewDeadlineMs})`);
    if (renewDeadlineMs <= jitterFactor * retryPeriodMs) {
      throw new Error(`${where}: renewDeadlineMs (${renewDeadlineMs}) must be greater than ${jitterFactor} × retryPeriodMs (${retryPeriodMs})`);
    }
    if (retryPeriodMs <= 0) throw new Error(`${where}: retryPeriodMs must be positive`);
    this.#o = options;
    this.identity = options.identity ?? defaultIdentity();
    if (this.identity === '') throw new Error(`${where}: identity must not be empty`);
    this.#leaseDurationSeconds = leaseDurationMs / 1000;
    this.#renewDeadlineMs = renewDeadlineMs;
    this.#retryPeriodMs = retryPeriodMs;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? renewDeadlineMs / 2;
    this.#log = (options.logger ?? silentLogger()).child({ lease: `${options.namespace}/${options.name}`, identity: this.identity });
  }

  /** True while this process holds the Lease and has renewed it within the renew deadline. */
  isLeader(): boolean {
    return this.#leaderAbort !== undefined && !this.#leaderAbort.signal.aborted;
  }

  /** Aborts when leadership ends; undefined before this process first leads. */
  get leadingSignal(): AbortSignal | undefined {
    return this.#leaderAbort?.signal;
  }

  /** Campaigns, leads, and resolves once leadership is lost or stop() was called. Call once. */
  run(): Promise<void> {
    if (this.#running) throw new Error(`leader election ${this.#o.namespace}/${this.#o.name}: run() was already called; make a new LeaderElector`);
    this.#running = this.#run();
    return this.#running;
  }

  /**
   * Ends the election. With release (the default unless releaseOnCancel is false) a leader hands
   * the Lease back; without, the Lease stays until it expires, as after a crash.
   * Resolves when run() has finished and onStoppedLeading has run.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.#release = options.release ?? this.#o.releaseOnCancel ?? true;
    this.#stop.abort(new Error('leader election stopped'));
    await this.#running;
  }

  async #run(): Promise<void> {
    this.#o.metrics?.setLeader(this.#o.name, false);
    this.#log.info('attempting to acquire leader lease');
    const acquired = await this.#acquire();
    if (!acquired) return;

    const leading = new AbortController();
    this.#leaderAbort = leading;
    this.#o.metrics?.setLeader(this.#o.name, true);
    this.#log.info('successfully acquired lease; leading');
    Promise.resolve()
      .then(() => this.#o.onStartedLeading(leading.signal))
      .catch((error: unknown) => this.#log.error({ err: error }, 'onStartedLeading failed'));

    const reason = await this.#renew();
    leading.abort(new Error(reason === 'lost' ? 'leader election lost' : 'leader election stopped'));
    if (reason === 'stopped' && this.#release) await this.#releaseLease();
    this.#o.metrics?.setLeader(this.#o.name, false);
    if (reason === 'lost') this.#log.error('failed to renew lease within the renew deadline; stopped leading');
    else this.#log.info('stopped leading');
    try {
      this.#o.onStoppedLeading?.(reason);
    } catch (error) {
      this.#log.error({ err: error }, 'onStoppedLeading failed');
    }
  }

  async #acquire(): Promise<boolean> {
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      if (await this.#tryAcquireOrRenew(this.#requestTimeoutMs)) return true;
      await sleep(this.#retryPeriodMs * (1 + Math.random() * jitterFactor), stop);
    }
    return false;
  }

  async #renew(): Promise<StoppedReason> {
    const stop = this.#stop.signal;
    for (;;) {
      const deadline = performance.now() + this.#renewDeadlineMs;
      let renewed = false;
      while (!renewed && !stop.aborted) {
        const remaining = deadline - performance.now();
        if (remaining <= 0) break;
        renewed = await this.#tryAcquireOrRenew(Math.min(this.#requestTimeoutMs, remaining));
        // A renewal that lands after the deadline is too late: by then a Go client would have given up.
        if (renewed && performance.now() > deadline) renewed = false;
        if (!renewed) await sleep(Math.min(this.#retryPeriodMs, Math.max(0, deadline - performance.now())), stop);
      }
      if (stop.aborted) return 'stopped';
      if (!renewed) return 'lost';
      await sleep(this.#retryPeriodMs, stop);
      if (stop.aborted) return 'stopped';
    }
  }

  /** One API call with a deadline that also aborts the HTTP request. */
  async #call<T>(what: string, timeoutMs: number, send: (options: ConfigurationOptions<ObservableMiddleware>) => Promise<T>, interruptible = true): Promise<T> {
    const signals = [AbortSignal.timeout(timeoutMs), ...(interruptible ? [this.#stop.signal] : [])];
    const request = send(abortable(AbortSignal.any(signals)));
    return withDeadline(request, timeoutMs, `${what} Lease ${this.#o.namespace}/${this.#o.name}`);
  }

  #observe(lease: V1Lease): void {
    this.#lease = lease;
    const key = recordKey(lease.spec);
    if (key !== this.#observedKey) {
      this.#observedKey = key;
      this.#observedHolder = lease.spec?.holderIdentity ?? '';
      this.#observedDurationSeconds = lease.spec?.leaseDurationSeconds ?? 0;
      this.#observedAt = performance.now();
    }
    if (this.#observedHolder !== this.#reportedLeader) {
      this.#reportedLeader = this.#observedHolder;
      if (this.#observedHolder !== this.identity) {
        this.#log.info({ holder: this.#observedHolder }, this.#observedHolder === '' ? 'lease has no holder' : 'new leader observed');
      }
      this.#o.onNewLeader?.(this.#observedHolder);
    }
  }

  /** client-go's tryAcquireOrRenew: true when this process holds the Lease afterwards. */
  async #tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const { coordination, namespace, name } = this.#o;
    const now = new V1MicroTime(Date.now());
    let current: V1Lease;
    try {
      current = await this.#call('get', timeoutMs, (options) => coordination.readNamespacedLease({ name, namespace }, options));
    } catch (error) {
      if (statusCode(error) !== 404) {
        this.#log.warn({ error: describe(error) }, 'cannot read lease');
        return false;
      }
      try {
        const created = await this.#call('create', timeoutMs, (options) =>
          coordination.createNamespacedLease({
            namespace,
            body: {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { name, namespace },
              spec: { holderIdentity: this.identity, leaseDurationSeconds: this.#leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
            },
          }, options),
        );
        this.#observe(created);
        return true;
      } catch (createError) {
        // 409: another candidate created it first; the next attempt reads its record.
        this.#log.info({ error: describe(createError) }, 'cannot create lease');
        return false;
      }
    }

    this.#observe(current);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const heldByOther = holder !== '' && holder !== this.identity;
    if (heldByOther && this.#observedAt + this.#observedDurationSeconds * 1000 > performance.now()) {
      this.#log.debug({ holder }, 'lease is held by another candidate and has not expired');
      return false;
    }

    const leading = holder === this.identity;
    const transitions = spec.leaseTransitions ?? 0;
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: current.metadata ?? { name, namespace },
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: this.#leaseDurationSeconds,
        renewTime: now,
        acquireTime: leading && spec.acquireTime ? spec.acquireTime : now,
        leaseTransitions: leading ? transitions : transitions + 1,
      },
    };
    try {
      const updated = await this.#call('update', timeoutMs, (options) => coordination.replaceNamespacedLease({ name, namespace, body }, options));
      this.#observe(updated);
      return true;
    } catch (error) {
      // 409 means someone else wrote in between (resourceVersion moved): their write wins.
      this.#log.info({ error: describe(error) }, 'cannot update lease');
      return false;
    }
  }

  async #releaseLease(): Promise<void> {
    const { coordination, name, namespace } = this.#o;
    let lease = this.#lease;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      if (!lease || lease.spec?.holderIdentity !== this.identity) return;
      const now = new V1MicroTime(Date.now());
      const body: V1Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: lease.metadata ?? { name, namespace },
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
      };
      try {
        const released = await this.#call('release', this.#requestTimeoutMs, (options) => coordination.replaceNamespacedLease({ name, namespace, body }, options), false);
        this.#observe(released);
        this.#log.info('released lease');
        return;
      } catch (error) {
        // A renewal cut short by stop() may still have landed, moving the resourceVersion: read
        // once more and release only if the record still names this process.
        if (statusCode(error) === 409 && attempt === 0) {
          lease = await this.#call('get', this.#requestTimeoutMs, (options) => coordination.readNamespacedLease({ name, namespace }, options), false).catch(() => undefined);
          continue;
        }
        // Not fatal: the Lease expires after leaseDurationSeconds and another candidate takes it then.
        this.#log.warn({ error: describe(error) }, 'cannot release lease; it will expire instead');
        return;
      }
    }
  }
}
