// Puts built images into the real worker's containerd (through scripts/cluster/worker.ts), skipping an
// image that containerd already holds at the same ID. Pods then use them with imagePullPolicy IfNotPresent/Never.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterState } from '../cluster/control-plane.ts';
import { imageArchive, archiveBytes } from './build.ts';
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

export interface Imported { reference: string; imported: boolean; seconds: number; archiveBytes: number }

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

export async function importIntoWorker(state: StateWithWorker, images: BuiltImage[]): Promise<Imported[]> {
  const worker = state.worker;
  if (!worker) throw new Error('the cluster has no real worker (start it with npm run cluster:up)');
  const importImageArchive = await importer();
  const record = existsSync(worker.stateDir) ? readRecord(worker) : {};
  const results: Imported[] = [];
  for (const image of images) {
    const began = Date.now();
    const archive = await imageArchive(image);
    const current = record[image.reference] === image.id && (await containerdHas(worker, image.reference));
    if (!current) {
      await importImageArchive(state, archive);
      record[image.reference] = image.id;
      writeFileSync(recordFile(worker), JSON.stringify(record, null, 2));
    }
    results.push({ reference: image.reference, imported: !current, seconds: (Date.now() - began) / 1000, archiveBytes: archiveBytes(archive) });
  }
  return results;
}
