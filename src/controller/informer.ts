// An informer of our own on list + watch, because @kubernetes/client-node's stops on any non-410
// error, has no bookmarks, no inactivity timeout, no backoff reset and hands out the cached object by
// reference (see docs in shared/reference/operator-reliability.md).
//
// Behaviour:
// - lists (paginated, each page under a deadline), then watches from the list's resourceVersion with
//   bookmarks; every event and bookmark advances the resourceVersion, and a watch that ends or breaks
//   resumes from it, so nothing is delivered twice;
// - 410 Gone (HTTP status or ERROR event) → relist and diff against the cache: missed deletes become
//   delete events, changed objects update events, new ones add events (client-go's Replace);
// - the server is asked to end each watch after a jittered 5–10 min, and a watch that delivers
//   nothing (not even a bookmark) for `inactivityTimeoutMs` is aborted and reopened;
// - any other failure is retried forever with jittered exponential backoff (1 s … 30 s), reset once a
//   watch has stayed up for `backoffResetMs`;
// - cached objects are DEEP-FROZEN and handed out as they are (no copy per read): a consumer that wants
//   to change one must `structuredClone` it first; writing to a cached object throws a TypeError;
// - `metadata.managedFields` is stripped on ingest;
// - handlers run synchronously in event order; what they throw or reject with is logged, never rethrown.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { InformerSyncTimeoutError } from './errors.ts';
import { KubeClient, isGone, silentLogger } from './kube-client.ts';
import type { Logger, WatchEvent, WatchOptions } from './kube-client.ts';

/** Label a child object carries with the name of its EdgeDeployment (same namespace). */
export const EDGE_DEPLOYMENT_LABEL = 'iotedge-operator.io/edge-deployment';
export const EDGE_DEPLOYMENT_GROUP = 'iotedge-operator.io';

export type InformerEvent<T> =
  | { type: 'add'; object: T; oldObject?: undefined }
  | { type: 'update'; object: T; oldObject: T }
  | { type: 'delete'; object: T; oldObject?: undefined };

export type InformerEventType = InformerEvent<unknown>['type'];
export type InformerHandler<T> = (event: InformerEvent<T>) => void | Promise<void>;

/** What the informer needs from the API; KubeClient provides it. */
export interface ListWatchClient {
  list<T>(path: string, options: { labelSelector?: string; fieldSelector?: string; timeoutMs?: number; signal?: AbortSignal }): Promise<{ items: T[]; resourceVersion: string }>;
  watch<T extends KubernetesObject>(path: string, options: WatchOptions): AsyncIterable<WatchEvent<T>>;
}

/** Observation points for metrics and tests. */
export interface InformerHooks {
  onList?(info: { items: number; resourceVersion: string; relist: boolean }): void;
  onWatchStart?(info: { resourceVersion: string; timeoutSeconds: number }): void;
  onWatchEnd?(info: { reason: 'closed' | 'gone' | 'inactive' | 'error' | 'stopped'; events: number; error?: unknown }): void;
}

export interface InformerOptions {
  kubeConfig?: KubeConfig;
  /** Instead of kubeConfig: the transport to use (a KubeClient shared with the reconciler, or a wrapper). */
  client?: ListWatchClient;
  /** The all-namespaces list path, e.g. `/api/v1/configmaps`, `/apis/apps/v1/deployments`; or a namespaced one. */
  path: string;
  /** Restricts the informer to one namespace (the path is rewritten to `.../namespaces/{ns}/...`). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Replays every cached object as an update (old === new) this often, ±10 %; 0 disables. Default 10 h. */
  resyncPeriodMs?: number;
  /** A watch with no event or bookmark for this long is reopened. Default 90 s (bookmarks come about every 60 s). */
  inactivityTimeoutMs?: number;
  /** Base of the server-side watch timeout; each watch asks for base…2·base seconds. Default 300. */
  watchTimeoutSeconds?: number;
  /** Deadline of each list request. Default 60 s. */
  listTimeoutMs?: number;
  /** start() rejects with InformerSyncTimeoutError (and the informer stops) if the first list is not in by then. Default 120 s. */
  syncTimeoutMs?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** A watch up this long resets the backoff. Default 60 s. */
  backoffResetMs?: number;
  logger?: Logger;
  hooks?: InformerHooks;
  random?: () => number;
  /**
   * Keeps only what the consumer reads of each object (before it is frozen), e.g. a Pod's metadata and
   * status: memory at scale, and no Secret values held in the cache.
   */
  transform?: (obj: KubernetesObject) => KubernetesObject;
}

