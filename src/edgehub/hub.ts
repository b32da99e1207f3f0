// The built-in edge hub: modules connect over MQTT (IoT Hub's dialect), every message a module sends
// is routed and stored once per endpoint before its PUBACK, and one deliverer per endpoint drains the
// store to module inputs or to IoT Hub. Twins are served from IoT Hub when it is reachable and from
// the last known copy when not; IoT Hub's direct methods and desired changes reach the modules.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Server } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { desiredPatchTopic, DeliveryAbandoned, IotHubBroker, moduleInputTopic, TwinRequestError } from '../iothub-mqtt/index.ts';
import type { Identity, MethodResult, TelemetryMessage, TwinRequest, TwinResponse } from '../iothub-mqtt/index.ts';
import { compileRoutesFromJson, endpointId, parseEndpointId } from '../routing/index.ts';
import type { RouteMatch, RoutedMessage, Router } from '../routing/index.ts';
import type { Logger } from '../runtime/logger.ts';
import { acceptedHostNames, moduleKeys } from './config.ts';
import { clientIdOf, ConnectionTable } from './connections.ts';
import type { HubStatusDocument } from './connections.ts';
import type { HubConfig } from './config.ts';
import { Deliverer } from './delivery.ts';
import type { DeliveryTarget } from './delivery.ts';
import { createHubListener, unsupportedProtocolMessage } from './listener.ts';
import { decodeStored, encodeStored, routedFromTelemetry, senderModule, storedForInput, twinChangeNotification } from './messages.ts';
import type { StoredForInput } from './messages.ts';
import type { HubMetrics } from './metrics.ts';
import { StoreFullError } from './queues.ts';
import type { EnqueueItem, HubQueues, StoredEntry } from './queues.ts';
import { nextBackoff } from './reported.ts';
import type { EdgeHubReporter } from './reported.ts';
import { checkReportedPatch, TwinCache } from './twins.ts';
import type { JsonObject } from './twins.ts';
import type { UpstreamLink } from './upstream.ts';
import type { UpstreamModule } from './upstream-module.ts';

export interface EdgeHubOptions {
  config: HubConfig;
  queues: HubQueues;
  metrics: HubMetrics;
  logger: Logger;
  /** Deliveries in flight per endpoint. */
  window?: number;
  /** How often expired messages are dropped. */
  expiryIntervalMs?: number;
  /** How often the routes file is checked for changes. */
  routesPollMs?: number;
  /** IoT Hub's device SDK (loadUpstreamModule()); required when config.upstream is set. */
  upstream?: UpstreamModule;
}

const upstreamEndpoint = '$upstream';
const maxBackoffMs = 30_000;

/** Reads an entry in flight once: its send and its count both need what the stored bytes say. */
function readOnce<T>(cache: WeakMap<StoredEntry, T>, entry: StoredEntry, read: (bytes: Uint8Array) => T): T {
  let value = cache.get(entry);
  if (value === undefined) {
    value = read(entry.payload);
    cache.set(entry, value);
  }
  return value;
}

export class EdgeHub {
  readonly config: HubConfig;
  readonly metrics: HubMetrics;
  private readonly queues: HubQueues;
  private readonly logger: Logger;
  private readonly window: number;
  private readonly broker: IotHubBroker;
  private readonly twins: TwinCache;
  private readonly connections = new ConnectionTable();
  /** $edgeHub's reported properties (the connection table) in IoT Hub mode. */
  private readonly reporter: EdgeHubReporter | undefined;
  private readonly upstreamModule: UpstreamModule | undefined;
  private upstreamOnline = false;
  private readonly deliverers = new Map<string, Deliverer>();
  private readonly links = new Map<string, UpstreamLink>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly listener: { server: Server; sockets: Set<TLSSocket> };
  private readonly expiryIntervalMs: number;
  private readonly routesPollMs: number;
  private router: Router | undefined;
  private routesText: string | undefined;
  private storeFull = false;
  private upstreamBackoffMs = 0;
  private upstreamRetry: NodeJS.Timeout | undefined;
  private boundPort = 0;
  private stopping = false;
  /** Each entry in flight decoded once, for sending and then for counting. */
  private readonly decoded = new WeakMap<StoredEntry, RoutedMessage>();
  private readonly inputViews = new WeakMap<StoredEntry, StoredForInput>();

