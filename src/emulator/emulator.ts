// The IoT Hub emulator: MQTT (devices and modules) and HTTPS (service REST) listeners on one
// loopback address, a shared identity registry, optional persistence, and an admin interface for
// tests. See docs/emulator.md.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { networkInterfaces } from 'node:os';
import type { Server as HttpsServer } from 'node:https';
import { createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { generateSymmetricKey } from '../runtime/sas.ts';
import { adminHandler } from './admin-http.ts';
import { AmqpServiceEndpoint, amqpWebSocketSubprotocol } from './amqp.ts';
import { CloudToDeviceQueues } from './c2d.ts';
import { Configurations } from './configurations.ts';
import type { ConfigurationsSnapshot } from './configurations.ts';
import { JobScheduler } from './jobs.ts';
import { compileCondition } from './query/index.ts';
import { HubError } from './errors.ts';
import { FaultRules } from './faults.ts';
import type { FaultWindow, IdentityFilter } from './faults.ts';
import { identityKey, MqttHub } from './mqtt.ts';
import { hubQuerySource } from './queries.ts';
import type { ConnectionInfo, Identity, MethodResult, TelemetryMessage } from './mqtt.ts';
import { IdentityRegistry, isSystemModule, sasRefusal } from './registry.ts';
import type { RegistrySnapshot, SymmetricKeys } from './registry.ts';
import { authorize, restHandler, twinJson } from './rest.ts';
import { checkCa, generateCa, issueServerChain } from './tls.ts';
import { serveEmulatorWebSockets } from './websocket.ts';
import type { PemPair } from './tls.ts';
import { applyServiceWrite, isJsonObject, replaceDesired } from './twin.ts';
import type { JsonObject, ServiceTwinWrite } from './twin.ts';

export type { ConnectionInfo, Identity, MethodResult, TelemetryMessage } from './mqtt.ts';
export type { PemPair } from './tls.ts';
export type { JsonObject } from './twin.ts';

export interface HubEmulatorOptions {
  /** Loopback address to bind. Default: the first of 127.0.0.2…127.0.0.254 where both ports are free. */
  host?: string;
  /** MQTT over TLS port. Default 8883 (the SDKs' default, so connection strings need no GatewayHostName). */
  mqttPort?: number;
  /** HTTPS port. Default 443: azure-iothub always dials 443. */
  httpsPort?: number;
  /** AMQP over TLS port, for azure-iothub's Client (cloud-to-device). Default 5671, which the SDK always dials. */
  amqpPort?: number;
  /** Short name of the hub; its DNS name (a certificate SAN) is `<hubName>.iotedge.local`. Default `emulated-hub`. */
  hubName?: string;
  /** JSON file for identities, twins and keys; restored on start, written on every change. */
  stateFile?: string;
  /** A CA to issue the server certificate with. Default: the state file's, else a new one. */
  ca?: PemPair;
  /** Token for /_admin/ over HTTP. Default: random. */
  adminToken?: string;
  /** After applyConfigurationContent, push the `diff` to the old desired (nulls for removals; default) or the `full` document. */
  desiredNotificationMode?: DesiredNotificationMode;
  /** Receives one line per notable event; never given secrets. */
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export type DesiredNotificationMode = 'diff' | 'full';

export interface DesiredNotificationRecord {
  deviceId: string;
  moduleId: string | undefined;
  version: number;
  patch: JsonObject;
  outcome: 'delivered' | 'delayed' | 'dropped' | 'not-subscribed';
  at: string;
}

export type RefusalMode = 'connack' | 'tcp-close';

/** One MQTT CONNECT the hub answered: who, and whether it was let in. */
export interface ConnectionLogEntry {
  deviceId: string | undefined;
  moduleId: string | undefined;
  outcome: 'connected' | 'refused';
  reason?: string;
  at: string;
}

/** One device-scope call edgeHub made (see device-scope.ts). */
export interface DeviceScopeCallRecord {
  deviceId: string;
  operation: string;
  at: string;
}

/** Test hooks. The same operations are served over HTTPS under /_admin/ (see docs/emulator.md). */
export interface HubAdmin {
  /** The twin as the REST API returns it. */
  twin(deviceId: string, moduleId?: string): JsonObject;
  /** Captured device-to-cloud messages, oldest first. */
  messages(filter?: IdentityFilter): TelemetryMessage[];
  clearMessages(): void;
  /** Resolves with the first captured message (already captured or future) that matches. */
  waitForMessage(predicate: (m: TelemetryMessage) => boolean, timeoutMs?: number): Promise<TelemetryMessage>;
  connections(): ConnectionInfo[];
  /** Every CONNECT answered since start (the last 1000), oldest first: who connected, or was refused and why. */
  connectionLog(filter?: IdentityFilter): ConnectionLogEntry[];
  /** Device-scope calls edgeHub made (the last 1000), oldest first. */
  deviceScopeCalls(): DeviceScopeCallRecord[];
  /** Resolves once the identity is connected and subscribed to a filter matching `topic` (e.g. a desired-patch topic). */
  waitForSubscription(identity: Identity, topic: string, timeoutMs?: number): Promise<void>;
  /** Closes matching MQTT connections (all without a filter); sessions are kept. Returns how many. */
  dropConnections(filter?: IdentityFilter): number;
  /** Drops (never sends) matching desired notifications; the twin still changes. */
  dropDesiredNotifications(window: FaultWindow, filter?: IdentityFilter): void;
  /** Sends matching desired notifications `delayMs` late. */
  delayDesiredNotifications(delayMs: number, window: FaultWindow, filter?: IdentityFilter): void;
  /** Refuses new connections: CONNACK 3 (server unavailable) or closing the TCP connection after TLS. */
  refuseConnections(mode: RefusalMode, window: FaultWindow): void;
  /** Clears every fault rule. */
  clearFaults(): void;
  desiredNotifications(): DesiredNotificationRecord[];
  setDesiredNotificationMode(mode: DesiredNotificationMode): void;
}

interface PersistedState {
  format: 1;
  policies: Record<string, SymmetricKeys>;
  ca?: PemPair;
  registry: RegistrySnapshot;
  configurations?: ConfigurationsSnapshot;
}

const servicePolicy = 'iothubowner';

function readState(file: string): PersistedState | undefined {
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`hub emulator state file ${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!isJsonObject(parsed) || parsed.format !== 1 || !isJsonObject(parsed.registry) || !isJsonObject(parsed.policies)) {
    throw new Error(`hub emulator state file ${file} is not in the emulator's format (format: 1, policies, registry)`);
  }
  return parsed as unknown as PersistedState;
}

/**
 * Where the emulator may listen: a loopback address, or one address of this machine's own interfaces (the
 * bridge the real worker's pods reach the host by). Never a wildcard: the emulator is not for other machines.
 */
function bindableHost(host: string): boolean {
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return true;
  return Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.family === 'IPv4' && a.address === host));
}

