// The sample modules (samples/modules) as the demo runs them, here as processes: the sensor and the filter
// connect with ModuleClient.fromEnvironment() to the built-in hub (`iotedge-operator edgehub`, a real process)
// with TLS verified against the device CA; the demo deployment's own routes carry the hot readings to the
// filter and its alerts to IoT Hub (the project's emulator). What the modules log is what the demo shows.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from '../../scripts/cluster/control-plane.ts';
import { deliveredOnRoute, parsePrometheus } from '../../scripts/demo/flow.ts';
import { startHubEmulator, type HubEmulator } from '../../src/emulator/index.ts';
import { eventually, moduleConnectionString, registerDerivedIdentities, startHubTrustingEmulator, stopHub, writeHubFiles, type HubFiles, type HubProcess } from '../support/edgehub.ts';

const deviceId = 'samples-device';
const sensorId = 'SimulatedTemperatureSensor';
const filterId = 'filter';
const readings = 40;
const demoManifest = JSON.parse(readFileSync(join(repoRoot, 'manifests/examples/demo-deployment.json'), 'utf8')) as {
  modulesContent: { $edgeHub: { 'properties.desired': { routes: Record<string, { route: string }> } } };
};
const hubDesired = demoManifest.modulesContent.$edgeHub['properties.desired'];

interface ModuleProcess { child: ChildProcess; lines: Record<string, unknown>[] }

/** Runs a sample module's main.ts as its image does, with the env the operator gives a module pod. */
function startModule(files: HubFiles, hub: HubProcess, dir: string, moduleId: string, env: Record<string, string>): ModuleProcess {
  const child = spawn(process.execPath, [join(repoRoot, 'samples/modules', dir, 'main.ts')], {
    env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1', EdgeHubConnectionString: moduleConnectionString(files, hub, moduleId), EdgeModuleCACertificateFile: files.caFile, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
    }
  });
  return { child, lines };
}

const logged = (m: ModuleProcess, msg: string) => m.lines.filter((l) => l.msg === msg);

describe('the sample modules through the built-in hub to IoT Hub, on the demo\'s routes', () => {
  let emulator: HubEmulator;
  let files: HubFiles;
  let hub: HubProcess;
  const modules: ModuleProcess[] = [];

  beforeAll(async () => {
    emulator = await startHubEmulator();
    emulator.createEdgeDevice(deviceId);
    files = writeHubFiles({ deviceId, routes: JSON.stringify(hubDesired), upstreamConnectionString: emulator.deviceConnectionString(deviceId) });
    registerDerivedIdentities(emulator, files, [sensorId, filterId]);
    hub = await startHubTrustingEmulator(files, emulator);
  });

  afterAll(async () => {
    for (const m of modules) {
      m.child.kill('SIGTERM');
      await new Promise((r) => (m.child.exitCode === null ? m.child.once('exit', r) : r(undefined)));
    }
    if (hub) await stopHub(hub);
    await emulator?.stop();
  });

  it('sensor readings above 25 °C reach the filter, and each one it forwards reaches IoT Hub as the filter\'s telemetry', async () => {
    const filter = startModule(files, hub, 'filter-module', filterId, {});
    modules.push(filter);
    await eventually(() => logged(filter, 'connected').length === 1, 'the filter connected');
    const sensor = startModule(files, hub, 'simulated-temperature-sensor', sensorId, { MessageCount: String(readings), SendInterval: '0.05' });
    modules.push(sensor);
    await eventually(() => logged(sensor, 'done sending').length === 1, `the sensor sent ${readings} readings`);

    const hot = logged(sensor, 'sent').map((l) => l.temperature as number).filter((t) => t > 25);
    expect(logged(sensor, 'sent')).toHaveLength(readings);
    expect(hot.length).toBeGreaterThan(0);
    await eventually(() => emulator.admin.messages({ deviceId }).length >= hot.length, `${hot.length} alerts in the emulator`).catch((error: Error) => {
      const seen = `the emulator has ${emulator.admin.messages({ deviceId }).length}; filter log: ${JSON.stringify(filter.lines.slice(-6))}; hub log: ${JSON.stringify(hub.logs.slice(-6))}`;
      throw new Error(`${error.message}: ${seen}`);
    });
    const upstream = emulator.admin.messages({ deviceId });
    expect(upstream.map((m) => (JSON.parse(m.body.toString()) as { machine: { temperature: number } }).machine.temperature)).toEqual(hot);
    expect(new Set(upstream.map((m) => m.moduleId))).toEqual(new Set([filterId]));
    expect(upstream.every((m) => m.topic.includes('MessageType=Alert'))).toBe(true);

    // The route's WHERE kept the cool readings from the filter: it received exactly the hot ones and forwarded each.
    expect(logged(filter, 'received').map((l) => l.temperature)).toEqual(hot);
    expect(logged(filter, 'forwarded')).toHaveLength(hot.length);
    // What the demo's live table reads from the hub's metrics.
    const metrics = parsePrometheus(await (await fetch(`${hub.metricsUrl}/metrics`)).text());
    expect(deliveredOnRoute(metrics, hubDesired.routes.sensorToFilter!.route)).toBe(hot.length);
    expect(deliveredOnRoute(metrics, hubDesired.routes.filterToUpstream!.route)).toBe(hot.length);
  });
});
