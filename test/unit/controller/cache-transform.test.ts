import { describe, expect, it } from '@jest/globals';
import { whatTheReconcilerReads } from '../../../src/controller/manager.ts';
import { ownedKinds } from '../../../src/controller/resources.ts';

const kind = (name: string) => ownedKinds.find((k) => k.kind === name)!;

describe('what the reconciler caches of its children', () => {
  it('keeps a Secret\'s keys but never its values', () => {
    const slim = whatTheReconcilerReads(kind('Secret'))({
      metadata: { name: 's', namespace: 'n', labels: { a: 'b' } },
      data: { EdgeHubConnectionString: Buffer.from('HostName=h;SharedAccessKey=secret').toString('base64') },
    } as never) as { kind: string; data: Record<string, string>; metadata: { labels: Record<string, string> } };
    expect(slim).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'n', labels: { a: 'b' } }, data: { EdgeHubConnectionString: '' } });
  });

  it('keeps a Pod\'s status and drops its spec; other kinds keep metadata only', () => {
    const pod = whatTheReconcilerReads(kind('Pod'))({ metadata: { name: 'p' }, spec: { containers: [] }, status: { phase: 'Running' } } as never);
    expect(pod).toEqual({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, status: { phase: 'Running' } });
    const deployment = whatTheReconcilerReads(kind('Deployment'))({
      metadata: { name: 'd', generation: 2, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{…}', keep: 'me' } },
      spec: { replicas: 1 },
      status: { readyReplicas: 1 },
    } as never);
    expect(deployment).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', generation: 2, annotations: { keep: 'me' } } });
  });
});