function listen(server: HttpsServer | TlsServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: HttpsServer | TlsServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    if ('closeAllConnections' in server) server.closeAllConnections();
  });
}

/**
 * IoT Hub keeps an idle HTTPS connection for minutes (Azure's load balancers drop idle flows after four).
 * Node's default of 5 s makes keep-alive clients such as azure-iothub's agent race the server's close and
 * see "socket hang up" on a request sent into a closing connection.
 */
export const httpsIdleTimeoutMs = 4 * 60_000;

function keepIdleConnections(server: HttpsServer): void {
  server.keepAliveTimeout = httpsIdleTimeoutMs;
  // Headers of a request on a reused connection get the same allowance (it must stay below requestTimeout).
  server.headersTimeout = httpsIdleTimeoutMs + 1000;
}

function boundPort(server: HttpsServer | TlsServer): number {
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

export class HubEmulator extends EventEmitter {
  readonly hubName: string;
  /** The DNS name in the server certificate (`<hubName>.iotedge.local`); it does not resolve. */
  readonly dnsName: string;
  readonly registry: IdentityRegistry;
  /** Automatic and layered deployments (/configurations). */
  readonly configurations: Configurations;
  readonly caCertPem: string;
  readonly adminToken: string;
  readonly admin: HubAdmin;
  host = '';
  mqttPort = 0;
  httpsPort = 0;
  amqpPort = 0;
  /** Cloud-to-device queues: what each device has waiting, and the feedback produced (see c2d.ts). */
  readonly c2d: CloudToDeviceQueues;
  /** Scheduled twin updates and device methods (/jobs/v2; see jobs.ts). */
  readonly jobs: JobScheduler;

  private readonly ca: PemPair;
  private readonly caPersisted: boolean;
  private readonly policies: Record<string, SymmetricKeys>;
  private readonly stateFile: string | undefined;
  private readonly logSink: HubEmulatorOptions['log'];
  private readonly mqtt: MqttHub;
  private readonly httpsServer: HttpsServer;
  private readonly mqttServer: TlsServer;
  private readonly amqp: AmqpServiceEndpoint;
  private readonly amqpServer: TlsServer;
  private readonly sockets = new Set<TLSSocket>();
  private readonly closeWebSockets: () => void;
  private readonly delayed = new Set<NodeJS.Timeout>();
  private readonly dropRules = new FaultRules<true>();
  private readonly delayRules = new FaultRules<number>();
  private readonly refuseConnackRules = new FaultRules<true>();
  private readonly refuseTcpRules = new FaultRules<true>();
  private readonly notificationLog: DesiredNotificationRecord[] = [];
  private readonly connectLog: ConnectionLogEntry[] = [];
  private readonly scopeCalls: DeviceScopeCallRecord[] = [];
  private notificationMode: DesiredNotificationMode;
  private saveTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** Use startHubEmulator(). */
  constructor(options: HubEmulatorOptions) {
    super();
    this.hubName = options.hubName ?? 'emulated-hub';
    if (!/^[a-z0-9][a-z0-9-]{1,48}$/i.test(this.hubName)) throw new Error(`hubName "${this.hubName}" must be 2–49 letters, digits or dashes`);
    this.dnsName = `${this.hubName.toLowerCase()}.iotedge.local`;
    this.stateFile = options.stateFile;
    this.logSink = options.log;
    this.notificationMode = options.desiredNotificationMode ?? 'diff';
    const state = this.stateFile ? readState(this.stateFile) : undefined;
    if (options.ca) checkCa(options.ca);
    this.ca = options.ca ?? state?.ca ?? generateCa();
    this.caPersisted = options.ca === undefined;
    this.caCertPem = this.ca.cert;
    this.policies = state?.policies ?? { [servicePolicy]: { primaryKey: generateSymmetricKey(), secondaryKey: generateSymmetricKey() } };
    this.registry = new IdentityRegistry(state?.registry);
    this.configurations = new Configurations({
      devices: () => this.registry.listDevices(),
      deviceTwin: (deviceId) => twinJson(this, deviceId, undefined),
      querySource: () => hubQuerySource(this),
      writeModulesDesired: (deviceId, desired) => this.applyConfigurationContent(deviceId, {
        modulesContent: Object.fromEntries(Object.entries(desired).map(([moduleId, d]) => [moduleId, { 'properties.desired': d }])),
      }),
      changed: () => this.scheduleSave(),
      log: (message, fields) => this.log(message, fields),
    }, state?.configurations);
    // A registry change (tags, a new device or module) may change what the deployments target.
    this.registry.onChange = () => {
      this.scheduleSave();
      this.configurations.schedule();
    };
    this.configurations.schedule();
    this.adminToken = options.adminToken ?? randomBytes(24).toString('base64url');

    this.mqtt = new MqttHub({
      registry: this.registry,
      hostNames: () => this.hostNames,
      policyKeys: (name) => this.policyKeys(name),
      refuseConnack: (identity) => (this.refuseConnackRules.take(identity ?? {}) ? 3 : undefined),
      log: (message, fields) => this.log(message, fields),
    });
    for (const event of ['connected', 'disconnected', 'subscribed', 'connectRefused', 'tokenExpired', 'telemetry', 'reportedPatch']) {
      this.mqtt.on(event, (...args: unknown[]) => this.emit(event, ...args));
    }
    this.mqtt.on('connected', (info: ConnectionInfo) => this.logConnect({ deviceId: info.deviceId, moduleId: info.moduleId, outcome: 'connected', at: new Date().toISOString() }));
    this.mqtt.on('connectRefused', (refused: { identity?: Identity; reason: string }) => this.logConnect({
      deviceId: refused.identity?.deviceId, moduleId: refused.identity?.moduleId, outcome: 'refused', reason: refused.reason, at: new Date().toISOString(),
    }));

    this.c2d = new CloudToDeviceQueues({
      deliver: (identity, topic, payload) => this.mqtt.deliver(identity, topic, payload),
      isSubscribed: (identity, topic) => this.mqtt.isSubscribed(identity, topic),
      generationId: (deviceId) => this.registry.device(deviceId).generationId,
      log: (message, fields) => this.log(message, fields),
    });
    for (const event of ['connected', 'subscribed']) {
      this.mqtt.on(event, (info: ConnectionInfo) => info.moduleId === undefined && this.c2d.pump(info.deviceId));
    }
    this.jobs = new JobScheduler({
      compileCondition,
      deviceTwins: () => this.registry.listDevices().map((d) => twinJson(this, d.deviceId, undefined)),
      updateTwin: (deviceId, patch, ifMatch) => this.updateTwin(deviceId, undefined, patch, ifMatch, 'merge'),
      invokeMethod: (deviceId, m) => this.invokeMethod({ deviceId, moduleId: undefined }, m.methodName, m.payload, m.responseTimeoutInSeconds, m.connectTimeoutInSeconds),
      log: (message, fields) => this.log(message, fields),
    });
    this.amqp = new AmqpServiceEndpoint({
      c2d: this.c2d,
      checkServiceToken: (token) => {
        if (authorize(this, token).kind !== 'service') throw new Error('a cloud-to-device sender needs a service policy token');
      },
      log: (message, fields) => this.log(message, fields),
    });
    this.amqpServer = createTlsServer({}, (socket) => this.amqp.handle(socket));
    this.httpsServer = createHttpsServer({}, restHandler(this, adminHandler(this)));
    keepIdleConnections(this.httpsServer);
    this.mqttServer = createTlsServer({}, (socket) => {
      if (this.refuseTcpRules.take({})) {
        this.log('connection closed (admin fault: refuse tcp-close)');
        socket.destroy();
        this.emit('connectionClosedByFault', { remotePort: socket.remotePort });
        return;
      }
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      this.mqtt.handle(socket);
    });
    this.closeWebSockets = serveEmulatorWebSockets(this.httpsServer, {
      mqtt: (stream) => this.mqtt.handle(stream),
      extra: { [amqpWebSocketSubprotocol]: (socket) => this.amqp.handleWebSocket(socket) },
      refuse: () => this.refuseTcpRules.take({}) !== undefined,
      log: (message, fields) => this.log(message, fields),
    });
    this.mqttServer.on('tlsClientError', (error) => this.log('TLS handshake failed (does the client trust the emulator CA?)', { error: error.message }));

    this.admin = this.buildAdmin();
  }

  private logConnect(entry: ConnectionLogEntry): void {
    this.connectLog.push(entry);
    if (this.connectLog.length > 1000) this.connectLog.shift();
  }

  /** Called by the device-scope API for each call it serves. */
  recordDeviceScopeCall(call: { deviceId: string; operation: string }): void {
    this.scopeCalls.push({ ...call, at: new Date().toISOString() });
    if (this.scopeCalls.length > 1000) this.scopeCalls.shift();
  }

  /** Names the hub answers to in MQTT usernames and SAS `sr`: its IP address and DNS name. */
  get hostNames(): string[] {
    return [this.host, this.dnsName];
  }

  /** `HostName=<ip>;SharedAccessKeyName=iothubowner;SharedAccessKey=…` */
  get serviceConnectionString(): string {
    const policy = this.policies[servicePolicy];
    if (!policy) throw new Error(`the ${servicePolicy} policy is missing from the state`);
    return `HostName=${this.host};SharedAccessKeyName=${servicePolicy};SharedAccessKey=${policy.primaryKey}`;
  }

  policyKeys(name: string): string[] {
    const p = this.policies[name];
    return p ? [p.primaryKey, p.secondaryKey] : [];
  }

  private gatewaySuffix(): string {
    // The device SDK dials GatewayHostName (with port) when set, else HostName on 8883.
    return this.mqttPort === 8883 ? '' : `;GatewayHostName=${this.host}:${this.mqttPort}`;
  }

  deviceConnectionString(deviceId: string): string {
    const d = this.registry.device(deviceId);
    const refusal = sasRefusal(d, `device ${deviceId}`);
    if (refusal) throw new Error(`no connection string: ${refusal}`);
    return `HostName=${this.host};DeviceId=${deviceId};SharedAccessKey=${d.keys.primaryKey}${this.gatewaySuffix()}`;
  }

  moduleConnectionString(deviceId: string, moduleId: string): string {
    const m = this.registry.module(deviceId, moduleId);
    const refusal = sasRefusal(m, `module ${deviceId}/${moduleId}`);
    if (refusal) throw new Error(`no connection string: ${refusal}`);
    return `HostName=${this.host};DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${m.keys.primaryKey}${this.gatewaySuffix()}`;
  }

  /** Registers a device (an IoT Edge device, with $edgeAgent and $edgeHub, unless iotEdge is false). Existing devices are kept. */
  createDevice(deviceId: string, options: { iotEdge?: boolean } = {}): void {
    if (this.registry.findDevice(deviceId)) return;
    this.registry.putDevice(deviceId, { capabilities: { iotEdge: options.iotEdge ?? true } }, undefined);
  }

  createEdgeDevice(deviceId: string): void {
    this.createDevice(deviceId, { iotEdge: true });
  }

  isConnected(identity: Identity): boolean {
    return this.mqtt.connectionOf(identity) !== undefined;
  }

  dropConnections(filter: IdentityFilter = {}): number {
    return this.mqtt.drop(filter);
  }

  log(message: string, fields?: Record<string, unknown>): void {
    this.logSink?.(message, fields);
  }

  invokeMethod(identity: Identity, methodName: string, payload: unknown, responseTimeoutSeconds: number, connectTimeoutSeconds: number): Promise<MethodResult> {
    return this.mqtt.invokeMethod(identity, methodName, payload, responseTimeoutSeconds, connectTimeoutSeconds);
  }

  /** Service-side twin write: `merge` (PATCH) or `replace` (PUT) of tags and desired. */
  updateTwin(deviceId: string, moduleId: string | undefined, body: unknown, ifMatch: string | undefined, mode: 'merge' | 'replace'): void {
    const device = this.registry.device(deviceId);
    const holder = this.registry.twinHolder(deviceId, moduleId);
    if (!isJsonObject(body)) throw new HubError('ArgumentInvalid', 'the twin body must be a JSON object');
    const properties = body.properties;
    if (properties !== undefined && properties !== null && !isJsonObject(properties)) throw new HubError('ArgumentInvalid', 'properties must be an object');
    const desired = isJsonObject(properties) ? properties.desired : undefined;
    if (desired !== undefined && desired !== null && !isJsonObject(desired)) throw new HubError('ArgumentInvalid', 'properties.desired must be an object');
    if (isJsonObject(properties) && properties.reported !== undefined) throw new HubError('ArgumentInvalid', 'reported properties are written by the device, not the service');
    const tags = body.tags;
    if (tags !== undefined && tags !== null && !isJsonObject(tags)) throw new HubError('ArgumentInvalid', 'tags must be an object');
    if (moduleId !== undefined && device.iotEdge && isSystemModule(moduleId) && desired !== undefined) {
      throw new HubError('SystemModuleModifyUnauthorizedAccess', 'Unauthorized to modify reserved module.');
    }
    this.registry.checkTwinEtag(holder, ifMatch);
    const write = { ...(tags === undefined ? {} : { tags }), ...(desired === undefined ? {} : { desired }) } as ServiceTwinWrite;
    const written = applyServiceWrite(holder.twin, write, mode, new Date().toISOString());
    const notify = written && (mode === 'replace' && this.notificationMode === 'full' ? written.full : written.diff);
    this.registry.twinChanged(holder);
    if (notify) this.notifyDesired({ deviceId, moduleId }, notify);
  }

  /** POST /devices/{id}/applyConfigurationContent: overwrite each listed module's desired properties. */
  applyConfigurationContent(deviceId: string, content: unknown): void {
    const device = this.registry.device(deviceId);
    if (!device.iotEdge) throw new HubError('DeviceNotEdgeDevice', `Device ${deviceId} is not an IoT Edge device.`);
    if (!isJsonObject(content) || !isJsonObject(content.modulesContent)) {
      throw new HubError('ArgumentInvalid', 'the configuration content needs a modulesContent object');
    }
    const modulesContent = content.modulesContent;
    // Validate everything before changing anything, so a bad module leaves all twins as they were.
    const plan: Array<[string, JsonObject]> = [];
    for (const [moduleId, moduleContent] of Object.entries(modulesContent)) {
      const desired = isJsonObject(moduleContent) ? moduleContent['properties.desired'] : undefined;
      if (!isJsonObject(desired)) throw new HubError('ArgumentInvalid', `modulesContent.${moduleId} needs a "properties.desired" object`);
      plan.push([moduleId, desired]);
    }
    const now = new Date().toISOString();
    const staged = plan.map(([moduleId, desired]) => {
      const existing = device.modules[moduleId];
      const module = existing ?? this.registry.putModule(deviceId, moduleId, { managedBy: 'IotEdge' }, undefined);
      const twin = structuredClone(module.twin);
      const replaced = replaceDesired(twin, desired, now);
      return { module, twin, replaced };
    });
    for (const { module, twin, replaced } of staged) {
      module.twin = twin;
      this.registry.twinChanged(module);
      this.notifyDesired({ deviceId, moduleId: module.moduleId }, this.notificationMode === 'full' ? replaced.full : replaced.diff);
    }
  }

  private notifyDesired(identity: Identity, patch: JsonObject): void {
    const version = Number(patch.$version);
    const topic = `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
    const record = (outcome: DesiredNotificationRecord['outcome']) => {
      const entry: DesiredNotificationRecord = { ...identity, version, patch, outcome, at: new Date().toISOString() };
      this.notificationLog.push(entry);
      if (this.notificationLog.length > 1000) this.notificationLog.shift();
      this.emit('desiredNotification', entry);
    };
    if (!this.mqtt.isSubscribed(identity, topic)) return record('not-subscribed');
    if (this.dropRules.take(identity)) {
      this.log('desired notification dropped (admin fault)', { identity: identityKey(identity), version });
      return record('dropped');
    }
    const delay = this.delayRules.take(identity);
    const body = JSON.stringify(patch);
    if (delay === undefined) {
      this.mqtt.send(identity, topic, body);
      return record('delivered');
    }
    record('delayed');
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      if (!this.stopped) this.mqtt.send(identity, topic, body);
    }, delay);
    timer.unref();
    this.delayed.add(timer);
  }

  private buildAdmin(): HubAdmin {
    const matches = (m: TelemetryMessage, f: IdentityFilter) =>
      (f.deviceId === undefined || f.deviceId === m.deviceId) && (f.moduleId === undefined || f.moduleId === m.moduleId);
    return {
      twin: (deviceId, moduleId) => twinJson(this, deviceId, moduleId),
      messages: (filter = {}) => this.mqtt.telemetry.filter((m) => matches(m, filter)),
      clearMessages: () => {
        this.mqtt.telemetry.length = 0;
      },
      waitForMessage: (predicate, timeoutMs = 30_000) =>
        new Promise((resolve, reject) => {
          const seen = this.mqtt.telemetry.find(predicate);
          if (seen) return resolve(seen);
          const onMessage = (m: TelemetryMessage) => {
            if (!predicate(m)) return;
            cleanup();
            resolve(m);
          };
          const timer = setTimeout(() => {
            cleanup();
            reject(new Error(`no matching device-to-cloud message within ${timeoutMs} ms`));
          }, timeoutMs);
          timer.unref();
          const cleanup = () => {
            clearTimeout(timer);
            this.off('telemetry', onMessage);
          };
          this.on('telemetry', onMessage);
        }),
      connections: () => this.mqtt.connectedIdentities(),
      connectionLog: (filter = {}) => this.connectLog.filter((e) => (filter.deviceId === undefined || e.deviceId === filter.deviceId)
        && (filter.moduleId === undefined || e.moduleId === filter.moduleId)),
      deviceScopeCalls: () => [...this.scopeCalls],
      waitForSubscription: (identity, topic, timeoutMs = 30_000) => this.mqtt.waitForSubscription(identity, topic, timeoutMs),
      dropConnections: (filter) => this.dropConnections(filter),
      dropDesiredNotifications: (window, filter) => this.dropRules.add(true, window, filter),
      delayDesiredNotifications: (delayMs, window, filter) => {
        if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new RangeError(`delayMs must be a non-negative number, not ${delayMs}`);
        this.delayRules.add(delayMs, window, filter);
      },
      refuseConnections: (mode, window) => {
        if (mode !== 'connack' && mode !== 'tcp-close') throw new RangeError(`refusal mode must be "connack" or "tcp-close", not ${String(mode)}`);
        (mode === 'connack' ? this.refuseConnackRules : this.refuseTcpRules).add(true, window);
      },
      clearFaults: () => {
        this.dropRules.clear();
        this.delayRules.clear();
        this.refuseConnackRules.clear();
        this.refuseTcpRules.clear();
      },
      desiredNotifications: () => [...this.notificationLog],
      setDesiredNotificationMode: (mode) => {
        if (mode !== 'diff' && mode !== 'full') throw new RangeError(`mode must be "diff" or "full", not ${String(mode)}`);
        this.notificationMode = mode;
      },
    };
  }

  private snapshot(): PersistedState {
    return {
      format: 1,
      policies: this.policies,
      ...(this.caPersisted ? { ca: this.ca } : {}),
      registry: this.registry.snapshot(),
      configurations: this.configurations.snapshot(),
    };
  }

  private scheduleSave(): void {
    if (!this.stateFile || this.saveTimer || this.stopped) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.saveNow();
    }, 20);
  }

  private saveNow(): void {
    if (!this.stateFile) return;
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    // The file holds keys: readable by the owner only.
    writeFileSync(tmp, JSON.stringify(this.snapshot(), null, 2), { mode: 0o600 });
    renameSync(tmp, this.stateFile);
  }

  /** Binds both listeners, then issues the server certificate for the bound address. */
  async bind(options: HubEmulatorOptions): Promise<void> {
    const mqttPort = options.mqttPort ?? 8883;
    const httpsPort = options.httpsPort ?? 443;
    const amqpPort = options.amqpPort ?? 5671;
    const candidates = options.host ? [options.host] : Array.from({ length: 253 }, (_, i) => `127.0.0.${i + 2}`);
    for (const host of candidates) {
      if (!bindableHost(host)) throw new Error(`host ${host} is neither a loopback (127.0.0.0/8) address nor an address of one of this machine's interfaces (such as the real worker's bridge)`);
      try {
        await listen(this.httpsServer, host, httpsPort);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' && candidates.length > 1) continue;
        if (code === 'EACCES') {
          throw new Error(`cannot bind ${host}:${httpsPort} (${code}): ports below 1024 need root, CAP_NET_BIND_SERVICE or a lower net.ipv4.ip_unprivileged_port_start`, { cause: error });
        }
        throw new Error(`cannot bind ${host}:${httpsPort}: ${(error as Error).message}`, { cause: error });
      }
      try {
        await listen(this.mqttServer, host, mqttPort);
      } catch (error) {
        await closeServer(this.httpsServer);
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE' && candidates.length > 1) continue;
        throw new Error(`cannot bind ${host}:${mqttPort}: ${(error as Error).message}`, { cause: error });
      }
      try {
        await listen(this.amqpServer, host, amqpPort);
      } catch (error) {
        await Promise.all([closeServer(this.httpsServer), closeServer(this.mqttServer)]);
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE' && candidates.length > 1) continue;
        throw new Error(`cannot bind ${host}:${amqpPort}: ${(error as Error).message}`, { cause: error });
      }
      this.host = host;
      this.httpsPort = boundPort(this.httpsServer);
      this.mqttPort = boundPort(this.mqttServer);
      this.amqpPort = boundPort(this.amqpServer);
      const served = issueServerChain(this.ca, [host, this.dnsName]);
      const context = { cert: served.cert, key: served.key };
      this.httpsServer.setSecureContext(context);
      this.mqttServer.setSecureContext(context);
      this.amqpServer.setSecureContext(context);
      await this.mqtt.start();
      this.saveNow();
      this.log('hub emulator listening', { host, mqttPort: this.mqttPort, httpsPort: this.httpsPort, amqpPort: this.amqpPort });
      return;
    }
    throw new Error('no free loopback address in 127.0.0.2–127.0.0.254 for the hub emulator');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.configurations.stop();
    for (const timer of this.delayed) clearTimeout(timer);
    this.delayed.clear();
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.mqtt.stop();
    for (const socket of this.sockets) socket.destroy();
    this.closeWebSockets();
    this.c2d.stop();
    this.jobs.stop();
    this.amqp.stop();
    await Promise.all([closeServer(this.httpsServer), closeServer(this.mqttServer), closeServer(this.amqpServer)]);
    this.saveNow();
    this.log('hub emulator stopped');
  }
}

/** Starts an emulator; resolves once both listeners accept connections. */
export async function startHubEmulator(options: HubEmulatorOptions = {}): Promise<HubEmulator> {
  const hub = new HubEmulator(options);
  try {
    await hub.bind(options);
  } catch (error) {
    await hub.stop().catch(() => {});
    throw error;
  }
  return hub;
}
