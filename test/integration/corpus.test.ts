// A few hundred generated real-shaped manifests (test/support/corpus.ts): every one translates, and the API
// server's dry-run refuses none of the objects. `npm run bench -- corpus` runs thousands.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { KubeClient } from '../../src/controller/kube-client.ts';
import { dryRunCorpus, realShapedManifest } from '../support/corpus.ts';
import { createTestNamespace, deleteTestNamespace, testCluster } from '../support/cluster.ts';

const cluster = testCluster();
let ns: string;

beforeAll(async () => {
  ns = await createTestNamespace(cluster, 'corpus');
});
afterAll(async () => {
  await deleteTestNamespace(cluster, ns);
});

describe('generated real-shaped manifests', () => {
  it('translate, and the API server accepts every object (dry-run)', async () => {
    const documents = fc.sample(realShapedManifest, { numRuns: 250, seed: Number(process.env.IOTEDGE_CORPUS_SEED ?? 20261203) });
    const figures = await dryRunCorpus(new KubeClient({ kubeConfig: cluster.kc }), ns, documents);
    expect(figures.notTranslated).toEqual({});
    expect(figures.refusals).toEqual([]);
    expect(figures.refused).toBe(0);
    expect(figures.objects).toBeGreaterThan(documents.length * 5);
  });
});
