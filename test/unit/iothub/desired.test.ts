import { describe, expect, it } from '@jest/globals';
import { decidePatch, mergeDesiredPatch, specFromDesired, stripTwinMetadata, twinPath } from '../../../src/iothub/desired.ts';

const agent = (modules: Record<string, unknown> = {}) => ({
  schemaVersion: '1.1',
  runtime: { type: 'docker', settings: { minDockerVersion: 'v1.25', registryCredentials: { acr: { username: 'u', password: 'p4ss', address: 'acr.example.io' } } } },
  systemModules: {
    edgeAgent: { type: 'docker', settings: { image: 'agent:1', createOptions: '{}' } },
    edgeHub: { type: 'docker', status: 'running', restartPolicy: 'always', settings: { image: 'hub:1', createOptions: '{}' } },
  },
  modules,
  $version: 7,
});
const hub = { schemaVersion: '1.1', routes: { up: 'FROM /messages/* INTO $upstream' }, $version: 3, $metadata: { $lastUpdated: 'x' } };

describe('decidePatch', () => {
  it('applies the next version, ignores stale ones and re-reads on a gap', () => {
    expect(decidePatch(4, 5)).toBe('apply');
    expect(decidePatch(4, 4)).toBe('ignore');
    expect(decidePatch(4, 2)).toBe('ignore');
    expect(decidePatch(4, 6)).toBe('refetch');
    expect(decidePatch(undefined, 5)).toBe('refetch');
    expect(decidePatch(4, undefined)).toBe('refetch');
    expect(decidePatch(4, '5')).toBe('refetch');
  });
});

describe('mergeDesiredPatch', () => {
  it('merges objects, deletes on null, replaces arrays and leaves its inputs alone', () => {
    const base = { a: { b: 1, c: 2 }, list: [1, 2, 3], gone: { x: 1 } };
    const patch = { a: { c: null, d: 4 }, list: [9], gone: null, $version: 2 };
    expect(mergeDesiredPatch(base, patch)).toEqual({ a: { b: 1, d: 4 }, list: [9], $version: 2 });
    expect(base).toEqual({ a: { b: 1, c: 2 }, list: [1, 2, 3], gone: { x: 1 } });
  });
});

describe('stripTwinMetadata', () => {
  it('drops $version and $metadata at every depth', () => {
    expect(stripTwinMetadata({ $version: 1, $metadata: {}, a: { $metadata: {}, b: 1 } })).toEqual({ a: { b: 1 } });
  });
});

describe('specFromDesired', () => {
  it('converts the twins to spec.agent and spec.hub and moves registry passwords to a Secret', () => {
    const out = specFromDesired(agent({ m1: { version: '1.0', type: 'docker', status: 'running', restartPolicy: 'always', settings: { image: 'm1:1', createOptions: '{"Env":["A=1"]}' } } }), hub, { namespace: 'ns', name: 'dev' });
    if (!out.ok) throw new Error(JSON.stringify(out.issues));
    expect(out.value.spec.agent?.modules?.m1?.settings.image).toBe('m1:1');
    expect(out.value.spec.agent?.runtime?.settings?.registryCredentials?.acr?.passwordSecretRef).toEqual({ name: 'dev-registry-credentials', key: 'acr' });
    expect(JSON.stringify(out.value.spec)).not.toContain('p4ss');
    expect(out.value.secrets[0]?.stringData).toEqual({ acr: 'p4ss' });
    expect(out.value.spec.hub?.routes?.up).toEqual({ route: 'FROM /messages/* INTO $upstream' });
    expect(JSON.stringify(out.value.spec)).not.toContain('$version');
  });

  it('leaves spec.hub out when the $edgeHub twin is not read', () => {
    const out = specFromDesired(agent(), undefined, { namespace: 'ns', name: 'dev' });
    expect(out.ok && out.value.spec.hub).toBeUndefined();
  });

  it('rejects invalid desired properties with 400 and the twin path of the fault', () => {
    const out = specFromDesired(agent({ m1: { version: '1.0', type: 'docker', status: 'running', restartPolicy: 'sometimes', settings: { image: 'm1:1' } } }), hub, { namespace: 'ns', name: 'dev' });
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.status.code).toBe(400);
    expect(out.status.description).toContain('$edgeAgent/modules/m1/restartPolicy');
  });

  it('reports an empty $edgeAgent twin as 417', () => {
    const out = specFromDesired({ $version: 1 }, {}, { namespace: 'ns', name: 'dev' });
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.status.code).toBe(417);
  });

  it('reports an unknown schemaVersion as 412', () => {
    const out = specFromDesired({ ...agent(), schemaVersion: '2.0' }, hub, { namespace: 'ns', name: 'dev' });
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.status.code).toBe(412);
  });
});

describe('twinPath', () => {
  it('names the twin and the path inside its desired properties', () => {
    expect(twinPath('/modulesContent/$edgeHub/properties.desired/routes/r1')).toBe('$edgeHub/routes/r1');
    expect(twinPath('/other')).toBe('/other');
  });
});
