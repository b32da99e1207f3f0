// Content hashes of build inputs, and where built images and their archives are cached.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';

/** The same cache root as scripts/with-node.sh and build-binaries.sh. */
export const cacheRoot = process.env.IOTEDGE_OPERATOR_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'iotedge-operator');
export const imagesCache = join(cacheRoot, 'images');

/** Every file under `path` (or `path` itself), sorted, skipping node_modules and dist. */
function filesUnder(path: string): string[] {
  const stat = statSync(path);
  if (!stat.isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => name !== 'node_modules' && name !== 'dist')
    .sort()
    .flatMap((name) => filesUnder(join(path, name)));
}

/**
 * A hash over the names and contents of the given files and directories (relative to `root`) plus extra
 * strings (versions, base image IDs). Same inputs, same hash: the image need not be rebuilt.
 */
export function contentHash(root: string, paths: string[], extra: string[] = []): string {
  const hash = createHash('sha256');
  for (const e of extra) hash.update(`extra\0${e}\0`);
  for (const file of paths.flatMap((p) => filesUnder(join(root, p)))) {
    hash.update(`file\0${relative(root, file)}\0`);
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The local sources a Dockerfile copies from its build context: the arguments of every COPY/ADD
 * without --from, less the destination. Hashing exactly these keeps the cache key in step with the file.
 */
export function dockerfileSources(dockerfileText: string): string[] {
  const sources = new Set<string>();
  for (const line of dockerfileText.replace(/\\\n/g, ' ').split('\n')) {
    const words = line.trim().split(/\s+/);
    if (!/^(COPY|ADD)$/i.test(words[0] ?? '')) continue;
    const args = words.slice(1);
    if (args.some((a) => a.startsWith('--from'))) continue;
    const paths = args.filter((a) => !a.startsWith('--'));
    for (const p of paths.slice(0, -1)) sources.add(p.replace(/^\.\//, '').replace(/\/$/, '') || '.');
  }
  return [...sources].sort();
}
