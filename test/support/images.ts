// The project's images on the real worker for the tests that run them (helm-in-cluster, the demo's modules).
// Called from the global setup, which no jest timeout covers: a cold machine builds them once (minutes),
// later runs find them cached by content hash and only import what the worker's containerd lacks.
import { buildAll } from '../../scripts/images/build.ts';
import { withProjectImagesLock } from '../../scripts/images/podman.ts';
import { importIntoWorker, type StateWithWorker } from '../../scripts/images/worker-import.ts';

export async function provideProjectImages(state: StateWithWorker): Promise<void> {
  if (!state.worker) return;
  const began = Date.now();
  const { images, imported } = await withProjectImagesLock(async () => {
    const images = await buildAll();
    return { images, imported: await importIntoWorker(state, images.filter((i) => !i.reference.startsWith('docker.io/library/node:'))) };
  });
  const built = images.filter((i) => i.built).map((i) => `${i.reference} ${i.seconds.toFixed(0)}s`);
  process.stderr.write(`[test] project images ready in ${((Date.now() - began) / 1000).toFixed(1)}s` +
    ` (built: ${built.length ? built.join(', ') : 'none, all cached'}; imported: ${imported.imported.length ? `${imported.imported.length} in ${imported.seconds.toFixed(1)}s` : 'none, all present'})\n`);
}
