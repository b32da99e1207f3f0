// IoT Hub's device and module protocol (MQTT 3.1.1), for both the emulator and the built-in edge hub, on
// the lean server core in server.ts (sessions with clean:false, client-id takeover, QoS 1 delivery). This
// class adds SAS authentication, per-identity topic rules, twin requests, direct methods, telemetry
// hand-off and QoS 1 delivery to module inputs. What happens to telemetry and twins is the owner's
// business (callbacks): the emulator records and applies them, the hub routes and stores them.
// Hub→client replies are written straight to the identity's connection; nothing a client publishes
// ever reaches another client, as on IoT Hub.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { IConnectPacket } from 'mqtt-packet';
import { checkConnect } from './connect.ts';
import type { ConnectCheck } from './connect.ts';
import {
  allowedSubscriptions,
  classifyPublish,
  identityKey,
  methodRequestTopic,
  parseClientId,
  parseMethodPayload,
  twinErrorBody,
  twinResponseTopic,
} from './topics.ts';
import type { Identity, PropertyBag } from './topics.ts';
import { DeliveryAbandoned, MqttServerCore } from './server.ts';
import type { ConnectRefusal, MqttConnection } from './server.ts';

export { DeliveryAbandoned } from './server.ts';

export interface TelemetryMessage {
  deviceId: string;
  moduleId: string | undefined;
  topic: string;
  /** May be a view into the connection's read buffer: copy it (Buffer.from) to keep it beyond onTelemetry. */
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

type Client = MqttConnection<Connection>;

let isoMs = 0;
let isoText = '';
/** The time as ISO 8601, formatted once per millisecond: every message is stamped with it. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

const maxTimer = 2 ** 31 - 1;

/** Makes the error a method call fails with; the emulator answers with IoT Hub's codes. */
export type MethodFailure = (kind: 'DeviceNotOnline' | 'GatewayTimeout', message: string) => Error;

const defaultFailure: MethodFailure = (kind, message) => Object.assign(new Error(message), { code: kind });

export class IotHubBroker extends EventEmitter {
  private readonly core: MqttServerCore<Connection>;
  private readonly options: IotHubBrokerOptions;
  private readonly pendingMethods = new Map<string, (result: MethodResult) => void>();
  private methodCounter = 0;
  private connectionCounter = 0;

  constructor(options: IotHubBrokerOptions) {
    super();
    this.options = options;
    this.core = new MqttServerCore<Connection>({
      authenticate: (connect) => this.authenticate(connect),
      ready: (client) => this.onReady(client),
      publish: (client, topic, payload) => this.onPublish(client, topic, payload),
      authorizeSubscribe: (client, topic) => this.authorizeSubscribe(client, topic),
      subscribed: (client) => {
        if (client.state) this.emit('subscribed', this.info(client.state));
      },
      closed: (client, error) => this.onGone(client, error),
      log: (message, fields) => this.options.log(message, fields),
    });
  }

  async start(): Promise<void> {
    // Nothing to open: connections arrive through handle().
  }

  /** Serves one accepted connection: a TLS socket, or a WebSocket's byte stream. */
  handle(socket: Duplex): void {
    this.core.handle(socket);
  }

  async stop(): Promise<void> {
    for (const client of this.core.connections()) this.clearExpiry(client);
    this.core.close(new DeliveryAbandoned('broker stopped'));
  }

  /** The identity's live connection, if any. */
  connectionOf(identity: Identity): Client | undefined {
    return this.core.connectionOf(identityKey(identity));
  }

  connectedIdentities(): ConnectionInfo[] {
    return this.core.connections().flatMap((client) => (client.state ? [this.info(client.state)] : []));
  }

  private info(c: Connection): ConnectionInfo {
    return { ...c.identity, connectionId: c.connectionId, connectedAt: c.connectedAt };
  }

  /** Closes the connections of the matching identities (all when no filter); their sessions stay. */
  drop(filter: { deviceId?: string; moduleId?: string } = {}): number {
    let dropped = 0;
    for (const client of this.core.connections()) {
      const c = client.state;
      if (!c) continue;
      if (filter.deviceId !== undefined && filter.deviceId !== c.identity.deviceId) continue;
      if (filter.moduleId !== undefined && filter.moduleId !== c.identity.moduleId) continue;
      client.close(new Error('dropped by the hub'), true);
      dropped += 1;
    }
    return dropped;
  }

  isSubscribed(identity: Identity, topic: string): boolean {
    return this.connectionOf(identity)?.session?.isSubscribed(topic) ?? false;
  }

