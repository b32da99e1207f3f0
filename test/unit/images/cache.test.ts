// Image cache keys: which files a Dockerfile's build depends on, and a content hash that moves with them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { contentHash, dockerfileSources } from '../../../scripts/images/cache.ts';
import { inputHashOf, projectImages } from '../../../scripts/images/build.ts';
import { aptMirror } from '../../../scripts/images/node-base.ts';
import { repoRoot } from '../../../scripts/cluster/control-plane.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('dockerfileSources', () => {
  it('lists exactly what the project Dockerfile copies from its context, not what it copies between stages', () => {
    const sources = dockerfileSources(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
    expect(sources).toEqual(['bin', 'crds', 'package-lock.json', 'package.json', 'scripts/with-node.sh', 'src', 'tsconfig.build.json', 'tsconfig.json']);
  });

  it('reads continuation lines, ADD, and flags other than --from', () => {
    const text = 'FROM x AS a\nCOPY --chown=1:1 a.txt \\\n  b/ /dst/\nADD c.tar /\nCOPY --from=a /app /app\n# COPY ignored /x\n';
    expect(dockerfileSources(text)).toEqual(['a.txt', 'b', 'c.tar']);
  });
});

describe('contentHash', () => {
  const root = mkdtempSync(join(tmpdir(), 'images-hash-'));
  dirs.push(root);
  mkdirSync(join(root, 'src/node_modules'), { recursive: true });
  writeFileSync(join(root, 'src/a.ts'), 'one');
  writeFileSync(join(root, 'src/node_modules/ignored.js'), 'x');

  it('is stable for the same inputs and changes with a file, a file name, or an extra input', () => {
    const first = contentHash(root, ['src'], ['base@1']);
    expect(contentHash(root, ['src'], ['base@1'])).toBe(first);
    expect(contentHash(root, ['src'], ['base@2'])).not.toBe(first);
    writeFileSync(join(root, 'src/a.ts'), 'two');
    const changed = contentHash(root, ['src'], ['base@1']);
    expect(changed).not.toBe(first);
    writeFileSync(join(root, 'src/node_modules/ignored.js'), 'y');
    expect(contentHash(root, ['src'], ['base@1'])).toBe(changed);
    rmSync(join(root, 'src/a.ts'));
    writeFileSync(join(root, 'src/b.ts'), 'two');
    expect(contentHash(root, ['src'], ['base@1'])).not.toBe(changed);
  });
});

describe('project images', () => {
  it('are keyed by their base image as well as their sources', () => {
    for (const spec of projectImages) expect(inputHashOf(spec, 'sha256:a')).not.toBe(inputHashOf(spec, 'sha256:b'));
  });

  it('give the two sample modules different keys from one Containerfile', () => {
    const [, sensor, filter] = projectImages;
    expect(inputHashOf(sensor!, 'base')).not.toBe(inputHashOf(filter!, 'base'));
  });
});

describe('aptMirror', () => {
  it('finds the Debian mirror apt uses, as an http(s) URL, so debootstrap fetches from the same place', () => {
    const mirror = aptMirror();
    if (mirror !== undefined) expect(mirror).toMatch(/^https?:\/\//);
  });
});
