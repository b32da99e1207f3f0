// status.edgeHub: the built-in hub's connection table (edgeHub's `clients` reported property) and the
// state of $upstream, read from the hub and applied to the EdgeDeployment.
//
// The channel: the operator GETs the hub's /status (on its metrics port) through the API server's pod proxy
// (`pods/proxy`, verb get). The hub pod holds no API token and needs no RBAC; the operator needs no route
// to pod IPs of its own, so the same read works in cluster and from outside (the API server dials the pod,
// as for `kubectl port-forward`). Reads are polled; writes happen only on a change: the table or the upstream
// state at once, the counts (queued, expired) at most once per `countsIntervalMs`, so a converged device with
// a steady flow of expiring messages costs one small write a minute, and a quiet one none.
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { edgeDeploymentApiVersion, edgeDeploymentKind } from '../api/edge-deployment.ts';
import type { EdgeDeployment, EdgeHubClientStatus, EdgeHubStatus, EdgeHubUpstreamStatus } from '../api/edge-deployment.ts';
import { builtinHubMetricsPort } from '../translate/builtin-hub.ts';
import { labelKeys, moduleName, sanitizeLabelValue } from '../translate/names.ts';
import type { OperatorSettings } from '../translate/settings.ts';
import { KubeApiError } from './kube-client.ts';
import type { KubeClient, Logger } from './kube-client.ts';
import { builtinEdgeHubFor, seniorEdgeDeployment } from './reconciler.ts';
import type { ObjectCache } from './reconciler.ts';
import { edgeDeploymentResource, objectPath } from './resources.ts';

/** status.edgeHub is applied under its own field manager; server-side apply leaves the other fields alone. */
export const hubStatusFieldManager = 'iotedge-operator-edgehub-status';

export interface HubStatusTimings {
  /** How often each hub is read. */
  pollMs: number;
  /** The least time between two writes that change only the counts. */
  countsIntervalMs: number;
  /** Deadline of one read through the pod proxy. */
  readTimeoutMs: number;
}

export const defaultHubStatusTimings: HubStatusTimings = { pollMs: 15_000, countsIntervalMs: 60_000, readTimeoutMs: 5_000 };

export interface HubStatusReaderOptions {
  client: KubeClient;
  edgeDeployments: ObjectCache<EdgeDeployment>;
  pods: ObjectCache<KubernetesObject>;
  settings: OperatorSettings;
  logger: Logger;
  timings?: Partial<HubStatusTimings>;
  now?: () => number;
}

/** The hub's /status document, checked: anything else is refused with the reason. */
export function edgeHubStatusFromDocument(document: unknown): EdgeHubStatus {
  const doc = document as { schemaVersion?: unknown; clients?: unknown; upstream?: Record<string, unknown> } | null;
  if (!doc || typeof doc !== 'object' || doc.schemaVersion !== '1.0') throw new Error('the hub\'s /status is not a schemaVersion 1.0 document');
  if (!doc.clients || typeof doc.clients !== 'object' || !doc.upstream || typeof doc.upstream !== 'object') throw new Error('the hub\'s /status lacks clients or upstream');
  const clients: Record<string, EdgeHubClientStatus> = {};
  for (const [id, raw] of Object.entries(doc.clients as Record<string, Record<string, unknown>>).sort(([a], [b]) => a.localeCompare(b))) {
    if (raw?.status !== 'Connected' && raw?.status !== 'Disconnected') throw new Error(`the hub's /status gives client ${id} the status ${String(raw?.status)}`);
    clients[id] = {
      status: raw.status,
      ...(typeof raw.lastConnectedTimeUtc === 'string' ? { lastConnectedTimeUtc: raw.lastConnectedTimeUtc } : {}),
      ...(typeof raw.lastDisconnectedTimeUtc === 'string' ? { lastDisconnectedTimeUtc: raw.lastDisconnectedTimeUtc } : {}),
    };
  }
  const u = doc.upstream;
  const count = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0);
  const connected = u.connected === true;
  const expiring = u.expiring === true;
  const upstream: EdgeHubUpstreamStatus = {
    state: expiring ? 'Expiring' : connected ? 'Connected' : 'Offline',
    connected,
    expiring,
    queued: count(u.queued),
    expired: count(u.expired),
  };
  return { clients, connectedClients: Object.values(clients).filter((c) => c.status === 'Connected').length, upstream };
}

/** The part of status.edgeHub whose change is written at once: everything but the counts. */
function withoutCounts(status: EdgeHubStatus | undefined): unknown {
  if (!status) return undefined;
  const { queued: _q, expired: _e, ...upstream } = status.upstream ?? {};
  return stable({ ...status, upstream });
}

export type WriteDecision = 'now' | 'later' | 'none';

/** Whether `next` is to be written over `current`: a change of the table or state now, of the counts only later. */
export function hubStatusWriteDecision(current: EdgeHubStatus | undefined, next: EdgeHubStatus, lastWriteMs: number | undefined, nowMs: number, countsIntervalMs: number): WriteDecision {
  if (JSON.stringify(stable(current)) === JSON.stringify(stable(next))) return 'none';
  if (JSON.stringify(withoutCounts(current)) !== JSON.stringify(withoutCounts(next))) return 'now';
  return lastWriteMs === undefined || nowMs - lastWriteMs >= countsIntervalMs ? 'now' : 'later';
}

