// Manifests IoT Edge accepts are accepted here too: one fixture per class in test/fixtures/manifests/lenient/,
// each with the warning that says what was read leniently, and the rules behind them (src/manifest/lenient.ts).
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import type { V1Deployment } from '@kubernetes/client-node';
import { parseDeploymentManifest } from '../../../src/manifest/index.ts';
import { normaliseAgentSchemaVersion, normaliseHubSchemaVersion, twinDesired } from '../../../src/manifest/lenient.ts';
import { manifestFromResource, resourceFromManifest } from '../../../src/manifest/resource.ts';
import { settingsWith, toWire, translate } from '../../../src/translate/index.ts';

const dir = new URL('../../fixtures/manifests/lenient/', import.meta.url);
const read = (name: string): unknown => JSON.parse(readFileSync(new URL(name, dir), 'utf8'));
const allowAll = settingsWith({ allowPrivileged: true, allowHostPath: true, allowDevices: true });

/** Parse and translate one fixture; the codes of every warning, in order. */
function lenientRun(name: string) {
  const parsed = parseDeploymentManifest(read(name));
  if (!parsed.ok) throw new Error(`${name}: ${JSON.stringify(parsed.errors, null, 2)}`);
  const translated = translate({ manifest: parsed.value, settings: allowAll, namespace: 'dev1', deviceId: 'dev1', ownerName: 'dev1', hubHostName: '' });
  if (!translated.ok) throw new Error(`${name}: ${JSON.stringify(translated.errors, null, 2)}`);
  return { manifest: parsed.value, result: translated.value, codes: [...parsed.warnings, ...translated.warnings].map((w) => w.code) };
}

const expectedWarnings: Record<string, string[]> = {
  'anonymous-volume.json': ['IEO_W_ANONYMOUS_VOLUME', 'IEO_W_ANONYMOUS_VOLUME'],
  'az-cli-content-layered.json': [],
  'device-and-bind-same-path.json': ['IEO_W_MOUNT_MERGED'],
  // Its routes carry priority and TTL, which edgeHub's local configuration (kubectl mode) cannot.
  'hub-schema-1.2-mqtt-broker.json': ['IEO_W_HUB_FEATURE_IGNORED', 'IEO_W_ROUTE_FIELD_IGNORED'],
  'hub-schema-1.3-integrity.json': ['IEO_W_HUB_FEATURE_IGNORED'],
  'legacy-module-content.json': ['IEO_W_LEGACY_MODULE_CONTENT'],
  'string-typed-create-options.json': Array(10).fill('IEO_W_COERCED_VALUE'),
  'system-module-extras.json': Array(4).fill('IEO_W_SYSTEM_MODULE_FIELD_IGNORED'),
};

