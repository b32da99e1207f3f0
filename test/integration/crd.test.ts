// The EdgeDeployment CRD against the real API server: it installs, explains itself, accepts the example,
// rejects mistakes with the messages the CRD promises, and keeps status apart from spec.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { load } from 'js-yaml';
import { edgeDeploymentCrdName } from '../../src/api/edge-deployment.ts';
import { resourceFromManifest } from '../../src/manifest/resource.ts';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { createTestNamespace, deleteTestNamespace, kubectl, testCluster } from '../support/cluster.ts';
import { installCrds } from '../../scripts/cluster/control-plane.ts';

const repoRoot = join(import.meta.dirname, '../..');
const cluster = testCluster();
let ns: string;

const example = load(readFileSync(join(repoRoot, 'manifests/examples/simulated-temperature-sensor.yaml'), 'utf8')) as EdgeDeployment;

/** The example under another name, changed by `edit`. */
function variant(name: string, edit: (resource: EdgeDeployment) => void = () => undefined): EdgeDeployment {
  const resource = structuredClone(example);
  resource.metadata = { name };
  edit(resource);
  return resource;
}

function apply(resource: unknown): Promise<string> {
  return kubectl(cluster, ['apply', '--server-side', '-n', ns, '-f', '-'], JSON.stringify(resource));
}

async function get(name: string): Promise<EdgeDeployment> {
  return JSON.parse(await kubectl(cluster, ['get', 'edgedeployment', name, '-n', ns, '-o', 'json'])) as EdgeDeployment;
}

/** The API server's refusal of `resource`, which must not be stored. */
async function rejection(resource: EdgeDeployment): Promise<string> {
  const failure = await apply(resource).then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  if (failure === undefined) throw new Error(`the API server accepted ${resource.metadata.name}`);
  return failure;
}

function agentOf(resource: EdgeDeployment): NonNullable<EdgeDeployment['spec']['agent']> {
  if (!resource.spec.agent) throw new Error('the example has no agent');
  return resource.spec.agent;
}

function sensorOf(resource: EdgeDeployment) {
  const sensor = agentOf(resource).modules?.SimulatedTemperatureSensor;
  if (!sensor) throw new Error('the example has no SimulatedTemperatureSensor');
  return sensor;
}

beforeAll(async () => {
  await installCrds((args) => kubectl(cluster, args), join(repoRoot, 'crds'));
  ns = await createTestNamespace(cluster, 'crd');
});
afterAll(async () => {
  await deleteTestNamespace(cluster, ns);
});