/** `namespace/name`, or `name` for cluster-scoped objects: the work-queue key. */
export function keyOf(obj: KubernetesObject): string {
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

/**
 * The key of the EdgeDeployment that owns `obj`: its controller ownerReference of kind EdgeDeployment,
 * or else its `iotedge-operator.io/edge-deployment` label. Owners are namespaced, so the key uses the
 * child's namespace.
 */
export function ownerKeyOf(obj: KubernetesObject, nameOfLabel: OwnerLabelResolver = (_namespace, label) => label): string | undefined {
  const namespace = obj.metadata?.namespace;
  if (!namespace) return undefined;
  const owner = obj.metadata?.ownerReferences?.find(
    (ref) => ref.controller === true && ref.kind === 'EdgeDeployment' && (ref.apiVersion ?? '').split('/')[0] === EDGE_DEPLOYMENT_GROUP,
  );
  if (owner?.name) return `${namespace}/${owner.name}`;
  const label = obj.metadata?.labels?.[EDGE_DEPLOYMENT_LABEL];
  const name = label ? nameOfLabel(namespace, label) : undefined;
  return name ? `${namespace}/${name}` : undefined;
}

/**
 * The EdgeDeployment name a label value stands for. A name longer than a label value allows is carried
 * shortened with a hash, so the label alone does not give the name back; the owner's cache does.
 */
export type OwnerLabelResolver = (namespace: string, label: string) => string | undefined;

/**
 * A handler for child informers: enqueues the owning EdgeDeployment's key. On an update that moved the
 * child to another owner (label or ownerReference changed), both owners are enqueued.
 */
export function mapToOwner<T extends KubernetesObject>(enqueue: (key: string) => void, nameOfLabel?: OwnerLabelResolver): InformerHandler<T> {
  return (event) => {
    const now = ownerKeyOf(event.object, nameOfLabel);
    const before = event.oldObject ? ownerKeyOf(event.oldObject, nameOfLabel) : undefined;
    if (now) enqueue(now);
    if (before && before !== now) enqueue(before);
  };
}

/** A handler for the primary informer: enqueues the object's own key. */
export function enqueueObject<T extends KubernetesObject>(enqueue: (key: string) => void): InformerHandler<T> {
  return (event) => enqueue(keyOf(event.object));
}

/** Freezes `value` and everything reachable from it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}

/** What the informer keeps of an object from the API: managedFields dropped (memory), then deep-frozen. */
export function ingest<T extends KubernetesObject>(obj: T, transform?: (obj: T) => T): T {
  if (obj.metadata && 'managedFields' in obj.metadata) delete obj.metadata.managedFields;
  return deepFreeze(transform ? transform(obj) : obj);
}

export interface RelistDiff<T> {
  added: T[];
  updated: { oldObject: T; object: T }[];
  deleted: T[];
}

/**
 * Compares the cache with a fresh list (client-go's Replace): objects only in the list are added, objects
 * only in the cache were deleted while we were not watching, and objects whose resourceVersion differs
 * changed. resourceVersions are opaque: only equality is meaningful.
 */
export function diffRelist<T extends KubernetesObject>(cache: ReadonlyMap<string, T>, fresh: readonly T[]): RelistDiff<T> {
  const diff: RelistDiff<T> = { added: [], updated: [], deleted: [] };
  const seen = new Set<string>();
  for (const object of fresh) {
    const key = keyOf(object);
    seen.add(key);
    const old = cache.get(key);
    if (!old) diff.added.push(object);
    else if (old.metadata?.resourceVersion === undefined || old.metadata.resourceVersion !== object.metadata?.resourceVersion) {
      diff.updated.push({ oldObject: old, object });
    }
  }
  for (const [key, old] of cache) if (!seen.has(key)) diff.deleted.push(old);
  return diff;
}

/** `/api/v1/pods` + `ns` → `/api/v1/namespaces/ns/pods`; a path already namespaced is kept. */
export function namespacedPath(path: string, namespace: string | undefined): string {
  if (!namespace || /\/namespaces\/[^/]+\//.test(path)) return path;
  const match = /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/([^/].*)$/.exec(path);
  if (!match) throw new Error(`informer: cannot scope list path ${path} to a namespace; expected /api/v1/<plural> or /apis/<group>/<version>/<plural>`);
  return `${match[1]}/namespaces/${encodeURIComponent(namespace)}/${match[2]}`;
}

/** Exponential backoff with jitter: each delay lies in [(1 − jitter)·d, d], d = initial·2^n capped at max. */
export class JitteredBackoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  private readonly random: () => number;
  constructor(options: { initialMs?: number; maxMs?: number; jitter?: number; random?: () => number } = {}) {
    this.initialMs = options.initialMs ?? 1000;
    this.maxMs = options.maxMs ?? 30_000;
    this.jitter = options.jitter ?? 0.5;
    this.random = options.random ?? Math.random;
  }
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt += 1;
    return ceiling * (1 - this.jitter * this.random());
  }
  reset(): void {
    this.attempt = 0;
  }
}