function stable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stable);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().filter((k) => (value as Record<string, unknown>)[k] !== undefined).map((k) => [k, stable((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/** The built-in hub's pod of an EdgeDeployment that can answer: Running with an IP, not being deleted; the newest first. */
export function answeringHubPod(pods: readonly KubernetesObject[], edgeDeploymentName: string): V1Pod | undefined {
  const owner = sanitizeLabelValue(edgeDeploymentName);
  const hub = moduleName('edgeHub');
  return (pods as V1Pod[])
    .filter((p) => p.metadata?.labels?.[labelKeys.module] === hub && p.metadata.labels[labelKeys.edgeDeployment] === owner)
    .filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && p.status.podIP)
    .sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')))[0];
}

export class HubStatusReader {
  private readonly o: HubStatusReaderOptions;
  private readonly t: HubStatusTimings;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Per EdgeDeployment (namespace/name): when status.edgeHub was last written, and the last read error logged. */
  private readonly lastWrite = new Map<string, number>();
  private readonly lastError = new Map<string, string>();

  constructor(options: HubStatusReaderOptions) {
    this.o = options;
    this.t = { ...defaultHubStatusTimings, ...options.timings };
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.pollOnce(), this.t.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Reads every built-in hub once and applies what changed; a round still running is not overlapped. */
  pollOnce(): Promise<void> {
    this.running ??= this.pollAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pollAll(): Promise<void> {
    const all = this.o.edgeDeployments.list();
    const namespaces = new Set(all.map((e) => e.metadata?.namespace ?? ''));
    const devices = [...namespaces].flatMap((ns) => {
      const senior = seniorEdgeDeployment(this.o.edgeDeployments.list(ns));
      return senior ? [senior] : [];
    });
    await Promise.all(devices.map((ed) => this.pollOne(ed).catch((error: unknown) => {
      this.o.logger.warn({ edgeDeployment: keyOf(ed), err: error }, 'could not apply status.edgeHub');
    })));
  }

  private async pollOne(ed: EdgeDeployment): Promise<void> {
    const key = keyOf(ed);
    const current = ed.status?.edgeHub;
    if (!builtinEdgeHubFor(ed, this.o.settings).builtinEdgeHub) {
      // A stock edgeHub reports its own twin; a table left from the built-in hub would be stale.
      if (current) await this.apply(ed, undefined);
      return;
    }
    let next: EdgeHubStatus;
    try {
      next = await this.read(ed);
      if (this.lastError.delete(key)) this.o.logger.info({ edgeDeployment: key }, 'the built-in hub\'s status is readable again');
    } catch (error) {
      const message = readErrorMessage(error);
      if (this.lastError.get(key) !== message) {
        this.lastError.set(key, message);
        this.o.logger.warn({ edgeDeployment: key, reason: message }, 'cannot read the built-in hub\'s status; status.edgeHub keeps the last table read');
      }
      // Before the first good read there is no table to qualify: status.edgeHub stays absent (a pod that never
      // answers, such as one on a simulated node, then costs no write).
      if (!current) return;
      next = { ...current, message };
    }
    const decision = hubStatusWriteDecision(current, next, this.lastWrite.get(key), this.now(), this.t.countsIntervalMs);
    if (decision === 'now') await this.apply(ed, next);
  }

  private async read(ed: EdgeDeployment): Promise<EdgeHubStatus> {
    const namespace = ed.metadata?.namespace as string;
    const pod = answeringHubPod(this.o.pods.list(namespace), ed.metadata?.name as string);
    if (!pod) throw new Error('edgeHub has no running pod');
    const path = `/api/v1/namespaces/${namespace}/pods/${pod.metadata?.name as string}:${builtinHubMetricsPort}/proxy/status`;
    const document = await this.o.client.request<unknown>('GET', path, {}, { timeoutMs: this.t.readTimeoutMs });
    return edgeHubStatusFromDocument(document);
  }

  /** Applies status.edgeHub (or, with undefined, gives it up, which removes it). */
  private async apply(ed: EdgeDeployment, edgeHub: EdgeHubStatus | undefined): Promise<void> {
    const { namespace, name } = ed.metadata as { namespace: string; name: string };
    try {
      await this.o.client.request('PATCH', `${objectPath(edgeDeploymentResource, namespace, name)}/status`, { fieldManager: hubStatusFieldManager, force: 'true' }, {
        body: { apiVersion: edgeDeploymentApiVersion, kind: edgeDeploymentKind, metadata: { name, namespace }, status: edgeHub ? { edgeHub } : {} },
        contentType: 'application/apply-patch+yaml',
      });
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return; // the resource is gone
      throw error;
    }
    this.lastWrite.set(keyOf(ed), this.now());
  }
}

function keyOf(ed: EdgeDeployment): string {
  return `${ed.metadata?.namespace ?? ''}/${ed.metadata?.name ?? ''}`;
}

/** A short reason for status and the log: the API server's message for a proxy error (no secret is in it). */
function readErrorMessage(error: unknown): string {
  if (error instanceof KubeApiError) {
    const detail = error.body?.message ?? error.reason ?? '';
    return `cannot read the hub's /status through the pod proxy: HTTP ${error.status}${detail ? `: ${detail}` : ''}`.slice(0, 500);
  }
  return `cannot read the hub's /status: ${error instanceof Error ? error.message : String(error)}`.slice(0, 500);
}
