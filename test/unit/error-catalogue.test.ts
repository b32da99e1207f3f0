import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { errorCatalogue } from '../../src/api/errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map(
  [...doc.matchAll(/^\| `(IEO_[A-Z0-9_]+)` \| (\d{3}) \| (permanent|temporary) \| (.+?) \|$/gm)].map((m) => [m[1], { status: Number(m[2]), next: m[3], summary: m[4] }]),
);

describe('error catalogue', () => {
  it('documents every code in docs/errors.md with the same status, next step and meaning', () => {
    for (const [code, def] of Object.entries(errorCatalogue)) {
      expect({ code, ...documented.get(code) }).toEqual({ code, status: def.edgeAgentStatus, next: def.next, summary: def.summary });
    }
  });
  it('documents no code that does not exist', () => {
    expect([...documented.keys()].sort()).toEqual(Object.keys(errorCatalogue).sort());
  });
});
