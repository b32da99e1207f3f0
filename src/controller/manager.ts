// Wires the controller together: informers for EdgeDeployments and every owned kind, a work queue,
// workers running the reconciler, and readiness once every cache has synced.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { EdgeDeployment } from '../api/edge-deployment.ts';
import { labelKeys, managedBy, sanitizeLabelValue } from '../translate/names.ts';
import type { OperatorSettings } from '../translate/settings.ts';
import type { CertificateLifetimes } from './device-trust.ts';
import { EventRecorder } from './events.ts';
import { HubStatusReader, type HubStatusTimings } from './hub-status.ts';
import { enqueueObject, Informer, mapToOwner } from './informer.ts';
import { KubeApiError, KubeClient, type Logger } from './kube-client.ts';
import { EdgeDeploymentReconciler, type ObjectCache } from './reconciler.ts';
import { collectionPath, edgeDeploymentResource, ownedKinds, type OwnedKind } from './resources.ts';
import { WorkQueue, type ReconcileMetrics, type WorkQueueMetrics } from './workqueue.ts';

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  /** 'all', or the namespaces to serve (one informer per namespace and kind). */
  namespaces: 'all' | string[];
  settings: OperatorSettings;
  concurrency: number;
  logger: Logger;
  defaultHubHostName?: string;
  /** Lifetimes of each device CA and edgeHub server certificate the operator issues. */
  certificateLifetimes?: CertificateLifetimes;
  /** start() rejects when a cache has not synced by then (default 120 s, controller-runtime's CacheSyncTimeout). */
  cacheSyncTimeoutMs?: number;
  /** Label device namespaces for Pod Security Admission where RBAC allows it (`iotedge-operator run` turns it on). */
  labelNamespaces?: boolean;
  queueMetrics?: WorkQueueMetrics;
  reconcileMetrics?: ReconcileMetrics;
  /** Module counts by runtimeStatus per EdgeDeployment, and a deleted EdgeDeployment (metrics). */
  onModuleStatus?: (namespace: string, name: string, counts: Record<string, number>) => void;
  onEdgeDeploymentDeleted?: (namespace: string, name: string) => void;
  /** Sees every non-watch API request the operator makes and its HTTP status (benchmarks, metrics). */
  onRequest?: (method: string, path: string, code: number | 'error') => void;
  /** status.edgeHub from each built-in hub (hub-status.ts): its timings, or false to read none. */
  hubStatus?: Partial<HubStatusTimings> | false;
}

/**
 * Of a child, the reconciler reads only metadata (labels, annotations, owners, generation), a Pod's
 * status, and which keys a Secret holds; caching only that keeps memory flat at scale and keeps Secret
 * values out of the operator's heap. List items carry no kind, so the kind comes from the informer.
 */
