// One device's link to IoT Hub: the operator connects as the device's $edgeAgent module over MQTT
// (azure-iot-device), reads the $edgeAgent desired properties into the EdgeDeployment's spec by
// server-side apply, follows desired patches, reports module status in edgeAgent's schema, and answers
// $edgeAgent's direct methods. It never connects as $edgeHub: that twin is edgeHub's own (IoT Hub lets one
// connection per identity). The resource is the last-known-good desired state: while the hub is
// unreachable nothing is applied or deleted, and modules keep running from it.
import { scrubSecrets } from '../runtime/scrub.ts';
import device from 'azure-iot-device';
import type { ModuleClient, Twin } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import {
  conditionTypes, edgeDeploymentApiVersion, edgeDeploymentKind,
  type EdgeDeployment, type EdgeDeploymentCondition, type IoTHubStatus, type LastDesiredStatus,
} from '../api/edge-deployment.ts';
import { mergeConditions, type ConditionInput } from '../controller/conditions.ts';
import { KubeApiError, type KubeClient, type Logger } from '../controller/kube-client.ts';
import { JitteredBackoff } from '../controller/informer.ts';
import { readOrCreateRootKey } from '../controller/device-trust.ts';
import { contentHash, desiredVersionAnnotation } from '../controller/reconciler.ts';
import { edgeDeploymentResource, objectPath } from '../controller/resources.ts';
import { withDeadline } from '../runtime/deadline.ts';
import { commonLabels, labelKeys, moduleName, sanitizeLabelValue } from '../translate/names.ts';
import { ConnectionStringError, moduleConnectionString, parseConnectionString, type HubCredentials } from './connection-string.ts';
import { decidePatch, desiredVersionOf, isJsonObject, mergeDesiredPatch, specFromDesired, stripTwinMetadata, type JsonObject } from './desired.ts';
import { DeviceApi, HubRestError } from './device-api.ts';
import type { EventRecorder } from '../controller/events.ts';
import { addIdentitiesFinalizer, hasIdentitiesFinalizer, removeIdentitiesFinalizer, removeManagedIdentities } from './finalizer.ts';
import { applyObject, ownerReference, syncModuleIdentities } from './identities.ts';
import { buildReported, diffReported, type OperatorVersion, type Platform } from './reported.ts';

/** Twin sync applies status.iotHub and its conditions under this field manager, apart from the reconciler's. */
export const twinStatusFieldManager = 'iotedge-operator-twin-sync';
/** Condition: the last desired state read from the twins was accepted (converted and applied). */
export const desiredAcceptedCondition = 'IoTHubDesiredStateAccepted';
/** Optional key in the binding Secret: a PEM CA to trust for the hub (a private hub or the emulator). */
export const caCertSecretKey = 'ca.crt';

export const connectionReasons = {
  connected: 'Connected',
  connecting: 'Connecting',
  unauthorized: 'Unauthorized',
  secretNotFound: 'SecretNotFound',
  badConnectionString: 'InvalidConnectionString',
  deviceMismatch: 'DeviceIdMismatch',
  unreachable: 'HubUnreachable',
} as const;

export interface TwinSyncTimings {
  /** Deadline of each twin or REST operation (the SDK has none). */
  operationMs: number;
  /** Deadline of opening the MQTT connection. */
  connectMs: number;
  /** Reconnect backoff after a transient failure: jittered exponential between these. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Wait after bad credentials, unless the binding Secret changes first. */
  unauthorizedBackoffMs: number;
  /** How often a waiting sync looks at the binding Secret for a change. */
  secretPollMs: number;
  /** Full re-read of the twins, as edgeAgent does hourly. */
  refreshMs: number;
  /** How long removing the module identities may hold an EdgeDeployment's deletion. */
  finalizerTimeoutMs: number;
  /** Reported properties are sent at most this often, with every change folded in. */
  reportDebounceMs: number;
  /** SAS lifetime and renewal margin of the MQTT connection (azure-iot-device renews itself). */
  tokenValidSeconds: number;
  tokenRenewalMarginSeconds: number;
}

export const defaultTimings: TwinSyncTimings = {
  operationMs: 30_000,
  connectMs: 60_000,
  backoffInitialMs: 1_000,
  backoffMaxMs: 60_000,
  unauthorizedBackoffMs: 300_000,
  secretPollMs: 15_000,
  refreshMs: 3_600_000,
  finalizerTimeoutMs: 30_000,
  reportDebounceMs: 250,
  tokenValidSeconds: 3600,
  tokenRenewalMarginSeconds: 900,
};