  constructor(options: EdgeHubOptions) {
    this.config = options.config;
    this.queues = options.queues;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.window = options.window ?? 1000;
    this.expiryIntervalMs = options.expiryIntervalMs ?? 5_000;
    this.routesPollMs = options.routesPollMs ?? 1_000;
    this.twins = new TwinCache(this.config.storeDir);
    if (this.config.upstream && !options.upstream) throw new Error('a hub with an IoT Hub needs the upstream module (loadUpstreamModule())');
    this.upstreamModule = options.upstream;
    this.reporter = options.upstream?.createEdgeHubReporter(this.config, this.connections, this.logger);
    this.broker = new IotHubBroker({
      name: 'edge hub',
      hostNames: () => acceptedHostNames(this.config),
      keysFor: (identity, keyName) => moduleKeys(this.config, identity, keyName),
      onTelemetry: (identity, message) => this.receive(identity, message),
      onTwinRequest: (identity, request) => this.answerTwin(identity, request),
      log: (message, fields) => this.logger.debug(fields ?? {}, message),
    });
    this.broker.on('connected', (c: Identity) => this.onModuleConnected(c));
    this.broker.on('disconnected', (c: Identity) => this.onModuleDisconnected(c));
    this.broker.on('subscribed', (c: Identity) => this.kickModule(c.moduleId));
    this.broker.on('connectRefused', (e: { identity?: Identity; reason: string }) => {
      this.metrics.refusedConnections.inc({ protocol: 'mqtt', reason: 'unauthorized' });
      this.logger.warn({ module: e.identity?.moduleId, reason: e.reason }, 'module connection refused');
    });
    this.listener = createHubListener({
      cert: this.config.serverCertChain,
      key: this.config.serverKey,
      onMqtt: (socket) => this.broker.handle(socket),
      onRefused: (protocol, remote) => {
        this.metrics.refusedConnections.inc({ protocol, reason: 'unsupported_protocol' });
        this.logger.warn({ protocol, remote }, `refused a client speaking ${protocol}: ${unsupportedProtocolMessage}`);
      },
      onTlsError: (error) => this.logger.info({ error: error.message }, 'TLS handshake failed (does the module trust the device CA?)'),
    });
    this.metrics.upstreamConnected.set(this.config.upstream ? 0 : -1);
  }

  /** The connection table and the upstream state, as GET /status serves them. */
  statusDocument(): HubStatusDocument {
    const stats = this.queues.stats();
    return {
      schemaVersion: '1.0',
      clients: this.connections.snapshot(),
      upstream: {
        connected: this.config.upstream !== undefined && this.upstreamOnline,
        // With no IoT Hub (kubectl mode) nothing can drain $upstream: its messages only wait for their time to live.
        expiring: this.config.upstream === undefined,
        queued: stats.lengths.get(upstreamEndpoint) ?? 0,
        expired: this.queues.expiredSinceStart(upstreamEndpoint),
      },
    };
  }

  private setUpstreamOnline(online: boolean): void {
    this.upstreamOnline = online;
    this.metrics.upstreamConnected.set(online ? 1 : 0);
  }

  get port(): number {
    return this.boundPort;
  }

  /** Whether the routes file was read and compiled at least once. */
  get routesLoaded(): boolean {
    return this.router !== undefined;
  }

