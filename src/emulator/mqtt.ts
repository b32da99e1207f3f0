// The MQTT side of the emulator: IoT Hub's device protocol on the shared broker of src/iothub-mqtt.
// This file adds what only the emulator does with it: the identity registry's keys, telemetry capture,
// twins applied to the registry, and admin-injected refusals.
import { IotHubBroker, TwinRequestError } from '../iothub-mqtt/index.ts';
import type { Identity, MethodResult, TelemetryMessage, TwinRequest, TwinResponse } from '../iothub-mqtt/index.ts';
import { HubError } from './errors.ts';
import { sasRefusal } from './registry.ts';
import type { IdentityRegistry } from './registry.ts';
import { applyReportedPatch, mqttTwinBody, TwinValidationError } from './twin.ts';
import type { JsonObject } from './twin.ts';

export { identityKey, parsePropertyBag, topicMatches } from '../iothub-mqtt/index.ts';
export type { ConnectionInfo, Identity, MethodResult, TelemetryMessage } from '../iothub-mqtt/index.ts';

export interface MqttHubOptions {
  registry: IdentityRegistry;
  /** Host names the hub answers to (its IP and DNS name); usernames and `sr` must use one. */
  hostNames: () => readonly string[];
  policyKeys: (keyName: string) => string[];
  /** Decides whether to refuse a connection (admin fault); returns the MQTT CONNACK code to send. */
  refuseConnack: (identity: Identity | undefined) => 3 | undefined;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

const capturedLimit = 10_000;
const hubFailure = (kind: 'DeviceNotOnline' | 'GatewayTimeout', message: string) => new HubError(kind, message);

export class MqttHub extends IotHubBroker {
  readonly telemetry: TelemetryMessage[] = [];
  private readonly registry: IdentityRegistry;

  constructor(options: MqttHubOptions) {
    super({
      name: 'emulator',
      hostNames: options.hostNames,
      keysFor: (identity, keyName) => this.keysFor(identity, keyName, options.policyKeys),
      exactAudience: true,
      refuseConnack: options.refuseConnack,
      onTelemetry: (_identity, message) => this.capture(message),
      onTwinRequest: (identity, request) => this.applyTwinRequest(identity, request),
      log: options.log,
    });
    this.registry = options.registry;
  }

  override invokeMethod(identity: Identity, methodName: string, payload: unknown, responseTimeoutSeconds: number, connectTimeoutSeconds: number): Promise<MethodResult> {
    return super.invokeMethod(identity, methodName, payload, responseTimeoutSeconds, connectTimeoutSeconds, hubFailure);
  }

  override waitForSubscription(identity: Identity, topic: string, timeoutMs: number): Promise<void> {
    return super.waitForSubscription(identity, topic, timeoutMs, hubFailure);
  }

  /** The registered identity's own keys, or a policy's; throws for unknown or disabled identities. */
  private keysFor(identity: Identity, keyName: string | undefined, policyKeys: (name: string) => string[]): string[] {
    const device = this.registry.findDevice(identity.deviceId);
    if (!device) throw new Error(`device ${identity.deviceId} is not registered`);
    if (device.status !== 'enabled') throw new Error(`device ${identity.deviceId} is disabled`);
    const module = identity.moduleId === undefined ? undefined : this.registry.findModule(identity.deviceId, identity.moduleId);
    if (identity.moduleId !== undefined && !module) throw new Error(`module ${identity.deviceId}/${identity.moduleId} is not registered`);
    const refusal = sasRefusal(module ?? device, module ? `module ${identity.deviceId}/${identity.moduleId}` : `device ${identity.deviceId}`);
    if (refusal) throw new Error(refusal);
    if (keyName !== undefined) return policyKeys(keyName);
    // IoT Hub refuses a device's key for a module's login: a module signs with its own keys only.
    return module ? [module.keys.primaryKey, module.keys.secondaryKey] : [device.keys.primaryKey, device.keys.secondaryKey];
  }

  private capture(received: TelemetryMessage): void {
    // The body may be a view into the connection's read buffer; a kept message owns its bytes.
    const message = { ...received, body: Buffer.from(received.body) };
    this.telemetry.push(message);
    if (this.telemetry.length > capturedLimit) this.telemetry.splice(0, this.telemetry.length - capturedLimit);
    this.emit('telemetry', message);
  }

  private applyTwinRequest(identity: Identity, request: TwinRequest): TwinResponse {
    try {
      const holder = this.registry.twinHolder(identity.deviceId, identity.moduleId);
      if (request.kind === 'get') return { status: 200, body: JSON.stringify(mqttTwinBody(holder.twin)) };
      const version = applyReportedPatch(holder.twin, request.patch, new Date().toISOString());
      this.registry.twinChanged(holder);
      this.emit('reportedPatch', { ...identity, patch: request.patch as JsonObject, version });
      return { status: 204, body: '', version };
    } catch (error) {
      if (error instanceof TwinValidationError) throw new TwinRequestError(400, 400004, error.message);
      if (error instanceof HubError) throw new TwinRequestError(error.status, error.numeric, error.message);
      throw error;
    }
  }
}
