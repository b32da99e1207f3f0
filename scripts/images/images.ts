// npm run images [-- --no-import]: builds the Node base, the operator image (the project's Dockerfile) and
// the sample module images with podman, each only when its inputs changed, then imports them into the
// real worker's containerd when `npm run cluster:up` is running. Prints build and import times and sizes.
import { defaultClusterDir, healthyCluster } from '../cluster/control-plane.ts';
import { buildAll } from './build.ts';
import type { BuiltImage } from './node-base.ts';
import { imageSize, withProjectImagesLock } from './podman.ts';
import { importIntoWorker, type ImportResult, type StateWithWorker } from './worker-import.ts';

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  '));
}

async function printBuilt(images: BuiltImage[]): Promise<void> {
  const rows: string[][] = [];
  for (const i of images) rows.push([i.reference, i.built ? 'built' : 'cached', `${i.seconds.toFixed(1)}s`, mb(await imageSize(i.reference)), i.hash]);
  printTable(['IMAGE', 'BUILD', 'TIME', 'SIZE', 'INPUT HASH'], rows);
}

function printImported(result: ImportResult): void {
  printTable(['IMAGE', 'IMPORT'], [...result.imported.map((r) => [r, 'imported']), ...result.present.map((r) => [r, 'present'])]);
  if (result.imported.length) console.log(`one archive of ${mb(result.archiveBytes)}`);
}

async function main(): Promise<void> {
  const began = Date.now();
  await withProjectImagesLock(async () => {
    const images = await buildAll();
    await printBuilt(images);
    console.log(`built in ${((Date.now() - began) / 1000).toFixed(1)}s`);
    if (process.argv.includes('--no-import')) return;
    const state = (await healthyCluster(defaultClusterDir)) as StateWithWorker | undefined;
    if (!state?.worker) {
      console.log('No real worker is running (npm run cluster:up starts one); the images stay in the podman store until then.');
      return;
    }
    const importBegan = Date.now();
    // The base is only a build input: pods run the images made from it.
    printImported(await importIntoWorker(state, images.filter((i) => !i.reference.startsWith('docker.io/library/node:'))));
    console.log(`imported into ${state.worker.nodeName}'s containerd in ${((Date.now() - importBegan) / 1000).toFixed(1)}s`);
  });
}

main().catch((error: unknown) => {
  console.error(`images failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