  async start(): Promise<void> {
    this.loadRoutes();
    await this.broker.start();
    await new Promise<void>((resolve, reject) => {
      this.listener.server.once('error', reject);
      this.listener.server.listen({ port: this.config.port, host: '0.0.0.0' }, () => {
        this.listener.server.off('error', reject);
        resolve();
      });
    });
    const address = this.listener.server.address();
    this.boundPort = typeof address === 'object' && address !== null ? address.port : this.config.port;
    for (const endpoint of this.queues.endpoints()) this.deliverer(endpoint)?.kick();
    watchFile(this.config.routesFile, { interval: this.routesPollMs, persistent: false }, () => this.loadRoutes());
    this.every(this.expiryIntervalMs, () => this.expire());
    this.every(1_000, () => this.updateGauges());
    this.updateGauges();
    this.reporter?.start();
    if (!this.config.upstream) {
      this.logger.info('no IoT Hub (kubectl mode): $upstream messages are kept until their time to live passes, then dropped and counted');
    }
    this.logger.info({ port: this.boundPort, deviceId: this.config.deviceId, upstream: this.config.upstream?.hostName ?? null }, 'edge hub listening (MQTT over TLS)');
  }

  private every(ms: number, run: () => void): void {
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.push(timer);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    unwatchFile(this.config.routesFile);
    for (const timer of this.timers) clearInterval(timer);
    if (this.upstreamRetry) clearTimeout(this.upstreamRetry);
    for (const d of this.deliverers.values()) d.stop();
    await Promise.all([...this.links.values()].map((l) => l.close()));
    await this.reporter?.stop();
    await new Promise<void>((resolve) => {
      this.listener.server.close(() => resolve());
      for (const socket of this.listener.sockets) socket.destroy();
    });
    await this.broker.stop();
  }

  // ---- routes

  private loadRoutes(): void {
    let text: string;
    try {
      text = readFileSync(this.config.routesFile, 'utf8');
    } catch (error) {
      this.metrics.routeReloads.inc({ result: 'rejected' });
      this.logger.error({ file: this.config.routesFile, error: (error as Error).message }, 'cannot read the routes file; keeping the routes in use');
      return;
    }
    if (text === this.routesText) return;
    let desired: unknown;
    try {
      desired = JSON.parse(text);
    } catch (error) {
      this.metrics.routeReloads.inc({ result: 'rejected' });
      this.logger.error({ file: this.config.routesFile, error: (error as Error).message }, 'the routes file is not JSON; keeping the routes in use');
      return;
    }
    const { router, errors } = compileRoutesFromJson(desired);
    if (errors.length > 0) {
      // edgeHub refuses a configuration with any bad route; so does this hub, keeping the previous one.
      this.metrics.routeReloads.inc({ result: 'rejected' });
      this.logger.error({ errors }, 'the routes do not compile; keeping the routes in use');
      this.reporter?.routesRefused(errors);
      return;
    }
    const first = this.router === undefined;
    this.router = router;
    this.routesText = text;
    this.metrics.routeReloads.inc({ result: 'applied' });
    this.reporter?.routesApplied();
    for (const endpoint of router.endpoints.keys()) this.deliverer(endpoint);
    this.logger.info({ routes: router.routeNames }, first ? 'routes loaded' : 'routes reloaded');
  }

  // ---- ingest

  private receive(identity: Identity, message: TelemetryMessage): Promise<void> | void {
    const moduleId = identity.moduleId as string;
    this.metrics.receivedFrom(moduleId, message.outputName ?? '');
    return this.route(routedFromTelemetry(message, moduleId));
  }

  /** Stores one copy per matching endpoint; resolves once durable. */
  private route(routed: RoutedMessage): Promise<void> | void {
    const router = this.router;
    const matches: RouteMatch[] = router ? router.route(routed) : [];
    if (matches.length === 0) {
      this.metrics.dropped.inc({ endpoint: '', reason: 'no_route' });
      return;
    }
    const payload = encodeStored(routed);
    const items = matches.map((m) => ({ endpoint: endpointId(m.endpoint), priority: m.priority, ttlSeconds: m.timeToLiveSecs, payload }));
    return this.write(items).then(() => {
      for (const item of items) this.deliverers.get(item.endpoint)?.kick();
    });
  }

