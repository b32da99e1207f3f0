// IoT Hub's device and module protocol (MQTT 3.1.1) on top of aedes, for both the emulator and the
// built-in edge hub. aedes keeps sessions (clean:false) and kicks a duplicate client id; this class adds
// SAS authentication, per-identity topic rules, twin requests, direct methods, telemetry hand-off and
// QoS 1 delivery to module inputs. What happens to telemetry and twins is the owner's business
// (callbacks): the emulator records and applies them, the hub routes and stores them.
// Hub→client replies are written straight to the identity's connection: the twin and method topics are
// shared by every client, so routing them through the broker would leak between identities.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { Aedes } from 'aedes';
import type { AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import { checkConnect } from './connect.ts';
import type { ConnectCheck } from './connect.ts';
import {
  allowedSubscriptions,
  classifyPublish,
  identityKey,
  methodRequestTopic,
  parseClientId,
  parseMethodPayload,
  topicMatches,
  twinErrorBody,
  twinResponseTopic,
} from './topics.ts';
import type { Identity, PropertyBag } from './topics.ts';

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

/** A twin request from a client. `patch` is the parsed reported patch, or a parse error. */
export type TwinRequest =
  | { kind: 'get'; rid: string }
  | { kind: 'patchReported'; rid: string; patch: unknown; invalidJson: boolean };

/** The answer to a twin request: a status, a JSON (or empty) body, and for PATCH the new reported version. */
export interface TwinResponse {
  status: number;
  body: string;
  version?: number;
}

/** A twin failure the client should see as IoT Hub's error body. */
export class TwinRequestError extends Error {
  override name = 'TwinRequestError';
  readonly status: number;
  readonly code: number;
  constructor(status: number, code: number, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface IotHubBrokerOptions {
  /** Host names the hub answers to; usernames and `sr` must use one. */
  hostNames: () => readonly string[];
  keysFor: ConnectCheck['keysFor'];
  /** See ConnectCheck.exactAudience. */
  exactAudience?: boolean;
  /** Decides whether to refuse a connection outright; returns the CONNACK code to send. */
  refuseConnack?: (identity: Identity | undefined) => 3 | undefined;
  /**
   * Takes a client's telemetry. The PUBACK goes out once the returned promise resolves; a rejection
   * closes the connection without PUBACK, the only refusal MQTT 3.1.1 has, so the client sends again.
   */
  onTelemetry: (identity: Identity, message: TelemetryMessage) => void | Promise<void>;
  /** Answers a twin request; a thrown TwinRequestError becomes IoT Hub's error body. Always answered. */
  onTwinRequest: (identity: Identity, request: TwinRequest) => TwinResponse | Promise<TwinResponse>;
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** Name used in error tracking ids. */
  name: string;
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

interface PendingDelivery {
  resolve: () => void;
  reject: (error: Error) => void;
}

function connackError(returnCode: 3 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

const maxTimer = 2 ** 31 - 1;
/** Marks the QoS 1 packets this class delivers, so their PUBACKs can be told apart. */
const deliveryBrokerId = 'iothub-mqtt-delivery';

/** Makes the error a method call fails with; the emulator answers with IoT Hub's codes. */
export type MethodFailure = (kind: 'DeviceNotOnline' | 'GatewayTimeout', message: string) => Error;

const defaultFailure: MethodFailure = (kind, message) => Object.assign(new Error(message), { code: kind });

export class DeliveryAbandoned extends Error {
  override name = 'DeliveryAbandoned';
}

export class IotHubBroker extends EventEmitter {
  readonly broker: Aedes;
  private readonly options: IotHubBrokerOptions;
  private readonly connections = new WeakMap<Client, Connection>();
  private readonly current = new Map<string, Client>();
  private readonly pendingMethods = new Map<string, (result: MethodResult) => void>();
  private readonly pendingDeliveries = new Map<string, Map<number, PendingDelivery>>();
  private methodCounter = 0;
  private connectionCounter = 0;
  private deliveryCounter = 0;

  constructor(options: IotHubBrokerOptions) {
    super();
    this.options = options;
    this.broker = new Aedes({
      // Device ids alone may be 128 characters; `deviceId/moduleId` twice that.
      maxClientsIdLength: 300,
      heartbeatInterval: 60_000,
      authenticate: (client, username, password, done) => this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => this.authorizeSubscribe(client, sub, done),
      // Only the hub's own messages (written with client.publish, so no clientId) reach clients;
      // nothing a client publishes is forwarded to another client, as on IoT Hub.
      authorizeForward: (_client, packet) => ((packet as { clientId?: string }).clientId === undefined ? packet : null),
    });
    this.broker.on('clientReady', (client) => this.onReady(client));
    this.broker.on('clientDisconnect', (client) => this.onGone(client));
    this.broker.on('ack', (packet, client) => this.onAck(packet as PublishPacket | undefined, client));
    this.broker.on('subscribe', (_subs, client) => {
      const c = this.connections.get(client);
      if (c) this.emit('subscribed', this.info(c));
    });
  }

  async start(): Promise<void> {
    await this.broker.listen();
  }

  /** Serves one accepted connection: a TLS socket, or a WebSocket's byte stream. */
  handle(socket: Duplex): void {
    this.broker.handle(socket);
  }

  async stop(): Promise<void> {
    for (const client of this.current.values()) this.clearExpiry(client);
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
    for (const pending of this.pendingDeliveries.values()) for (const p of pending.values()) p.reject(new DeliveryAbandoned('broker stopped'));
    this.pendingDeliveries.clear();
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

  /** Writes a hub→client message (QoS 0) to the identity's live connection. False when not connected. */
  send(identity: Identity, topic: string, payload: Buffer | string): boolean {
    const client = this.connectionOf(identity);
    if (!client) return false;
    const packet: PublishPacket = { cmd: 'publish', topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos: 0, retain: false, dup: false };
    client.publish(packet, (err) => {
      if (err) this.options.log('could not write to a client', { identity: identityKey(identity), topic, error: err.message });
    });
    return true;
  }

  /**
   * Delivers a QoS 1 message to a connected identity and resolves on its PUBACK. The packet joins the
   * client's persistent session, so a reconnect within this process redelivers it (and a later PUBACK
   * still resolves); a clean session or a stopped broker rejects with DeliveryAbandoned.
   */
  deliver(identity: Identity, topic: string, payload: Buffer): Promise<void> {
    const client = this.connectionOf(identity);
    if (!client) return Promise.reject(new DeliveryAbandoned(`${identityKey(identity)} is not connected`));
    const counter = ++this.deliveryCounter;
    const key = identityKey(identity);
    return new Promise<void>((resolve, reject) => {
      let pending = this.pendingDeliveries.get(key);
      if (!pending) {
        pending = new Map();
        this.pendingDeliveries.set(key, pending);
      }
      pending.set(counter, { resolve, reject });
      const packet = { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false, brokerId: deliveryBrokerId, brokerCounter: counter } as PublishPacket;
      client.publish(packet, (err) => {
        if (err) this.options.log('could not write a delivery', { identity: key, topic, error: err.message });
      });
    });
  }

  /** Deliveries written and not yet acknowledged, per identity key. */
  unacknowledged(identity: Identity): number {
    return this.pendingDeliveries.get(identityKey(identity))?.size ?? 0;
  }

  private onAck(packet: PublishPacket | undefined, client: Client): void {
    const p = packet as (PublishPacket & { brokerId?: string; brokerCounter?: number }) | undefined;
    if (!p || p.brokerId !== deliveryBrokerId || p.brokerCounter === undefined) return;
    const c = this.connections.get(client);
    if (!c) return;
    const pending = this.pendingDeliveries.get(identityKey(c.identity));
    const entry = pending?.get(p.brokerCounter);
    if (!entry) return;
    pending?.delete(p.brokerCounter);
    entry.resolve();
  }

  /**
   * Calls a direct method. Waits up to connectTimeout seconds for the identity to be connected and
   * subscribed to methods, then up to responseTimeout seconds for its answer. Failures are `fail(kind, text)`.
   */
  async invokeMethod(
    identity: Identity,
    methodName: string,
    payload: unknown,
    responseTimeoutSeconds: number,
    connectTimeoutSeconds: number,
    fail: MethodFailure = defaultFailure,
  ): Promise<MethodResult> {
    const methodTopic = methodRequestTopic(methodName, '0');
    if (!this.isSubscribed(identity, methodTopic)) {
      if (connectTimeoutSeconds > 0) await this.waitForSubscription(identity, methodTopic, connectTimeoutSeconds * 1000, fail);
      else throw fail('DeviceNotOnline', `Timed out waiting for device ${identityKey(identity)} to connect.`);
    }
    const rid = (++this.methodCounter).toString(16);
    const key = `${identityKey(identity)}|${rid}`;
    return new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingMethods.delete(key);
        reject(fail('GatewayTimeout', `Timed out waiting for the response from device ${identityKey(identity)}.`));
      }, responseTimeoutSeconds * 1000);
      timer.unref();
      this.pendingMethods.set(key, (result) => {
        clearTimeout(timer);
        this.pendingMethods.delete(key);
        resolve(result);
      });
      const body = payload === undefined ? 'null' : JSON.stringify(payload);
      if (!this.send(identity, methodRequestTopic(methodName, rid), body)) {
        clearTimeout(timer);
        this.pendingMethods.delete(key);
        reject(fail('DeviceNotOnline', `Device ${identityKey(identity)} is not online.`));
      }
    });
  }

  /** Resolves once the identity is connected and subscribed to a filter matching `topic`. */
  waitForSubscription(identity: Identity, topic: string, timeoutMs: number, fail: MethodFailure = defaultFailure): Promise<void> {
    if (this.isSubscribed(identity, topic)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.isSubscribed(identity, topic)) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(fail('DeviceNotOnline', `Timed out waiting for device ${identityKey(identity)} to connect.`));
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

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const identity = parseClientId(client.id ?? '');
    const refuse = this.options.refuseConnack?.(identity);
    if (refuse !== undefined) {
      this.options.log('connection refused with CONNACK 3 (admin fault)', { clientId: client.id });
      this.emit('connectRefused', { identity, reason: 'admin: server unavailable' });
      done(connackError(3, 'server unavailable (fault injection)'), false);
      return;
    }
    try {
      if (!identity) throw new Error(`client id "${client.id}" is not deviceId or deviceId/moduleId`);
      const expiry = checkConnect({ identity, username, password, hostNames: this.options.hostNames(), keysFor: this.options.keysFor, exactAudience: this.options.exactAudience === true });
      this.connections.set(client, { connectionId: ++this.connectionCounter, identity, expiry, expiryTimer: undefined, connectedAt: new Date().toISOString() });
      done(null, true);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.options.log('connection refused', { clientId: client.id, reason });
      this.emit('connectRefused', { identity, reason });
      done(connackError(5, 'not authorized'), false);
    }
  }

  private onReady(client: Client): void {
    const c = this.connections.get(client);
    if (!c) return;
    const key = identityKey(c.identity);
    this.current.set(key, client);
    // A clean session drops what aedes kept for redelivery: those deliveries will never be acknowledged.
    if (client.clean) this.abandonDeliveries(key, 'the client started a clean session');
    this.armExpiry(client, c);
    this.options.log('connected', { identity: key, clean: client.clean });
    this.emit('connected', this.info(c));
  }

  private abandonDeliveries(key: string, reason: string): void {
    const pending = this.pendingDeliveries.get(key);
    if (!pending) return;
    this.pendingDeliveries.delete(key);
    for (const p of pending.values()) p.reject(new DeliveryAbandoned(reason));
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
    if (client.clean) this.abandonDeliveries(key, 'the client left a clean session');
    this.options.log('disconnected', { identity: key });
    this.emit('disconnected', this.info(c));
  }

  // ---- topics

  private authorizeSubscribe(client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void {
    const c = this.connections.get(client);
    if (!c) return done(null, null);
    if (sub.qos === 2 || !allowedSubscriptions(c.identity).includes(sub.topic)) {
      this.options.log('subscription refused', { identity: identityKey(c.identity), topic: sub.topic });
      return done(null, null);
    }
    done(null, sub);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const c = client ? this.connections.get(client) : undefined;
    if (!c) return done(new Error('not connected'));
    // IoT Hub closes the connection on QoS 2 and on topics a client may not publish to.
    if (packet.qos === 2) return done(new Error('QoS 2 is not supported'));
    const topic = packet.topic;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const request = classifyPublish(c.identity, topic);
    switch (request.kind) {
      case 'twinGet':
        void this.answerTwin(c.identity, request.rid, { kind: 'get', rid: request.rid });
        return done(null);
      case 'twinPatchReported': {
        let patch: unknown;
        let invalidJson = false;
        try {
          patch = JSON.parse(payload.toString('utf8'));
        } catch {
          invalidJson = true;
        }
        void this.answerTwin(c.identity, request.rid, { kind: 'patchReported', rid: request.rid, patch, invalidJson });
        return done(null);
      }
      case 'twinUnsupported':
        this.respondTwin(c.identity, request.rid, { status: 400, body: twinErrorBody(400004, `Unsupported twin operation ${request.operation}.`, `${request.rid}-${this.options.name}`) });
        return done(null);
      case 'methodResponse':
        this.acceptMethodResponse(c.identity, request.rid, request.status, payload);
        return done(null);
      case 'telemetry':
        return this.takeTelemetry(c.identity, topic, request.bag, request.outputName, payload, done);
      case 'forbidden':
        this.options.log('publish refused; disconnecting', { identity: identityKey(c.identity), topic });
        return done(new Error(`topic ${topic} is not allowed for ${identityKey(c.identity)}`));
    }
  }

  private takeTelemetry(identity: Identity, topic: string, bag: PropertyBag, outputName: string | undefined, body: Buffer, done: (err?: Error | null) => void): void {
    const message: TelemetryMessage = {
      deviceId: identity.deviceId,
      moduleId: identity.moduleId,
      topic,
      body: Buffer.from(body),
      properties: bag.properties,
      systemProperties: bag.systemProperties,
      outputName,
      receivedAt: new Date().toISOString(),
    };
    let taken: void | Promise<void>;
    try {
      taken = this.options.onTelemetry(identity, message);
    } catch (error) {
      done(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (taken === undefined) {
      done(null);
      return;
    }
    taken.then(() => done(null), (error: unknown) => {
      this.options.log('telemetry refused; disconnecting without PUBACK', { identity: identityKey(identity), error: error instanceof Error ? error.message : String(error) });
      done(error instanceof Error ? error : new Error(String(error)));
    });
  }

  private acceptMethodResponse(identity: Identity, rid: string, status: number, payload: Buffer): void {
    const settle = this.pendingMethods.get(`${identityKey(identity)}|${rid}`);
    if (!settle) {
      this.options.log('method response for no pending request', { identity: identityKey(identity), rid });
      return;
    }
    settle({ status, payload: parseMethodPayload(payload) });
  }

  private respondTwin(identity: Identity, rid: string, response: TwinResponse): void {
    this.send(identity, twinResponseTopic(response.status, rid, response.version), response.body);
  }

  /** Always answers: a request that fails for any reason gets an error response, never silence. */
  private async answerTwin(identity: Identity, rid: string, request: TwinRequest): Promise<void> {
    const trackingId = `${rid}-${this.options.name}`;
    try {
      if (request.kind === 'patchReported' && request.invalidJson) throw new TwinRequestError(400, 400004, 'The reported properties patch is not valid JSON.');
      this.respondTwin(identity, rid, await this.options.onTwinRequest(identity, request));
    } catch (error) {
      if (error instanceof TwinRequestError) {
        this.respondTwin(identity, rid, { status: error.status, body: twinErrorBody(error.code, error.message, trackingId) });
      } else {
        this.options.log('twin request failed', { identity: identityKey(identity), error: error instanceof Error ? error.message : String(error) });
        this.respondTwin(identity, rid, { status: 500, body: twinErrorBody(500001, `Internal error in the ${this.options.name}.`, trackingId) });
      }
    }
  }
}
