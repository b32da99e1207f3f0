// The operator writes $edgeHub's desired properties into the routes ConfigMap (src/translate); the
// built-in hub reads that file with compileRoutesFromJson. Every fixture manifest's routes must make
// the trip without an error, keeping each route's name, priority and time to live.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { parseDeploymentManifest } from '../../../src/manifest/index.ts';
import { compileRoutes, compileRoutesFromJson } from '../../../src/routing/index.ts';
import { edgeHubConfigMap, routesKey } from '../../../src/translate/edgehub.ts';

const dir = new URL('../../fixtures/manifests/', import.meta.url);
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('the routes file from the operator to the built-in hub', () => {
  it.each(fixtures)('%s: compiles what the operator writes, as the manifest declares it', (file) => {
    const parsed = parseDeploymentManifest(JSON.parse(readFileSync(new URL(file, dir), 'utf8')));
    if (!parsed.ok) return; // fixtures of refused manifests are covered by the manifest tests
    const hub = parsed.value.hub;
    const { configMap } = edgeHubConfigMap(hub, 'edgehub-routes', 'ns', { ownerName: 'edep', deviceId: 'dev' });
    const fromFile = compileRoutesFromJson(JSON.parse(configMap.data?.[routesKey] ?? 'null'));
    const direct = compileRoutes(hub);
    expect(fromFile.errors).toEqual([]);
    expect(direct.errors).toEqual([]);
    expect([...fromFile.router.routeNames].sort()).toEqual(Object.keys(hub.routes).sort());
    expect([...fromFile.router.endpoints.keys()].sort()).toEqual([...direct.router.endpoints.keys()].sort());
  });

  it('covers several accepted fixtures that have routes', () => {
    const withRoutes = fixtures.filter((f) => {
      const parsed = parseDeploymentManifest(JSON.parse(readFileSync(new URL(f, dir), 'utf8')));
      return parsed.ok && Object.keys(parsed.value.hub.routes).length > 0;
    });
    expect(withRoutes.length).toBeGreaterThan(3);
  });
});
