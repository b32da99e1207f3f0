import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { errorCatalogue, warningCatalogue } from '../../src/api/errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map(
  [...doc.matchAll(/^\| `(IEO_[A-Z0-9_]+)` \| (\d{3}) \| (permanent|temporary) \| (.+?) \|$/gm)].map((m) => [m[1], { status: Number(m[2]), next: m[3], summary: m[4] }]),
);

const documentedWarnings = new Map([...doc.matchAll(/^\| `(IEO_W_[A-Z0-9_]+)` \| (.+?) \|$/gm)].map((m) => [m[1], m[2]]));

describe('error catalogue', () => {
  it('documents every warning code, and no other', () => {
    expect(Object.fromEntries(documentedWarnings)).toEqual(Object.fromEntries(Object.entries(warningCatalogue).map(([c, w]) => [c, w.summary])));
  });
  it('documents every code in docs/errors.md with the same status, next step and meaning', () => {
    for (const [code, def] of Object.entries(errorCatalogue)) {
      expect({ code, ...documented.get(code) }).toEqual({ code, status: def.edgeAgentStatus, next: def.next, summary: def.summary });
    }
  });
  it('documents no code that does not exist', () => {
    expect([...documented.keys()].sort()).toEqual(Object.keys(errorCatalogue).sort());
  });
});
