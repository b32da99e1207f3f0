// The layering rule of DEVELOPERS.md is only worth something if it fires: lint code that breaks it,
// as if it lived in the layer, and expect the rule's errors.
import { describe, expect, it } from '@jest/globals';
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${filePath}` });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

describe('layering lint', () => {
  it('forbids a lower layer importing a higher one', async () => {
    expect(await ruleIds("import { OperatorManager } from '../controller/manager.ts';\nexport const m = OperatorManager;\n", 'src/translate/probe.ts'))
      .toContain('import-x/no-restricted-paths');
    expect(await ruleIds("import { translate } from '../translate/index.ts';\nexport const t = translate;\n", 'src/manifest/probe.ts'))
      .toContain('import-x/no-restricted-paths');
    expect(await ruleIds("import { startHubEmulator } from '../emulator/index.ts';\nexport const s = startHubEmulator;\n", 'src/controller/probe.ts'))
      .toContain('import-x/no-restricted-paths');
  });

  it('forbids I/O in translate, but allows importing types', async () => {
    expect(await ruleIds("import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n", 'src/translate/probe.ts'))
      .toContain('@typescript-eslint/no-restricted-imports');
    expect(await ruleIds("import { KubeConfig } from '@kubernetes/client-node';\nexport const k = KubeConfig;\n", 'src/translate/probe.ts'))
      .toContain('@typescript-eslint/no-restricted-imports');
    expect(await ruleIds("export const f = () => fetch('http://127.0.0.1');\n", 'src/translate/probe.ts')).toContain('no-restricted-globals');
    expect(await ruleIds("import type { V1Pod } from '@kubernetes/client-node';\nexport type P = V1Pod;\n", 'src/translate/probe.ts')).toEqual([]);
  });

  it('keeps routing pure and below the hub: no I/O, no store', async () => {
    expect(await ruleIds("import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n", 'src/routing/probe.ts'))
      .toContain('@typescript-eslint/no-restricted-imports');
    expect(await ruleIds("import { DatabaseSync } from 'node:sqlite';\nexport const d = DatabaseSync;\n", 'src/routing/probe.ts'))
      .toContain('@typescript-eslint/no-restricted-imports');
    expect(await ruleIds("import { parseRoute } from '../manifest/index.ts';\nexport const p = parseRoute;\n", 'src/routing/probe.ts')).toEqual([]);
  });

  it('allows a higher layer to import a lower one', async () => {
    expect(await ruleIds("import { translate } from '../translate/index.ts';\nexport const t = translate;\n", 'src/controller/probe.ts')).toEqual([]);
  });
});
