import { describe, it, expect } from '@jest/globals';
import {
  applyReportedPatch,
  applyServicePatch,
  diffDocuments,
  mqttTwinBody,
  newTwinState,
  replaceDesired,
  restTwinProperties,
  TwinValidationError,
  validateTwinDocument,
} from '../../../src/emulator/twin.ts';
import type { Json, JsonObject } from '../../../src/emulator/twin.ts';

const t0 = '2030-01-01T00:00:00.000Z';
const t1 = '2030-01-01T00:00:01.000Z';

function nested(levels: number): JsonObject {
  let value: Json = 'leaf';
  for (let i = levels; i >= 1; i--) value = { [`l${i}`]: value };
  return value as JsonObject;
}

function failure(fn: () => unknown): TwinValidationError | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof TwinValidationError) return error;
    throw error;
  }
}

describe('twin merge', () => {
  it('merges reported patches, deletes members set to null and bumps $version each time', () => {
    const twin = newTwinState(t0);
    expect(twin.reportedVersion).toBe(1);
    expect(applyReportedPatch(twin, { a: { b: 1, c: 2 }, d: 'x' }, t0)).toBe(2);
    expect(applyReportedPatch(twin, { a: { b: null, e: [1, 2] }, d: null }, t1)).toBe(3);
    expect(mqttTwinBody(twin).reported).toEqual({ a: { c: 2, e: [1, 2] }, $version: 3 });
  });

  it('keeps $metadata in step: $lastUpdated on every level, removed with the member', () => {
    const twin = newTwinState(t0);
    applyReportedPatch(twin, { a: { b: 1, c: 2 } }, t0);
    applyReportedPatch(twin, { a: { b: null, c: 3 } }, t1);
    const reported = restTwinProperties(twin).reported as JsonObject;
    expect(reported.$metadata).toEqual({ $lastUpdated: t1, a: { $lastUpdated: t1, c: { $lastUpdated: t1 } } });
  });

  it('drops nulls nested inside a new object instead of storing them', () => {
    const twin = newTwinState(t0);
    applyReportedPatch(twin, { a: { b: null, c: 1 } }, t0);
    expect(twin.reported).toEqual({ a: { c: 1 } });
  });

  it('service patches change tags and desired, bump version and return the notification with $version', () => {
    const twin = newTwinState(t0);
    const notify = applyServicePatch(twin, { tags: { site: 'x' }, desired: { m: { v: 1 } } }, t0);
    expect(notify).toEqual({ m: { v: 1 }, $version: 2 });
    expect(twin.version).toBe(2);
    expect(applyServicePatch(twin, { tags: { site: null } }, t1)).toBeUndefined();
    expect(twin.tags).toEqual({});
    expect(twin.desiredVersion).toBe(2);
    expect(twin.version).toBe(3);
  });

  it('replacing desired yields the full document and a diff with nulls for removed members', () => {
    const twin = newTwinState(t0);
    applyServicePatch(twin, { desired: { modules: { a: { v: 1 }, b: { v: 1 } }, keep: true } }, t0);
    const r = replaceDesired(twin, { modules: { a: { v: 2 } }, keep: true }, t1);
    expect(r.version).toBe(3);
    expect(r.full).toEqual({ modules: { a: { v: 2 } }, keep: true, $version: 3 });
    expect(r.diff).toEqual({ modules: { a: { v: 2 }, b: null }, $version: 3 });
    expect(twin.desired).toEqual({ modules: { a: { v: 2 } }, keep: true });
  });

  it('diffDocuments replaces arrays whole and leaves equal members out', () => {
    expect(diffDocuments({ a: [1, 2], b: 1 }, { a: [1], b: 1 })).toEqual({ a: [1] });
  });
});

describe('twin patch validation', () => {
  it('allows ten nested levels and refuses the eleventh, naming the path', () => {
    // nested(11): objects under l1…l10 and a string under l11, the documentation's deepest example.
    expect(failure(() => validateTwinDocument(nested(11), 'reported'))).toBeUndefined();
    const err = failure(() => validateTwinDocument(nested(12), 'reported'));
    expect(err?.kind).toBe('depth');
    expect(err?.path).toBe('reported.l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11');
  });

  it.each([
    ['a.b', 'dot'],
    ['$x', 'dollar'],
    ['a b', 'space'],
    ['a\u0001', 'control character'],
    ['', 'empty'],
    ['k'.repeat(1025), 'too long'],
  ])('refuses the key %j (%s)', (key) => {
    expect(failure(() => validateTwinDocument({ ok: { [key]: 1 } }, 'reported'))?.kind).toBe('key');
  });

  it('refuses oversized strings and integers beyond ±2^52-1, but not arrays', () => {
    expect(failure(() => validateTwinDocument({ s: 'x'.repeat(4097) }, 'desired'))?.kind).toBe('value');
    expect(failure(() => validateTwinDocument({ n: 4503599627370496 }, 'desired'))?.kind).toBe('value');
    expect(failure(() => validateTwinDocument({ n: 4503599627370495, f: 1.5, a: [1, { b: 2 }] }, 'desired'))).toBeUndefined();
  });

  it('refuses a patch that is not an object', () => {
    expect(failure(() => validateTwinDocument([1], 'reported'))?.kind).toBe('shape');
    expect(failure(() => validateTwinDocument('x', 'reported'))?.kind).toBe('shape');
  });

  it('refuses a reported patch that would grow the section past 32 KB, and leaves the twin unchanged', () => {
    const twin = newTwinState(t0);
    for (let i = 0; i < 7; i++) applyReportedPatch(twin, { [`k${i}`]: 'x'.repeat(4000) }, t0);
    const before = structuredClone(twin);
    const err = failure(() => applyReportedPatch(twin, { k7: 'x'.repeat(4000), k8: 'x'.repeat(4000) }, t1));
    expect(err?.kind).toBe('size');
    expect(twin).toEqual(before);
    // Deleting makes room again: the limit is on the resulting document, not the patch.
    expect(applyReportedPatch(twin, { k0: null, k7: 'x'.repeat(4000) }, t1)).toBe(before.reportedVersion + 1);
  });

  it('limits tags to 8 KB', () => {
    const twin = newTwinState(t0);
    expect(failure(() => applyServicePatch(twin, { tags: { a: 'x'.repeat(4000), b: 'x'.repeat(4000), c: 'x'.repeat(400) } }, t0))?.kind).toBe('size');
    expect(twin.version).toBe(1);
  });
});