export interface TwinSyncMetrics {
  twinSync(result: 'success' | 'error', namespace?: string): void;
}

export interface DeviceTwinSyncOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** The resource as the supervisor's informer sees it now. */
  resource: () => EdgeDeployment | undefined;
  platform: () => Promise<Platform>;
  operator: OperatorVersion;
  logger: Logger;
  metrics?: TwinSyncMetrics;
  timings?: Partial<TwinSyncTimings>;
  random?: () => number;
  /**
   * The operator's `--edge-hub` setting. With `builtin`, no stock edgeHub holds the `$edgeHub` identity
   * (the built-in hub links each module on its own), so twin sync may read `$edgeHub`'s routes itself.
   */
  edgeHub?: 'auto' | 'builtin' | 'stock';
}

class ConnectFailure extends Error {
  override name = 'ConnectFailure';
  readonly reason: string;
  readonly waitMs: number | 'unauthorized';
  constructor(reason: string, message: string, waitMs: number | 'unauthorized') {
    super(message);
    this.reason = reason;
    this.waitMs = waitMs;
  }
}

// Keys and tokens out of any message that may reach a log, an Event or the resource's status: the
// runtime's one scrubber, which the logger, Events, conditions and CLI errors share.
export { scrubSecrets };

interface Session {
  client: ModuleClient;
  twin: Twin;
  credentials: HubCredentials;
  api: DeviceApi | undefined;
  caCertPem: string | undefined;
  /** Resolved (with the reason) when the session must end. */
  lost: Promise<Error>;
  end(error: Error): void;
}

/** A plain copy of a twin section: the SDK's objects carry functions (reported.update). */
function jsonClone(value: unknown): JsonObject {
  const copy: unknown = JSON.parse(JSON.stringify(value ?? {}));
  return isJsonObject(copy) ? copy : {};
}

function twinGet(twin: Twin): Promise<Twin> {
  return new Promise((resolve, reject) => twin.get((err, t) => (err ? reject(err) : resolve(t as Twin))));
}

function reportedUpdate(twin: Twin, patch: JsonObject): Promise<void> {
  return new Promise((resolve, reject) => twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve())));
}

export class DeviceTwinSync {
  readonly namespace: string;
  readonly name: string;
  private readonly o: DeviceTwinSyncOptions;
  private readonly t: TwinSyncTimings;
  private readonly log: Logger;
  private readonly backoff: JitteredBackoff;
  private readonly startedAt = new Date().toISOString();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private session: Session | undefined;
  private wake: (() => void) | undefined;
  /** Sync work (GETs, applies, reports) runs one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private held: JsonObject | undefined;
  private heldVersion: number | undefined;
  private reading = false;
  private rejected: { version: number; status: LastDesiredStatus } | undefined;
  private lastReported: JsonObject | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private hubStatus: IoTHubStatus = { connected: false };
  private conditions: ConditionInput[] = [];
  private secretVersion: string | undefined;
  /**
   * What the last apply wrote (desired content and $version) and the resource generation it produced, and
   * what the last identity sync was for: an hourly re-read that finds the same state writes nothing.
   */
  private applied: { key: string; generation: number | undefined } | undefined;
  private identitiesKey: string | undefined;

