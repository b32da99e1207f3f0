// Runs one DeviceTwinSync per EdgeDeployment with an iotHub binding: its own informer on
// EdgeDeployments starts a sync when a binding appears, restarts it when the binding changes, and
// stops it when the binding or the resource goes. It lives outside src/controller, which must not
// depend on the IoT Hub SDKs; `iotedge-operator run` starts it beside the OperatorManager.
import { arch, platform as osPlatform, release } from 'node:os';
import type { V1Node } from '@kubernetes/client-node';
import type { EdgeDeployment, IoTHubBinding } from '../api/edge-deployment.ts';
import { EventRecorder } from '../controller/events.ts';
import { Informer, keyOf } from '../controller/informer.ts';
import type { KubeClient, Logger } from '../controller/kube-client.ts';
import { seniorEdgeDeployment } from '../controller/reconciler.ts';
import { collectionPath, edgeDeploymentResource } from '../controller/resources.ts';
import packageJson from '../../package.json' with { type: 'json' };
import type { OperatorVersion, Platform } from './reported.ts';
import { hasIdentitiesFinalizer } from './finalizer.ts';
import { DeviceTwinSync, type TwinSyncMetrics, type TwinSyncTimings } from './twin-sync.ts';

export interface TwinSyncSupervisorOptions {
  client: KubeClient;
  /** 'all', or the namespaces to serve (the operator's own --namespaces). */
  namespaces: 'all' | string[];
  logger: Logger;
  metrics?: TwinSyncMetrics;
  timings?: Partial<TwinSyncTimings>;
  operator?: OperatorVersion;
  /** The operator's `--edge-hub` setting (see DeviceTwinSyncOptions.edgeHub). */
  edgeHub?: 'auto' | 'builtin' | 'stock';
}

/** The operator's version as edgeAgent reports its own: package version, build and commit from the image's env. */
export function operatorVersion(): OperatorVersion {
  return {
    version: packageJson.version,
    build: process.env.IOTEDGE_OPERATOR_BUILD ?? '',
    commit: process.env.IOTEDGE_OPERATOR_COMMIT ?? '',
  };
}

function bindingKey(binding: IoTHubBinding | undefined): string {
  return JSON.stringify(binding ?? null);
}

export class TwinSyncSupervisor {
  private readonly o: TwinSyncSupervisorOptions;
  private readonly informers: Informer<EdgeDeployment>[];
  private readonly syncs = new Map<string, { sync: DeviceTwinSync; binding: string }>();
  private platformCache: { value: Platform; at: number } | undefined;
  private pending: Promise<void> = Promise.resolve();
  private readonly events: EventRecorder;
  /** EdgeDeployments whose module identities are being removed (once each). */
  private readonly finalizing = new Set<string>();

