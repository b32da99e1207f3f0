// The hub's side of IoT Hub: one azure-iot-device ModuleClient (MQTT) per module, signed with the
// module's derived key, so IoT Hub sees each module's telemetry, twin and methods as that module's,
// as it does with edgeHub. A link opens when its module connects to the hub or has upstream
// messages, and reopens on demand after a failure; the caller decides when to retry.
import device from 'azure-iot-device';
import type { ModuleClient as ModuleClientType, Twin } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import common from 'azure-iot-common';
import { withDeadline } from '../runtime/deadline.ts';
import { deriveModuleKey } from '../runtime/sas.ts';
import type { MethodResult } from '../iothub-mqtt/index.ts';
import type { RoutedMessage } from '../routing/index.ts';
import type { UpstreamSettings } from './config.ts';
import { isJsonObject } from './twins.ts';
import type { JsonObject } from './twins.ts';

const { ModuleClient, Message, DeviceMethodResponse } = device;
const { Mqtt } = mqtt;
const { NoRetry } = common;

/** How long one upstream operation may take before the link is treated as down. */
const operationTimeoutMs = 30_000;
/** After a failed connect, sends fail at once for this long instead of each dialling again. */
const failFastMs = 1_000;

export interface UpstreamCallbacks {
  /** A desired-properties patch from IoT Hub (including its `$version`). */
  desired(moduleId: string, patch: JsonObject): void;
  /** A direct method from IoT Hub for the module; resolves with the module's answer. */
  method(moduleId: string, methodName: string, payload: unknown): Promise<MethodResult>;
  /** The link's connection state changed. */
  state(moduleId: string, connected: boolean, error?: Error): void;
  log(message: string, fields?: Record<string, unknown>): void;
}

interface MethodMessage {
  methods: { methodName: string };
  requestId: string;
  body: Buffer | undefined;
}

/** IoT Hub's SDK registers methods by name; the hub forwards any name, so it takes every `method_<name>` event. */
function methodForwardingTransport(onMethod: (request: MethodMessage, transport: InstanceType<typeof Mqtt>) => void): typeof Mqtt {
  return class MethodForwardingMqtt extends Mqtt {
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (typeof event === 'string' && event.startsWith('method_')) {
        onMethod(args[0] as MethodMessage, this);
        return true;
      }
      return super.emit(event, ...args);
    }
  };
}

function methodPayload(body: Buffer | undefined): unknown {
  if (!body || body.length === 0) return null;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return body.toString('utf8');
  }
}

