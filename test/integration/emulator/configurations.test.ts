/* eslint-disable @typescript-eslint/no-explicit-any -- the SDK types configurations and twins loosely; these tests read untyped JSON */
// Configurations (automatic and layered IoT Edge deployments) against the real azure-iothub Registry:
// CRUD with etags, targetCondition over tags, priority, layered merge, re-evaluation when tags change,
// systemMetrics and custom metrics, and the desired notification a module client receives.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Registry } from 'azure-iothub';
import { startHubEmulator } from '../../../src/emulator/index.ts';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { desiredVersion, openModuleClient, startEmulatorWithRegistry } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
});

afterAll(async () => {
  await hub.stop();
});

function agentDesired(modules: Record<string, unknown>): Record<string, unknown> {
  return {
    schemaVersion: '1.1',
    runtime: { type: 'docker', settings: {} },
    systemModules: { edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5' } } },
    modules,
  };
}

function sensor(image: string): Record<string, unknown> {
  return { version: '1.0', type: 'docker', status: 'running', restartPolicy: 'always', settings: { image } };
}

function baseDeployment(id: string, targetCondition: string, priority: number, image: string): any {
  return {
    id,
    targetCondition,
    priority,
    labels: { team: 'emuconfig' },
    content: {
      modulesContent: {
        $edgeAgent: { 'properties.desired': agentDesired({ sensor: sensor(image) }) },
        $edgeHub: { 'properties.desired': { schemaVersion: '1.1', routes: { up: 'FROM /messages/* INTO $upstream' }, storeAndForwardConfiguration: { timeToLiveSecs: 7200 } } },
      },
    },
  };
}

async function desired(deviceId: string, moduleId: string): Promise<any> {
  const { $metadata: _m, $version: _v, ...rest } = (await registry.getModuleTwin(deviceId, moduleId)).responseBody.properties.desired as any;
  return rest;
}

async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean): Promise<T> {
  let value = await read();
  for (let i = 0; i < 100 && !accept(value); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await read();
  }
  return value;
}

async function tag(deviceId: string, tags: Record<string, unknown>): Promise<void> {
  const twin = (await registry.getTwin(deviceId)).responseBody;
  await registry.updateTwin(deviceId, { tags } as never, twin.etag);
}

describe('configurations CRUD with azure-iothub', () => {
  const adm = { id: 'adm-crud', content: { deviceContent: { 'properties.desired': { prop1: 'foo' } } }, targetCondition: '', priority: 20 };

  it('adds, reads, lists, updates with an etag, force-updates and removes a configuration', async () => {
    await registry.addConfiguration({ ...adm } as never);
    const found = (await registry.getConfiguration(adm.id)).responseBody as any;
    expect(found).toMatchObject({ id: adm.id, content: adm.content, priority: 20, schemaVersion: '1.0', etag: expect.any(String) });
    expect((await registry.getConfigurations()).responseBody.map((c: any) => c.id)).toContain(adm.id);

    found.priority = 99;
    await registry.updateConfiguration(found);
    expect((await registry.getConfiguration(adm.id)).responseBody.priority).toBe(99);
    await expect(registry.updateConfiguration({ ...found, priority: 1 })).rejects.toMatchObject({ name: 'InvalidEtagError' });
    await registry.updateConfiguration({ ...adm, priority: 7 } as never, true);
    expect((await registry.getConfiguration(adm.id)).responseBody.priority).toBe(7);

    await expect(registry.addConfiguration({ ...adm } as never)).rejects.toMatchObject({ name: 'DeviceAlreadyExistsError' });
    await registry.removeConfiguration(adm.id);
    await expect(registry.getConfiguration(adm.id)).rejects.toMatchObject({ message: 'Not found' });
  });

  it('refuses changed content, a bad id, a bad condition and a bad metric query with 400', async () => {
    await registry.addConfiguration(baseDeployment('immutable', "tags.none = 'x'", 1, 'a:1'));
    const current = (await registry.getConfiguration('immutable')).responseBody as any;
    current.content.modulesContent.$edgeHub['properties.desired'].routes = {};
    await expect(registry.updateConfiguration(current)).rejects.toMatchObject({ name: 'ArgumentError', responseBody: expect.stringContaining('cannot be changed') });
    await expect(registry.addConfiguration(baseDeployment('Upper-Case', '', 1, 'a:1'))).rejects.toMatchObject({ name: 'ArgumentError' });
    await expect(registry.addConfiguration(baseDeployment('bad-condition', 'tags.x = ', 1, 'a:1'))).rejects.toMatchObject({
      name: 'ArgumentError',
      responseBody: expect.stringContaining('ends early'),
    });
    await expect(registry.addConfiguration({ ...baseDeployment('bad-metric', '', 1, 'a:1'), metrics: { queries: { m: 'SELECT deviceId FROM' } } })).rejects.toMatchObject({ name: 'ArgumentError' });
    await registry.removeConfiguration('immutable');
  });
});

