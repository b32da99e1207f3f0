// Builds the project's images with podman, each skipped when an image made from the same inputs exists:
// the Node base, the operator (the project's own Dockerfile, unchanged) and the two sample modules.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../cluster/control-plane.ts';
import { contentHash, dockerfileSources, imagesCache } from './cache.ts';
import { ensureNodeBase, inputHashLabel, type BuiltImage } from './node-base.ts';
import { ensureDebianPackages, imageId, podman } from './podman.ts';

export const operatorImage = 'localhost/iotedge-operator:dev';
export const sensorImage = 'localhost/iotedge-samples/simulated-temperature-sensor:dev';
export const filterImage = 'localhost/iotedge-samples/filter-module:dev';

export interface ImageSpec {
  reference: string;
  /** The build context, relative to the repository. */
  context: string;
  /** The Dockerfile/Containerfile, relative to the repository. */
  file: string;
  buildArgs?: Record<string, string>;
  /** What the image is made from, relative to the context; by default the file's COPY/ADD sources. */
  inputs?: string[];
}

export const projectImages: ImageSpec[] = [
  { reference: operatorImage, context: '.', file: 'Dockerfile' },
  { reference: sensorImage, context: 'samples/modules', file: 'samples/modules/Containerfile', buildArgs: { MODULE: 'simulated-temperature-sensor' }, inputs: ['package.json', 'package-lock.json', 'simulated-temperature-sensor/main.ts'] },
  { reference: filterImage, context: 'samples/modules', file: 'samples/modules/Containerfile', buildArgs: { MODULE: 'filter-module' }, inputs: ['package.json', 'package-lock.json', 'filter-module/main.ts'] },
];

const log = (message: string) => process.stderr.write(`[images] ${message}\n`);

/**
 * npm inside RUN steps must trust what the machine's npm trusts: where npm has an extra CA (its `cafile`
 * setting or NODE_EXTRA_CA_CERTS, e.g. for TLS inspection), the build gets the host's certificates and an npmrc naming the same file.
 */
function npmTrustMounts(): string[] {
  const mounts: string[] = [];
  if (existsSync('/etc/ssl/certs')) mounts.push('-v', '/etc/ssl/certs:/etc/ssl/certs:ro');
  let cafile = '';
  try {
    cafile = execFileSync('npm', ['config', 'get', 'cafile'], { encoding: 'utf8' }).trim();
  } catch {
    // no npm config: nothing extra to trust
  }
  // Node's own trust setting counts too: a machine may give npm its inspecting proxy's CA only that way.
  if (!cafile || cafile === 'null' || cafile === 'undefined') cafile = process.env.NODE_EXTRA_CA_CERTS ?? '';
  if (cafile && cafile !== 'null' && cafile !== 'undefined' && existsSync(cafile)) {
    if (!cafile.startsWith('/etc/ssl/certs/')) mounts.push('-v', `${cafile}:${cafile}:ro`);
    const npmrc = join(imagesCache, 'build-npmrc');
    writeFileSync(npmrc, `cafile=${cafile}\n`);
    // npm's global config file for a Node installed under /usr/local.
    mounts.push('-v', `${npmrc}:/usr/local/etc/npmrc:ro`);
  }
  return mounts;
}

async function labelOf(reference: string): Promise<string | undefined> {
  try {
    return (await podman(['image', 'inspect', '--format', `{{index .Labels "${inputHashLabel}"}}`, reference])).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function inputHashOf(spec: ImageSpec, baseId: string): string {
  const context = join(repoRoot, spec.context);
  const file = readFileSync(join(repoRoot, spec.file), 'utf8');
  const inputs = spec.inputs ?? dockerfileSources(file);
  return contentHash(context, inputs, [baseId, file, JSON.stringify(spec.buildArgs ?? {})]);
}

/** Builds one image from its Dockerfile unless the store holds one labelled with the same input hash. */
export async function ensureImage(spec: ImageSpec, baseId: string): Promise<BuiltImage> {
  const began = Date.now();
  const hash = inputHashOf(spec, baseId);
  const existing = await imageId(spec.reference);
  if (existing && (await labelOf(spec.reference)) === hash) {
    return { reference: spec.reference, id: existing, hash, built: false, seconds: (Date.now() - began) / 1000 };
  }
  log(`building ${spec.reference} from ${spec.file}`);
  await podman([
    // runc: Debian's crun refuses this machine's hybrid cgroup hierarchy ("cgroups in hybrid mode not supported").
    'build', '--runtime', 'runc', '--pull=never', '--network=host', '--layers',
    '-f', join(repoRoot, spec.file), '-t', spec.reference, '--label', `${inputHashLabel}=${hash}`,
    ...Object.entries(spec.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
    ...npmTrustMounts(),
    join(repoRoot, spec.context),
  ], { echo: process.env.IOTEDGE_IMAGES_VERBOSE === '1' });
  return { reference: spec.reference, id: (await imageId(spec.reference))!, hash, built: true, seconds: (Date.now() - began) / 1000 };
}

/**
 * One docker-archive holding the given images, as containerd imports it; cached by their IDs. One archive
 * carries the layers the images share (the Node base) once, so the import reads them once.
 */
export async function imagesArchive(images: BuiltImage[]): Promise<string> {
  const key = createHash('sha256').update(images.map((i) => `${i.reference}@${i.id}`).sort().join('\n')).digest('hex').slice(0, 16);
  const archive = join(imagesCache, `project-images-${key}.tar`);
  if (!existsSync(archive)) {
    await podman(['save', '-m', '--format', 'docker-archive', '-o', `${archive}.partial`, ...images.map((i) => i.reference)]);
    renameSync(`${archive}.partial`, archive);
    // Only the newest archive is kept: an older one holds images that have been rebuilt since.
    for (const old of readdirSync(imagesCache).filter((f) => f.startsWith('project-images-') && join(imagesCache, f) !== archive)) rmSync(join(imagesCache, old), { force: true });
  }
  return archive;
}

export const archiveBytes = (archive: string) => statSync(archive).size;

/** The Node base, then every project image on it; prints nothing, returns what it did and how long it took. */
export async function buildAll(specs: ImageSpec[] = projectImages): Promise<BuiltImage[]> {
  await ensureDebianPackages({ podman: 'podman', debootstrap: 'debootstrap', runc: 'runc' });
  mkdirSync(imagesCache, { recursive: true });
  const base = await ensureNodeBase();
  const built = [base];
  for (const spec of specs) built.push(await ensureImage(spec, base.id));
  return built;
}
