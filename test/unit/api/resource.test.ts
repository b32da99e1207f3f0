// EdgeDeployment <-> deployment manifest: a converted manifest means the same deployment once read back,
// passwords leave the resource for a Secret, and faults in a resource are reported at /spec/... paths.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { load } from 'js-yaml';
import type { EdgeDeployment, EdgeDeploymentSpec } from '../../../src/api/edge-deployment.ts';
import type { DeploymentManifest } from '../../../src/manifest/model.ts';
import { parseDeploymentManifest } from '../../../src/manifest/parse.ts';
import { manifestFromResource, registryCredentialsSecretName, resourceFromManifest } from '../../../src/manifest/resource.ts';

const repoRoot = join(import.meta.dirname, '../../..');
const fixtureDir = join(repoRoot, 'test/fixtures/manifests');
const fixtures = readdirSync(fixtureDir).filter((f) => f.endsWith('.json'));
const readFixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(fixtureDir, name), 'utf8')) as Record<string, unknown>;
const example = load(readFileSync(join(repoRoot, 'manifests/examples/simulated-temperature-sensor.yaml'), 'utf8')) as EdgeDeployment;
const target = { namespace: 'edge-1', name: 'device' };

function converted(name: string) {
  const outcome = resourceFromManifest(readFixture(name), target);
  if (!outcome.ok) throw new Error(`${name}: ${JSON.stringify(outcome.errors)}`);
  return outcome;
}

/** The model without where passwords live, which is the one thing conversion changes on purpose. */
function withoutPasswordSource(manifest: DeploymentManifest): DeploymentManifest {
  const copy = structuredClone(manifest);
  for (const credential of Object.values(copy.agent.runtime.settings.registryCredentials)) {
    delete credential.password;
    delete credential.passwordSecretRef;
  }
  return copy;
}

function editedExample(edit: (spec: EdgeDeploymentSpec) => void): EdgeDeploymentSpec {
  const spec = structuredClone(example.spec);
  edit(spec);
  return spec;
}

describe('resourceFromManifest then manifestFromResource', () => {
  expect(fixtures.length).toBeGreaterThan(10);
  it.each(fixtures)('%s means the same deployment after conversion', (name) => {
    const original = parseDeploymentManifest(readFixture(name));
    if (!original.ok) throw new Error(`fixture ${name} does not parse`);
    const back = manifestFromResource(converted(name).value.resource.spec);
    if (!back.ok) throw new Error(`${name} read back: ${JSON.stringify(back.errors)}`);
    expect(withoutPasswordSource(back.value)).toEqual(withoutPasswordSource(original.value));
  });
});

describe('resourceFromManifest', () => {
  it('moves every registry password into one Secret that passwordSecretRef names', () => {
    const manifest = readFixture('registry-credentials.json');
    const original = parseDeploymentManifest(manifest);
    if (!original.ok) throw new Error('fixture does not parse');
    const credentials = Object.values(original.value.agent.runtime.settings.registryCredentials);
    expect(credentials.length).toBe(3);
    const { resource, secrets } = converted('registry-credentials.json').value;
    const resourceText = JSON.stringify(resource);
    for (const credential of credentials) expect(resourceText).not.toContain(credential.password);
    expect(resourceText).not.toContain('"password"');
    expect(secrets).toHaveLength(1);
    const secret = secrets[0];
    expect(secret?.metadata).toEqual({ name: registryCredentialsSecretName('device'), namespace: 'edge-1' });
    const refs = resource.spec.agent?.runtime?.settings?.registryCredentials ?? {};
    for (const credential of credentials) {
      const ref = refs[credential.name]?.passwordSecretRef;
      expect(ref?.name).toBe('device-registry-credentials');
      expect(secret?.stringData?.[ref?.key ?? '']).toBe(credential.password);
    }
  });

  it('writes no Secret when the manifest has no passwords', () => {
    expect(converted('name-collision.json').value.secrets).toEqual([]);
  });

  it('joins chunked createOptions into one object', () => {
    const { resource } = converted('chunked-create-options.json').value;
    const modules = Object.values(resource.spec.agent?.modules ?? {});
    const createOptions = modules.map((m) => m.settings.createOptions);
    expect(createOptions.every((c) => typeof c === 'object' && c !== null)).toBe(true);
    expect(JSON.stringify(resource)).not.toMatch(/createOptions0\d/);
  });

  it('writes string routes as route objects, and schema 1.0 reads them back as strings', () => {
    const { resource } = converted('schema-1.0-string-routes.json').value;
    const routes = Object.values(resource.spec.hub?.routes ?? {});
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) expect(Object.keys(route)).toEqual(['route']);
    expect(manifestFromResource(resource.spec).ok).toBe(true);
  });

  it('names the resource, its namespace and, when asked, the device id', () => {
    const outcome = resourceFromManifest(readFixture('stopped-module.json'), { ...target, deviceId: 'line-3' });
    if (!outcome.ok) throw new Error(JSON.stringify(outcome.errors));
    const { resource } = outcome.value;
    expect(resource.apiVersion).toBe('iotedge-operator.io/v1alpha1');
    expect(resource.kind).toBe('EdgeDeployment');
    expect(resource.metadata).toEqual({ name: 'device', namespace: 'edge-1' });
    expect(resource.spec.deviceId).toBe('line-3');
    expect(converted('stopped-module.json').value.resource.spec.deviceId).toBeUndefined();
  });

  it('warns that module twin desired properties are left out', () => {
    const { warnings } = converted('sensor-filter-routes.json');
    const twins = warnings.filter((w) => w.code === 'IEO_W_MODULE_TWIN_NOT_CONVERTED');
    expect(twins.length).toBeGreaterThan(0);
    for (const w of twins) expect(w.path).toMatch(/^\/modulesContent\/[^$][^/]*\/properties\.desired$/);
  });

  it('reads JSON text and reports an invalid manifest at its own paths', () => {
    const text = readFileSync(join(fixtureDir, 'invalid/bad-create-options-json.json'), 'utf8');
    const outcome = resourceFromManifest(text, target);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.errors).toContainEqual(expect.objectContaining({ code: 'IEO_CREATE_OPTIONS', path: '/modulesContent/$edgeAgent/properties.desired/modules/webapp/settings/createOptions' }));
    expect(resourceFromManifest('{"modulesContent": ', target).ok).toBe(false);
  });
});