  /** Stores the items; the store group-commits every write of one event-loop turn and resolves once durable. */
  private write(items: EnqueueItem[]): Promise<void> {
    return this.queues.enqueue(items).then(
      () => {
        if (this.storeFull) {
          this.storeFull = false;
          this.metrics.storeFull.set(0);
          this.logger.info('the store takes messages again');
        }
      },
      (error: unknown) => {
        const full = error instanceof StoreFullError;
        this.metrics.storeRefusals.inc({ reason: full ? 'disk_budget_full' : 'store_error' });
        if (full && !this.storeFull) {
          this.storeFull = true;
          this.metrics.storeFull.set(1);
          this.logger.error({ code: 'IEO_STORE_FULL', error: (error as Error).message }, 'the store\'s disk budget is full: refusing messages (no PUBACK; modules send again) until deliveries or expiry free space');
        } else if (!full) {
          this.logger.error({ code: 'IEO_STORE_WRITE', error: (error as Error).message }, 'the store could not take a message: refusing it (no PUBACK)');
        }
        throw error instanceof Error ? error : new Error(String(error));
      },
    );
  }

  private expire(): void {
    for (const { endpoint, count } of this.queues.expire(Date.now())) {
      this.metrics.dropped.inc({ endpoint, reason: 'ttl' }, count);
      this.logger.info({ endpoint, count }, 'messages expired (time to live passed) and were dropped');
    }
  }

  private updateGauges(): void {
    const stats = this.queues.stats();
    this.metrics.queueLength.reset();
    for (const endpoint of new Set([...stats.lengths.keys(), ...this.deliverers.keys()])) {
      this.metrics.queueLength.set({ endpoint, priority: '' }, stats.lengths.get(endpoint) ?? 0);
    }
    this.metrics.storeBytes.set(stats.bytes);
  }

  // ---- delivery

  /** The deliverer of an endpoint, created on first use; undefined for $upstream with no IoT Hub. */
  private deliverer(endpoint: string): Deliverer | undefined {
    const existing = this.deliverers.get(endpoint);
    if (existing) return existing;
    const target = this.targetFor(endpoint);
    if (!target) return undefined;
    const d = new Deliverer(endpoint, this.queues, target, this.window);
    this.deliverers.set(endpoint, d);
    return d;
  }

  private targetFor(endpoint: string): DeliveryTarget | undefined {
    const parsed = parseEndpointId(endpoint);
    if (!parsed) {
      this.logger.warn({ endpoint }, 'the store holds an endpoint this hub does not know; its messages stay until they expire');
      return undefined;
    }
    if (parsed.kind === 'upstream') return this.config.upstream ? this.upstreamTarget() : undefined;
    return this.moduleInputTarget(parsed.moduleId, parsed.input);
  }

  private moduleInputTarget(moduleId: string, input: string): DeliveryTarget {
    const identity = { deviceId: this.config.deviceId, moduleId };
    const probe = `devices/${identity.deviceId}/modules/${moduleId}/inputs/${input}/`;
    return {
      ready: () => this.broker.isSubscribed(identity, probe),
      send: (entry) => {
        const stored = this.forInput(entry);
        return this.broker.deliver(identity, moduleInputTopic(identity.deviceId, moduleId, input, stored.bag), stored.body);
      },
      failed: (_entry, error) => {
        if (!(error instanceof DeliveryAbandoned)) this.logger.warn({ module: moduleId, input, error: error.message }, 'delivery to a module input failed');
        this.metrics.redeliveries.inc({ endpoint: `/modules/${moduleId}/inputs/${input}` });
      },
      delivered: (entry) => this.countDelivered(entry, this.forInput(entry).sender ?? '', moduleId, input),
    };
  }

  private decode(entry: StoredEntry): RoutedMessage {
    return readOnce(this.decoded, entry, decodeStored);
  }

