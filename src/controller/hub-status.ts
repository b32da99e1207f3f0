// status.edgeHub: the built-in hub's connection table (edgeHub's `clients` reported property) and the
// state of $upstream, read from the hub and applied to the EdgeDeployment.
//
// The channel: the operator GETs the hub's /status (on its metrics port) through the API server's pod proxy
// (`pods/proxy`, verb get). The hub pod holds no API token and needs no RBAC; the operator needs no route
// to pod IPs of its own, so the same read works in cluster and from outside (the API server dials the pod,
// as for `kubectl port-forward`). Reads are polled; writes happen only on a change: the table or the upstream
// state at once, the counts (queued, expired) at most once per `countsIntervalMs`, so a converged device with
// a steady flow of expiring messages costs one small write a minute, and a quiet one none.
//
// Whether the read works is the condition EdgeHubStatusKnown: True once read; Unknown (HubStarting) while the hub
// pod is not running yet or has just started, for up to `startGraceMs`; False when a read fails after that (its pod
// not running, the proxy failing, a document that is not the hub's), with the reason and the message. An Event goes
// with each change into False (Warning) and back to True (Normal), never one per poll.
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { edgeDeploymentApiVersion, edgeDeploymentKind } from '../api/edge-deployment.ts';
import { conditionTypes } from '../api/edge-deployment.ts';
import type { EdgeDeployment, EdgeDeploymentCondition, EdgeHubClientStatus, EdgeHubStatus, EdgeHubUpstreamStatus } from '../api/edge-deployment.ts';
import { scrubSecrets } from '../runtime/scrub.ts';
import { builtinHubMetricsPort } from '../translate/builtin-hub.ts';
import { labelKeys, moduleName, sanitizeLabelValue } from '../translate/names.ts';
import type { OperatorSettings } from '../translate/settings.ts';
import { mergeConditions } from './conditions.ts';
import type { ConditionInput } from './conditions.ts';
import type { EventRecorder, EventType } from './events.ts';
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
  /** How long a hub pod that is not running yet, or has just started, is Unknown (HubStarting) before a failed read is False. */
  startGraceMs: number;
}

export const defaultHubStatusTimings: HubStatusTimings = { pollMs: 15_000, countsIntervalMs: 60_000, readTimeoutMs: 5_000, startGraceMs: 120_000 };

export interface HubStatusReaderOptions {
  client: KubeClient;
  edgeDeployments: ObjectCache<EdgeDeployment>;
  pods: ObjectCache<KubernetesObject>;
  settings: OperatorSettings;
  logger: Logger;
  /** Records an Event on each change of EdgeHubStatusKnown into False and back; none without. */
  events?: EventRecorder;
  timings?: Partial<HubStatusTimings>;
  now?: () => number;
}

/** EdgeHubStatusKnown's reasons. */
export const hubStatusReasons = {
  /** True: the hub's /status was read. */
  statusRead: 'StatusRead',
  /** Unknown: the hub pod is not running yet, or has just started, so a failed read is expected for now. */
  hubStarting: 'HubStarting',
  /** False: the EdgeDeployment has no running hub pod (past the start grace). */
  hubPodNotRunning: 'PodNotRunning',
  /** False: the read through the API server's pod proxy failed (an HTTP error, a refused connection, a timeout). */
  statusUnreadable: 'StatusUnreadable',
  /** False: the hub answered with a document that is not its /status. */
  invalidStatus: 'InvalidStatus',
} as const;

export type HubReadFailureReason = typeof hubStatusReasons.hubPodNotRunning | typeof hubStatusReasons.statusUnreadable | typeof hubStatusReasons.invalidStatus;

/** Why a read of the hub's status failed: the reason, a message without secrets, and when the hub pod (re)started. */
export interface HubReadFailure {
  reason: HubReadFailureReason;
  message: string;
  /** When the hub's container last started (else the pod), if there is a pod. */
  podStartedAtMs?: number;
}