describe('manifestFromResource', () => {
  it('reads the example resource', () => {
    const outcome = manifestFromResource(example.spec);
    if (!outcome.ok) throw new Error(JSON.stringify(outcome.errors));
    const sensor = outcome.value.agent.modules.SimulatedTemperatureSensor;
    expect(sensor?.image).toBe('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5');
    expect(sensor?.env).toEqual({ MessageCount: '500' });
    expect(outcome.value.agent.systemModules.edgeHub?.createOptions).toMatchObject({ HostConfig: { PortBindings: { '8883/tcp': [{ HostPort: '8883' }] } } });
    expect(outcome.value.hub.routes.sensorToUpstream).toEqual({
      name: 'sensorToUpstream',
      route: 'FROM /messages/modules/SimulatedTemperatureSensor/outputs/* INTO $upstream',
      priority: 0,
      timeToLiveSecs: 86400,
    });
  });

  it('accepts createOptions as the manifest JSON string', () => {
    const spec = editedExample((s) => {
      const sensor = s.agent?.modules?.SimulatedTemperatureSensor;
      if (sensor) sensor.settings.createOptions = '{"Env":["A=1"]}';
    });
    const outcome = manifestFromResource(spec);
    expect(outcome.ok && outcome.value.agent.modules.SimulatedTemperatureSensor?.createOptions).toEqual({ Env: ['A=1'] });
  });

  it('keeps passwordSecretRef on registry credentials', () => {
    const spec = editedExample((s) => {
      if (s.agent) s.agent.runtime = { settings: { registryCredentials: { acr: { address: 'acr.example.io', username: 'u', passwordSecretRef: { name: 'regcred', key: 'acr' } } } } };
    });
    const outcome = manifestFromResource(spec);
    expect(outcome.ok && outcome.value.agent.runtime.settings.registryCredentials.acr).toEqual({
      name: 'acr',
      address: 'acr.example.io',
      username: 'u',
      passwordSecretRef: { name: 'regcred', key: 'acr' },
    });
  });

  it('refuses an inline registry password without repeating it', () => {
    const spec = editedExample((s) => {
      const credential = { address: 'acr.example.io', username: 'u', password: 'hunter2', passwordSecretRef: { name: 'regcred', key: 'acr' } };
      if (s.agent) s.agent.runtime = { settings: { registryCredentials: { acr: credential as never } } };
    });
    const outcome = manifestFromResource(spec);
    expect(outcome).toMatchObject({ ok: false, errors: [{ code: 'IEO_MANIFEST_SCHEMA', path: '/spec/agent/runtime/settings/registryCredentials/acr/password' }] });
    expect(JSON.stringify(outcome)).not.toContain('hunter2');
  });

  it('reports faults at /spec/agent/... and /spec/hub/... paths', () => {
    const spec = editedExample((s) => {
      const sensor = s.agent?.modules?.SimulatedTemperatureSensor;
      if (sensor) sensor.settings.createOptions = '{"Env": [}';
      if (s.hub) s.hub.routes = { broken: { route: 'FROM /messages/* WHERE temperature > INTO $upstream' } };
    });
    const outcome = manifestFromResource(spec);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.errors.map((e) => [e.code, e.path])).toContainEqual(['IEO_CREATE_OPTIONS', '/spec/agent/modules/SimulatedTemperatureSensor/settings/createOptions']);
    const routeSpec = editedExample((s) => {
      if (s.hub) s.hub.routes = { broken: { route: 'FROM /messages/* WHERE temperature > INTO $upstream' } };
    });
    const routeOutcome = manifestFromResource(routeSpec, '/spec');
    expect(routeOutcome.ok).toBe(false);
    if (!routeOutcome.ok) expect(routeOutcome.errors[0]).toMatchObject({ code: 'IEO_ROUTE_SYNTAX', path: expect.stringMatching(/^\/spec\/hub\/routes\/broken/) });
  });

  it('uses the given base path', () => {
    const spec = editedExample((s) => {
      const sensor = s.agent?.modules?.SimulatedTemperatureSensor;
      if (sensor) sensor.settings.image = '';
    });
    const outcome = manifestFromResource(spec, '/items/0/spec');
    expect(!outcome.ok && outcome.errors.map((e) => e.path)).toContain('/items/0/spec/agent/modules/SimulatedTemperatureSensor/settings/image');
  });

  it('says why there is no agent', () => {
    const twinBound = manifestFromResource({ iotHub: { connectionStringSecretRef: { name: 'd', key: 'k' } } });
    expect(twinBound).toMatchObject({ ok: false, errors: [{ code: 'IEO_EMPTY_CONFIG', path: '/spec/agent' }] });
    expect(!twinBound.ok && twinBound.errors[0]?.message).toContain('has not been read from IoT Hub yet');
  });
});
