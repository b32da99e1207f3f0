// Puts built images into the real worker's containerd (through scripts/cluster/worker.ts), skipping an
// image that containerd already holds at the same ID. Pods then use them with imagePullPolicy IfNotPresent/Never.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterState } from '../cluster/control-plane.ts';
import { archiveBytes, imagesArchive } from './build.ts';
import type { BuiltImage } from './node-base.ts';
import { runProgram } from './podman.ts';

/** The real worker's part of the cluster state (scripts/cluster/control-plane.ts). */
export interface RealWorker { nodeName: string; netns: string; bridgeIp: string; containerdSocket: string; stateDir: string }
export type StateWithWorker = ClusterState & { worker?: RealWorker };
type ImportImageArchive = (state: StateWithWorker, tarPath: string) => Promise<unknown>;

/** scripts/cluster/worker.ts's importImageArchive, loaded when a worker is in use. */
async function importer(): Promise<ImportImageArchive> {
  const workerModule = '../cluster/worker.ts';
  const loaded = (await import(workerModule).catch(() => ({}))) as { importImageArchive?: ImportImageArchive };
  if (loaded.importImageArchive) return loaded.importImageArchive;
  // Until worker.ts provides it: the same command it runs.
  return async (state, tar) => runProgram('ctr', ['-a', state.worker!.containerdSocket, '-n', 'k8s.io', 'images', 'import', tar]);
}

export interface ImportResult {
  /** Images containerd already held at the same ID. */
  present: string[];
  /** Images imported now, in one archive. */
  imported: string[];
  seconds: number;
  archiveBytes: number;
}

const recordFile = (worker: RealWorker) => join(worker.stateDir, 'imported-images.json');

function readRecord(worker: RealWorker): Record<string, string> {
  try {
    return JSON.parse(readFileSync(recordFile(worker), 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/** True when containerd lists the reference (a record alone could outlive a wiped containerd root). */
async function containerdHas(worker: RealWorker, reference: string): Promise<boolean> {
  const { stdout } = await runProgram('ctr', ['-a', worker.containerdSocket, '-n', 'k8s.io', 'images', 'ls', '-q', `name==${reference}`]);
  return stdout.split('\n').some((l) => l.trim() === reference);
}

/** Imports the images containerd lacks (or holds at another ID) as one archive. */
export async function importIntoWorker(state: StateWithWorker, images: BuiltImage[]): Promise<ImportResult> {
  const worker = state.worker;
  if (!worker) throw new Error('the cluster has no real worker (start it with npm run cluster:up)');
  const began = Date.now();
  const record = readRecord(worker);
  const missing: BuiltImage[] = [];
  for (const image of images) {
    if (!(record[image.reference] === image.id && (await containerdHas(worker, image.reference)))) missing.push(image);
  }
  if (missing.length === 0) return { present: images.map((i) => i.reference), imported: [], seconds: (Date.now() - began) / 1000, archiveBytes: 0 };
  const archive = await imagesArchive(missing);
  await (await importer())(state, archive);
  for (const image of missing) record[image.reference] = image.id;
  writeFileSync(recordFile(worker), JSON.stringify(record, null, 2));
  return {
    present: images.filter((i) => !missing.includes(i)).map((i) => i.reference),
    imported: missing.map((i) => i.reference),
    seconds: (Date.now() - began) / 1000,
    archiveBytes: archiveBytes(archive),
  };
}