  private countDelivered(entry: StoredEntry, sender: string, to: string, input: string): void {
    this.metrics.delivered(sender, to, input, Math.max(0, Date.now() - entry.enqueuedAt) / 1000);
  }

  /** What a module-input delivery needs of an entry (for sending, then counting). */
  private forInput(entry: StoredEntry): StoredForInput {
    return readOnce(this.inputViews, entry, storedForInput);
  }

  private kickModule(moduleId: string | undefined): void {
    if (moduleId === undefined) return;
    for (const [endpoint, d] of this.deliverers) if (endpoint.startsWith(`/modules/${moduleId}/inputs/`)) d.kick();
  }

  private onModuleConnected(identity: Identity): void {
    this.metrics.connectedClients.set(this.broker.connectedIdentities().length);
    if (identity.moduleId === undefined) return;
    this.connections.connected(clientIdOf(identity.deviceId, identity.moduleId), new Date());
    this.reporter?.clientChanged(clientIdOf(identity.deviceId, identity.moduleId));
    this.metrics.clientConnects.inc({ id: identity.moduleId });
    this.kickModule(identity.moduleId);
    // The module's own link carries its methods and desired changes; open it while the module is here.
    const link = this.link(identity.moduleId);
    link?.open().catch((error: unknown) => this.logger.info({ module: identity.moduleId, error: (error as Error).message }, 'IoT Hub not reachable for the module; twins are served from the last known copy'));
  }

  private onModuleDisconnected(identity: Identity): void {
    this.metrics.connectedClients.set(this.broker.connectedIdentities().length);
    if (identity.moduleId === undefined) return;
    // A module that reconnects before its old connection is closed (a takeover) stays Connected.
    const stillConnected = this.broker.connectionOf(identity) !== undefined;
    this.connections.disconnected(clientIdOf(identity.deviceId, identity.moduleId), new Date(), stillConnected);
    this.reporter?.clientChanged(clientIdOf(identity.deviceId, identity.moduleId));
  }

  // ---- upstream

  private upstreamTarget(): DeliveryTarget {
    return {
      ready: () => this.upstreamRetry === undefined,
      send: (entry) => {
        const message = this.decode(entry);
        const moduleId = senderModule(message);
        const link = moduleId === undefined ? undefined : this.link(moduleId);
        if (!link) return Promise.reject(new Error('an upstream message without a sending module'));
        return link.send(message);
      },
      failed: (_entry, error) => this.upstreamFailed(error),
      delivered: (entry) => {
        this.upstreamBackoffMs = 0;
        this.setUpstreamOnline(true);
        this.countDelivered(entry, senderModule(this.decode(entry)) ?? '', upstreamEndpoint, '');
      },
    };
  }

  private upstreamFailed(error: Error): void {
    this.metrics.redeliveries.inc({ endpoint: upstreamEndpoint });
    this.setUpstreamOnline(false);
    if (this.upstreamRetry || this.stopping) return;
    this.upstreamBackoffMs = nextBackoff(this.upstreamBackoffMs, 500, maxBackoffMs);
    this.logger.warn({ error: error.message, retryInMs: this.upstreamBackoffMs }, 'IoT Hub unreachable: upstream messages wait in the store');
    this.upstreamRetry = setTimeout(() => {
      this.upstreamRetry = undefined;
      this.deliverers.get(upstreamEndpoint)?.kick();
    }, this.upstreamBackoffMs);
    this.upstreamRetry.unref();
  }

  private link(moduleId: string): UpstreamLink | undefined {
    const upstream = this.config.upstream;
    const sdk = this.upstreamModule;
    if (!upstream || !sdk) return undefined;
    let link = this.links.get(moduleId);
    if (!link) {
      link = new sdk.UpstreamLink(moduleId, sdk.moduleConnectionString(upstream, this.config.deviceId, moduleId, this.config.rootKey), {
        desired: (m, patch) => this.forwardDesired(m, patch),
        method: (m, name, payload) => this.forwardMethod(m, name, payload),
        state: (m, connected, error) => this.onLinkState(m, connected, error),
        log: (message, fields) => this.logger.info(fields ?? {}, message),
      });
      this.links.set(moduleId, link);
    }
    return link;
  }