export class HubReadError extends Error {
  override name = 'HubReadError';
  readonly failure: HubReadFailure;
  constructor(failure: HubReadFailure) {
    super(failure.message);
    this.failure = failure;
  }
}

/**
 * EdgeHubStatusKnown after a read: True when it worked; when it failed, Unknown (HubStarting) while the hub is
 * starting — no running pod, or a pod started less than `graceMs` ago — for at most `graceMs` since the condition
 * became Unknown (and not after False), else False with the failure's reason.
 */
export function hubStatusCondition(failure: HubReadFailure | undefined, previous: EdgeDeploymentCondition | undefined, nowMs: number, graceMs: number): ConditionInput {
  const type = conditionTypes.edgeHubStatusKnown;
  if (!failure) return { type, status: 'True', reason: hubStatusReasons.statusRead, message: 'the built-in hub\'s status was read through the API server\'s pod proxy' };
  const message = scrubSecrets(failure.message).slice(0, 1000);
  const starting = failure.reason === hubStatusReasons.hubPodNotRunning || (failure.podStartedAtMs !== undefined && nowMs - failure.podStartedAtMs < graceMs);
  // Once False, a failed read stays False (with the newest reason) until a read works.
  if (starting && previous?.status !== 'False') {
    const since = previous?.status === 'Unknown' ? Date.parse(previous.lastTransitionTime) : nowMs;
    if (!(nowMs - since >= graceMs)) return { type, status: 'Unknown', reason: hubStatusReasons.hubStarting, message: `${message} (the hub is starting)` };
  }
  return { type, status: 'False', reason: failure.reason, message };
}

export interface HubStatusEvent {
  type: EventType;
  reason: string;
  message: string;
}

/** The Event for a change of EdgeHubStatusKnown: Warning into False (or a new False reason), Normal from False back to True. */
export function hubStatusEvent(previous: Pick<EdgeDeploymentCondition, 'status' | 'reason'> | undefined, next: ConditionInput): HubStatusEvent | undefined {
  if (previous && previous.status === next.status && previous.reason === next.reason) return undefined;
  if (next.status === 'False') return { type: 'Warning', reason: `EdgeHub${next.reason}`, message: next.message };
  if (next.status === 'True' && previous?.status === 'False') return { type: 'Normal', reason: 'EdgeHubStatusRead', message: 'the built-in hub\'s status is readable again' };
  return undefined;
}

function sameCondition(a: Pick<EdgeDeploymentCondition, 'status' | 'reason' | 'message'> | undefined, b: ConditionInput): boolean {
  return a !== undefined && a.status === b.status && a.reason === b.reason && a.message === b.message;
}

function conditionOf(ed: EdgeDeployment): EdgeDeploymentCondition | undefined {
  return ed.status?.conditions?.find((c) => c.type === conditionTypes.edgeHubStatusKnown);
}