export function whatTheReconcilerReads(kind: OwnedKind): (obj: KubernetesObject) => KubernetesObject {
  return (obj) => {
    const { annotations, ...metadata } = obj.metadata ?? {};
    const kept = annotations && Object.fromEntries(Object.entries(annotations).filter(([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration'));
    const full = obj as KubernetesObject & { status?: unknown; data?: Record<string, string> };
    return {
      apiVersion: kind.apiVersion,
      kind: kind.kind,
      metadata: kept ? { ...metadata, annotations: kept } : metadata,
      ...(kind.kind === 'Pod' ? { status: full.status } : {}),
      ...(kind.kind === 'Secret' && full.data ? { data: Object.fromEntries(Object.keys(full.data).map((k) => [k, ''])) } : {}),
    } as KubernetesObject;
  };
}

/** Several single-namespace informers read as one cache. */
class InformerSet<T extends KubernetesObject> implements ObjectCache<T> {
  readonly informers: Informer<T>[];
  constructor(informers: Informer<T>[]) {
    this.informers = informers;
  }
  get(namespace: string, name: string): T | undefined {
    for (const informer of this.informers) {
      const found = informer.get(namespace, name);
      if (found) return found;
    }
    return undefined;
  }
  list(namespace?: string): T[] {
    return this.informers.flatMap((i) => i.list(namespace));
  }
}

export class OperatorManager {
  readonly client: KubeClient;
  readonly queue: WorkQueue;
  private readonly options: ManagerOptions;
  private readonly edgeDeployments: InformerSet<EdgeDeployment>;
  private readonly children = new Map<string, InformerSet<KubernetesObject>>();
  private readonly reconciler: EdgeDeploymentReconciler;
  private readonly hubStatus: HubStatusReader | undefined;
  /** Applied generations the reconciler remembers: one per live child, so memory follows the cluster. */
  rememberedGenerations(): number {
    return this.reconciler.rememberedGenerations();
  }
  private workers: Promise<void> | undefined;
  private synced = false;

  constructor(options: ManagerOptions) {
    this.options = options;
    const log = options.logger;
    this.client = new KubeClient({ kubeConfig: options.kubeConfig, logger: log });
    if (options.onRequest) {
      const request = this.client.request.bind(this.client);
      const onRequest = options.onRequest;
      this.client.request = (async (method: string, path: string, ...rest: unknown[]) => {
        try {
          const answer = await (request as (...args: unknown[]) => Promise<unknown>)(method, path, ...rest);
          onRequest(method, path, 200);
          return answer;
        } catch (error) {
          onRequest(method, path, error instanceof KubeApiError ? error.status : 'error');
          throw error;
        }
      }) as KubeClient['request'];
    }
    this.queue = new WorkQueue({ name: 'edgedeployment', logger: log, metrics: options.queueMetrics });
    const enqueue = (key: string) => this.queue.add(key);
    const namespaces: (string | undefined)[] = options.namespaces === 'all' ? [undefined] : options.namespaces;
    const informersFor = <T extends KubernetesObject>(kind: OwnedKind, labelSelector?: string, transform?: (o: KubernetesObject) => KubernetesObject) =>
      new InformerSet<T>(namespaces.map((namespace) => new Informer<T>({
        client: this.client, path: collectionPath(kind), namespace, labelSelector, logger: log, transform, syncTimeoutMs: options.cacheSyncTimeoutMs,
      })));

    this.edgeDeployments = informersFor<EdgeDeployment>(edgeDeploymentResource);
    const events = new EventRecorder(this.client, log);
    for (const informer of this.edgeDeployments.informers) {
      informer.onEvent(enqueueObject(enqueue));
      informer.on('delete', (ed) => {
        // A deletion may free a namespace for a younger EdgeDeployment that was flagged as a duplicate.
        for (const other of this.edgeDeployments.list(ed.metadata?.namespace)) enqueue(`${other.metadata?.namespace}/${other.metadata?.name}`);
        options.onEdgeDeploymentDeleted?.(ed.metadata!.namespace!, ed.metadata!.name!);
        if (this.synced) {
          void events.record(ed, 'Normal', 'Deleted', 'the EdgeDeployment was deleted: its objects go with it through garbage collection; retained volume claims stay');
        }
      });
    }
    // Pods of a module's Deployment name their EdgeDeployment only by label, which a long name shortens.
    const ownerNameOfLabel = (namespace: string, label: string): string | undefined =>
      this.edgeDeployments.list(namespace).find((ed) => sanitizeLabelValue(ed.metadata?.name ?? '') === label)?.metadata?.name ?? label;
    for (const kind of ownedKinds) {
      const set = informersFor<KubernetesObject>(kind, `${labelKeys.managedBy}=${managedBy}`, whatTheReconcilerReads(kind));
      for (const informer of set.informers) informer.onEvent(mapToOwner(enqueue, ownerNameOfLabel));
      this.children.set(kind.kind, set);
    }
    this.reconciler = new EdgeDeploymentReconciler({
      client: this.client,
      edgeDeployments: this.edgeDeployments,
      children: this.children,
      settings: options.settings,
      events,
      logger: log,
      defaultHubHostName: options.defaultHubHostName,
      ...(options.certificateLifetimes ? { certificateLifetimes: options.certificateLifetimes } : {}),
      labelNamespaces: options.labelNamespaces,
      onModuleStatus: options.onModuleStatus,
    });
    const pods = this.children.get('Pod');
    this.hubStatus = options.hubStatus === false || !pods ? undefined : new HubStatusReader({
      client: this.client,
      edgeDeployments: this.edgeDeployments,
      pods,
      settings: options.settings,
      logger: log.child({ component: 'hub-status' }),
      events,
      timings: options.hubStatus ?? {},
    });
  }

  private allInformers(): Informer<KubernetesObject>[] {
    return [...this.edgeDeployments.informers, ...[...this.children.values()].flatMap((s) => s.informers)] as Informer<KubernetesObject>[];
  }

  /**
   * Starts every informer, waits for their caches, then runs the workers. Rejects when a cache has not
   * synced within cacheSyncTimeoutMs: the caller must then give up leadership and exit, or it would hold
   * the Lease and never reconcile (a zombie leader).
   */
  async start(): Promise<void> {
    await Promise.all(this.allInformers().map((i) => i.start()));
    this.synced = true;
    this.options.logger.info({ informers: this.allInformers().length }, 'caches synced; starting workers');
    this.workers = this.queue.runWorkers(this.options.concurrency, (key) => this.reconciler.reconcile(key), {
      metrics: this.options.reconcileMetrics,
      onError: (key, error, retryInMs) => this.options.logger.child({ edgeDeployment: key }).warn({ err: error, retryInMs }, 'reconcile failed; retrying'),
      onTerminalError: (key, error) => this.options.logger.child({ edgeDeployment: key }).error({ err: error }, 'reconcile failed permanently'),
    });
    this.hubStatus?.start();
  }

  hasSynced(): boolean {
    return this.synced && this.allInformers().every((i) => i.hasSynced());
  }

  /** Stops intake, lets in-flight reconciles finish (up to `drainMs`), then stops the informers. */
  async stop(drainMs = 20_000): Promise<void> {
    await this.hubStatus?.stop();
    await this.queue.shutDownWithDrain(drainMs);
    await this.workers;
    await Promise.all(this.allInformers().map((i) => i.stop()));
    this.client.close();
  }
}
