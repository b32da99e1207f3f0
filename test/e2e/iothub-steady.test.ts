// IoT Hub mode at steady state writes nothing: with edgeAgent's hourly full re-read of the twins forced to
// every 1.5 s, a converged device makes no write request to the API server and no reported patch to the hub.
// `npm run bench -- steady` runs the same for 10 minutes.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'azure-iothub';
import { startHubEmulator, type HubEmulator } from '../../src/emulator/index.ts';
import { createTestNamespace, deleteTestNamespace, eventually, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { trustForServiceSdk } from '../integration/emulator/sdk.ts';
import { allRunning, bindDevice, deploy, desiredVersionOf, manifest, serviceRegistry, untilReported } from './iothub-support.ts';

const cluster = testCluster();
let hub: HubEmulator;
let registry: Registry;
let ns: string;
let operator: RunningOperator;
const refreshMs = 1_500;

beforeAll(async () => {
  hub = await startHubEmulator({ host: '127.0.0.70' });
  trustForServiceSdk(hub);
  registry = serviceRegistry(hub);
  await ensureCrd(cluster);
  ns = await createTestNamespace(cluster, 'iothub-steady');
  hub.createEdgeDevice(ns);
  operator = await startTestOperator(await operatorKubeConfig(cluster, ns), [ns], {}, { twinSync: { timings: { refreshMs, backoffInitialMs: 200, backoffMaxMs: 2_000 } } });
  await bindDevice(cluster, hub, ns);
});
afterAll(async () => {
  await operator?.stop();
  await hub?.stop();
  await deleteTestNamespace(cluster, ns);
});

describe('IoT Hub mode at steady state', () => {
  it('writes nothing through many forced full re-reads of the twins', async () => {
    await deploy(registry, ns, manifest({ sensor: {}, filter: {} }));
    await untilReported(hub, ns, 'every module running', (r) => allRunning(r, ['sensor', 'filter'], desiredVersionOf(hub, ns)));
    // Let the last status and report writes of convergence settle: two refreshes with no write in between.
    await eventually('a quiet start', async () => {
      const before = operator.requests.length;
      await sleep(2 * refreshMs);
      return operator.requests.slice(before).every((r) => r.method === 'GET') ? true : undefined;
    }, 60_000);
    let edgeHubConnects = 0;
    let reportedPatches = 0;
    const onConnected = (identity: { deviceId: string; moduleId?: string }) => { if (identity.deviceId === ns && identity.moduleId === '$edgeHub') edgeHubConnects += 1; };
    const onReported = () => { reportedPatches += 1; };
    hub.on('connected', onConnected);
    hub.on('reportedPatch', onReported);
    const from = operator.requests.length;
    await sleep(10 * refreshMs);
    hub.off('connected', onConnected);
    hub.off('reportedPatch', onReported);
    // Each full re-read reads the device root key for the identity step: the refreshes did happen. None
    // connects as $edgeHub, whose twin is edgeHub's own.
    expect(operator.requests.slice(from).filter((r) => r.method === 'GET' && r.path.includes('/secrets/device-device-identity')).length).toBeGreaterThanOrEqual(5);
    expect(edgeHubConnects).toBe(0);
    expect(operator.requests.slice(from).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`)).toEqual([]);
    expect(reportedPatches).toBe(0);
  });
});
