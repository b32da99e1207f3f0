// Property: over generated manifests, translate() returns objects or catalogued errors and never throws;
// the objects are well-named and the output is deterministic.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { errorCatalogue, warningCatalogue } from '../../../src/api/errors.ts';
import { translate, type TranslateInput } from '../../../src/translate/index.ts';
import { chaoticManifest, settingsArbitrary, wellFormedManifest } from './arbitraries.ts';

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dns1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

function checkOutcome(input: TranslateInput): void {
  const outcome = translate(input);
  for (const w of outcome.warnings) {
    expect(Object.keys(warningCatalogue)).toContain(w.code);
    expect(w.path).toMatch(/^\/modulesContent\//);
  }
  if (!outcome.ok) {
    expect(outcome.errors.length).toBeGreaterThan(0);
    for (const e of outcome.errors) {
      expect(Object.keys(errorCatalogue)).toContain(e.code);
      expect(e.path).toMatch(/^\/modulesContent\//);
      expect(e.message).not.toContain('fictional-password');
    }
    return;
  }
  const { objects, volumeClaims, modules } = outcome.value;
  for (const o of [...objects, ...volumeClaims]) {
    expect(o.apiVersion).toBeTruthy();
    expect(o.metadata?.namespace).toBe(input.namespace);
    const name = o.metadata?.name ?? '';
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(o.kind === 'Service' ? dns1035 : dnsLabel);
    for (const v of Object.values(o.metadata?.labels ?? {})) expect(v).toMatch(labelValue);
  }
  const keys = objects.map((o) => `${o.kind}/${o.metadata?.name}`);
  expect(new Set(keys).size).toBe(keys.length);
  expect(modules.map((m) => m.id).sort()).toEqual(
    [...Object.keys(input.manifest.agent.modules), ...(input.manifest.agent.systemModules.edgeHub ? ['edgeHub'] : [])].sort(),
  );
  expect(JSON.stringify(translate(input))).toBe(JSON.stringify(outcome));
}

const inputOf = (manifest: TranslateInput['manifest'], settings: TranslateInput['settings'], deviceId: string): TranslateInput => ({
  manifest, settings, deviceId, namespace: 'edge-ns', ownerName: 'edge-deployment', hubHostName: 'hub.azure-devices.net',
});

describe('translate over generated manifests', () => {
  it('well-formed manifests give objects or catalogued errors, never an exception', () => {
    fc.assert(
      fc.property(wellFormedManifest, settingsArbitrary, fc.string({ minLength: 1, maxLength: 80 }), (manifest, settings, deviceId) => {
        checkOutcome(inputOf(manifest, settings, deviceId));
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary JSON in createOptions gives objects or catalogued errors, never an exception', () => {
    fc.assert(
      fc.property(chaoticManifest, settingsArbitrary, (manifest, settings) => {
        checkOutcome(inputOf(manifest, settings, 'dev'));
      }),
      { numRuns: 400 },
    );
  });

  it('well-formed manifests translate without errors when the policy allows everything and names are distinct', () => {
    fc.assert(
      fc.property(wellFormedManifest, (manifest) => {
        const ids = Object.keys(manifest.agent.modules);
        const names = new Set(ids.map((id) => id.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '')));
        fc.pre(names.size === ids.length && !names.has('edgehub'));
        const settings = { ...inputOf(manifest, settingsFor(), 'dev') };
        const outcome = translate(settings);
        // Generated binds and mounts may reuse a target path or a port across modules, which the API
        // server (not translate) rejects; translate itself must not report an error for these inputs,
        // except for the cases Docker also refuses.
        if (!outcome.ok) {
          for (const e of outcome.errors) expect(['IEO_CREATE_OPTION_VALUE', 'IEO_NAME_COLLISION']).toContain(e.code);
        }
      }),
      { numRuns: 200 },
    );
  });
});

function settingsFor() {
  return { ...fc.sample(settingsArbitrary, { numRuns: 1, seed: 7 })[0]!, allowPrivileged: true, allowHostNetwork: true, allowHostPid: true, allowHostIpc: true, allowHostPath: true, allowAddedCapabilities: true, allowDevices: true };
}
