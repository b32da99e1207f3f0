// The generated corpus of real-shaped deployment manifests (test/support/corpus.ts) against a fresh local
// control plane: how many translate, and how many of their objects the API server's dry-run refuses (the
// target is 0). Printed beside a same-run baseline: the hand-written fixtures, dry-run the same way.
//   npm run bench -- corpus [--count 2000] [--seed N] [--concurrency 6]
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { KubeConfig } from '@kubernetes/client-node';
import fc from 'fast-check';
import { KubeClient } from '../src/controller/kube-client.ts';
import { kubectl, repoRoot, startControlPlane, stopControlPlane } from '../scripts/cluster/control-plane.ts';
import { dryRunCorpus, realShapedManifest, type CorpusFigures } from '../test/support/corpus.ts';
import { option } from './support.ts';

function fixtures(): Record<string, unknown>[] {
  const dirs = [join(repoRoot, 'test/fixtures/manifests'), join(repoRoot, 'test/fixtures/manifests/lenient')];
  return dirs.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>));
}

function print(label: string, f: CorpusFigures, seconds: number): void {
  console.log(`${label.padEnd(28)} manifests ${String(f.manifests).padStart(5)}  translated ${String(f.translated).padStart(5)}  objects ${String(f.objects).padStart(6)}  refused ${String(f.refused).padStart(3)}  ${(f.objects / seconds).toFixed(0)} objects/s`);
  if (Object.keys(f.notTranslated).length > 0) console.log(`  not translated, by code: ${JSON.stringify(f.notTranslated)}`);
  for (const r of f.refusals) console.log(`  refused: ${r}`);
}

export async function main(args: string[]): Promise<void> {
  const count = Number(option(args, '--count') ?? 2000);
  const seed = Number(option(args, '--seed') ?? 20261203);
  const concurrency = Number(option(args, '--concurrency') ?? 6);
  // Server-side dry runs only: no node is needed beyond KWOK's.
  const state = await startControlPlane(mkdtempSync(join(tmpdir(), 'iotedge-operator-bench-corpus-')), { worker: false, kwokNodes: 1, ownerPid: process.pid });
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(state.kubeconfig);
    const client = new KubeClient({ kubeConfig: kc });
    await kubectl(state, ['create', 'namespace', 'corpus']);
    await kubectl(state, ['create', 'serviceaccount', 'default', '-n', 'corpus']).catch(() => undefined);
    let t = performance.now();
    const baseline = await dryRunCorpus(client, 'corpus', fixtures(), concurrency);
    print('baseline: fixtures', baseline, (performance.now() - t) / 1000);
    const documents = fc.sample(realShapedManifest, { numRuns: count, seed });
    t = performance.now();
    const corpus = await dryRunCorpus(client, 'corpus', documents, concurrency);
    print(`corpus (seed ${seed})`, corpus, (performance.now() - t) / 1000);
    console.log(`refused objects: ${corpus.refused}`);
  } finally {
    await stopControlPlane(state.dir);
  }
}