function untilAborted<R>(work: Promise<R>, signal: AbortSignal): Promise<R> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<R>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

class InactivityError extends Error {
  override name = 'InactivityError';
}

export class Informer<T extends KubernetesObject = KubernetesObject> {
  readonly path: string;
  private readonly options: InformerOptions;
  private readonly client: ListWatchClient;
  private readonly log: Logger;
  private readonly hooks: InformerHooks;
  private readonly random: () => number;
  private readonly backoff: JitteredBackoff;
  private readonly handlers = new Set<InformerHandler<T>>();
  private cache = new Map<string, T>();
  /** The same objects by namespace, so a namespace's list costs its own size, not the cluster's. */
  private byNamespace = new Map<string, Map<string, T>>();
  private resourceVersion = '';
  private synced = false;
  private stopController = new AbortController();
  private running: Promise<void> | undefined;
  private startPromise: Promise<void> | undefined;
  private settleStart: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(options: InformerOptions) {
    if (!options.client && !options.kubeConfig) throw new Error('informer: give kubeConfig or client');
    this.options = options;
    this.path = namespacedPath(options.path, options.namespace);
    this.log = (options.logger ?? silentLogger).child({ informer: this.path, ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}) });
    this.client = options.client ?? new KubeClient({ kubeConfig: options.kubeConfig!, logger: this.log });
    this.hooks = options.hooks ?? {};
    this.random = options.random ?? Math.random;
    this.backoff = new JitteredBackoff({ ...options.backoff, random: this.random });
  }

  /** Subscribes to one kind of event; returns the unsubscribe function. */
  on(type: InformerEventType, handler: (object: T, oldObject: T | undefined) => void | Promise<void>): () => void {
    return this.onEvent((event) => (event.type === type ? handler(event.object, event.oldObject) : undefined));
  }

  /**
   * Subscribes to every event. A handler added after the informer has synced first receives an add for
   * every cached object (client-go does the same), so it never misses state.
   */
  onEvent(handler: InformerHandler<T>): () => void {
    this.handlers.add(handler);
    if (this.synced) {
      const snapshot = [...this.cache.values()];
      queueMicrotask(() => {
        if (!this.handlers.has(handler)) return;
        for (const object of snapshot) this.deliver(handler, { type: 'add', object });
      });
    }
    return () => this.handlers.delete(handler);
  }

  /** Starts list + watch; resolves once the first list is in the cache and its add events were delivered. */
  start(): Promise<void> {
    if (this.startPromise) return this.startPromise;
    if (this.stopController.signal.aborted) return Promise.reject(new Error(`informer ${this.path}: started after stop`));
    this.startPromise = new Promise<void>((resolve, reject) => {
      this.settleStart = { resolve, reject };
    });
    const syncTimeoutMs = this.options.syncTimeoutMs ?? 120_000;
    const syncTimer = setTimeout(() => {
      if (this.synced) return;
      const error = new InformerSyncTimeoutError(`informer ${this.path}: first list not in within ${syncTimeoutMs} ms`);
      this.settleStart?.reject(error);
      this.settleStart = undefined;
      void this.stop();
    }, syncTimeoutMs);
    syncTimer.unref();
    void this.startPromise.then(() => clearTimeout(syncTimer), () => clearTimeout(syncTimer));
    this.running = this.run().catch((error: unknown) => {
      // run() handles its own errors; reaching here is a bug, and it must not become an unhandled rejection.
      this.log.error({ err: error }, 'informer loop ended unexpectedly');
    });
    return this.startPromise;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Ends the watch and resync; resolves when the informer loop has stopped. The cache keeps its last state. */
  async stop(): Promise<void> {
    this.stopController.abort(new Error('informer stopped'));
    clearTimeout(this.resyncTimer);
    if (!this.synced && this.settleStart) {
      this.settleStart.reject(new Error(`informer ${this.path}: stopped before it synced`));
      this.settleStart = undefined;
    }
    await this.running;
  }

  /** The cached object (deep-frozen), or undefined. Pass namespace undefined for cluster-scoped kinds. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** Cached objects (deep-frozen), optionally of one namespace. */
  list(namespace?: string): T[] {
    return [...(namespace === undefined ? this.cache : this.byNamespace.get(namespace) ?? new Map<string, T>()).values()];
  }

  /** Cached objects whose labels include every pair of `labels`. */
  listByLabel(labels: Record<string, string>, namespace?: string): T[] {
    const wanted = Object.entries(labels);
    return this.list(namespace).filter((o) => wanted.every(([k, v]) => o.metadata?.labels?.[k] === v));
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  /** The resourceVersion the next watch resumes from. */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(): Promise<void> {
    const stop = this.stopController.signal;
    let needList = true;
    while (!stop.aborted) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        const { events, durationMs } = await this.watchOnce();
        // A watch the server closes at once with nothing in it would otherwise spin; treat it as a failure.
        if (events === 0 && durationMs < 1000) {
          await this.pause('watch closed immediately with no events');
        }
      } catch (error) {
        if (stop.aborted) break;
        if (isGone(error)) {
          this.log.info({ err: error, resourceVersion: this.resourceVersion }, 'resourceVersion too old (410); relisting');
          needList = true;
          continue;
        }
        if (error instanceof InactivityError) {
          this.log.warn({ resourceVersion: this.resourceVersion }, error.message);
          continue;
        }
        await this.pause(needList ? 'list failed' : 'watch failed', error);
      }
    }
  }

  private async pause(why: string, error?: unknown): Promise<void> {
    const delayMs = Math.round(this.backoff.next());
    this.log.warn({ err: error, delayMs }, `${why}; retrying after backoff`);
    await sleep(delayMs, undefined, { signal: this.stopController.signal }).catch(() => undefined);
  }

  /** Lists everything and turns the difference with the cache into events. */
  private async relist(): Promise<void> {
    const relist = this.synced;
    const listing = this.client.list<T>(this.path, {
      labelSelector: this.options.labelSelector,
      fieldSelector: this.options.fieldSelector,
      timeoutMs: this.options.listTimeoutMs ?? 60_000,
      signal: this.stopController.signal,
    });
    // stop() must not wait on a transport that ignores the signal.
    const { items, resourceVersion } = await untilAborted(listing, this.stopController.signal);
    if (this.stopController.signal.aborted) return;
    const fresh = items.map((item) => this.ingest(item));
    const diff = diffRelist(this.cache, fresh);
    this.cache = new Map();
    this.byNamespace = new Map();
    for (const o of fresh) this.store(keyOf(o), o);
    this.resourceVersion = resourceVersion;
    this.hooks.onList?.({ items: fresh.length, resourceVersion, relist });
    if (relist) {
      this.log.info({ added: diff.added.length, updated: diff.updated.length, deleted: diff.deleted.length, resourceVersion }, 'relisted');
    }
    for (const object of diff.added) this.emit({ type: 'add', object });
    for (const { oldObject, object } of diff.updated) this.emit({ type: 'update', object, oldObject });
    for (const object of diff.deleted) this.emit({ type: 'delete', object });
    if (!this.synced) {
      this.synced = true;
      this.scheduleResync();
      this.settleStart?.resolve();
      this.settleStart = undefined;
    }
  }

  /** One watch from the current resourceVersion, until the server ends it or it fails. */
  private async watchOnce(): Promise<{ events: number; durationMs: number }> {
    const base = this.options.watchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.max(1, Math.floor(base * (1 + this.random())));
    const inactivityMs = this.options.inactivityTimeoutMs ?? 90_000;
    const watchController = new AbortController();
    const stop = this.stopController.signal;
    // stop() may have run while this loop was between steps; an abort listener added now would never fire.
    if (stop.aborted) throw stop.reason;
    const onStop = (): void => watchController.abort(stop.reason);
    stop.addEventListener('abort', onStop, { once: true });
    let inactivity: NodeJS.Timeout | undefined;
    const armInactivity = (): void => {
      clearTimeout(inactivity);
      inactivity = setTimeout(() => watchController.abort(new InactivityError(`watch silent for ${inactivityMs} ms; reopening it`)), inactivityMs);
    };
    const started = Date.now();
    let events = 0;
    let reason: 'closed' | 'gone' | 'inactive' | 'error' | 'stopped' = 'closed';
    let failure: unknown;
    this.hooks.onWatchStart?.({ resourceVersion: this.resourceVersion, timeoutSeconds });
    try {
      armInactivity();
      const stream = this.client.watch<T>(this.path, {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
        signal: watchController.signal,
      });
      for await (const event of stream) {
        armInactivity();
        events += 1;
        this.apply(event);
      }
    } catch (error) {
      if (watchController.signal.reason instanceof InactivityError && !stop.aborted) {
        reason = 'inactive';
        failure = watchController.signal.reason;
      } else {
        reason = stop.aborted ? 'stopped' : isGone(error) ? 'gone' : 'error';
        failure = error;
      }
    } finally {
      clearTimeout(inactivity);
      stop.removeEventListener('abort', onStop);
      watchController.abort();
    }
    const durationMs = Date.now() - started;
    if (durationMs >= (this.options.backoffResetMs ?? 60_000)) this.backoff.reset();
    this.hooks.onWatchEnd?.({ reason, events, ...(failure !== undefined ? { error: failure } : {}) });
    if (failure !== undefined) throw failure;
    return { events, durationMs };
  }

  private ingest(obj: T): T {
    return ingest(obj, this.options.transform as ((o: T) => T) | undefined);
  }

  private store(key: string, object: T): void {
    this.cache.set(key, object);
    const namespace = object.metadata?.namespace ?? '';
    let objects = this.byNamespace.get(namespace);
    if (!objects) this.byNamespace.set(namespace, (objects = new Map()));
    objects.set(key, object);
  }

  private apply(event: WatchEvent<T>): void {
    const rv = event.object.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    const object = this.ingest(event.object);
    const key = keyOf(object);
    const old = this.cache.get(key);
    if (event.type === 'DELETED') {
      this.cache.delete(key);
      this.byNamespace.get(object.metadata?.namespace ?? '')?.delete(key);
      this.emit({ type: 'delete', object });
    } else {
      this.store(key, object);
      this.emit(old ? { type: 'update', object, oldObject: old } : { type: 'add', object });
    }
    if (rv) this.resourceVersion = rv;
  }

  private scheduleResync(): void {
    const period = this.options.resyncPeriodMs ?? 10 * 60 * 60 * 1000;
    if (!(period > 0) || this.stopController.signal.aborted) return;
    const delay = period * (0.9 + 0.2 * this.random());
    this.resyncTimer = setTimeout(() => {
      this.log.debug({ objects: this.cache.size }, 'resync: replaying the cache as updates');
      for (const object of this.cache.values()) this.emit({ type: 'update', object, oldObject: object });
      this.scheduleResync();
    }, delay);
    this.resyncTimer.unref();
  }

  private emit(event: InformerEvent<T>): void {
    for (const handler of this.handlers) this.deliver(handler, event);
  }

  private deliver(handler: InformerHandler<T>, event: InformerEvent<T>): void {
    const fail = (error: unknown): void => this.log.error({ err: error, event: event.type, key: keyOf(event.object) }, 'informer handler failed');
    try {
      const result = handler(event);
      if (result && typeof (result as Promise<void>).then === 'function') (result as Promise<void>).then(undefined, fail);
    } catch (error) {
      fail(error);
    }
  }
}
