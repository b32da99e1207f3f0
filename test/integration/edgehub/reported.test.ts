// The built-in hub in IoT Hub mode reports its connection table on the `$edgeHub` twin as edgeHub does
// (`schemaVersion`, `clients`, `lastDesiredStatus`): real ModuleClients connect to the hub, the emulator
// stands in for IoT Hub, and the service SDK's Registry reads the twin. No cluster.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ModuleClient as ModuleClientType } from 'azure-iot-device';
import type { Registry } from 'azure-iothub';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { eventually, openModule, registerDerivedIdentities, routesDocument, startHubTrustingEmulator, stopHub, writeHubFiles } from '../../support/edgehub.ts';
import type { HubFiles, HubProcess } from '../../support/edgehub.ts';
import { openModuleClient, startEmulatorWithRegistry } from '../emulator/sdk.ts';

const deviceId = 'edge-report-dev';
const staleAt = '2026-01-01T00:00:00.000Z';

interface ClientEntry {
  status: string;
  lastConnectedTimeUtc?: string;
  lastDisconnectedTimeUtc?: string;
}

interface HubReported {
  schemaVersion?: string;
  clients?: Record<string, ClientEntry>;
  lastDesiredStatus?: { code: number; description: string };
}

describe('built-in edge hub: $edgeHub reported properties in IoT Hub mode', () => {
  let emulator: HubEmulator;
  let registry: Registry;
  let files: HubFiles;
  let hub: HubProcess;
  const clients: ModuleClientType[] = [];

  /** $edgeHub's reported properties as the service SDK reads them. */
  const reported = async (): Promise<HubReported> => {
    const { responseBody } = await registry.getModuleTwin(deviceId, '$edgeHub');
    return JSON.parse(JSON.stringify(responseBody.properties.reported)) as HubReported;
  };
  const entry = async (moduleId: string): Promise<ClientEntry | undefined> => (await reported()).clients?.[`${deviceId}/${moduleId}`];

  beforeAll(async () => {
    ({ hub: emulator, registry } = await startEmulatorWithRegistry());
    emulator.createEdgeDevice(deviceId);
    files = writeHubFiles({
      deviceId,
      routes: routesDocument({ up: 'FROM /messages/modules/sensor/* INTO $upstream' }),
      upstreamConnectionString: emulator.deviceConnectionString(deviceId),
    });
    registerDerivedIdentities(emulator, files, ['sensor', 'filter']);
    // A table left from an earlier run of the hub, which the new one must clear.
    const previous = await openModuleClient(emulator, deviceId, '$edgeHub');
    const twin = await previous.getTwin();
    await new Promise<void>((resolve, reject) => twin.properties.reported.update(
      { schemaVersion: '1.0', clients: { [`${deviceId}/stale`]: { status: 'Connected', lastConnectedTimeUtc: staleAt } } },
      (err?: Error) => (err ? reject(err) : resolve()),
    ));
    await previous.close();
    expect(await entry('stale')).toEqual({ status: 'Connected', lastConnectedTimeUtc: staleAt });
    hub = await startHubTrustingEmulator(files, emulator);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    if (hub) await stopHub(hub);
    await emulator?.stop();
  });

  it('clears the clients of an earlier run at start, with schemaVersion 1.0 and lastDesiredStatus 200 for the routes', async () => {
    await eventually(async () => (await entry('stale')) === undefined, 'the stale client cleared');
    const now = await reported();
    expect(now.schemaVersion).toBe('1.0');
    expect(now.lastDesiredStatus).toEqual({ code: 200, description: '' });
  });

  it('reports a module Connected when it connects and Disconnected, keeping its connect time, when it leaves', async () => {
    const before = Date.now();
    const sensor = await openModule(files, hub, 'sensor', emulator.host);
    clients.push(sensor);
    await eventually(async () => (await entry('sensor'))?.status === 'Connected', 'sensor Connected in the $edgeHub twin');
    const connected = await entry('sensor') as ClientEntry;
    expect(Date.parse(connected.lastConnectedTimeUtc as string)).toBeGreaterThanOrEqual(before - 1000);
    expect(connected.lastDisconnectedTimeUtc).toBeUndefined();

    await sensor.close();
    await eventually(async () => (await entry('sensor'))?.status === 'Disconnected', 'sensor Disconnected in the $edgeHub twin');
    const left = await entry('sensor') as ClientEntry;
    expect(left.lastConnectedTimeUtc).toBe(connected.lastConnectedTimeUtc);
    expect(Date.parse(left.lastDisconnectedTimeUtc as string)).toBeGreaterThanOrEqual(Date.parse(connected.lastConnectedTimeUtc as string));
  });

  it('keeps the changes made while IoT Hub is unreachable and reports the latest state once it is back', async () => {
    emulator.admin.refuseConnections('tcp-close', {});
    emulator.admin.dropConnections({ deviceId });
    const filter = await openModule(files, hub, 'filter', emulator.host);
    clients.push(filter);
    // Longer than the hub's coalescing window: the patch was attempted and failed.
    await new Promise((r) => setTimeout(r, 2_500));
    emulator.admin.clearFaults();
    expect(await entry('filter')).toBeUndefined();
    await eventually(async () => (await entry('filter'))?.status === 'Connected', 'filter Connected in the $edgeHub twin after the outage', 90_000);
    expect((await entry('sensor'))?.status).toBe('Disconnected');
  });
});
