// Helpers for driving the emulator with the real Azure IoT SDKs (MQTT device transport, REST service client).
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import device from 'azure-iot-device';
import type { ModuleClient as ModuleClientType, Twin } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import type { Registry } from 'azure-iothub';
import { startHubEmulator } from '../../../src/emulator/index.ts';
import type { HubEmulator } from '../../../src/emulator/index.ts';

/**
 * azure-iothub has no public CA option; in-process tests add the emulator CA to Node's default
 * trust store (NODE_EXTRA_CA_CERTS does the same for a new process; see docs/emulator.md).
 */
export function trustForServiceSdk(hub: HubEmulator): void {
  const current = getCACertificates('default');
  if (!current.includes(hub.caCertPem)) setDefaultCACertificates([...current, hub.caCertPem]);
}

/** An emulator on loopback and the service SDK's Registry on it, trusting its CA. */
export async function startEmulatorWithRegistry(): Promise<{ hub: HubEmulator; registry: Registry }> {
  const hub = await startHubEmulator();
  trustForServiceSdk(hub);
  return { hub, registry: iothub.Registry.fromConnectionString(hub.serviceConnectionString) };
}

/** A ModuleClient over MQTT that trusts the emulator CA, opened. */
export async function openModuleClient(hub: HubEmulator, deviceId: string, moduleId: string): Promise<ModuleClientType> {
  const client = device.ModuleClient.fromConnectionString(hub.moduleConnectionString(deviceId, moduleId), mqtt.Mqtt);
  await client.setOptions({ ca: hub.caCertPem });
  await client.open();
  return client;
}

export function updateReported(twin: Twin, patch: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve())));
}

/** Resolves with the first desired-properties event whose $version is at least `version`. */
export function desiredVersion(twin: Twin, version: number): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const listener = (patch: Record<string, unknown>) => {
      if (typeof patch.$version === 'number' && patch.$version >= version) {
        twin.removeListener('properties.desired', listener);
        resolve(patch);
      }
    };
    twin.on('properties.desired', listener);
  });
}

/** Resolves when `emitter` emits `event` with an argument satisfying `predicate`. */
export function nextEvent<T>(emitter: HubEmulator, event: string, predicate: (value: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const listener = (value: T) => {
      if (!predicate(value)) return;
      emitter.off(event, listener);
      resolve(value);
    };
    emitter.on(event, listener);
  });
}

export const { Message, ModuleClient } = device;
export const { Mqtt } = mqtt;