describe('lenient fixtures', () => {
  it('has an expectation for every fixture', () => {
    expect(readdirSync(dir).filter((f) => f.endsWith('.json')).sort()).toEqual(Object.keys(expectedWarnings).sort());
  });

  it.each(Object.entries(expectedWarnings))('%s parses, translates and warns as expected', (name, codes) => {
    expect(lenientRun(name).codes).toEqual(codes);
  });

  it.each(Object.keys(expectedWarnings))('%s converts to an EdgeDeployment that reads back the same', (name) => {
    const converted = resourceFromManifest(read(name), { namespace: 'dev1', name: 'dev1' });
    if (!converted.ok) throw new Error(JSON.stringify(converted.errors));
    const fromResource = manifestFromResource(converted.value.resource.spec ?? {});
    expect(fromResource).toMatchObject({ ok: true });
    expect(fromResource.ok && Object.keys(fromResource.value.agent.modules)).toEqual(Object.keys(lenientRun(name).manifest.agent.modules));
  });

  it('reads string booleans and integers as edgeAgent does', () => {
    const { result } = lenientRun('string-typed-create-options.json');
    const loadGen = result.objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'loadgen') as V1Deployment;
    const c = loadGen.spec?.template.spec?.containers[0];
    expect(c?.securityContext).toEqual({ privileged: true });
    expect(c?.resources).toEqual({ limits: { memory: '512Mi' }, requests: { memory: '256Mi' } });
    expect(c?.volumeMounts?.filter((m) => m.name !== 'device-ca')).toEqual([{ name: 'loadgen-data', mountPath: '/data' }]);
    expect(loadGen.spec?.template.spec?.terminationGracePeriodSeconds).toBe(30);
  });

  it('mounts a device node under a bind of the same path once', () => {
    const { result } = lenientRun('device-and-bind-same-path.json');
    const camera = toWire(result.objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'camera')!) as V1Deployment;
    const spec = camera.spec?.template.spec;
    expect(spec?.containers[0]?.volumeMounts?.filter((m) => m.name !== 'device-ca')).toEqual([{ name: 'devvideo0', mountPath: '/dev/video0' }]);
    // A device node is not a directory: no DirectoryOrCreate check.
    expect(spec?.volumes?.filter((v) => v.name !== 'device-ca')).toEqual([{ name: 'devvideo0', hostPath: { path: '/dev/video0' } }]);
  });

  it('gives anonymous volumes emptyDirs and keeps the named one a claim', () => {
    const { result } = lenientRun('anonymous-volume.json');
    const cache = result.objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'cache') as V1Deployment;
    const spec = cache.spec?.template.spec;
    expect(spec?.containers[0]?.volumeMounts?.filter((m) => m.name !== 'device-ca').map((m) => m.mountPath).sort()).toEqual(['/scratch', '/state', '/var/cache/app']);
    expect(spec?.volumes?.filter((v) => v.emptyDir).length).toBe(2);
    expect(result.volumeClaims.map((c) => c.metadata?.name)).toEqual(['cache-state', 'edgehub-storage']);
  });

  it('merges layered keys into the desired properties, as IoT Hub does', () => {
    const { manifest } = lenientRun('az-cli-content-layered.json');
    expect(Object.keys(manifest.agent.modules)).toEqual(['SimulatedTemperatureSensor']);
    expect(Object.keys(manifest.hub.routes)).toEqual(['sensorToUpstream']);
    expect(twinDesired({ 'properties.desired.modules.my.dotted.module': { a: 1 } })).toEqual({ modules: { 'my.dotted.module': { a: 1 } } });
  });

  it('keeps edgeHub schema 1.2 and 1.3 routes', () => {
    expect(lenientRun('hub-schema-1.2-mqtt-broker.json').manifest.hub).toMatchObject({ schemaVersion: '1.2', routes: { sensorToUpstream: { priority: 0, timeToLiveSecs: 86400 } } });
    expect(lenientRun('hub-schema-1.3-integrity.json').manifest.hub.schemaVersion).toBe('1.3');
  });
});

describe('schema versions edgeAgent and edgeHub read', () => {
  it.each([['1.0', '1.0'], ['1.1', '1.1'], ['1.0.0', '1.0'], ['1.0.7', '1.0'], ['1.1.0', '1.1'], [' 1.1 ', '1.1']])('$edgeAgent %j is %s', (v, expected) => {
    expect(normaliseAgentSchemaVersion(v)).toBe(expected);
  });
  it.each(['1.2', '1.1.1', '2.0', '1', '', 'latest'])('$edgeAgent %j is refused, as edgeAgent refuses versions above 1.1.0', (v) => {
    expect(normaliseAgentSchemaVersion(v)).toBeUndefined();
  });
  it.each([['1.0', '1.0'], ['1.1', '1.1'], ['1.2', '1.2'], ['1.2.0', '1.2'], ['1.3', '1.3'], ['1.3.4', '1.3']])('$edgeHub %j is %s', (v, expected) => {
    expect(normaliseHubSchemaVersion(v)).toBe(expected);
  });
  it.each(['1.4', '2.0', '1', 'x'])('$edgeHub %j is refused', (v) => {
    expect(normaliseHubSchemaVersion(v)).toBeUndefined();
  });
});
