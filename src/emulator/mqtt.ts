// The MQTT side of the emulator: IoT Hub's device protocol (MQTT 3.1.1 over TLS) on top of aedes.
// aedes keeps sessions (clean:false) and kicks a duplicate client id; this module adds SAS
// authentication, per-identity topic rules, twin and method requests, and telemetry capture.
// Hub→device messages are written straight to the identity's connection: the hub's twin and method
// topics are shared by every device, so routing them through the broker would leak between devices.
import { EventEmitter } from 'node:events';
import { Aedes } from 'aedes';
import type { AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import { parseSas, resourceCovers, SasError, verifySas } from '../runtime/sas.ts';
import { HubError } from './errors.ts';
import type { IdentityRegistry } from './registry.ts';
import { applyReportedPatch, mqttTwinBody, TwinValidationError } from './twin.ts';
import type { JsonObject } from './twin.ts';

export interface Identity {
  deviceId: string;
  moduleId: string | undefined;
}

export function identityKey(id: Identity): string {
  return id.moduleId === undefined ? id.deviceId : `${id.deviceId}/${id.moduleId}`;
}

export interface TelemetryMessage {
  deviceId: string;
  moduleId: string | undefined;
  topic: string;
  body: Buffer;
  /** Application properties from the topic's property bag. */
  properties: Record<string, string>;
  /** System properties (`$.mid`, `$.cid`, `$.ct`, `$.ce`, `$.on`, …) keyed as sent. */
  systemProperties: Record<string, string>;
  /** The output name for ModuleClient.sendOutputEvent (`$.on`). */
  outputName: string | undefined;
  receivedAt: string;
}

export interface MethodResult {
  status: number;
  payload: unknown;
}

export interface MqttHubOptions {
  registry: IdentityRegistry;
  /** Host names the hub answers to (its IP and DNS name); usernames and `sr` must use one. */
  hostNames: () => readonly string[];
  policyKeys: (keyName: string) => string[];
  /** Decides whether to refuse a connection (admin fault); returns the MQTT CONNACK code to send. */
  refuseConnack: (identity: Identity | undefined) => 3 | undefined;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/** One accepted MQTT connection; `connectionId` tells a reconnect from the connection it replaced. */
export interface ConnectionInfo extends Identity {
  connectionId: number;
  connectedAt: string;
}

interface Connection {
  connectionId: number;
  identity: Identity;
  expiry: number;
  expiryTimer: NodeJS.Timeout | undefined;
  connectedAt: string;
}

function connackError(returnCode: 3 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/** MQTT topic filter match (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function queryOf(topic: string): URLSearchParams {
  const q = topic.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : topic.slice(q + 1));
}

/** Splits a property bag (`k=v&k2=v2`, each part URL-encoded) into system and application properties. */
export function parsePropertyBag(bag: string): { properties: Record<string, string>; systemProperties: Record<string, string> } {
  const properties: Record<string, string> = {};
  const systemProperties: Record<string, string> = {};
  for (const part of bag.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(rawKey);
      value = decodeURIComponent(rawValue);
    } catch {
      key = rawKey;
      value = rawValue;
    }
    if (key.startsWith('$.')) systemProperties[key] = value;
    else properties[key] = value;
  }
  return { properties, systemProperties };
}

const maxTimer = 2 ** 31 - 1;
const capturedLimit = 10_000;

export class MqttHub extends EventEmitter {
  readonly broker: Aedes;
  private readonly options: MqttHubOptions;
  private readonly connections = new WeakMap<Client, Connection>();
  private readonly current = new Map<string, Client>();
  private readonly pendingMethods = new Map<string, (result: MethodResult) => void>();
  private methodCounter = 0;
  private connectionCounter = 0;
  readonly telemetry: TelemetryMessage[] = [];

  constructor(options: MqttHubOptions) {
    super();
    this.options = options;
    this.broker = new Aedes({
      // Device ids alone may be 128 characters; `deviceId/moduleId` twice that.
      maxClientsIdLength: 300,
      heartbeatInterval: 60_000,
      authenticate: (client, username, password, done) => this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => this.authorizeSubscribe(client, sub, done),
      // Only the hub's own replies (written with client.publish, so no clientId) reach devices;
      // nothing a device publishes is forwarded to another device, as on IoT Hub.
      authorizeForward: (_client, packet) => ((packet as { clientId?: string }).clientId === undefined ? packet : null),
    });
    this.broker.on('clientReady', (client) => this.onReady(client));
    this.broker.on('clientDisconnect', (client) => this.onGone(client));
    this.broker.on('subscribe', (_subs, client) => {
      const c = this.connections.get(client);
      if (c) this.emit('subscribed', this.info(c));
    });
  }

  async start(): Promise<void> {
    await this.broker.listen();
  }

  async stop(): Promise<void> {
    for (const client of this.current.values()) this.clearExpiry(client);
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
  }

  /** The identity's live connection, if any. */
  connectionOf(identity: Identity): Client | undefined {
    return this.current.get(identityKey(identity));
  }

  connectedIdentities(): ConnectionInfo[] {
    return [...this.current.values()].flatMap((client) => {
      const c = this.connections.get(client);
      return c ? [this.info(c)] : [];
    });
  }

  private info(c: Connection): ConnectionInfo {
    return { ...c.identity, connectionId: c.connectionId, connectedAt: c.connectedAt };
  }

  /** Closes the connections of the matching identities (all when no filter); their sessions stay. */
  drop(filter: { deviceId?: string; moduleId?: string } = {}): number {
    let dropped = 0;
    for (const client of [...this.current.values()]) {
      const c = this.connections.get(client);
      if (!c) continue;
      if (filter.deviceId !== undefined && filter.deviceId !== c.identity.deviceId) continue;
      if (filter.moduleId !== undefined && filter.moduleId !== c.identity.moduleId) continue;
      client.close();
      dropped += 1;
    }
    return dropped;
  }

  isSubscribed(identity: Identity, topic: string): boolean {
    const client = this.connectionOf(identity);
    return client !== undefined && Object.keys((client as unknown as { subscriptions: Record<string, unknown> }).subscriptions).some((f) => topicMatches(f, topic));
  }

  /** Writes a hub→device message (QoS 0) to the identity's live connection. False when not connected. */
  send(identity: Identity, topic: string, payload: Buffer | string): boolean {
    const client = this.connectionOf(identity);
    if (!client) return false;
    const packet: PublishPacket = { cmd: 'publish', topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos: 0, retain: false, dup: false };
    client.publish(packet, (err) => {
      if (err) this.options.log('could not write to a device', { identity: identityKey(identity), topic, error: err.message });
    });
    return true;
  }

  /**
   * Calls a direct method. Waits up to connectTimeout seconds for the identity to be connected and
   * subscribed to methods, then up to responseTimeout seconds for its answer.
   */
  async invokeMethod(identity: Identity, methodName: string, payload: unknown, responseTimeoutSeconds: number, connectTimeoutSeconds: number): Promise<MethodResult> {
    const methodTopic = `$iothub/methods/POST/${methodName}/?$rid=0`;
    if (!this.isSubscribed(identity, methodTopic)) {
      if (connectTimeoutSeconds > 0) await this.waitForSubscription(identity, methodTopic, connectTimeoutSeconds * 1000);
      else throw new HubError('DeviceNotOnline', `Timed out waiting for device ${identityKey(identity)} to connect.`);
    }
    const rid = (++this.methodCounter).toString(16);
    const key = `${identityKey(identity)}|${rid}`;
    return new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingMethods.delete(key);
        reject(new HubError('GatewayTimeout', `Timed out waiting for the response from device ${identityKey(identity)}.`));
      }, responseTimeoutSeconds * 1000);
      timer.unref();
      this.pendingMethods.set(key, (result) => {
        clearTimeout(timer);
        this.pendingMethods.delete(key);
        resolve(result);
      });
      const body = payload === undefined ? 'null' : JSON.stringify(payload);
      if (!this.send(identity, `$iothub/methods/POST/${methodName}/?$rid=${rid}`, body)) {
        clearTimeout(timer);
        this.pendingMethods.delete(key);
        reject(new HubError('DeviceNotOnline', `Device ${identityKey(identity)} is not online.`));
      }
    });
  }

  /** Resolves once the identity is connected and subscribed to a filter matching `topic`. */
  waitForSubscription(identity: Identity, topic: string, timeoutMs: number): Promise<void> {
    if (this.isSubscribed(identity, topic)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.isSubscribed(identity, topic)) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new HubError('DeviceNotOnline', `Timed out waiting for device ${identityKey(identity)} to connect.`));
      }, timeoutMs);
      timer.unref();
      const cleanup = () => {
        clearTimeout(timer);
        this.off('subscribed', check);
        this.off('connected', check);
      };
      this.on('subscribed', check);
      this.on('connected', check);
    });
  }

  // ---- connection lifecycle

  private parseClientId(clientId: string): Identity | undefined {
    const parts = clientId.split('/');
    if (parts.length === 1 && parts[0]) return { deviceId: parts[0], moduleId: undefined };
    if (parts.length === 2 && parts[0] && parts[1]) return { deviceId: parts[0], moduleId: parts[1] };
    return undefined;
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const identity = this.parseClientId(client.id ?? '');
    const refuse = this.options.refuseConnack(identity);
    if (refuse !== undefined) {
      this.options.log('connection refused with CONNACK 3 (admin fault)', { clientId: client.id });
      this.emit('connectRefused', { identity, reason: 'admin: server unavailable' });
      done(connackError(3, 'server unavailable (emulator fault injection)'), false);
      return;
    }
    try {
      if (!identity) throw new HubError('IotHubUnauthorizedAccess', `client id "${client.id}" is not deviceId or deviceId/moduleId`);
      const expiry = this.checkCredentials(identity, username, password);
      this.connections.set(client, { connectionId: ++this.connectionCounter, identity, expiry, expiryTimer: undefined, connectedAt: new Date().toISOString() });
      done(null, true);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.options.log('connection refused', { clientId: client.id, reason });
      this.emit('connectRefused', { identity, reason });
      done(connackError(5, 'not authorized'), false);
    }
  }

  /** Returns the token expiry (seconds) or throws with why the CONNECT is refused. */
  private checkCredentials(identity: Identity, username: string | undefined, password: Buffer | undefined): number {
    const { registry } = this.options;
    const hostNames = this.options.hostNames();
    if (!username) throw new Error('no username');
    const q = username.indexOf('/?');
    if (q < 0) throw new Error('username has no "/?api-version=" part');
    const params = new URLSearchParams(username.slice(q + 2));
    if (!params.get('api-version')) throw new Error('username has no api-version');
    const path = username.slice(0, q);
    const slash = path.indexOf('/');
    const host = path.slice(0, slash);
    if (!hostNames.some((h) => h.toLowerCase() === host.toLowerCase())) throw new Error(`username host "${host}" is not this hub (${hostNames.join(', ')})`);
    if (path.slice(slash + 1) !== identityKey(identity)) throw new Error(`username identity "${path.slice(slash + 1)}" differs from the client id "${identityKey(identity)}"`);

    const device = registry.findDevice(identity.deviceId);
    if (!device) throw new Error(`device ${identity.deviceId} is not registered`);
    if (device.status !== 'enabled') throw new Error(`device ${identity.deviceId} is disabled`);
    const module = identity.moduleId === undefined ? undefined : registry.findModule(identity.deviceId, identity.moduleId);
    if (identity.moduleId !== undefined && !module) throw new Error(`module ${identityKey(identity)} is not registered`);

    if (!password || password.length === 0) throw new Error('no password (SAS token)');
    const sas = parseSas(password.toString('utf8'));
    const srHost = sas.resource.replace(/^https?:\/\//i, '').split('/')[0] ?? '';
    if (!hostNames.some((h) => h.toLowerCase() === srHost.toLowerCase())) throw new Error(`token sr host "${srHost}" is not this hub`);
    const target = `${srHost}/devices/${identity.deviceId}${identity.moduleId === undefined ? '' : `/modules/${identity.moduleId}`}`;
    if (!resourceCovers(sas.resource, target)) throw new SasError('scope', `token sr ${sas.resource} does not cover ${target}`);
    const keys = sas.keyName !== undefined
      ? this.options.policyKeys(sas.keyName)
      : [...(module ? [module.keys.primaryKey, module.keys.secondaryKey] : []), device.keys.primaryKey, device.keys.secondaryKey];
    if (keys.length === 0) throw new SasError('unknown-key', `no policy named ${sas.keyName}`);
    verifySas(sas, keys);
    return sas.expiry;
  }

  private onReady(client: Client): void {
    const c = this.connections.get(client);
    if (!c) return;
    this.current.set(identityKey(c.identity), client);
    this.armExpiry(client, c);
    this.options.log('connected', { identity: identityKey(c.identity), clean: client.clean });
    this.emit('connected', this.info(c));
  }

  private armExpiry(client: Client, c: Connection): void {
    const ms = c.expiry * 1000 - Date.now();
    c.expiryTimer = setTimeout(() => {
      if (c.expiry * 1000 > Date.now()) {
        this.armExpiry(client, c);
        return;
      }
      this.options.log('token expired; disconnecting', { identity: identityKey(c.identity) });
      this.emit('tokenExpired', this.info(c));
      client.close();
    }, Math.max(0, Math.min(ms, maxTimer)));
    c.expiryTimer.unref();
  }

  private clearExpiry(client: Client): void {
    const c = this.connections.get(client);
    if (c?.expiryTimer) clearTimeout(c.expiryTimer);
  }

  private onGone(client: Client): void {
    const c = this.connections.get(client);
    this.clearExpiry(client);
    if (!c) return;
    const key = identityKey(c.identity);
    if (this.current.get(key) === client) this.current.delete(key);
    this.options.log('disconnected', { identity: key });
    this.emit('disconnected', this.info(c));
  }

  // ---- topics

  private authorizeSubscribe(client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void {
    const c = this.connections.get(client);
    if (!c) return done(null, null);
    const own = c.identity.moduleId === undefined ? `devices/${c.identity.deviceId}` : `devices/${c.identity.deviceId}/modules/${c.identity.moduleId}`;
    const allowed = [
      '$iothub/twin/res/#',
      '$iothub/twin/PATCH/properties/desired/#',
      '$iothub/methods/POST/#',
      `${own}/inputs/#`,
      `devices/${c.identity.deviceId}/messages/devicebound/#`,
    ];
    if (sub.qos === 2 || !allowed.includes(sub.topic)) {
      this.options.log('subscription refused', { identity: identityKey(c.identity), topic: sub.topic });
      return done(null, null);
    }
    done(null, sub);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const c = client ? this.connections.get(client) : undefined;
    if (!c) return done(new Error('not connected'));
    // IoT Hub closes the connection on QoS 2 and on topics a device may not publish to.
    if (packet.qos === 2) return done(new Error('QoS 2 is not supported'));
    const topic = packet.topic;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    if (topic.startsWith('$iothub/twin/')) {
      this.answerTwinRequest(c.identity, topic, payload);
      return done(null);
    }
    if (topic.startsWith('$iothub/methods/res/')) {
      this.acceptMethodResponse(c.identity, topic, payload);
      return done(null);
    }
    const own = c.identity.moduleId === undefined ? `devices/${c.identity.deviceId}` : `devices/${c.identity.deviceId}/modules/${c.identity.moduleId}`;
    const events = `${own}/messages/events/`;
    if (topic === events.slice(0, -1) || topic.startsWith(events)) {
      this.captureTelemetry(c.identity, topic, topic.slice(events.length), payload);
      return done(null);
    }
    this.options.log('publish refused; disconnecting', { identity: identityKey(c.identity), topic });
    done(new Error(`topic ${topic} is not allowed for ${identityKey(c.identity)}`));
  }

  private captureTelemetry(identity: Identity, topic: string, bag: string, body: Buffer): void {
    const { properties, systemProperties } = parsePropertyBag(bag.replace(/\/$/, ''));
    const message: TelemetryMessage = {
      deviceId: identity.deviceId,
      moduleId: identity.moduleId,
      topic,
      body: Buffer.from(body),
      properties,
      systemProperties,
      outputName: systemProperties['$.on'],
      receivedAt: new Date().toISOString(),
    };
    this.telemetry.push(message);
    if (this.telemetry.length > capturedLimit) this.telemetry.splice(0, this.telemetry.length - capturedLimit);
    this.emit('telemetry', message);
  }

  private acceptMethodResponse(identity: Identity, topic: string, payload: Buffer): void {
    const status = Number(topic.slice('$iothub/methods/res/'.length).split('/')[0]);
    const rid = queryOf(topic).get('$rid') ?? '';
    const settle = this.pendingMethods.get(`${identityKey(identity)}|${rid}`);
    if (!settle) {
      this.options.log('method response for no pending request', { identity: identityKey(identity), rid });
      return;
    }
    const text = payload.toString('utf8');
    let body: unknown = null;
    if (text.trim() !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    settle({ status: Number.isInteger(status) ? status : 500, payload: body });
  }

  /** Always answers: a request that fails for any reason gets an error response, never silence. */
  private answerTwinRequest(identity: Identity, topic: string, payload: Buffer): void {
    const rid = queryOf(topic).get('$rid') ?? '';
    const respond = (status: number, body: string, version?: number) => {
      const v = version === undefined ? '' : `&$version=${version}`;
      this.send(identity, `$iothub/twin/res/${status}/?$rid=${rid}${v}`, body);
    };
    const fail = (status: number, code: number, message: string) =>
      respond(status, JSON.stringify({ errorCode: code, trackingId: `${rid}-emulator`, message, timestampUtc: new Date().toISOString() }));
    try {
      const { registry } = this.options;
      const holder = registry.twinHolder(identity.deviceId, identity.moduleId);
      if (topic.startsWith('$iothub/twin/GET/')) {
        respond(200, JSON.stringify(mqttTwinBody(holder.twin)));
        return;
      }
      if (topic.startsWith('$iothub/twin/PATCH/properties/reported/')) {
        let patch: unknown;
        try {
          patch = JSON.parse(payload.toString('utf8'));
        } catch {
          fail(400, 400004, 'The reported properties patch is not valid JSON.');
          return;
        }
        const version = applyReportedPatch(holder.twin, patch, new Date().toISOString());
        registry.twinChanged(holder);
        respond(204, '', version);
        this.emit('reportedPatch', { ...identity, patch: patch as JsonObject, version });
        return;
      }
      fail(400, 400004, `Unsupported twin operation ${topic.split('?')[0]}.`);
    } catch (error) {
      if (error instanceof TwinValidationError) {
        fail(400, 400004, error.message);
      } else if (error instanceof HubError) {
        fail(error.status, error.numeric, error.message);
      } else {
        this.options.log('twin request failed', { identity: identityKey(identity), error: error instanceof Error ? error.message : String(error) });
        fail(500, 500001, 'Internal error in the emulator.');
      }
    }
  }

}
