// IoT Hub mode with several devices and credential faults: three devices in their own namespaces sync
// at once (one deployed with `iotedge-operator deploy`), a bad key gives IoTHubConnected=False
// Unauthorized without a retry storm, and a short-lived SAS is renewed while the sync goes on.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Registry } from 'azure-iothub';
import { main } from '../../src/cli/main.ts';
import { startHubEmulator, type HubEmulator } from '../../src/emulator/index.ts';
import { createTestNamespace, deleteTestNamespace, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { trustForServiceSdk } from '../integration/emulator/sdk.ts';
import { allRunning, bindDevice, condition, deploy, desiredVersionOf, manifest, serviceRegistry, until, untilReported } from './iothub-support.ts';
import { captureOutput } from '../support/secret-leaks.ts';

const cluster = testCluster();
let hub: HubEmulator;
let registry: Registry;
let namespaces: string[] = [];
let badNs: string;
let operator: RunningOperator;

beforeAll(async () => {
  hub = await startHubEmulator({ host: '127.0.0.62' });
  trustForServiceSdk(hub);
  registry = serviceRegistry(hub);
  await ensureCrd(cluster);
  namespaces = await Promise.all([1, 2, 3].map(() => createTestNamespace(cluster, 'iothub-dev')));
  badNs = await createTestNamespace(cluster, 'iothub-bad');
  for (const ns of [...namespaces, badNs]) hub.createEdgeDevice(ns);
  operator = await startTestOperator(await operatorKubeConfig(cluster, namespaces[0]!), [...namespaces, badNs], {}, {
    // A SAS valid for 20 s and renewed 10 s before expiry: the emulator disconnects expired tokens.
    twinSync: { timings: { backoffInitialMs: 200, backoffMaxMs: 2_000, tokenValidSeconds: 20, tokenRenewalMarginSeconds: 10, unauthorizedBackoffMs: 300_000, secretPollMs: 1_000 } },
  });
});

afterAll(async () => {
  await operator?.stop();
  await hub?.stop();
  await Promise.all([...namespaces, badNs].map((ns) => deleteTestNamespace(cluster, ns)));
});

describe('IoT Hub mode, several devices', () => {
  it('syncs three devices at once, one deployed with iotedge-operator deploy', async () => {
    await Promise.all(namespaces.map((ns) => bindDevice(cluster, hub, ns)));
    const dir = mkdtempSync(join(tmpdir(), 'iothub-deploy-'));
    const file = join(dir, 'deployment.json');
    const caFile = join(dir, 'ca.pem');
    writeFileSync(file, JSON.stringify(manifest({ viaCli: {} })));
    writeFileSync(caFile, hub.caCertPem);
    // The connection string comes from a file (never argv, where ps would show it).
    const csFile = join(dir, 'hub-connection-string');
    writeFileSync(csFile, hub.serviceConnectionString, { mode: 0o600 });
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['deploy', '--hub-connection-string-file', csFile, '--device', namespaces[0]!, '--ca-file', caFile, file], {
      stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stdin: async () => '',
    });
    captureOutput('deploy-cli', out.join('') + err.join(''));
    expect({ code, err: err.join('') }).toEqual({ code: 0, err: '' });
    expect(out.join('')).toContain(`to device ${namespaces[0]}`);
    await deploy(registry, namespaces[1]!, manifest({ two: {} }));
    await deploy(registry, namespaces[2]!, manifest({ three: {}, threeB: { startupOrder: 2 } }));
    const expected: Record<string, string[]> = { [namespaces[0]!]: ['viaCli'], [namespaces[1]!]: ['two'], [namespaces[2]!]: ['three', 'threeB'] };
    await Promise.all(namespaces.map((ns) => untilReported(hub, ns, 'its own modules running', (r) => allRunning(r, expected[ns]!, desiredVersionOf(hub, ns)))));
    for (const ns of namespaces) {
      const ed = await until(cluster, ns, 'Ready', (e) => condition(e, 'Ready')?.status === 'True');
      expect(Object.keys(ed.spec?.agent?.modules ?? {}).sort()).toEqual([...expected[ns]!].sort());
    }
  });

  it('renews a short-lived SAS and keeps following the twin past its expiry', async () => {
    const ns = namespaces[1]!;
    const connects: string[] = [];
    const onConnect = (info: { deviceId?: string; moduleId?: string }) => {
      if (info.deviceId === ns && info.moduleId === '$edgeAgent') connects.push(new Date().toISOString());
    };
    hub.on('connected', onConnect);
    try {
      // Wait out more than one token lifetime: the SDK must have reconnected with a fresh SAS.
      await until(cluster, ns, 'a renewed connection', () => connects.length >= 2, 90_000);
    } finally {
      hub.off('connected', onConnect);
    }
    await deploy(registry, ns, manifest({ two: { image: 'example.azurecr.io/two:2.0' } }));
    const version = desiredVersionOf(hub, ns);
    await untilReported(hub, ns, 'the change after renewal', (r) => allRunning(r, ['two'], version));
    const ed = await until(cluster, ns, 'connected', (e) => condition(e, 'IoTHubConnected')?.status === 'True');
    expect(ed.status?.iotHub?.connected).toBe(true);
  });

  it('reports a bad key as IoTHubConnected=False Unauthorized, without the key, and recovers when the Secret is fixed', async () => {
    const wrongKey = Buffer.alloc(32, 9).toString('base64');
    const bad = hub.deviceConnectionString(badNs).replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${wrongKey}`);
    await bindDevice(cluster, hub, badNs, bad);
    const ed = await until(cluster, badNs, 'Unauthorized', (e) => condition(e, 'IoTHubConnected')?.reason === 'Unauthorized');
    const c = condition(ed, 'IoTHubConnected')!;
    expect(c.status).toBe('False');
    expect(c.message).not.toContain(wrongKey);
    expect(JSON.stringify(ed.status)).not.toContain(wrongKey);
    // No retry storm: the next attempt waits five minutes unless the Secret changes.
    expect(c.message).toContain('retrying in 300 s or when the Secret changes');

    // Fixing the Secret wakes the sync before the five-minute backoff ends.
    await bindDevice(cluster, hub, badNs);
    await until(cluster, badNs, 'connected after the fix', (e) => condition(e, 'IoTHubConnected')?.status === 'True', 60_000);
  });
});
