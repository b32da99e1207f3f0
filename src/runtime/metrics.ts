// Prometheus metrics under controller-runtime's and client-go's names, so the dashboards and alerts
// written for Go operators work unchanged, plus the operator's own iotedge_* series.
// Everything lives in one private registry: the global default registry would collide when tests
// (or a benchmark) create several operators in one process.
import { Observable, ServerConfiguration, createConfiguration } from '@kubernetes/client-node';
import type { Configuration, HttpLibrary, KubeConfig, RequestContext, ResponseContext } from '@kubernetes/client-node';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** controller-runtime's `result` label values. */
export type ReconcileResult = 'success' | 'error' | 'requeue' | 'requeue_after';
export const reconcileResults: readonly ReconcileResult[] = ['success', 'error', 'requeue', 'requeue_after'];

/** What a work queue reports while it runs; see {@link OperatorMetrics.queueHooks}. */
export interface WorkQueueMetricsHooks {
  /** An item was added (deduplicated adds count too, as in client-go). */
  onAdd(): void;
  /** The number of items waiting now. */
  onDepth(depth: number): void;
  /** Seconds an item waited between being added and being handed to a worker. */
  onQueueLatency(seconds: number): void;
  /** Seconds a worker spent on one item. */
  onWorkDuration(seconds: number): void;
  /** An item was put back with rate limiting. */
  onRetry(): void;
  /**
   * Registers how to read in-flight work at scrape time: the summed seconds of all items being
   * processed now, and the seconds of the longest-running one. Replaces an earlier registration.
   */
  unfinishedWork(read: () => UnfinishedWork): void;
}

export interface UnfinishedWork {
  unfinishedSeconds: number;
  longestRunningSeconds: number;
}

/** Per-controller hooks, for a reconciler that does not want to repeat its name. */
export interface ControllerMetricsHooks {
  reconcileDone(result: ReconcileResult, seconds: number): void;
  /** Result and duration separately, when the caller learns them at different moments. */
  reconcileResult(result: ReconcileResult): void;
  reconcileSeconds(seconds: number): void;
  terminalError(): void;
  panic(): void;
  workerBusy(): void;
  workerIdle(): void;
}

export interface OperatorMetricsOptions {
  /** Process metrics (CPU, memory, event-loop lag, handles). On by default. */
  processMetrics?: boolean;
}

// controller-runtime's reconcile_time_seconds buckets: fine below a second, coarse up to a minute.
const reconcileBuckets = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
  1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
// client-go's work queue buckets: powers of ten from 10 ns to 1000 s.
const queueBuckets = Array.from({ length: 12 }, (_, i) => Number((1e-8 * 10 ** i).toPrecision(1)));

export class OperatorMetrics {
  readonly registry: Registry;

  readonly #reconcileTotal: Counter<'controller' | 'result'>;
  readonly #reconcileErrors: Counter<'controller'>;
  readonly #terminalErrors: Counter<'controller'>;
  readonly #reconcilePanics: Counter<'controller'>;
  readonly #reconcileTime: Histogram<'controller'>;
  readonly #maxConcurrent: Gauge<'controller'>;
  readonly #activeWorkers: Gauge<'controller'>;

  readonly #queueDepth: Gauge<'name'>;
  readonly #queueAdds: Counter<'name'>;
  readonly #queueLatency: Histogram<'name'>;
  readonly #workDuration: Histogram<'name'>;
  readonly #queueRetries: Counter<'name'>;
  readonly #unfinishedReaders = new Map<string, () => UnfinishedWork>();

  readonly #leaderStatus: Gauge<'name'>;

  readonly #modules: Gauge<'namespace' | 'edge_deployment' | 'runtime_status'>;
  readonly #moduleStatuses = new Map<string, Set<string>>();
  readonly #twinSync: Counter<'result'>;
  readonly #twinLastSync: Gauge<'namespace'>;
  readonly #apiRequests: Counter<'verb' | 'resource' | 'code'>;