  private onLinkState(moduleId: string, connected: boolean, error?: Error): void {
    this.logger.info({ module: moduleId, error: error?.message }, connected ? 'module linked to IoT Hub' : 'module link to IoT Hub lost');
    if (!connected) return;
    this.setUpstreamOnline(true);
    this.reporter?.upstreamBack();
    void this.syncPendingReported(moduleId);
    if (this.upstreamRetry) {
      clearTimeout(this.upstreamRetry);
      this.upstreamRetry = undefined;
    }
    this.deliverers.get(upstreamEndpoint)?.kick();
  }

  private async syncPendingReported(moduleId: string): Promise<void> {
    const pending = this.twins.pending(moduleId);
    const link = this.links.get(moduleId);
    if (!pending || !link) return;
    try {
      await link.patchReported(pending);
      this.twins.clearPending(moduleId, pending);
    } catch (error) {
      this.logger.info({ module: moduleId, error: (error as Error).message }, 'offline reported properties not sent yet');
    }
  }

  private forwardDesired(moduleId: string, patch: JsonObject): void {
    if (!this.twins.applyDesired(moduleId, patch)) return;
    const version = this.twins.get(moduleId).desired.$version as number;
    this.broker.send({ deviceId: this.config.deviceId, moduleId }, desiredPatchTopic(version), JSON.stringify({ ...patch, $version: version }));
  }

  private async forwardMethod(moduleId: string, methodName: string, payload: unknown): Promise<MethodResult> {
    try {
      const result = await this.broker.invokeMethod({ deviceId: this.config.deviceId, moduleId }, methodName, payload, 30, 0);
      this.metrics.directMethods.inc({ result: 'answered' });
      return result;
    } catch (error) {
      this.metrics.directMethods.inc({ result: 'failed' });
      throw error;
    }
  }

  // ---- twins

  private async answerTwin(identity: Identity, request: TwinRequest): Promise<TwinResponse> {
    const moduleId = identity.moduleId as string;
    const link = this.link(moduleId);
    if (request.kind === 'get') {
      if (link) {
        try {
          const upstream = await link.readTwin();
          this.twins.replaceFromUpstream(moduleId, upstream.desired, upstream.reported);
          this.metrics.twinRequests.inc({ operation: 'get', served_from: 'upstream' });
          return { status: 200, body: this.twins.body(moduleId) };
        } catch (error) {
          this.logger.info({ module: moduleId, error: (error as Error).message }, 'IoT Hub unreachable: twin served from the last known copy');
        }
      }
      this.metrics.twinRequests.inc({ operation: 'get', served_from: 'local' });
      return { status: 200, body: this.twins.body(moduleId) };
    }
    const patch = request.patch;
    try {
      checkReportedPatch(patch);
    } catch (error) {
      throw new TwinRequestError(400, 400004, (error as Error).message);
    }
    let sent = false;
    if (link) {
      try {
        await link.patchReported(patch);
        sent = true;
      } catch (error) {
        this.logger.info({ module: moduleId, error: (error as Error).message }, 'IoT Hub unreachable: reported properties kept and sent on reconnect');
      }
    }
    const version = this.twins.applyReported(moduleId, patch, link !== undefined && !sent);
    this.metrics.twinRequests.inc({ operation: 'patch_reported', served_from: sent ? 'upstream' : 'local' });
    // edgeHub raises a twin change notification for every reported change; routes may send it on.
    void Promise.resolve(this.route(twinChangeNotification(this.config.deviceId, moduleId, patch, version))).catch((error: unknown) => {
      this.logger.warn({ module: moduleId, error: (error as Error).message }, 'a twin change notification could not be stored');
    });
    return { status: 204, body: '', version };
  }
}
