import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { errorCatalogue, warningCatalogue } from '../../../src/api/errors.ts';
import type { DeploymentManifest } from '../../../src/manifest/index.ts';
import { defaultStartupOrder, parseDeploymentManifest, summariseRoutes } from '../../../src/manifest/index.ts';

const dir = new URL('../../fixtures/manifests/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, dir), 'utf8');
const validFiles = readdirSync(dir).filter((f) => f.endsWith('.json'));
const invalidFiles = readdirSync(new URL('invalid/', dir)).filter((f) => f.endsWith('.json'));

function manifest(name: string): DeploymentManifest {
  const outcome = parseDeploymentManifest(read(name));
  if (!outcome.ok) throw new Error(`${name}: ${JSON.stringify(outcome.errors, null, 2)}`);
  return outcome.value;
}

describe('fixture corpus', () => {
  it('has the files the README describes', () => {
    const readme = read('README.md');
    const described = [...readme.matchAll(/^\| `([^`]+\.json)` \|/gm)].map((m) => m[1]).sort();
    expect(described).toEqual([...validFiles, ...invalidFiles.map((f) => `invalid/${f}`)].sort());
    expect(validFiles.length).toBeGreaterThanOrEqual(15);
  });

  it.each(validFiles)('%s parses without errors or warnings', (name) => {
    expect(parseDeploymentManifest(read(name))).toMatchObject({ ok: true, warnings: [] });
  });

  it.each([
    ['bad-route.json', 'IEO_ROUTE_SYNTAX', '/modulesContent/$edgeHub/properties.desired/routes/broken'],
    ['oversized.json', 'IEO_TWIN_LIMIT', '/modulesContent/lookup/properties.desired'],
    ['too-deep.json', 'IEO_TWIN_LIMIT', '/modulesContent/configurable/properties.desired/level1/level2/level3/level4/level5/level6/level7/level8/level9/level10/level11'],
    ['unknown-schema-version.json', 'IEO_SCHEMA_VERSION', '/modulesContent/$edgeAgent/properties.desired/schemaVersion'],
    ['bad-restart-policy.json', 'IEO_MANIFEST_SCHEMA', '/modulesContent/$edgeAgent/properties.desired/modules/SimulatedTemperatureSensor/restartPolicy'],
    ['bad-create-options-json.json', 'IEO_CREATE_OPTIONS', '/modulesContent/$edgeAgent/properties.desired/modules/webapp/settings/createOptions'],
  ])('invalid/%s fails with %s at %s', (name, code, path) => {
    const outcome = parseDeploymentManifest(read(`invalid/${name}`));
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.errors.map((e) => ({ code: e.code, path: e.path }))).toEqual([{ code, path }]);
  });

  it('uses only catalogued codes', () => {
    const codes = [...validFiles, ...invalidFiles.map((f) => `invalid/${f}`)].flatMap((name) => {
      const o = parseDeploymentManifest(read(name));
      return [...(o.ok ? [] : o.errors), ...o.warnings].map((i) => i.code);
    });
    for (const code of codes) expect(Object.keys({ ...errorCatalogue, ...warningCatalogue })).toContain(code);
  });
});

describe('what the valid fixtures mean', () => {
  it('chunked-create-options.json joins seven chunks into one Docker body', () => {
    const edgeapp = manifest('chunked-create-options.json').agent.modules.edgeapp;
    expect(edgeapp?.createOptions.Env).toHaveLength(40);
    expect(edgeapp?.createOptions).toMatchObject({ HostConfig: { Binds: ['/var/lib/edgeapp:/data'], LogConfig: { Type: 'json-file' } } });
  });
  it('k8s-extensions.json keeps the k8s block inside createOptions for translation', () => {
    expect(manifest('k8s-extensions.json').agent.modules.vision?.createOptions.k8s).toMatchObject({
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [expect.objectContaining({ effect: 'NoSchedule' })],
      resources: { limits: { 'nvidia.com/gpu': '1' } },
      securityContext: { runAsNonRoot: true },
      serviceOptions: { type: 'LoadBalancer' },
    });
  });
  it('startup-order.json orders modules and leaves the unordered one last', () => {
    const m = manifest('startup-order.json').agent;
    expect([m.systemModules.edgeHub?.startupOrder, m.modules.sqledge?.startupOrder, m.modules.ingest?.startupOrder, m.modules.dashboard?.startupOrder]).toEqual([0, 1, 2, 10]);
    expect(m.modules.SimulatedTemperatureSensor?.startupOrder).toBe(defaultStartupOrder);
  });
  it('stopped-module.json, never-restart-job.json and on-unhealthy-healthcheck.json carry their lifecycle settings', () => {
    expect(manifest('stopped-module.json').agent.modules.diagnostics?.status).toBe('stopped');
    expect(manifest('never-restart-job.json').agent.modules.dbMigration).toMatchObject({ restartPolicy: 'never', env: { RETRIES: '3' } });
    expect(manifest('on-unhealthy-healthcheck.json').agent.modules.api?.restartPolicy).toBe('on-unhealthy');
  });
  it('schema fixtures parse at their versions with their route forms', () => {
    const v10 = manifest('schema-1.0-string-routes.json');
    expect([v10.agent.schemaVersion, v10.hub.schemaVersion]).toEqual(['1.0', '1.0']);
    expect(summariseRoutes(manifest('schema-1.1-route-objects.json'))).toEqual([
      { name: 'highPriorityAlerts', source: '/messages/modules/alerts/outputs/critical', sink: '$upstream', filtered: false, priority: 0, ttl: 86400 },
      { name: 'telemetry', source: '/messages/modules/SimulatedTemperatureSensor/outputs/*', sink: '$upstream', filtered: true, priority: 5, ttl: 7200 },
      { name: 'everythingElse', source: '/messages/*', sink: '$upstream', filtered: false, priority: 9, ttl: 7200 },
      { name: 'sensorToAlerts', source: '/messages/modules/SimulatedTemperatureSensor/outputs/temperatureOutput', sink: 'alerts/readings', filtered: false, priority: 9, ttl: 600 },
    ]);
  });
  it('registry-credentials.json has three credentials with inline passwords', () => {
    const creds = manifest('registry-credentials.json').agent.runtime.settings.registryCredentials;
    expect(Object.values(creds).map((c) => c.address)).toEqual(['myacr.azurecr.io', 'contosoregistry.azurecr.io', 'registry.example.com:5000']);
  });
  it('name-collision.json is valid here: the three ids differ for IoT Hub', () => {
    expect(Object.keys(manifest('name-collision.json').agent.modules)).toEqual(['temp_sensor', 'temp-sensor', 'Temp.Sensor']);
  });
});