  constructor(options: OperatorMetricsOptions = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.#reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Reconciliations per controller, by result.',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.#reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Reconciliations that returned an error, per controller.',
      labelNames: ['controller'],
      registers,
    });
    this.#terminalErrors = new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Reconciliations that returned an error retrying cannot fix, per controller.',
      labelNames: ['controller'],
      registers,
    });
    this.#reconcilePanics = new Counter({
      name: 'controller_runtime_reconcile_panics_total',
      help: 'Reconciliations that threw unexpectedly (caught and requeued), per controller.',
      labelNames: ['controller'],
      registers,
    });
    this.#reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Time one reconciliation took, per controller.',
      labelNames: ['controller'],
      buckets: reconcileBuckets,
      registers,
    });
    this.#maxConcurrent = new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'The most reconciliations a controller runs at once.',
      labelNames: ['controller'],
      registers,
    });
    this.#activeWorkers = new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Workers reconciling right now, per controller.',
      labelNames: ['controller'],
      registers,
    });

    this.#queueDepth = new Gauge({ name: 'workqueue_depth', help: 'Items waiting in the work queue.', labelNames: ['name'], registers });
    this.#queueAdds = new Counter({ name: 'workqueue_adds_total', help: 'Adds to the work queue.', labelNames: ['name'], registers });
    this.#queueLatency = new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'Seconds an item waited in the work queue before a worker took it.',
      labelNames: ['name'],
      buckets: queueBuckets,
      registers,
    });
    this.#workDuration = new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'Seconds a worker spent on one item.',
      labelNames: ['name'],
      buckets: queueBuckets,
      registers,
    });
    this.#queueRetries = new Counter({ name: 'workqueue_retries_total', help: 'Rate-limited re-adds to the work queue.', labelNames: ['name'], registers });
    const unfinishedReaders = this.#unfinishedReaders;
    new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help: 'Summed seconds of the work in progress that has not finished yet; a large value with a flat rate suggests stuck workers.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const [name, read] of unfinishedReaders) this.set({ name }, read().unfinishedSeconds);
      },
    });
    new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'Seconds the longest-running item in progress has been running.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const [name, read] of unfinishedReaders) this.set({ name }, read().longestRunningSeconds);
      },
    });

    this.#leaderStatus = new Gauge({
      name: 'leader_election_master_status',
      help: '1 while this process holds the named leader election lease, 0 otherwise.',
      labelNames: ['name'],
      registers,
    });

    this.#modules = new Gauge({
      name: 'iotedge_modules',
      help: 'IoT Edge modules per EdgeDeployment, by runtime status.',
      labelNames: ['namespace', 'edge_deployment', 'runtime_status'],
      registers,
    });
    this.#twinSync = new Counter({ name: 'iotedge_twin_sync_total', help: 'Module twin synchronisations with IoT Hub, by result.', labelNames: ['result'], registers });
    this.#twinLastSync = new Gauge({
      name: 'iotedge_twin_last_sync_timestamp_seconds',
      help: 'Unix time of the last successful twin synchronisation, per namespace.',
      labelNames: ['namespace'],
      registers,
    });
    this.#apiRequests = new Counter({
      name: 'iotedge_api_requests_total',
      help: 'Requests to the Kubernetes API server, by verb, resource and HTTP status code.',
      labelNames: ['verb', 'resource', 'code'],
      registers,
    });
  }

  /** Announces a controller: sets its concurrency and publishes zeroes for every result so rates start from 0. */
  registerController(controller: string, maxConcurrentReconciles: number): void {
    this.#maxConcurrent.set({ controller }, maxConcurrentReconciles);
    this.#activeWorkers.set({ controller }, 0);
    for (const result of reconcileResults) this.#reconcileTotal.inc({ controller, result }, 0);
    this.#reconcileErrors.inc({ controller }, 0);
    this.#terminalErrors.inc({ controller }, 0);
    this.#reconcilePanics.inc({ controller }, 0);
  }

  /** One reconciliation finished; an `error` result also counts in reconcile_errors_total. */
  reconcileDone(controller: string, result: ReconcileResult, seconds: number): void {
    this.countReconcile(controller, result);
    this.observeReconcileTime(controller, seconds);
  }

  /** The result half of reconcileDone, for a caller that reports result and duration separately. */
  countReconcile(controller: string, result: ReconcileResult): void {
    this.#reconcileTotal.inc({ controller, result });
    if (result === 'error') this.#reconcileErrors.inc({ controller });
  }

  /** The duration half of reconcileDone. */
  observeReconcileTime(controller: string, seconds: number): void {
    this.#reconcileTime.observe({ controller }, seconds);
  }

  /** The reconciliation's error is terminal (call together with `reconcileDone(…, 'error', …)`). */
  reconcileTerminalError(controller: string): void {
    this.#terminalErrors.inc({ controller });
  }

  /** The reconciler threw or rejected unexpectedly. */
  reconcilePanic(controller: string): void {
    this.#reconcilePanics.inc({ controller });
  }

  workerBusy(controller: string): void {
    this.#activeWorkers.inc({ controller });
  }

  workerIdle(controller: string): void {
    this.#activeWorkers.dec({ controller });
  }

  controllerHooks(controller: string): ControllerMetricsHooks {
    return {
      reconcileDone: (result, seconds) => this.reconcileDone(controller, result, seconds),
      reconcileResult: (result) => this.countReconcile(controller, result),
      reconcileSeconds: (seconds) => this.observeReconcileTime(controller, seconds),
      terminalError: () => this.reconcileTerminalError(controller),
      panic: () => this.reconcilePanic(controller),
      workerBusy: () => this.workerBusy(controller),
      workerIdle: () => this.workerIdle(controller),
    };
  }

  /** Hooks for the work queue called `name` (controller-runtime names a controller's queue after the controller). */
  queueHooks(name: string): WorkQueueMetricsHooks {
    const labels = { name };
    this.#queueDepth.set(labels, 0);
    this.#queueAdds.inc(labels, 0);
    this.#queueRetries.inc(labels, 0);
    return {
      onAdd: () => this.#queueAdds.inc(labels),
      onDepth: (depth) => this.#queueDepth.set(labels, depth),
      onQueueLatency: (seconds) => this.#queueLatency.observe(labels, seconds),
      onWorkDuration: (seconds) => this.#workDuration.observe(labels, seconds),
      onRetry: () => this.#queueRetries.inc(labels),
      unfinishedWork: (read) => {
        this.#unfinishedReaders.set(name, read);
      },
    };
  }

  /** Stops reporting a queue that was shut down. */
  forgetQueue(name: string): void {
    this.#unfinishedReaders.delete(name);
  }

  setLeader(leaseName: string, leading: boolean): void {
    this.#leaderStatus.set({ name: leaseName }, leading ? 1 : 0);
  }

  /**
   * Replaces the module counts of one EdgeDeployment, e.g. `{ running: 3, backoff: 1 }`.
   * Statuses reported before but absent now drop to 0, so a sum over statuses stays the module count.
   */
  setModules(namespace: string, edgeDeployment: string, countsByRuntimeStatus: Readonly<Record<string, number>>): void {
    const key = `${namespace}/${edgeDeployment}`;
    const previous = this.#moduleStatuses.get(key) ?? new Set<string>();
    const current = new Set(Object.keys(countsByRuntimeStatus));
    for (const status of previous) {
      if (!current.has(status)) this.#modules.set({ namespace, edge_deployment: edgeDeployment, runtime_status: status }, 0);
    }
    for (const [status, count] of Object.entries(countsByRuntimeStatus)) {
      this.#modules.set({ namespace, edge_deployment: edgeDeployment, runtime_status: status }, count);
      previous.add(status);
    }
    this.#moduleStatuses.set(key, previous);
  }

  /** Removes an EdgeDeployment's series once it is deleted, so deleted objects do not linger on dashboards. */
  forgetEdgeDeployment(namespace: string, edgeDeployment: string): void {
    const key = `${namespace}/${edgeDeployment}`;
    for (const status of this.#moduleStatuses.get(key) ?? []) {
      this.#modules.remove({ namespace, edge_deployment: edgeDeployment, runtime_status: status });
    }
    this.#moduleStatuses.delete(key);
  }

  /** One twin synchronisation attempt; a success also stamps the namespace's last-sync time. */
  twinSync(result: 'success' | 'error' | 'conflict', namespace?: string, at: Date = new Date()): void {
    this.#twinSync.inc({ result });
    if (result === 'success' && namespace !== undefined) this.#twinLastSync.set({ namespace }, at.getTime() / 1000);
  }

  /** One request to the API server; `code` is the HTTP status, or `error` when no response arrived. */
  apiRequest(verb: string, resource: string, code: number | 'error'): void {
    this.#apiRequests.inc({ verb, resource, code: String(code) });
  }

  /** The Prometheus text exposition of every metric. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * The API server's own verb and resource for a request URL, as apiserver_request_total labels them:
 * GET /api/v1/namespaces/a/pods → list pods; GET …/pods/x → get; …/pods/x/status → resource pods/status.
 */
