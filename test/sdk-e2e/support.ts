// Shared pieces of the SDK fidelity harness (npm run test:sdk-e2e, see test/sdk-e2e/README.md).
// Each scenario file starts its own emulator in-process, trusts its CA the way a machine trusts a real
// hub's (Node's default CA store, so neither SDK is given a `ca` option), and drives it with the real
// azure-iot-device, azure-iot-device-mqtt and azure-iothub packages.
import { randomUUID } from 'node:crypto';
import common from 'azure-iot-common';
import device from 'azure-iot-device';
import type { Client as DeviceClientType, Twin as DeviceTwin } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import type { Client as ServiceClientType, Registry as RegistryType } from 'azure-iothub';
import { startHubEmulator } from '../../src/emulator/index.ts';
import type { HubEmulator, TelemetryMessage } from '../../src/emulator/index.ts';
import { trustForServiceSdk } from '../integration/emulator/sdk.ts';

export type TransportCtor = typeof mqtt.Mqtt | typeof mqtt.MqttWs;

/** The device transports the emulator serves; AMQP and the HTTP device transport are not emulated. */
export const transports = { Mqtt: mqtt.Mqtt, MqttWs: mqtt.MqttWs } as const;
export type TransportName = keyof typeof transports;

export const { Message } = common;
export const { errors, NoRetry } = common;
export const { Client: DeviceClient, ModuleClient, SharedAccessSignature: DeviceSas, ConnectionString: DeviceConnectionString } = device;
export const { Registry, Client: ServiceClient, JobClient, SharedAccessSignature: ServiceSas, ConnectionString: ServiceConnectionString } = iothub;

export interface HarnessHub {
  hub: HubEmulator;
  /** The hub's `HostName` as connection strings and SAS `sr` carry it. */
  host: string;
  connectionString: string;
  registry: RegistryType;
}

/** Starts an emulator whose CA this process trusts by default, as a machine trusts IoT Hub's. */
export async function startTrustedHub(): Promise<HarnessHub> {
  const hub = await startHubEmulator({ log: () => undefined });
  trustForServiceSdk(hub);
  const connectionString = hub.serviceConnectionString;
  return { hub, host: hub.host, connectionString, registry: Registry.fromConnectionString(connectionString) };
}

/** An id no other scenario uses, with a readable prefix. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

/** A base64 key as the SDK suite makes them: from random text. */
export function randomKey(): string {
  return Buffer.from(randomUUID()).toString('base64');
}

export function inAnHour(): number {
  return Math.ceil(Date.now() / 1000) + 3600;
}

/** A device SAS token string signed with `key`, valid until `expiry` (seconds since the epoch). */
export function deviceSas(host: string, deviceId: string, key: string, expiry = inAnHour()): string {
  return DeviceSas.create(host, deviceId, key, expiry).toString();
}

export interface SasDevice {
  deviceId: string;
  primaryKey: string;
  connectionString: string;
}

/** Registers a device with explicit symmetric keys (the SDK suite's "SAS" and "symmetric key" devices). */
export async function createKeyDevice(registry: RegistryType, host: string, prefix: string): Promise<SasDevice> {
  const deviceId = uniqueId(prefix);
  const primaryKey = randomKey();
  await registry.create({
    deviceId,
    status: 'enabled',
    authentication: { type: 'sas', symmetricKey: { primaryKey, secondaryKey: randomKey() } },
  } as never);
  return { deviceId, primaryKey, connectionString: `HostName=${host};DeviceId=${deviceId};SharedAccessKey=${primaryKey}` };
}

export async function deleteDeviceQuietly(registry: RegistryType, deviceId: string | undefined): Promise<void> {
  if (deviceId === undefined) return;
  try {
    await registry.delete(deviceId);
  } catch {
    // Cleanup only: the scenario under test may already have removed it.
  }
}

export async function closeQuietly(client: { close(): Promise<unknown> } | undefined): Promise<void> {
  if (!client) return;
  try {
    await client.close();
  } catch {
    // Cleanup only.
  }
}

/** The SDK's twin patch callback as a promise. */
export function reportProperties(twin: DeviceTwin, patch: Record<string, unknown> | null): Promise<void> {
  return new Promise((resolve, reject) => twin.properties.reported.update(patch as never, (err?: Error) => (err ? reject(err) : resolve())));
}

/** Resolves with the device twin's whole desired section after the first desired event satisfying `until`. */
export function desiredEvent(twin: DeviceTwin, until: (patch: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const listener = (patch: Record<string, unknown>) => {
      if (!until(patch)) return;
      twin.removeListener('properties.desired', listener);
      resolve(twin.properties.desired as Record<string, unknown>);
    };
    twin.on('properties.desired', listener);
  });
}

/** Client.updateSharedAccessSignature takes only a callback (it returns nothing to await). */
export function renewSas(client: DeviceClientType, sas: string): Promise<void> {
  return new Promise((resolve, reject) => client.updateSharedAccessSignature(sas, (err?: Error) => (err ? reject(err) : resolve())));
}

/** A JSON value without `$`-prefixed members or functions: how the SDK suite compares twin sections. */
export function withoutMetadata(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutMetadata);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key, member]) => !key.startsWith('$') && typeof member !== 'function')
        .map(([key, member]) => [key, withoutMetadata(member)]),
    );
  }
  return value;
}

/** Waits until the device identity is subscribed to its desired-property notifications. */
export function desiredSubscribed(hub: HubEmulator, deviceId: string, moduleId?: string): Promise<void> {
  return hub.admin.waitForSubscription({ deviceId, moduleId }, '$iothub/twin/PATCH/properties/desired/?$version=1');
}

/** Waits until the identity is subscribed to direct method requests. */
export function methodsSubscribed(hub: HubEmulator, deviceId: string, moduleId?: string): Promise<void> {
  return hub.admin.waitForSubscription({ deviceId, moduleId }, '$iothub/methods/POST/any/?$rid=1');
}

/** The device-to-cloud message the emulator captured for this identity whose body is `body` (in place of Event Hubs). */
export function telemetryWithBody(hub: HubEmulator, deviceId: string, moduleId: string | undefined, body: Buffer): Promise<TelemetryMessage> {
  return hub.admin.waitForMessage((m) => m.deviceId === deviceId && m.moduleId === moduleId && m.body.equals(body), 20_000);
}

export type { DeviceClientType, DeviceTwin, HubEmulator, RegistryType, ServiceClientType };
