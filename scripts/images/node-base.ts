// The Node base image the project's Dockerfile starts FROM, made offline from what this machine can reach:
// a Debian root filesystem from debootstrap (minbase) plus Node from the npm registry's node-linux-<arch>
// package and npm from its own package. Tagged like the official image, so the Dockerfile stays unchanged.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, appendFileSync, cpSync, renameSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../cluster/control-plane.ts';
import { cacheRoot, contentHash, imagesCache } from './cache.ts';
import { ensureDebianPackages, imageId, podman, runProgram } from './podman.ts';

export const debianSuite = 'bookworm';
/** The npm that Node 24.21.0 itself bundles. */
export const npmVersion = '11.19.0';
/** The Node version is the one scripts/with-node.sh pins (test/unit/dockerfile.test.ts keeps the Dockerfile in step). */
export const nodeVersion = /pinned_node=(\S+)/.exec(readFileSync(join(repoRoot, 'scripts/with-node.sh'), 'utf8'))![1]!;
export const nodeBaseImage = `docker.io/library/node:${nodeVersion}-${debianSuite}-slim`;
export const inputHashLabel = 'iotedge-operator.io/input-hash';

const nodeArch = arch() === 'arm64' ? 'arm64' : 'x64';
const log = (message: string) => process.stderr.write(`[images] ${message}\n`);

/** The Debian mirror apt is configured with here, so debootstrap fetches from the same place as apt-get. */
export function aptMirror(): string | undefined {
  const files = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f)) : [])];
  for (const file of files.filter((f) => existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text);
    if (oneLine) return oneLine[1];
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      if (uri && /^Suites:.*\bbookworm\b/m.test(stanza) && !/security/.test(uri)) return uri;
    }
  }
  return undefined;
}

/** debootstrap --variant=minbase, trimmed of apt lists, docs and man pages; cached as a tarball. */
async function debianRootfs(): Promise<string> {
  const tarball = join(imagesCache, `rootfs-${debianSuite}-minbase-${nodeArch}.tar`);
  if (existsSync(tarball)) return tarball;
  await ensureDebianPackages({ debootstrap: 'debootstrap' });
  const dir = join(imagesCache, 'work', 'rootfs');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const mirror = aptMirror();
  log(`debootstrap --variant=minbase ${debianSuite} (a few minutes, once)`);
  await runProgram('debootstrap', ['--variant=minbase', debianSuite, dir, ...(mirror ? [mirror] : [])]);
  for (const sub of ['var/lib/apt/lists', 'var/cache/apt', 'usr/share/doc', 'usr/share/man', 'usr/share/info', 'var/log']) {
    rmSync(join(dir, sub), { recursive: true, force: true });
    mkdirSync(join(dir, sub), { recursive: true });
  }
  mkdirSync(join(dir, 'var/lib/apt/lists/partial'), { recursive: true });
  await runProgram('tar', ['--numeric-owner', '-C', dir, '-cf', `${tarball}.partial`, '.']);
  renameSync(`${tarball}.partial`, tarball);
  rmSync(dir, { recursive: true, force: true });
  return tarball;
}

/** node-linux-<arch> from the npm registry, in the same cache directory scripts/with-node.sh uses. */
async function nodeBinary(): Promise<string> {
  const prefix = join(cacheRoot, 'node', nodeVersion);
  const binary = join(prefix, 'node_modules', `node-linux-${nodeArch}`, 'bin', 'node');
  if (!existsSync(binary)) {
    mkdirSync(prefix, { recursive: true });
    await runProgram('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', '--prefix', prefix, `node-linux-${nodeArch}@${nodeVersion}`]);
  }
  return binary;
}

async function npmTarball(): Promise<string> {
  const tarball = join(imagesCache, `npm-${npmVersion}.tgz`);
  if (!existsSync(tarball)) {
    await runProgram('npm', ['pack', `npm@${npmVersion}`, '--pack-destination', imagesCache, '--loglevel=error']);
  }
  return tarball;
}

/** Lays Node and npm into the root filesystem where the official image has them. */
async function addNode(dir: string): Promise<void> {
  cpSync(await nodeBinary(), join(dir, 'usr/local/bin/node'));
  const npmDir = join(dir, 'usr/local/lib/node_modules/npm');
  mkdirSync(npmDir, { recursive: true });
  await runProgram('tar', ['-xzf', await npmTarball(), '-C', npmDir, '--strip-components=1', '--no-same-owner']);
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(dir, 'usr/local/bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(dir, 'usr/local/bin/npx'));
  // The official image's unprivileged user.
  appendFileSync(join(dir, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/bash\n');
  appendFileSync(join(dir, 'etc/group'), 'node:x:1000:\n');
  mkdirSync(join(dir, 'home/node'), { recursive: true });
}

export interface BuiltImage { reference: string; id: string; hash: string; built: boolean; seconds: number }

/** Builds the Node base image unless one made from the same inputs is already in the store. */
export async function ensureNodeBase(): Promise<BuiltImage> {
  const began = Date.now();
  const hash = contentHash(repoRoot, ['scripts/images/node-base.ts'], [debianSuite, nodeVersion, npmVersion, nodeArch]);
  const existing = await imageId(nodeBaseImage);
  if (existing && (await podman(['image', 'inspect', '--format', `{{index .Labels "${inputHashLabel}"}}`, nodeBaseImage])).trim() === hash) {
    return { reference: nodeBaseImage, id: existing, hash, built: false, seconds: (Date.now() - began) / 1000 };
  }
  mkdirSync(imagesCache, { recursive: true });
  const rootfs = await debianRootfs();
  const dir = join(imagesCache, 'work', 'node-base');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await runProgram('tar', ['--numeric-owner', '-xf', rootfs, '-C', dir]);
  await addNode(dir);
  const tarball = join(imagesCache, 'work', 'node-base.tar');
  await runProgram('tar', ['--numeric-owner', '-C', dir, '-cf', tarball, '.']);
  rmSync(dir, { recursive: true, force: true });
  const changes = [
    `ENV NODE_VERSION=${nodeVersion}`,
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `LABEL ${inputHashLabel}=${hash}`,
    'CMD ["node"]',
  ];
  await podman(['import', ...changes.flatMap((c) => ['--change', c]), tarball, nodeBaseImage]);
  rmSync(tarball, { force: true });
  const id = (await imageId(nodeBaseImage))!;
  return { reference: nodeBaseImage, id, hash, built: true, seconds: (Date.now() - began) / 1000 };
}