describe('EdgeDeployment CRD on the API server', () => {
  it('is Established with names accepted', async () => {
    const crd = JSON.parse(await kubectl(cluster, ['get', 'crd', edgeDeploymentCrdName, '-o', 'json'])) as {
      status: { conditions: Array<{ type: string; status: string }> };
    };
    const status = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
    expect(status).toMatchObject({ Established: 'True', NamesAccepted: 'True' });
  });

  it('explains spec and spec.agent.modules with their descriptions', async () => {
    const spec = await kubectl(cluster, ['explain', 'edgedeployment.spec']);
    expect(spec).toContain('GROUP:      iotedge-operator.io');
    expect(spec).toMatch(/The device's desired state\. agent and hub mirror the deployment manifest's/);
    expect(spec).toMatch(/deviceId\s+<string>\n\s+The IoT Hub device id\. Defaults to the namespace name\./);
    const modules = await kubectl(cluster, ['explain', 'edgedeployment.spec.agent.modules']);
    expect(modules).toContain('The user modules by module id');
    expect(modules).toMatch(/restartPolicy\s+<string>\n\s+enum: never, on-failure, on-unhealthy, always/);
    expect(modules).toMatch(/settings\s+<Object> -required-/);
    // The short name resolves too.
    expect(await kubectl(cluster, ['explain', 'edep.status.modules.runtimeStatus'])).toContain("edgeAgent's runtime status");
  });

  it('accepts the example and stores it as written, createOptions objects included', async () => {
    await apply(variant('example'));
    const stored = await get('example');
    expect(stored.spec).toEqual(example.spec);
    expect(agentOf(stored).systemModules.edgeHub?.settings.createOptions).toEqual({
      HostConfig: { PortBindings: { '5671/tcp': [{ HostPort: '5671' }], '8883/tcp': [{ HostPort: '8883' }], '443/tcp': [{ HostPort: '443' }] } },
    });
  });

  it('accepts every module id IoT Hub accepts, up to 128 characters', async () => {
    const ids = ['m'.repeat(128), "_odd.id(1)=@'$", 'Filter2'];
    await apply(variant('odd-ids', (r) => (agentOf(r).modules = Object.fromEntries(ids.map((id) => [id, sensorOf(r)])))));
    expect(Object.keys(agentOf(await get('odd-ids')).modules ?? {}).sort()).toEqual([...ids].sort());
  });

  it('accepts createOptions as the manifest JSON string as well as an object', async () => {
    const createOptions = '{"HostConfig":{"Binds":["/data:/data"]}}';
    await apply(variant('string-create-options', (r) => (sensorOf(r).settings.createOptions = createOptions)));
    expect(sensorOf(await get('string-create-options')).settings.createOptions).toBe(createOptions);
    await apply(variant('object-create-options', (r) => (sensorOf(r).settings.createOptions = { Env: ['A=1'], Labels: { a: 'b' } })));
    expect(sensorOf(await get('object-create-options')).settings.createOptions).toEqual({ Env: ['A=1'], Labels: { a: 'b' } });
  });

  it('fills in the runtime and module type, which can only be docker', async () => {
    await apply(
      variant('defaults', (r) => {
        delete agentOf(r).runtime;
        delete sensorOf(r).type;
      }),
    );
    const stored = await get('defaults');
    expect(sensorOf(stored).type).toBe('docker');
    expect(agentOf(stored).runtime).toBeUndefined();
    const other = variant('not-docker', (r) => ((sensorOf(r) as { type: string }).type = 'moby'));
    expect(await rejection(other)).toContain('spec.agent.modules.SimulatedTemperatureSensor.type: Unsupported value: "moby": supported values: "docker"');
  });

  it('rejects a spec with neither agent nor an IoT Hub binding', async () => {
    const empty = variant('empty', (r) => (r.spec = { deviceId: 'd1' }));
    expect(await rejection(empty)).toContain('spec.agent is required unless spec.iotHub binds this resource to an IoT Hub device twin');
    await apply(variant('twin-bound', (r) => (r.spec = { iotHub: { connectionStringSecretRef: { name: 'device', key: 'connectionString' } } })));
    expect((await get('twin-bound')).spec.iotHub?.connectionStringSecretRef.key).toBe('connectionString');
  });

  it.each([
    [
      'system-module-in-modules',
      (r: EdgeDeployment) => (agentOf(r).modules = { ...agentOf(r).modules, edgeHub: sensorOf(r) }),
      'spec.agent.modules: Invalid value: "object": edgeAgent and edgeHub are system modules; declare them under agent.systemModules, not agent.modules',
    ],
    [
      'long-module-id',
      (r: EdgeDeployment) => (agentOf(r).modules = { ['m'.repeat(129)]: sensorOf(r) }),
      "a module id may have at most 128 characters (IoT Hub's limit)",
    ],
    [
      'bad-module-id',
      (r: EdgeDeployment) => (agentOf(r).modules = { 'my module': sensorOf(r) }),
      "a module id may contain only ASCII letters, digits and - . + % _ # * ? ! ( ) , : = @ $ ' and must not start with $",
    ],
    [
      'blank-image',
      (r: EdgeDeployment) => (sensorOf(r).settings.image = ' '),
      'spec.agent.modules[SimulatedTemperatureSensor].settings.image: Invalid value: "object": image must be a non-empty container image reference without spaces',
    ],
    [
      'bad-route',
      (r: EdgeDeployment) => (r.spec.hub = { schemaVersion: '1.1', routes: { up: { route: 'SELECT * INTO $upstream' } } }),
      'spec.hub.routes[up].route: Invalid value: "string": a route must read FROM <source> [WHERE <condition>] INTO <sink>',
    ],
    [
      'priority-on-1.0',
      (r: EdgeDeployment) => (r.spec.hub = { schemaVersion: '1.0', routes: { up: { route: 'FROM /messages/* INTO $upstream', priority: 1 } } }),
      'spec.hub: Invalid value: "object": route priority and timeToLiveSecs need hub.schemaVersion 1.1',
    ],
    [
      'inline-password',
      (r: EdgeDeployment) => {
        const credential = { address: 'acr.example.io', username: 'u', password: 'hunter2', passwordSecretRef: { name: 'regcred', key: 'acr' } };
        agentOf(r).runtime = { type: 'docker', settings: { registryCredentials: { acr: credential as never } } };
      },
      'registry passwords are not allowed in an EdgeDeployment: put the password in a Secret and name it with passwordSecretRef',
    ],
  ])('rejects %s with a clear message (CEL)', async (name, edit, message) => {
    const failure = await rejection(variant(name, edit));
    expect(failure).toContain(message);
    expect(failure).not.toContain('hunter2');
  });

  it.each([
    ['restart-policy', (r: EdgeDeployment) => ((sensorOf(r) as { restartPolicy: string }).restartPolicy = 'sometimes'), 'spec.agent.modules.SimulatedTemperatureSensor.restartPolicy: Unsupported value: "sometimes"'],
    ['startup-order', (r: EdgeDeployment) => (sensorOf(r).startupOrder = -1), 'startupOrder in body should be greater than or equal to 0'],
    ['priority', (r: EdgeDeployment) => (r.spec.hub = { schemaVersion: '1.1', routes: { up: { route: 'FROM /messages/* INTO $upstream', priority: 10 } } }), 'spec.hub.routes.up.priority in body should be less than or equal to 9'],
    ['schema-version', (r: EdgeDeployment) => ((agentOf(r) as { schemaVersion: string }).schemaVersion = '2.0'), 'spec.agent.schemaVersion: Unsupported value: "2.0": supported values: "1.0", "1.1"'],
    ['unknown-field', (r: EdgeDeployment) => ((sensorOf(r) as unknown as Record<string, unknown>).replicas = 3), '.spec.agent.modules.SimulatedTemperatureSensor.replicas: field not declared in schema'],
  ])('rejects a bad %s (schema)', async (name, edit, message) => {
    expect(await rejection(variant(`bad-${name}`, edit))).toContain(message);
  });

  it('accepts what convert makes of every valid fixture manifest', async () => {
    const dir = join(repoRoot, 'test/fixtures/manifests');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(10);
    const refused: string[] = [];
    for (const file of files) {
      const converted = resourceFromManifest(readFileSync(join(dir, file), 'utf8'), { namespace: ns, name: `fixture-${file.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`.slice(0, 63).replace(/-+$/, '') });
      if (!converted.ok) throw new Error(`${file} does not convert: ${JSON.stringify(converted.errors)}`);
      await kubectl(cluster, ['apply', '--server-side', '--dry-run=server', '-n', ns, '-f', '-'], JSON.stringify(converted.value.resource)).catch((error: unknown) => {
        refused.push(`${file}: ${String(error)}`);
      });
    }
    expect(refused).toEqual([]);
  });

  it('keeps status in its own subresource, shown in the printer columns', async () => {
    await apply(variant('with-status'));
    const status = {
      observedGeneration: 1,
      deviceId: ns,
      moduleSummary: '1/2',
      lastDesiredVersion: 1,
      lastDesiredStatus: { code: 200 },
      conditions: [{ type: 'Ready', status: 'False', reason: 'ModulesStarting', message: 'edgeHub is starting', lastTransitionTime: '2026-01-01T00:00:00Z' }],
      modules: { SimulatedTemperatureSensor: { name: 'simulatedtemperaturesensor', kind: 'Deployment', runtimeStatus: 'running', restartCount: 0, waitingFor: [] } },
    };
    await kubectl(cluster, ['patch', 'edgedeployment', 'with-status', '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    const before = await get('with-status');
    expect(before.status).toEqual(status);

    // A spec change leaves status alone, and status sent with the main resource is ignored.
    const changed = variant('with-status', (r) => {
      sensorOf(r).env = { MessageCount: { value: '10' } };
      r.status = { moduleSummary: '9/9' };
    });
    await kubectl(cluster, ['replace', '-n', ns, '-f', '-'], JSON.stringify({ ...changed, metadata: { ...changed.metadata, resourceVersion: before.metadata.resourceVersion } }));
    const after = await get('with-status');
    expect(after.metadata.generation).toBe(2);
    expect(sensorOf(after).env).toEqual({ MessageCount: { value: '10' } });
    expect(after.status).toEqual(status);

    const table = await kubectl(cluster, ['get', 'edep', 'with-status', '-n', ns]);
    const [header, row] = table.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'DEVICE', 'READY', 'MODULES', 'UPSTREAM', 'DESIRED-VERSION', 'AGE']);
    // Cells are cut at the header's column starts: an empty cell (UPSTREAM, with no built-in hub) prints as blanks.
    const starts = [...header!.matchAll(/\S+/g)].map((m) => m.index);
    const cells = starts.map((start, i) => row!.slice(start, starts[i + 1]).trim());
    expect(cells.slice(0, 6)).toEqual(['with-status', ns, 'False', '1/2', '', '1']);
  });

  it('rejects a status that breaks the metav1.Condition shape', async () => {
    await apply(variant('bad-status'));
    const patch = { status: { conditions: [{ type: 'Ready', status: 'Maybe', reason: 'x', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] } };
    const failure = await kubectl(cluster, ['patch', 'edgedeployment', 'bad-status', '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify(patch)]).then(
      () => 'accepted',
      (error: unknown) => String(error),
    );
    expect(failure).toContain('status.conditions[0].status: Unsupported value: "Maybe"');
  });
});