describe('automatic and layered deployments', () => {
  const devices = ['dep-a', 'dep-b', 'dep-c'];

  beforeAll(async () => {
    for (const deviceId of devices) await registry.create({ deviceId, capabilities: { iotEdge: true } } as never);
    await registry.create({ deviceId: 'dep-leaf', capabilities: { iotEdge: false } } as never);
    await tag('dep-a', { env: 'prod', ring: 1 });
    await tag('dep-b', { env: 'prod', ring: 2 });
    await tag('dep-c', { env: 'test', ring: 1 });
    await tag('dep-leaf', { env: 'prod' });
  });

  it('writes a base deployment to the $edgeAgent and $edgeHub twins of the targeted edge devices only', async () => {
    const before = await registry.getModuleTwin('dep-c', '$edgeAgent');
    const agent = await openModuleClient(hub, 'dep-a', '$edgeAgent');
    try {
      const twin = await agent.getTwin();
      const pushed = desiredVersion(twin, 2);
      await registry.addConfiguration({ ...baseDeployment('base-prod', "tags.env = 'prod'", 10, 'sensor:1'), metrics: { queries: { ring1: "SELECT deviceId FROM devices WHERE tags.ring = 1 AND tags.env = 'prod'" } } });
      expect((await pushed).modules).toEqual({ sensor: sensor('sensor:1') });
    } finally {
      await agent.close();
    }
    for (const deviceId of ['dep-a', 'dep-b']) {
      expect(await desired(deviceId, '$edgeAgent')).toEqual(agentDesired({ sensor: sensor('sensor:1') }));
      expect((await desired(deviceId, '$edgeHub')).routes).toEqual({ up: 'FROM /messages/* INTO $upstream' });
      expect((await registry.getModuleTwin(deviceId, '$edgeAgent')).responseBody).toMatchObject({ configurations: { 'base-prod': { status: 'Applied' } } });
    }
    expect((await registry.getModuleTwin('dep-c', '$edgeAgent')).responseBody.properties.desired.$version).toBe(before.responseBody.properties.desired.$version);
    const configuration = (await registry.getConfiguration('base-prod')).responseBody as any;
    expect(configuration.systemMetrics.results).toEqual({ targetedCount: 2, appliedCount: 2 });
    expect(configuration.systemMetrics.queries.appliedCount).toContain("configurations.[[base-prod]].status = 'Applied'");
    expect(configuration.metrics.results).toEqual({ ring1: 1 });
  });

  it('merges a layered deployment on top, and its paths win over the base', async () => {
    await registry.addConfiguration({
      id: 'layer-filter',
      targetCondition: "tags.env = 'prod' AND tags.ring = 1",
      priority: 20,
      content: {
        modulesContent: {
          $edgeAgent: { 'properties.desired.modules.filter': sensor('filter:1'), 'properties.desired.modules.sensor.settings.image': 'sensor:layered' },
          $edgeHub: { 'properties.desired.routes.filterUp': 'FROM /messages/modules/filter/* INTO $upstream' },
        },
      },
    } as never);
    const agent = await desired('dep-a', '$edgeAgent');
    expect(agent.modules).toEqual({ sensor: sensor('sensor:layered'), filter: sensor('filter:1') });
    expect(agent.schemaVersion).toBe('1.1');
    expect((await desired('dep-a', '$edgeHub')).routes).toEqual({ up: 'FROM /messages/* INTO $upstream', filterUp: 'FROM /messages/modules/filter/* INTO $upstream' });
    expect((await desired('dep-b', '$edgeAgent')).modules).toEqual({ sensor: sensor('sensor:1') });
    expect((await registry.getConfiguration('layer-filter')).responseBody.systemMetrics!.results).toEqual({ targetedCount: 1, appliedCount: 1 });
  });

  it('applies only the highest-priority base; the other base is Targeted there', async () => {
    await registry.addConfiguration(baseDeployment('base-ring2', 'tags.ring = 2', 50, 'sensor:2'));
    expect((await desired('dep-b', '$edgeAgent')).modules).toEqual({ sensor: sensor('sensor:2') });
    expect((await registry.getModuleTwin('dep-b', '$edgeAgent')).responseBody).toMatchObject({
      configurations: { 'base-prod': { status: 'Targeted' }, 'base-ring2': { status: 'Applied' } },
    });
    expect((await registry.getConfiguration('base-prod')).responseBody.systemMetrics!.results).toEqual({ targetedCount: 2, appliedCount: 1 });
    // Lowering its priority below base-prod's hands dep-b back.
    const ring2 = (await registry.getConfiguration('base-ring2')).responseBody;
    await registry.updateConfiguration({ ...ring2, priority: 5 });
    expect((await desired('dep-b', '$edgeAgent')).modules).toEqual({ sensor: sensor('sensor:1') });
  });

  it('re-evaluates when tags change: a device that starts matching gets the content, one that stops keeps it', async () => {
    await tag('dep-c', { env: 'prod' });
    const agent = await eventually(() => desired('dep-c', '$edgeAgent'), (d) => d.modules !== undefined);
    expect(agent.modules).toEqual({ sensor: sensor('sensor:layered'), filter: sensor('filter:1') });
    expect((await registry.getConfiguration('base-prod')).responseBody.systemMetrics!.results).toEqual({ targetedCount: 3, appliedCount: 3 });

    await tag('dep-c', { env: 'test' });
    const status = await eventually(async () => (await registry.getModuleTwin('dep-c', '$edgeAgent')).responseBody as any, (t) => t.configurations === undefined);
    expect(status.configurations).toBeUndefined();
    expect((await desired('dep-c', '$edgeAgent')).modules).toEqual({ sensor: sensor('sensor:layered'), filter: sensor('filter:1') });
  });

  it('moves devices to the next deployment when one is removed, and lists deployments with queries', async () => {
    await registry.removeConfiguration('base-prod');
    expect((await desired('dep-b', '$edgeAgent')).modules).toEqual({ sensor: sensor('sensor:2') });
    // dep-a has no base left: it keeps what it had, and the layer is only Targeted.
    expect((await desired('dep-a', '$edgeAgent')).modules).toEqual({ sensor: sensor('sensor:layered'), filter: sensor('filter:1') });
    expect((await registry.getModuleTwin('dep-a', '$edgeAgent')).responseBody).toMatchObject({ configurations: { 'layer-filter': { status: 'Targeted' } } });
    const applied = await registry.createQuery("SELECT deviceId FROM devices.modules WHERE moduleId = '$edgeAgent' AND configurations.[[base-ring2]].status = 'Applied'").next();
    expect(applied.result).toEqual([{ deviceId: 'dep-b' }]);
  });

  it('leaves applyConfigurationContent working on a device no deployment targets', async () => {
    await registry.create({ deviceId: 'dep-single', capabilities: { iotEdge: true } } as never);
    await registry.applyConfigurationContentOnDevice('dep-single', { modulesContent: { $edgeAgent: { 'properties.desired': agentDesired({}) }, $edgeHub: { 'properties.desired': { schemaVersion: '1.1', routes: {} } } } });
    await new Promise((resolve) => setImmediate(resolve));
    expect(await desired('dep-single', '$edgeAgent')).toEqual(agentDesired({}));
  });
});

describe('configurations in the state file', () => {
  it('restores configurations after a restart without rewriting twins that are up to date', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const stateFile = join(mkdtempSync(join(tmpdir(), 'emuconfig-state-')), 'hub.json');
    const first = await startHubEmulator({ stateFile });
    first.createEdgeDevice('persisted');
    first.updateTwin('persisted', undefined, { tags: { env: 'kept' } }, undefined, 'merge');
    first.configurations.put('kept-base', baseDeployment('kept-base', "tags.env = 'kept'", 1, 'kept:1'), undefined);
    const version = (first.admin.twin('persisted', '$edgeAgent').properties as any).desired.$version;
    await first.stop();
    const second = await startHubEmulator({ stateFile });
    try {
      await new Promise((resolve) => setImmediate(resolve));
      expect(second.configurations.get('kept-base')).toMatchObject({ id: 'kept-base', systemMetrics: { results: { targetedCount: 1, appliedCount: 1 } } });
      expect((second.admin.twin('persisted', '$edgeAgent').properties as any).desired.$version).toBe(version);
    } finally {
      await second.stop();
    }
  });
});