  constructor(options: DeviceTwinSyncOptions) {
    this.o = options;
    this.namespace = options.namespace;
    this.name = options.name;
    this.t = { ...defaultTimings, ...options.timings };
    this.log = options.logger.child({ edgeDeployment: `${options.namespace}/${options.name}`, component: 'twin-sync' });
    this.backoff = new JitteredBackoff({ initialMs: this.t.backoffInitialMs, maxMs: this.t.backoffMaxMs, random: options.random });
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** True while connected to IoT Hub as $edgeAgent. */
  get connected(): boolean {
    return this.hubStatus.connected === true;
  }

  /** The resource changed (status from the reconciler, or spec): report, if connected. */
  resourceChanged(): void {
    if (this.session) this.scheduleReport();
  }

  /**
   * The EdgeDeployment is being deleted: remove the device's module identities from IoT Hub within the
   * finalizer deadline, say how it went in an Event, and remove the finalizer whatever happened, so an
   * unreachable hub delays the deletion but never blocks it.
   */
  async finalize(events: EventRecorder): Promise<void> {
    const resource = this.o.resource();
    if (!resource || !hasIdentitiesFinalizer(resource)) return;
    try {
      const { credentials, caCertPem } = await this.credentials();
      if (credentials.moduleId !== undefined) throw new Error('the binding is a module connection string, which manages no module identities');
      const api = new DeviceApi({ hostName: credentials.hostName, deviceId: credentials.deviceId, deviceKey: credentials.sharedAccessKey, caCertPem, timeoutMs: this.t.finalizerTimeoutMs });
      const removed = await removeManagedIdentities(api, this.t.finalizerTimeoutMs);
      this.log.info({ removed }, 'module identities removed from IoT Hub');
      await events.record(resource, 'Normal', 'ModuleIdentitiesRemoved', `removed ${removed.length} module identities of device ${credentials.deviceId} from IoT Hub${removed.length ? `: ${removed.join(', ')}` : ''}`);
    } catch (error) {
      const message = scrubSecrets((error as Error).message ?? String(error));
      this.log.warn({ error: message }, 'could not remove the module identities; the deletion goes on');
      await events.record(resource, 'Warning', 'ModuleIdentitiesNotRemoved', `the module identities could not be removed from IoT Hub (${message}); the EdgeDeployment is deleted anyway and they stay in the hub`);
    }
    await removeIdentitiesFinalizer(this.o.client, resource).catch((error: unknown) => {
      if (!(error instanceof KubeApiError && error.status === 404)) throw error;
    });
  }

  /** Ends the connection. `forget` also removes twin sync's status fields (the binding was removed). */
  async stop(options: { forget?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.session?.end(new Error('stopping'));
    this.wake?.();
    await this.loop;
    if (options.forget) {
      this.hubStatus = {};
      this.conditions = [];
      await this.writeStatus(true).catch((error: unknown) => this.log.debug({ err: error }, 'could not clear twin sync status'));
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let wait: number | 'unauthorized';
      try {
        const ended = await this.connectAndServe();
        if (this.stopped) break;
        this.log.warn({ reason: scrubSecrets(ended.message) }, 'IoT Hub connection lost; reconnecting');
        await this.setConnection(false, connectionReasons.unreachable, `connection lost: ${scrubSecrets(ended.message)}; modules keep running from the last desired state`);
        wait = this.backoff.next();
      } catch (error) {
        if (this.stopped) break;
        const failure = error instanceof ConnectFailure ? error : new ConnectFailure(connectionReasons.unreachable, (error as Error).message ?? String(error), this.backoff.next());
        this.o.metrics?.twinSync('error', this.namespace);
        const message = scrubSecrets(failure.message);
        this.log.warn({ reason: failure.reason, error: message }, 'cannot sync with IoT Hub');
        await this.setConnection(false, failure.reason, failure.waitMs === 'unauthorized'
          ? `${message}; retrying in ${Math.round(this.t.unauthorizedBackoffMs / 1000)} s or when the Secret changes`
          : `${message}; modules keep running from the last desired state`).catch((e: unknown) => this.log.debug({ err: e }, 'status write failed'));
        wait = failure.waitMs;
      }
      await this.pause(wait);
    }
  }

  /** Sleeps `wait` ms, or after bad credentials until the Secret changes or the long backoff ends. */
  private async pause(wait: number | 'unauthorized'): Promise<void> {
    if (this.stopped) return;
    const total = wait === 'unauthorized' ? this.t.unauthorizedBackoffMs : wait;
    const until = Date.now() + total;
    while (!this.stopped && Date.now() < until) {
      const step = wait === 'unauthorized' ? Math.min(this.t.secretPollMs, until - Date.now()) : until - Date.now();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, step);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
      if (wait === 'unauthorized' && !this.stopped) {
        const secret = await this.readSecret().catch(() => undefined);
        if (secret && secret.metadata?.resourceVersion !== this.secretVersion) return;
      }
    }
  }

  /** Wakes a waiting sync now (the binding changed). */
  retryNow(): void {
    this.backoff.reset();
    this.wake?.();
  }

  private async readSecret(): Promise<V1Secret | undefined> {
    const ref = this.o.resource()?.spec?.iotHub?.connectionStringSecretRef;
    if (!ref) return undefined;
    return this.o.client.get<V1Secret>(`/api/v1/namespaces/${this.namespace}/secrets/${encodeURIComponent(ref.name)}`).catch((error: unknown) => {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    });
  }

  private async credentials(): Promise<{ credentials: HubCredentials; caCertPem: string | undefined }> {
    const resource = this.o.resource();
    const binding = resource?.spec?.iotHub;
    if (!resource || !binding) throw new ConnectFailure(connectionReasons.secretNotFound, 'the EdgeDeployment has no iotHub binding', 'unauthorized');
    const ref = binding.connectionStringSecretRef;
    const secret = await this.readSecret();
    this.secretVersion = secret?.metadata?.resourceVersion;
    const encoded = secret?.data?.[ref.key];
    if (encoded === undefined) {
      throw new ConnectFailure(connectionReasons.secretNotFound, `Secret ${this.namespace}/${ref.name} with key "${ref.key}" was not found (spec.iotHub.connectionStringSecretRef)`, 'unauthorized');
    }
    let credentials: HubCredentials;
    try {
      credentials = parseConnectionString(Buffer.from(encoded, 'base64').toString('utf8'));
    } catch (error) {
      if (error instanceof ConnectionStringError) throw new ConnectFailure(connectionReasons.badConnectionString, `Secret ${this.namespace}/${ref.name} key "${ref.key}": ${error.message}`, 'unauthorized');
      throw error;
    }
    const deviceId = resource.spec?.deviceId ?? this.namespace;
    if (credentials.deviceId !== deviceId) {
      throw new ConnectFailure(connectionReasons.deviceMismatch, `the connection string is for device ${credentials.deviceId}, but the EdgeDeployment is device ${deviceId} (spec.deviceId, else the namespace name)`, 'unauthorized');
    }
    if (binding.hostName) credentials = { ...credentials, hostName: binding.hostName };
    const ca = secret?.data?.[caCertSecretKey];
    return { credentials, caCertPem: ca === undefined ? undefined : Buffer.from(ca, 'base64').toString('utf8') };
  }

  /** The key of one of the device's system modules, read (or initialised) with the device's own SAS. */
  private async moduleKey(api: DeviceApi, moduleId: '$edgeAgent' | '$edgeHub'): Promise<string> {
    let identity = await withDeadline(api.getModule(moduleId), this.t.operationMs, `GET module ${moduleId}`);
    // A new edge device's system modules have no keys until the runtime initialises them.
    if (!identity) identity = await withDeadline(api.putModule(moduleId, { managedBy: 'IotEdge' }), this.t.operationMs, `PUT module ${moduleId}`);
    else if (!identity.authentication?.symmetricKey?.primaryKey) {
      identity = await withDeadline(api.putModule(moduleId, { managedBy: identity.managedBy ?? 'IotEdge' }, '*'), this.t.operationMs, `PUT module ${moduleId}`);
    }
    const key = identity.authentication?.symmetricKey?.primaryKey;
    if (!key) throw new Error(`IoT Hub gave no key for module ${moduleId}`);
    return key;
  }

  private async openClient(credentials: HubCredentials, moduleId: string, key: string, caCertPem: string | undefined): Promise<ModuleClient> {
    const client = device.ModuleClient.fromConnectionString(
      moduleConnectionString({ ...credentials, moduleId, sharedAccessKey: key }),
      mqtt.Mqtt,
    );
    await client.setOptions({
      ...(caCertPem ? { ca: caCertPem } : {}),
      tokenRenewal: { tokenValidTimeInSeconds: this.t.tokenValidSeconds, tokenRenewalMarginInSeconds: this.t.tokenRenewalMarginSeconds },
    });
    try {
      await withDeadline(client.open(), this.t.connectMs, `connecting to IoT Hub as ${credentials.deviceId}/${moduleId}`);
    } catch (error) {
      void client.close().catch(() => undefined);
      throw error;
    }
    return client;
  }

  private classify(error: unknown, what: string): ConnectFailure {
    if (error instanceof ConnectFailure) return error;
    const name = (error as Error)?.name ?? '';
    const message = scrubSecrets(`${what}: ${(error as Error)?.message ?? String(error)}`);
    if (name === 'UnauthorizedError' || (error instanceof HubRestError && error.status === 401)) {
      return new ConnectFailure(connectionReasons.unauthorized, message, 'unauthorized');
    }
    if (error instanceof HubRestError && error.status === 404) {
      return new ConnectFailure(connectionReasons.unauthorized, message, 'unauthorized');
    }
    return new ConnectFailure(connectionReasons.unreachable, message, this.backoff.next());
  }

  /** One connection: open, read, follow, report, until it is lost. Returns why it ended. */
  private async connectAndServe(): Promise<Error> {
    const { credentials, caCertPem } = await this.credentials();
    let api: DeviceApi | undefined;
    let key = credentials.sharedAccessKey;
    if (credentials.moduleId === undefined) {
      api = new DeviceApi({ hostName: credentials.hostName, deviceId: credentials.deviceId, deviceKey: credentials.sharedAccessKey, caCertPem, timeoutMs: this.t.operationMs });
      try {
        key = await this.moduleKey(api, '$edgeAgent');
      } catch (error) {
        throw this.classify(error, 'reading the $edgeAgent identity');
      }
    }
    let client: ModuleClient;
    try {
      client = await this.openClient(credentials, '$edgeAgent', key, caCertPem);
    } catch (error) {
      throw this.classify(error, 'connecting as $edgeAgent');
    }
    let end!: (error: Error) => void;
    const lost = new Promise<Error>((resolve) => {
      end = resolve;
    });
    let twin: Twin;
    try {
      twin = await withDeadline(client.getTwin(), this.t.operationMs, 'reading the $edgeAgent twin');
    } catch (error) {
      void client.close().catch(() => undefined);
      throw this.classify(error, 'reading the $edgeAgent twin');
    }
    const session: Session = { client, twin, credentials, api, caCertPem, lost, end: (e) => end(e) };
    this.session = session;
    this.backoff.reset();
    this.log.info({ hostName: credentials.hostName, deviceId: credentials.deviceId }, 'connected to IoT Hub as $edgeAgent');

    client.on('disconnect', (result?: { transportObj?: unknown } & Record<string, unknown>) => {
      const why = (result?.transportObj as Error | undefined)?.message ?? 'the SDK gave up reconnecting';
      end(new Error(`disconnected: ${why}`));
    });
    client.on('error', (error: Error) => end(error));
    // The SDK reconnects on its own after a transient drop (and to renew its SAS) but never reads the
    // twin again, so a desired change made meanwhile would be missed: read it on every connect.
    client.on('connect', () => {
      this.enqueue(() => this.setConnection(true, connectionReasons.connected, `reconnected to ${credentials.hostName} as ${credentials.deviceId}/$edgeAgent`));
      this.enqueue(() => this.refetch(session));
    });
    // The SDK retries a dropped connection for minutes before it emits 'disconnect'; the transport
    // says at once, so the condition shows the outage while the SDK works on it.
    transportOf(client)?.on('disconnect', () => {
      if (this.session !== session || this.stopped) return;
      void this.setConnection(false, connectionReasons.unreachable, 'connection to IoT Hub lost; reconnecting; modules keep running from the last desired state')
        .catch((error: unknown) => this.log.debug({ err: error }, 'status write failed'));
    });
    this.held = jsonClone(twin.properties.desired);
    this.heldVersion = desiredVersionOf(this.held);
    twin.on('properties.desired', (patch: JsonObject) => this.onDesired(session, patch));
    twin.on('error', (error: Error) => end(error));
    this.registerMethods(session);
    this.refreshTimer = setInterval(() => this.enqueue(() => this.refetch(session)), this.t.refreshMs);
    this.refreshTimer.unref();

    // The first GET (inside getTwin) came before the desired subscription; reading again after it
    // closes the window in which a change could land unseen.
    this.lastReported = stripTwinMetadata(jsonClone(twin.properties.reported));
    this.enqueue(() => this.refetch(session));
    this.enqueue(() => this.setConnection(true, connectionReasons.connected, `connected to ${credentials.hostName} as ${credentials.deviceId}/$edgeAgent`));

    const reason = await lost;
    this.session = undefined;
    clearInterval(this.refreshTimer);
    clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    twin.removeAllListeners();
    client.removeAllListeners();
    // Errors from a closing client must not crash the process.
    client.on('error', () => undefined);
    await withDeadline(client.close(), 5_000, 'closing the IoT Hub connection').catch(() => undefined);
    await this.chain;
    return reason;
  }

  /** Runs sync work in order; a failure ends the session, so the next connection starts clean. */
  private enqueue(work: () => Promise<void>): void {
    const session = this.session;
    this.chain = this.chain.then(async () => {
      if (!session || this.session !== session || this.stopped) return;
      try {
        await work();
      } catch (error) {
        this.o.metrics?.twinSync('error', this.namespace);
        this.log.warn({ err: scrubSecrets((error as Error).message ?? String(error)) }, 'twin sync step failed; reconnecting');
        session.end(error as Error);
      }
    });
  }

  private onDesired(session: Session, patch: JsonObject): void {
    // A GET emits the whole desired document on the same event; the GET's own result is handled by refetch.
    if (this.reading || this.session !== session) return;
    const decision = decidePatch(this.heldVersion, patch.$version);
    if (decision === 'ignore') return;
    if (decision === 'refetch' || !this.held) {
      this.log.info({ held: this.heldVersion, received: patch.$version }, 'desired $version gap: reading the twin again');
      this.enqueue(() => this.refetch(session));
      return;
    }
    this.held = mergeDesiredPatch(this.held, patch);
    this.heldVersion = patch.$version as number;
    const version = this.heldVersion;
    this.enqueue(() => this.applyDesired(session, version));
  }

  private async refetch(session: Session): Promise<void> {
    this.reading = true;
    let twin: Twin;
    try {
      twin = await withDeadline(twinGet(session.twin), this.t.operationMs, 'reading the $edgeAgent twin');
    } finally {
      this.reading = false;
    }
    const desired = jsonClone(twin.properties.desired);
    this.held = desired;
    this.heldVersion = desiredVersionOf(desired);
    this.lastReported = stripTwinMetadata(jsonClone(twin.properties.reported));
    await this.applyDesired(session, this.heldVersion ?? 0);
  }

  /**
   * The $edgeHub twin's desired properties, through a short connection as the device's $edgeHub. Only
   * with the built-in hub: a stock edgeHub holds that identity and would be knocked off IoT Hub.
   */
  private async readEdgeHubDesired(session: Session): Promise<JsonObject> {
    const key = await this.moduleKey(session.api!, '$edgeHub');
    const client = await this.openClient(session.credentials, '$edgeHub', key, session.caCertPem);
    try {
      const twin = await withDeadline(client.getTwin(), this.t.operationMs, 'reading the $edgeHub twin');
      return jsonClone(twin.properties.desired);
    } finally {
      client.on('error', () => undefined);
      await withDeadline(client.close(), 5_000, 'closing the $edgeHub connection').catch(() => undefined);
    }
  }

  /** Writes the held desired state (version `version`) into the resource, or reports why it cannot. */
  private async applyDesired(session: Session, version: number): Promise<void> {
    if (version !== this.heldVersion || !this.held) return; // a later version is queued behind this one
    const resource = this.o.resource();
    if (!resource?.metadata?.uid) return;
    const agentDesired = this.held;
    // The $edgeHub twin is edgeHub's own: it reads its routes there. Connecting as $edgeHub to read them
    // would knock edgeHub off IoT Hub (one connection per identity), so spec.hub is left out here, unless
    // the built-in hub runs as $edgeHub: it takes its routes from spec.hub. It holds that identity only to report
    // its connection table, dials back only when it has a change, and not within seconds of losing the link to this read.
    const hubDesired = this.o.edgeHub === 'builtin' && session.api ? await this.readEdgeHubDesired(session) : undefined;
    const outcome = specFromDesired(agentDesired, hubDesired, { namespace: this.namespace, name: this.name });
    if (!outcome.ok) {
      await this.reject(version, outcome.status, `the desired state of $version ${version} is invalid`);
      return;
    }
    const path = objectPath(edgeDeploymentResource, this.namespace, this.name);
    const body = {
      apiVersion: edgeDeploymentApiVersion,
      kind: edgeDeploymentKind,
      metadata: { name: this.name, namespace: this.namespace, annotations: { [desiredVersionAnnotation]: String(version) } },
      spec: outcome.value.spec,
    };
    const key = contentHash({ version, spec: outcome.value.spec, secrets: outcome.value.secrets });
    // Nobody changed the spec since our apply (same generation), and the twin says the same: nothing to write.
    const unchanged = this.applied?.key === key && this.applied.generation === resource.metadata.generation && this.rejected === undefined;
    if (!unchanged) {
      // The API server's schema is the last judge: a dry run first, so a refused desired state leaves
      // neither the spec nor the registry Secret changed.
      try {
        await applyObject(this.o.client, path, body, { dryRun: 'All' });
      } catch (error) {
        if (error instanceof KubeApiError && (error.status === 422 || error.status === 400)) {
          await this.reject(version, { code: 400, description: `the EdgeDeployment schema refuses the desired state: ${error.body?.message ?? error.message}`.slice(0, 3500) }, 'the API server refused the desired state');
          return;
        }
        throw error;
      }
      for (const secret of outcome.value.secrets) {
        // Labelled like every object the operator writes: the admission policy refuses the operator an unlabelled one.
        const labels = commonLabels({ ownerName: resource.metadata.name!, deviceId: resource.spec?.deviceId ?? this.namespace }, 'registry-credential');
        await applyObject(this.o.client, `/api/v1/namespaces/${this.namespace}/secrets/${encodeURIComponent(secret.metadata!.name!)}`, {
          ...secret,
          metadata: { ...secret.metadata, labels: { ...secret.metadata?.labels, ...labels }, ownerReferences: [ownerReference(resource)] },
        });
      }
      const written = await applyObject<EdgeDeployment>(this.o.client, path, body);
      this.applied = { key, generation: written?.metadata?.generation };
      this.rejected = undefined;
      this.hubStatus = { ...this.hubStatus, lastSyncTime: new Date().toISOString() };
      this.setCondition({ type: desiredAcceptedCondition, status: 'True', reason: 'Applied', message: `desired $version ${version} applied to the spec` });
      await this.writeStatus();
      this.o.metrics?.twinSync('success', this.namespace);
      this.log.info({ version }, 'desired state applied');
    }
    if (session.api) {
      const applied = this.o.resource() ?? resource;
      const withSpec = { ...applied, spec: { ...applied.spec, ...outcome.value.spec } } as EdgeDeployment;
      const rootKey = await readOrCreateRootKey(this.o.client, applied, this.log);
      // The root key is hashed in: a re-made root key re-keys the identities.
      const identitiesKey = contentHash([session.credentials.hostName, session.credentials.deviceId, rootKey, Object.keys(withSpec.spec?.agent?.modules ?? {}).sort()]);
      if (identitiesKey !== this.identitiesKey) {
        // Before any identity exists: deleting the resource must then remove them (finalizer.ts).
        await addIdentitiesFinalizer(this.o.client, applied);
        const plan = await syncModuleIdentities({
          api: session.api, client: this.o.client, resource: withSpec, logger: this.log,
          hostName: session.credentials.hostName, deviceId: session.credentials.deviceId, rootKey,
        });
        this.identitiesKey = identitiesKey;
        if (plan.create.length || plan.remove.length) this.log.info({ created: plan.create, removed: plan.remove }, 'module identities updated');
      }
    }
    this.scheduleReport();
  }

  private async reject(version: number, status: LastDesiredStatus, summary: string): Promise<void> {
    this.rejected = { version, status };
    this.o.metrics?.twinSync('error', this.namespace);
    this.log.warn({ version, code: status.code }, `${summary}; the last good desired state keeps running`);
    this.hubStatus = { ...this.hubStatus, lastSyncTime: new Date().toISOString() };
    this.setCondition({ type: desiredAcceptedCondition, status: 'False', reason: 'InvalidDesiredState', message: `$version ${version}: ${status.description}`.slice(0, 1000) });
    await this.writeStatus();
    this.scheduleReport();
  }

  private scheduleReport(): void {
    if (this.reportTimer) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      const session = this.session;
      if (session) this.enqueue(() => this.report(session));
    }, this.t.reportDebounceMs);
    this.reportTimer.unref();
  }

  private async report(session: Session): Promise<void> {
    const resource = this.o.resource();
    if (!resource) return;
    const document = buildReported({
      spec: resource.spec, status: resource.status, platform: await this.o.platform(), operator: this.o.operator,
      startedAt: this.startedAt, rejected: this.rejected,
    });
    const patch = diffReported(this.lastReported, document);
    if (!patch) return;
    await withDeadline(reportedUpdate(session.twin, patch), this.t.operationMs, 'updating reported properties');
    this.lastReported = document;
    this.hubStatus = { ...this.hubStatus, lastReportTime: new Date().toISOString() };
    await this.writeStatus();
  }

  private registerMethods(session: Session): void {
    const { client } = session;
    client.onMethod('ping', (_request, response) => {
      void response?.send(200, {}).catch(() => undefined);
    });
    client.onMethod('RestartModule', (request, response) => {
      void this.restartModule(request?.payload).then(
        (answer) => response?.send(answer.status, answer.payload).catch(() => undefined),
        (error: unknown) => response?.send(500, { message: scrubSecrets((error as Error).message ?? String(error)) }).catch(() => undefined),
      );
    });
    answerUnknownMethods(client, ['ping', 'RestartModule'], this.log);
  }

  /** RestartModule {schemaVersion, id}: deletes the module's pods so their controller (or the reconciler) recreates them. */
  async restartModule(payload: unknown): Promise<{ status: number; payload: JsonObject }> {
    const id = isJsonObject(payload) && typeof payload.id === 'string' ? payload.id : undefined;
    if (!id) return { status: 400, payload: { message: 'RestartModule needs a payload {"schemaVersion":"1.0","id":"<module id>"}' } };
    const resource = this.o.resource();
    const known = id === '$edgeHub' || id === 'edgeHub' ? '$edgeHub' : (resource?.spec?.agent?.modules?.[id] ? id : undefined);
    if (id === '$edgeAgent' || id === 'edgeAgent') return { status: 400, payload: { message: 'edgeAgent is the operator itself and cannot be restarted this way' } };
    if (!known) return { status: 404, payload: { message: `module ${id} is not in the deployment` } };
    const statusKey = known === '$edgeHub' ? 'edgeHub' : known;
    const name = resource?.status?.modules?.[statusKey]?.name ?? moduleName(statusKey);
    const selector = `${labelKeys.edgeDeployment}=${sanitizeLabelValue(this.name)},${labelKeys.module}=${name}`;
    const { items } = await this.o.client.list<V1Pod>(`/api/v1/namespaces/${this.namespace}/pods`, { labelSelector: selector, timeoutMs: this.t.operationMs });
    for (const pod of items) {
      await this.o.client.request('DELETE', `/api/v1/namespaces/${this.namespace}/pods/${encodeURIComponent(pod.metadata!.name!)}`, {}, {
        body: { preconditions: { uid: pod.metadata?.uid } },
      }).catch((error: unknown) => {
        if (!(error instanceof KubeApiError && (error.status === 404 || error.status === 409))) throw error;
      });
    }
    this.log.info({ module: id, pods: items.length }, 'RestartModule: pods deleted');
    return { status: 200, payload: {} };
  }

  private setCondition(condition: ConditionInput): void {
    this.conditions = [...this.conditions.filter((c) => c.type !== condition.type), condition];
  }

  private async setConnection(connected: boolean, reason: string, message: string): Promise<void> {
    const hostName = this.session?.credentials.hostName ?? this.hubStatus.hostName;
    this.hubStatus = { ...this.hubStatus, connected, ...(hostName ? { hostName } : {}), message: scrubSecrets(message).slice(0, 1000) };
    this.setCondition({ type: conditionTypes.iotHubConnected, status: connected ? 'True' : 'False', reason, message: scrubSecrets(message).slice(0, 1000) });
    await this.writeStatus();
  }

  private lastWritten: string | undefined;

  /** Applies status.iotHub and twin sync's conditions; SSA merges them with the reconciler's part. */
  private async writeStatus(force = false): Promise<void> {
    const resource = this.o.resource();
    if (!resource) return;
    const conditions: EdgeDeploymentCondition[] = mergeConditions(resource.status?.conditions, this.conditions, new Date().toISOString());
    const status = { ...(Object.keys(this.hubStatus).length ? { iotHub: this.hubStatus } : {}), ...(conditions.length ? { conditions } : {}) };
    const text = JSON.stringify(status);
    if (!force && text === this.lastWritten) return;
    await this.o.client.request('PATCH', `${objectPath(edgeDeploymentResource, this.namespace, this.name)}/status`, { fieldManager: twinStatusFieldManager, force: 'true' }, {
      body: { apiVersion: edgeDeploymentApiVersion, kind: edgeDeploymentKind, metadata: { name: this.name, namespace: this.namespace }, status },
      contentType: 'application/apply-patch+yaml',
    }).catch((error: unknown) => {
      if (error instanceof KubeApiError && error.status === 404) return; // the resource is gone
      throw error;
    });
    this.lastWritten = text;
  }
}