  /** Writes a hub→client message (QoS 0) to the identity's live connection. False when not connected. */
  send(identity: Identity, topic: string, payload: Buffer | string): boolean {
    const client = this.connectionOf(identity);
    if (!client) return false;
    client.publish0(topic, typeof payload === 'string' ? Buffer.from(payload) : payload);
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
    return client.deliver(topic, payload);
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

  private authenticate(connect: IConnectPacket): { state: Connection } | ConnectRefusal {
    const identity = parseClientId(connect.clientId);
    const refuse = this.options.refuseConnack?.(identity);
    if (refuse !== undefined) {
      this.options.log('connection refused with CONNACK 3 (admin fault)', { clientId: connect.clientId });
      this.emit('connectRefused', { identity, reason: 'admin: server unavailable' });
      return { returnCode: 3, reason: 'server unavailable (fault injection)' };
    }
    try {
      if (!identity) throw new Error(`client id "${connect.clientId}" is not deviceId or deviceId/moduleId`);
      const password = connect.password === undefined ? undefined : Buffer.from(connect.password);
      const expiry = checkConnect({ identity, username: connect.username, password, hostNames: this.options.hostNames(), keysFor: this.options.keysFor, exactAudience: this.options.exactAudience === true });
      return { state: { connectionId: ++this.connectionCounter, identity, expiry, expiryTimer: undefined, connectedAt: new Date().toISOString() } };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.options.log('connection refused', { clientId: connect.clientId, reason });
      this.emit('connectRefused', { identity, reason });
      return { returnCode: 5, reason: 'not authorized' };
    }
  }

  private onReady(client: Client): void {
    const c = client.state as Connection;
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
      client.close(new Error('the SAS token expired'), true);
    }, Math.max(0, Math.min(ms, maxTimer)));
    c.expiryTimer.unref();
  }

  private clearExpiry(client: Client): void {
    const c = client.state;
    if (c?.expiryTimer) clearTimeout(c.expiryTimer);
  }

  private onGone(client: Client, error: Error | undefined): void {
    this.clearExpiry(client);
    const c = client.state;
    if (!c) return;
    // Why it ended (keep-alive timeout, a protocol violation, a takeover), unless the client said DISCONNECT.
    this.options.log('disconnected', { identity: identityKey(c.identity), ...(error ? { reason: error.message } : {}) });
    this.emit('disconnected', this.info(c));
  }

  // ---- topics

  private authorizeSubscribe(client: Client, topic: string): boolean {
    const c = client.state;
    return c !== undefined && allowedSubscriptions(c.identity).includes(topic);
  }

  private onPublish(client: Client, topic: string, payload: Buffer): void | Promise<void> {
    const c = client.state as Connection;
    const request = classifyPublish(c.identity, topic);
    switch (request.kind) {
      case 'twinGet':
        void this.answerTwin(c.identity, request.rid, { kind: 'get', rid: request.rid });
        return;
      case 'twinPatchReported': {
        let patch: unknown;
        let invalidJson = false;
        try {
          patch = JSON.parse(payload.toString('utf8'));
        } catch {
          invalidJson = true;
        }
        void this.answerTwin(c.identity, request.rid, { kind: 'patchReported', rid: request.rid, patch, invalidJson });
        return;
      }
      case 'twinUnsupported':
        this.respondTwin(c.identity, request.rid, { status: 400, body: twinErrorBody(400004, `Unsupported twin operation ${request.operation}.`, `${request.rid}-${this.options.name}`) });
        return;
      case 'methodResponse':
        this.acceptMethodResponse(c.identity, request.rid, request.status, payload);
        return;
      case 'telemetry':
        return this.takeTelemetry(c.identity, topic, request.bag, request.outputName, payload);
      case 'forbidden':
        // IoT Hub closes the connection on a topic a client may not publish to.
        this.options.log('publish refused; disconnecting', { identity: identityKey(c.identity), topic });
        throw new Error(`topic ${topic} is not allowed for ${identityKey(c.identity)}`);
    }
  }

  private takeTelemetry(identity: Identity, topic: string, bag: PropertyBag, outputName: string | undefined, body: Buffer): void | Promise<void> {
    const message: TelemetryMessage = {
      deviceId: identity.deviceId,
      moduleId: identity.moduleId,
      topic,
      body,
      properties: bag.properties,
      systemProperties: bag.systemProperties,
      outputName,
      receivedAt: isoNow(),
    };
    const taken = this.options.onTelemetry(identity, message);
    if (taken === undefined) return;
    return taken.catch((error: unknown) => {
      this.options.log('telemetry refused; disconnecting without PUBACK', { identity: identityKey(identity), error: error instanceof Error ? error.message : String(error) });
      throw error instanceof Error ? error : new Error(String(error));
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