  constructor(options: TwinSyncSupervisorOptions) {
    this.o = options;
    this.events = new EventRecorder(options.client, options.logger);
    const namespaces: (string | undefined)[] = options.namespaces === 'all' ? [undefined] : options.namespaces;
    this.informers = namespaces.map((namespace) => new Informer<EdgeDeployment>({
      client: options.client, path: collectionPath(edgeDeploymentResource), namespace, logger: options.logger,
    }));
    for (const informer of this.informers) {
      informer.onEvent((event) => this.onEvent(event.type, event.object));
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.start()));
  }

  hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }

  /** The running sync of one EdgeDeployment, for tests and diagnostics. */
  syncOf(namespace: string, name: string): DeviceTwinSync | undefined {
    return this.syncs.get(`${namespace}/${name}`)?.sync;
  }

  async stop(): Promise<void> {
    await this.pending;
    await Promise.all([...this.syncs.values()].map(({ sync }) => sync.stop()));
    this.syncs.clear();
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  private current(namespace: string, name: string): EdgeDeployment | undefined {
    for (const informer of this.informers) {
      const found = informer.get(namespace, name);
      if (found) return found;
    }
    return undefined;
  }

  private onEvent(type: 'add' | 'update' | 'delete', ed: EdgeDeployment): void {
    this.follow(type, ed);
    // A deletion or a new resource can move which EdgeDeployment is the namespace's device.
    const namespace = ed.metadata?.namespace;
    for (const other of this.inNamespace(namespace)) {
      if (keyOf(other) === keyOf(ed)) continue;
      if (this.isDevice(other) !== this.syncs.has(keyOf(other))) this.follow('update', other);
    }
  }

  private inNamespace(namespace: string | undefined): EdgeDeployment[] {
    return this.informers.flatMap((i) => i.list(namespace));
  }

  /** Only the EdgeDeployment the reconciler accepts as the namespace's device may connect as $edgeAgent. */
  private isDevice(ed: EdgeDeployment): boolean {
    return seniorEdgeDeployment(this.inNamespace(ed.metadata?.namespace))?.metadata?.uid === ed.metadata?.uid;
  }

  private follow(type: 'add' | 'update' | 'delete', ed: EdgeDeployment): void {
    const key = keyOf(ed);
    const existing = this.syncs.get(key);
    const binding = ed.spec?.iotHub;
    const duplicate = type !== 'delete' && !this.isDevice(ed) && !ed.metadata?.deletionTimestamp;
    if (type !== 'delete' && ed.metadata?.deletionTimestamp && hasIdentitiesFinalizer(ed) && binding) {
      if (this.finalizing.has(key)) return;
      this.finalizing.add(key);
      this.syncs.delete(key);
      const sync = existing?.sync ?? this.newSync(ed);
      this.serialise(async () => {
        await sync.stop();
        await sync.finalize(this.events);
      });
      return;
    }
    if (type === 'delete') this.finalizing.delete(key);
    const gone = type === 'delete' || ed.metadata?.deletionTimestamp !== undefined || !binding || duplicate;
    if (gone) {
      if (!existing) return;
      this.syncs.delete(key);
      if (duplicate) this.o.logger.warn({ edgeDeployment: key }, 'another EdgeDeployment is this namespace\'s device; not connecting as $edgeAgent');
      this.serialise(() => existing.sync.stop({ forget: duplicate || (type !== 'delete' && !ed.metadata?.deletionTimestamp) }));
      return;
    }
    if (existing && existing.binding === bindingKey(binding)) {
      existing.sync.resourceChanged();
      return;
    }
    if (existing) {
      // A new Secret, key or host name: start over with a fresh connection.
      this.syncs.delete(key);
      this.serialise(() => existing.sync.stop());
    }
    const sync = this.newSync(ed);
    this.syncs.set(key, { sync, binding: bindingKey(binding) });
    this.serialise(async () => sync.start());
  }

  private newSync(ed: EdgeDeployment): DeviceTwinSync {
    const { namespace, name } = ed.metadata as { namespace: string; name: string };
    return new DeviceTwinSync({
      client: this.o.client,
      namespace,
      name,
      resource: () => this.current(namespace, name),
      platform: () => this.platform(),
      operator: this.o.operator ?? operatorVersion(),
      logger: this.o.logger,
      metrics: this.o.metrics,
      timings: this.o.timings,
      ...(this.o.edgeHub ? { edgeHub: this.o.edgeHub } : {}),
    });
  }

  private serialise(work: () => Promise<void>): void {
    this.pending = this.pending.then(work).catch((error: unknown) => this.o.logger.warn({ err: error }, 'twin sync supervisor step failed'));
  }

  /** runtime.platform from the cluster's Nodes (the first Ready one), cached for ten minutes. */
  private async platform(): Promise<Platform> {
    if (this.platformCache && Date.now() - this.platformCache.at < 600_000) return this.platformCache.value;
    let value: Platform = { os: osPlatform(), architecture: arch(), version: release() };
    try {
      const { items } = await this.o.client.list<V1Node>('/api/v1/nodes', { limit: 20, timeoutMs: 10_000 });
      const ready = items.find((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ?? items[0];
      const info = ready?.status?.nodeInfo;
      if (info) value = { os: info.operatingSystem, architecture: info.architecture, version: info.osImage || info.kernelVersion };
    } catch (error) {
      this.o.logger.debug({ err: error }, 'cannot read Nodes for runtime.platform; reporting the operator host');
    }
    this.platformCache = { value, at: Date.now() };
    return value;
  }
}
