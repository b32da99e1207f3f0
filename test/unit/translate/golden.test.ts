// Golden files: every fixture manifest, parsed and translated, compared with test/golden/<fixture>.yaml.
// UPDATE_GOLDEN=1 rewrites them; review the diff before committing. The integration test
// translate-dry-run.test.ts sends the same files to the API server.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { goldenCases, renderGolden } from './golden-cases.ts';

const update = process.env.UPDATE_GOLDEN === '1';

describe('golden translations of the fixture manifests', () => {
  const cases = goldenCases();

  it('covers every fixture', () => {
    const fixtures = readdirSync(new URL('../../fixtures/manifests/', import.meta.url)).filter((f) => f.endsWith('.json'));
    const invalid = readdirSync(new URL('../../fixtures/manifests/invalid/', import.meta.url)).filter((f) => f.endsWith('.json'));
    expect(fixtures.length).toBeGreaterThan(0);
    for (const f of fixtures) expect(cases.map((c) => c.fixture)).toContain(f);
    for (const f of invalid) expect(cases.map((c) => c.fixture)).toContain(`invalid/${f}`);
  });

  it.each(cases.map((c) => [c.golden, c] as const))('%s', (_name, c) => {
    const rendered = renderGolden(c);
    const file = new URL(`../../golden/${c.golden}`, import.meta.url);
    if (update || !existsSync(file)) {
      if (!update) throw new Error(`missing golden file test/golden/${c.golden}; run with UPDATE_GOLDEN=1 to create it`);
      mkdirSync(new URL('.', file), { recursive: true });
      writeFileSync(file, rendered);
    }
    expect(rendered).toBe(readFileSync(file, 'utf8'));
  });
});