export function describeApiRequest(method: string, url: string): { verb: string; resource: string } {
  const parsed = new URL(url, 'http://127.0.0.1');
  const parts = parsed.pathname.split('/').filter((p) => p.length > 0);
  // /api/v1/… or /apis/<group>/<version>/…
  let rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : parts;
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const [kind, name, sub] = rest;
  const resource = kind === undefined ? 'unknown' : sub === undefined ? kind : `${kind}/${sub}`;
  const watching = parsed.searchParams.get('watch') === 'true' || parsed.searchParams.get('watch') === '1';
  const verbs: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch' };
  const upper = method.toUpperCase();
  let verb = verbs[upper] ?? upper.toLowerCase();
  if (upper === 'GET') verb = watching ? 'watch' : name === undefined ? 'list' : 'get';
  if (upper === 'DELETE') verb = name === undefined ? 'deletecollection' : 'delete';
  return { verb, resource };
}

/** Wraps an HTTP library so each request it sends is counted in iotedge_api_requests_total. */
export function countingHttpLibrary(inner: HttpLibrary, metrics: OperatorMetrics): HttpLibrary {
  return {
    send(request: RequestContext): Observable<ResponseContext> {
      const { verb, resource } = describeApiRequest(request.getHttpMethod(), request.getUrl());
      const sent = inner.send(request).toPromise().then(
        (response) => {
          metrics.apiRequest(verb, resource, response.httpStatusCode);
          return response;
        },
        (error: unknown) => {
          metrics.apiRequest(verb, resource, 'error');
          throw error;
        },
      );
      return new Observable(sent);
    },
  };
}

/**
 * `kc.makeApiClient(Api)` whose requests are counted in iotedge_api_requests_total, so a benchmark
 * can say how many API calls a reconciliation costs. Watches opened through `Watch` are not counted.
 */
export function makeCountedApiClient<T>(kc: KubeConfig, apiClientType: new (config: Configuration) => T, metrics: OperatorMetrics): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig: no current cluster, so no API client can be made');
  const base = createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: kc } });
  return new apiClientType({ ...base, httpApi: countingHttpLibrary(base.httpApi, metrics) });
}