type PrivateTransport = {
  emit: (event: string | symbol, ...args: unknown[]) => boolean;
  on: (event: string, listener: (...args: unknown[]) => void) => unknown;
  sendMethodResponse?: (response: unknown, done: (err?: Error) => void) => void;
  listenerCount: (event: string) => number;
};

/** azure-iot-device's transport (private); undefined if a future SDK hides it. */
function transportOf(client: ModuleClient): PrivateTransport | undefined {
  const transport = (client as unknown as { _transport?: PrivateTransport })._transport;
  return transport && typeof transport.on === 'function' && typeof transport.emit === 'function' ? transport : undefined;
}

interface MethodMessage {
  methods: { methodName: string };
  requestId: string;
}

/**
 * The SDK only dispatches methods that have a handler; any other method would time out at the caller.
 * IoT Edge answers unknown methods with an error, so this hooks the MQTT transport's method events
 * (a private part of azure-iot-device, checked before use) and answers 501 with a message.
 */
function answerUnknownMethods(client: ModuleClient, known: readonly string[], log: Logger): void {
  const transport = transportOf(client);
  if (!transport || typeof transport.sendMethodResponse !== 'function') {
    log.debug({}, 'unknown direct methods cannot be answered with this SDK version');
    return;
  }
  const emit = transport.emit.bind(transport);
  const send = transport.sendMethodResponse.bind(transport);
  transport.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    if (typeof event === 'string' && event.startsWith('method_') && transport.listenerCount(event) === 0) {
      const message = args[0] as MethodMessage | undefined;
      const methodName = event.slice('method_'.length);
      if (message?.requestId && !known.includes(methodName)) {
        const payload = { message: `method ${methodName} is not supported by iotedge-operator's $edgeAgent; supported: ${known.join(', ')}` };
        send({ requestId: message.requestId, status: 501, payload }, () => undefined);
        return true;
      }
    }
    return emit(event, ...args);
  };
}