/** When the hub's container last started (running), else when the pod started. */
export function hubStartedAtMs(pod: V1Pod): number | undefined {
  const ms = (t: unknown) => (t === undefined || t === null ? Number.NaN : new Date(t as string).getTime());
  const running = (pod.status?.containerStatuses ?? []).map((c) => ms(c.state?.running?.startedAt)).filter((t) => Number.isFinite(t));
  if (running.length > 0) return Math.max(...running);
  const started = ms(pod.status?.startTime);
  return Number.isFinite(started) ? started : undefined;
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
  /** Per EdgeDeployment: EdgeHubStatusKnown as last applied (the cache may not show the write yet). */
  private readonly lastCondition = new Map<string, EdgeDeploymentCondition>();

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
    const previousCondition = this.lastCondition.get(key) ?? conditionOf(ed);
    if (!builtinEdgeHubFor(ed, this.o.settings).builtinEdgeHub) {
      // A stock edgeHub reports its own twin; a table (or a condition) left from the built-in hub would be stale.
      if (current || previousCondition) await this.apply(ed, undefined, undefined);
      return;
    }
    let next: EdgeHubStatus | undefined;
    let failure: HubReadFailure | undefined;
    try {
      next = await this.read(ed);
      if (this.lastError.delete(key)) this.o.logger.info({ edgeDeployment: key }, 'the built-in hub\'s status is readable again');
    } catch (error) {
      failure = error instanceof HubReadError ? error.failure : { reason: hubStatusReasons.statusUnreadable, message: readErrorMessage(error) };
      if (this.lastError.get(key) !== failure.message) {
        this.lastError.set(key, failure.message);
        this.o.logger.warn({ edgeDeployment: key, reason: failure.reason, message: failure.message }, 'cannot read the built-in hub\'s status; status.edgeHub keeps the last table read');
      }
      // The last table read stays, qualified by the message; before the first good read there is none.
      next = current ? { ...current, message: failure.message } : undefined;
    }
    const condition = hubStatusCondition(failure, previousCondition, this.now(), this.t.startGraceMs);
    const conditionChanged = !sameCondition(previousCondition, condition);
    const decision = next === undefined ? 'none' : hubStatusWriteDecision(current, next, this.lastWrite.get(key), this.now(), this.t.countsIntervalMs);
    if (decision !== 'now' && !conditionChanged) return;
    // A write for the condition alone leaves status.edgeHub as it is (counts included).
    await this.apply(ed, decision === 'now' ? next : current, condition, previousCondition);
    const event = hubStatusEvent(previousCondition, condition);
    if (event) await this.o.events?.record(ed, event.type, event.reason, event.message);
  }

  private async read(ed: EdgeDeployment): Promise<EdgeHubStatus> {
    const namespace = ed.metadata?.namespace as string;
    const pod = answeringHubPod(this.o.pods.list(namespace), ed.metadata?.name as string);
    if (!pod) throw new HubReadError({ reason: hubStatusReasons.hubPodNotRunning, message: 'cannot read the hub\'s /status: edgeHub has no running pod' });
    const podStartedAtMs = hubStartedAtMs(pod);
    const path = `/api/v1/namespaces/${namespace}/pods/${pod.metadata?.name as string}:${builtinHubMetricsPort}/proxy/status`;
    let document: unknown;
    try {
      document = await this.o.client.request<unknown>('GET', path, {}, { timeoutMs: this.t.readTimeoutMs });
    } catch (error) {
      throw new HubReadError({ reason: hubStatusReasons.statusUnreadable, message: readErrorMessage(error), ...(podStartedAtMs !== undefined ? { podStartedAtMs } : {}) });
    }
    try {
      return edgeHubStatusFromDocument(document);
    } catch (error) {
      throw new HubReadError({ reason: hubStatusReasons.invalidStatus, message: readErrorMessage(error), ...(podStartedAtMs !== undefined ? { podStartedAtMs } : {}) });
    }
  }

  /** Applies status.edgeHub and EdgeHubStatusKnown (or, with undefined, gives them up, which removes them). */
  private async apply(ed: EdgeDeployment, edgeHub: EdgeHubStatus | undefined, condition: ConditionInput | undefined, previous?: EdgeDeploymentCondition): Promise<void> {
    const { namespace, name } = ed.metadata as { namespace: string; name: string };
    const conditions = condition ? mergeConditions(previous ? [previous] : [], [condition], new Date(this.now()).toISOString()) : [];
    const status = { ...(edgeHub ? { edgeHub } : {}), ...(conditions.length > 0 ? { conditions } : {}) };
    try {
      await this.o.client.request('PATCH', `${objectPath(edgeDeploymentResource, namespace, name)}/status`, { fieldManager: hubStatusFieldManager, force: 'true' }, {
        body: { apiVersion: edgeDeploymentApiVersion, kind: edgeDeploymentKind, metadata: { name, namespace }, status },
        contentType: 'application/apply-patch+yaml',
      });
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return; // the resource is gone
      throw error;
    }
    const key = keyOf(ed);
    this.lastWrite.set(key, this.now());
    if (conditions[0]) this.lastCondition.set(key, conditions[0]);
    else this.lastCondition.delete(key);
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