function callback<T = void>(run: (done: (err?: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => run((err, value) => (err ? reject(err) : resolve(value as T))));
}

/** An upstream message as the device SDK sends it: the body and the properties the module gave it. */
export function upstreamMessage(routed: RoutedMessage): InstanceType<typeof Message> {
  const message = new Message(routed.body);
  const sys = routed.systemProperties;
  if (sys.messageId !== undefined) message.messageId = sys.messageId;
  if (sys.correlationId !== undefined) message.correlationId = sys.correlationId;
  // The SDK's types list only the values it knows; IoT Hub takes any, so pass on what the module sent.
  const open = message as unknown as { contentType?: string; contentEncoding?: string };
  if (sys.contentType !== undefined) open.contentType = sys.contentType;
  if (sys.contentEncoding !== undefined) open.contentEncoding = sys.contentEncoding;
  if (sys.userId !== undefined) message.userId = sys.userId;
  for (const [key, value] of Object.entries(routed.properties)) message.properties.add(key, value);
  return message;
}

export class UpstreamLink {
  readonly moduleId: string;
  private readonly connectionString: string;
  private readonly callbacks: UpstreamCallbacks;
  private client: ModuleClientType | undefined;
  private twin: Twin | undefined;
  private opening: Promise<void> | undefined;
  private lastFailure: { at: number; error: Error } | undefined;
  /** Sends pass this gate one after another, so they reach IoT Hub in the order they were given. */
  private sendGate: Promise<unknown> = Promise.resolve();
  private closed = false;
  connected = false;

  constructor(moduleId: string, connectionString: string, callbacks: UpstreamCallbacks) {
    this.moduleId = moduleId;
    this.connectionString = connectionString;
    this.callbacks = callbacks;
  }

  /** Opens the link (once; concurrent callers share the attempt). Rejects when IoT Hub cannot be reached. */
  open(): Promise<void> {
    if (this.connected && this.client) return Promise.resolve();
    if (this.lastFailure && Date.now() - this.lastFailure.at < failFastMs) return Promise.reject(this.lastFailure.error);
    this.opening ??= this.connect().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async connect(): Promise<void> {
    if (this.closed) throw new Error('the upstream link is closed');
    const transport = methodForwardingTransport((request, t) => this.forwardMethod(request, t));
    const client = ModuleClient.fromConnectionString(this.connectionString, transport);
    // The hub retries (in order, from its store); the SDK retrying on its own would reorder and duplicate.
    client.setRetryPolicy(new NoRetry());
    client.on('error', (error: Error) => this.callbacks.log('upstream client error', { module: this.moduleId, error: error.message }));
    client.on('disconnect', () => this.markDown(new Error('disconnected from IoT Hub')));
    try {
      await withDeadline(client.open(), operationTimeoutMs, `connecting ${this.moduleId} to IoT Hub`);
      // A named registration subscribes to methods (and resubscribes after reconnects); the transport forwards every name.
      client.onMethod('$edgehub-forward', () => undefined);
      const twin = await withDeadline(client.getTwin(), operationTimeoutMs, `reading the twin of ${this.moduleId}`);
      twin.on('properties.desired', (patch: unknown) => {
        if (isJsonObject(patch)) this.callbacks.desired(this.moduleId, patch);
      });
      this.client = client;
      this.twin = twin;
      this.connected = true;
      this.lastFailure = undefined;
      this.callbacks.state(this.moduleId, true);
    } catch (error) {
      await client.close().catch(() => undefined);
      const failure = error instanceof Error ? error : new Error(String(error));
      this.lastFailure = { at: Date.now(), error: failure };
      this.markDown(failure);
      throw error;
    }
  }

  private markDown(error: Error): void {
    const wasConnected = this.connected;
    this.connected = false;
    const client = this.client;
    this.client = undefined;
    this.twin = undefined;
    if (client) void client.close().catch(() => undefined);
    if (wasConnected) this.callbacks.state(this.moduleId, false, error);
  }

  private forwardMethod(request: MethodMessage, transport: InstanceType<typeof Mqtt>): void {
    const name = request.methods.methodName;
    const respond = (result: MethodResult) => {
      const response = new DeviceMethodResponse(request.requestId, transport);
      response.send(result.status, result.payload, (err?: Error) => {
        if (err) this.callbacks.log('could not answer a direct method upstream', { module: this.moduleId, method: name, error: err.message });
      });
    };
    this.callbacks.method(this.moduleId, name, methodPayload(request.body)).then(respond, (error: unknown) => {
      respond({ status: 504, payload: { message: error instanceof Error ? error.message : String(error) } });
    });
  }

  /** Sends one message as this module's telemetry; rejects (and marks the link down) on failure. */
  async send(message: RoutedMessage): Promise<void> {
    const ready = this.sendGate.then(() => this.open(), () => this.open());
    this.sendGate = ready.catch(() => undefined);
    await ready;
    const client = this.client;
    if (!client) throw new Error('the upstream link closed');
    try {
      await withDeadline(client.sendEvent(upstreamMessage(message)), operationTimeoutMs, `sending a message of ${this.moduleId} to IoT Hub`);
    } catch (error) {
      this.markDown(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }

  /** IoT Hub's copy of the twin (desired and reported, with `$version`s). */
  async readTwin(): Promise<{ desired: JsonObject; reported: JsonObject }> {
    await this.open();
    const twin = this.twin;
    if (!twin) throw new Error('the upstream link closed');
    try {
      await withDeadline(twin.get(), operationTimeoutMs, `reading the twin of ${this.moduleId}`);
    } catch (error) {
      this.markDown(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
    // The SDK's property objects carry an `update` method; JSON drops it.
    return JSON.parse(JSON.stringify({ desired: twin.properties.desired, reported: twin.properties.reported })) as { desired: JsonObject; reported: JsonObject };
  }

  async patchReported(patch: JsonObject): Promise<void> {
    await this.open();
    const twin = this.twin;
    if (!twin) throw new Error('the upstream link closed');
    try {
      await withDeadline(callback((done) => twin.properties.reported.update(patch, done)), operationTimeoutMs, `patching the reported properties of ${this.moduleId}`);
    } catch (error) {
      this.markDown(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    this.connected = false;
    if (client) await client.close().catch(() => undefined);
  }
}

/** The connection string of a module's link: IoT Hub's host (and gateway), this device, the derived key. */
export function moduleConnectionString(upstream: UpstreamSettings, deviceId: string, moduleId: string, rootKey: string): string {
  const gateway = upstream.gatewayHostName === undefined ? '' : `;GatewayHostName=${upstream.gatewayHostName}`;
  return `HostName=${upstream.hostName};DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${deriveModuleKey(rootKey, deviceId, moduleId)}${gateway}`;
}
