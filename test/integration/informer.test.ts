// The informer and its REST client against the run's real API server: events for ConfigMaps, label
// selectors, managedFields stripping, frozen cache, resuming across server-closed watches, a real 410
// with relist, and surviving an API server that is unreachable or silent behind a loopback TCP proxy.
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubernetesObject, V1ConfigMap, V1PodTemplate } from '@kubernetes/client-node';
import { EDGE_DEPLOYMENT_LABEL, Informer, keyOf, mapToOwner } from '../../src/controller/informer.ts';
import type { InformerEvent, ListWatchClient } from '../../src/controller/informer.ts';
import { KubeApiError, KubeClient, isGone } from '../../src/controller/kube-client.ts';
import type { WatchEvent, WatchOptions } from '../../src/controller/kube-client.ts';
import { WorkQueue } from '../../src/controller/workqueue.ts';
import { TimeoutError } from '../../src/runtime/deadline.ts';
import { createTestNamespace, deleteTestNamespace, eventually, testCluster } from '../support/cluster.ts';

const cluster = testCluster();
const client = new KubeClient({ kubeConfig: cluster.kc, requestTimeoutMs: 15_000 });
let ns: string;
const informers: Informer<V1ConfigMap>[] = [];

beforeAll(async () => {
  ns = await createTestNamespace(cluster, 'informer');
});
afterAll(async () => {
  await Promise.all(informers.map((i) => i.stop()));
  client.close();
  await deleteTestNamespace(cluster, ns);
});

function track(informer: Informer<V1ConfigMap>): { informer: Informer<V1ConfigMap>; events: InformerEvent<V1ConfigMap>[] } {
  informers.push(informer);
  const events: InformerEvent<V1ConfigMap>[] = [];
  informer.onEvent((e) => void events.push(e));
  return { informer, events };
}

async function createCm(name: string, labels: Record<string, string> = {}, data: Record<string, string> = {}): Promise<V1ConfigMap> {
  return cluster.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, labels }, data } });
}

async function createTemplate(name: string, v = '1'): Promise<V1PodTemplate> {
  return cluster.core.createNamespacedPodTemplate({
    namespace: ns,
    body: { metadata: { name, labels: { set: 'gone' }, annotations: { v } }, template: { spec: { containers: [{ name: 'c', image: 'example.invalid/c:1' }] } } },
  });
}

function trackTemplates(informer: Informer<V1PodTemplate>): { informer: Informer<V1PodTemplate>; events: InformerEvent<V1PodTemplate>[] } {
  informers.push(informer as unknown as Informer<V1ConfigMap>);
  const events: InformerEvent<V1PodTemplate>[] = [];
  informer.onEvent((e) => void events.push(e));
  return { informer, events };
}

function eventsFor(events: InformerEvent<KubernetesObject>[], name: string): string[] {
  return events.filter((e) => e.object.metadata?.name === name).map((e) => e.type);
}

describe('KubeClient against the API server', () => {
  it('lists page by page, reads one object and reports API errors with their status and path', async () => {
    for (let i = 0; i < 5; i += 1) await createCm(`page-${i}`, { set: 'paging' });
    const { items, resourceVersion } = await client.list<V1ConfigMap>(`/api/v1/namespaces/${ns}/configmaps`, { labelSelector: 'set=paging', limit: 2 });
    expect(items.map((i) => i.metadata?.name).sort()).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    expect(resourceVersion).toMatch(/^\d+$/);
    const one = await client.get<V1ConfigMap>(`/api/v1/namespaces/${ns}/configmaps/page-3`);
    expect(one.metadata?.labels?.set).toBe('paging');
    const missing = await client.get(`/api/v1/namespaces/${ns}/configmaps/nope`).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(KubeApiError);
    expect((missing as KubeApiError).status).toBe(404);
    expect((missing as KubeApiError).message).toContain(`/api/v1/namespaces/${ns}/configmaps/nope`);
  });
});

describe('Informer against the API server', () => {
  it('delivers the initial list and then add, update and delete events, with managedFields stripped and a frozen cache', async () => {
    await createCm('first', {}, { k: 'v1' });
    const { informer, events } = track(new Informer<V1ConfigMap>({ kubeConfig: cluster.kc, path: '/api/v1/configmaps', namespace: ns, fieldSelector: 'metadata.name!=kube-root-ca.crt' }));
    await informer.start();
    expect(informer.hasSynced()).toBe(true);
    expect(eventsFor(events, 'first')).toEqual(['add']);

    await createCm('second');
    await cluster.core.patchNamespacedConfigMap({ name: 'first', namespace: ns, body: [{ op: 'replace', path: '/data/k', value: 'v2' }] });
    await cluster.core.deleteNamespacedConfigMap({ name: 'second', namespace: ns });
    await eventually('events for second', async () => (eventsFor(events, 'second').length === 2 ? true : undefined));
    await eventually('update of first', async () => (informer.get(ns, 'first')?.data?.k === 'v2' ? true : undefined));
    expect(eventsFor(events, 'second')).toEqual(['add', 'delete']);
    expect(eventsFor(events, 'first')).toEqual(['add', 'update']);
    const update = events.find((e) => e.type === 'update' && e.object.metadata?.name === 'first')!;
    expect(update.oldObject?.data?.k).toBe('v1');
    expect(informer.get(ns, 'second')).toBeUndefined();

    // The server does send managedFields; the cache does not keep them.
    const live = await client.get<V1ConfigMap>(`/api/v1/namespaces/${ns}/configmaps/first`);
    expect(live.metadata?.managedFields?.length).toBeGreaterThan(0);
    const cached = informer.get(ns, 'first')!;
    expect(cached.metadata).not.toHaveProperty('managedFields');
    expect(events.every((e) => e.object.metadata?.managedFields === undefined)).toBe(true);

    // A consumer cannot change what the cache holds, by the object from get() or from an event.
    expect(() => {
      cached.data!.k = 'corrupted';
    }).toThrow(TypeError);
    expect(() => {
      (update.object.metadata as { labels?: Record<string, string> }).labels = { x: 'y' };
    }).toThrow(TypeError);
    expect(informer.get(ns, 'first')?.data?.k).toBe('v2');
    const mine = structuredClone(cached);
    mine.data!.k = 'local edit';
    expect(informer.get(ns, 'first')?.data?.k).toBe('v2');
  });

  it('sees only objects matching its label selector; an object that stops matching is deleted from it', async () => {
    const { informer, events } = track(new Informer<V1ConfigMap>({ kubeConfig: cluster.kc, path: '/api/v1/configmaps', namespace: ns, labelSelector: 'tier=edge' }));
    await createCm('edge-before', { tier: 'edge' });
    await createCm('cloud-before', { tier: 'cloud' });
    await informer.start();
    expect(informer.keys()).toEqual([`${ns}/edge-before`]);
    await createCm('edge-after', { tier: 'edge' });
    await createCm('cloud-after', { tier: 'cloud' });
    await cluster.core.patchNamespacedConfigMap({ name: 'edge-before', namespace: ns, body: [{ op: 'replace', path: '/metadata/labels/tier', value: 'cloud' }] });
    await eventually('edge-before to leave the selector', async () => (eventsFor(events, 'edge-before').includes('delete') ? true : undefined));
    await eventually('edge-after', async () => (informer.get(ns, 'edge-after') ? true : undefined));
    expect(informer.keys().sort()).toEqual([`${ns}/edge-after`]);
    expect(events.some((e) => e.object.metadata?.labels?.tier === 'cloud' && e.type !== 'delete')).toBe(false);
    expect(informer.listByLabel({ tier: 'edge' }, ns).map(keyOf)).toEqual([`${ns}/edge-after`]);
  });

  it('resumes across watches the server closes, without relisting or delivering an add twice', async () => {
    let watches = 0;
    let lists = 0;
    const { informer, events } = track(
      new Informer<V1ConfigMap>({
        kubeConfig: cluster.kc,
        path: '/api/v1/configmaps',
        namespace: ns,
        labelSelector: 'set=rollover',
        watchTimeoutSeconds: 1,
        hooks: { onWatchStart: () => void (watches += 1), onList: () => void (lists += 1) },
      }),
    );
    await createCm('roll-0', { set: 'rollover' });
    await informer.start();
    const names = ['roll-0'];
    // Keep writing while the server ends each watch after 1–2 s.
    for (let i = 1; i <= 6; i += 1) {
      const startedBefore = watches;
      await createCm(`roll-${i}`, { set: 'rollover' });
      names.push(`roll-${i}`);
      await eventually('the next watch', async () => (watches > startedBefore ? true : undefined));
    }
    await eventually('all objects', async () => (names.every((n) => informer.get(ns, n)) ? true : undefined));
    expect(watches).toBeGreaterThanOrEqual(6);
    expect(lists).toBe(1);
    for (const name of names) expect(eventsFor(events, name)).toEqual(['add']);
  });

  it('advances its resourceVersion on bookmarks while its own objects are quiet', async () => {
    const { informer, events } = track(
      new Informer<V1ConfigMap>({ kubeConfig: cluster.kc, path: '/api/v1/configmaps', namespace: ns, labelSelector: 'set=quiet', watchTimeoutSeconds: 4 }),
    );
    await informer.start();
    const listed = informer.lastResourceVersion();
    // Other writes in the cluster move the global resourceVersion; the server reports it in a bookmark
    // about 2 s before each watch's deadline.
    await createCm('noise', { set: 'not-quiet' });
    await eventually('a bookmark', async () => (informer.lastResourceVersion() !== listed ? true : undefined), 30_000);
    expect(events).toEqual([]);
  });

  it('relists after a real 410 Gone from the API server and emits the deletes it missed', async () => {
    // PodTemplates bypass the watch cache in the local control plane, so once etcd is compacted a watch
    // from resourceVersion 1 gets a real 410.
    await ensureResourceVersionOneIsGone();
    const stale = new StaleResumeClient(client);
    let relists = 0;
    const ends: string[] = [];
    const { informer, events } = trackTemplates(
      new Informer<V1PodTemplate>({
        client: stale,
        path: '/api/v1/podtemplates',
        namespace: ns,
        labelSelector: 'set=gone',
        backoff: { initialMs: 200, maxMs: 1000 },
        hooks: { onList: (i) => void (relists += i.relist ? 1 : 0), onWatchEnd: (i) => void ends.push(i.reason) },
      }),
    );
    await createTemplate('kept');
    await createTemplate('changed', '1');
    await createTemplate('deleted');
    await informer.start();
    await eventually('the first watch', async () => (stale.watchCount > 0 ? true : undefined));

    // The informer stops watching (as if the connection were down for long); meanwhile the world changes.
    stale.disconnect();
    await cluster.core.deleteNamespacedPodTemplate({ name: 'deleted', namespace: ns });
    await cluster.core.patchNamespacedPodTemplate({ name: 'changed', namespace: ns, body: [{ op: 'replace', path: '/metadata/annotations/v', value: '2' }] });
    await createTemplate('created');
    // Its next watch resumes from a resourceVersion the server no longer has.
    stale.reconnectFromResourceVersion('1');

    await eventually('the relist', async () => (relists === 1 ? true : undefined));
    await eventually('created', async () => (informer.get(ns, 'created') ? true : undefined));
    expect(ends).toContain('gone');
    expect(stale.goneSeen).toBeInstanceOf(KubeApiError);
    expect(isGone(stale.goneSeen)).toBe(true);
    expect(eventsFor(events, 'deleted')).toEqual(['add', 'delete']);
    expect(eventsFor(events, 'changed')).toEqual(['add', 'update']);
    expect(eventsFor(events, 'created')).toEqual(['add']);
    expect(eventsFor(events, 'kept')).toEqual(['add']);
    expect(informer.keys().sort()).toEqual([`${ns}/changed`, `${ns}/created`, `${ns}/kept`]);
    expect(informer.get(ns, 'changed')?.metadata?.annotations?.v).toBe('2');
    // And it keeps watching after the relist.
    await createTemplate('after-relist');
    await eventually('after-relist', async () => (informer.get(ns, 'after-relist') ? true : undefined));
  });

  it('feeds a work queue: changes to children enqueue their EdgeDeployment key', async () => {
    const { informer } = track(
      new Informer<V1ConfigMap>({ kubeConfig: cluster.kc, path: '/api/v1/configmaps', namespace: ns, labelSelector: EDGE_DEPLOYMENT_LABEL }),
    );
    const queue = new WorkQueue({ name: 'edgedeployment' });
    informer.onEvent(mapToOwner((key) => queue.add(key)));
    const reconciled: string[] = [];
    const inFlight = new Set<string>();
    let overlap = false;
    const workers = queue.runWorkers(2, async (key) => {
      if (inFlight.has(key)) overlap = true;
      inFlight.add(key);
      reconciled.push(key);
      await new Promise((r) => setTimeout(r, 20));
      inFlight.delete(key);
    });
    await informer.start();
    await createCm('plant-a-module-1', { [EDGE_DEPLOYMENT_LABEL]: 'plant-a' });
    await createCm('plant-a-module-2', { [EDGE_DEPLOYMENT_LABEL]: 'plant-a' });
    await createCm('plant-b-module-1', { [EDGE_DEPLOYMENT_LABEL]: 'plant-b' });
    await cluster.core.deleteNamespacedConfigMap({ name: 'plant-a-module-1', namespace: ns });
    await eventually('both owners reconciled', async () => (reconciled.includes(`${ns}/plant-a`) && reconciled.includes(`${ns}/plant-b`) ? true : undefined));
    await eventually('the delete reconciled', async () => (reconciled.filter((k) => k === `${ns}/plant-a`).length >= 2 && queue.len() === 0 ? true : undefined));
    expect(new Set(reconciled)).toEqual(new Set([`${ns}/plant-a`, `${ns}/plant-b`]));
    expect(overlap).toBe(false);
    expect(await queue.shutDownWithDrain(10_000)).toBe(true);
    await workers;
  });

  it('survives the API server being unreachable and then silent, behind a loopback proxy', async () => {
    const proxy = await TcpProxy.start(new URL(cluster.kc.getCurrentCluster()!.server));
    try {
      const viaProxy = new KubeClient({ kubeConfig: kubeConfigFor(cluster.kc, proxy.url), requestTimeoutMs: 3000 });
      const ends: string[] = [];
      const { informer } = track(
        new Informer<V1ConfigMap>({
          client: viaProxy,
          path: '/api/v1/configmaps',
          namespace: ns,
          labelSelector: 'set=proxy',
          inactivityTimeoutMs: 3000,
          backoff: { initialMs: 200, maxMs: 1000 },
          hooks: { onWatchEnd: (i) => void ends.push(i.reason) },
        }),
      );
      await createCm('p-0', { set: 'proxy' });
      await informer.start();
      expect(informer.keys()).toEqual([`${ns}/p-0`]);

      // Unreachable: the proxy drops every connection and refuses new ones.
      await proxy.refuse();
      await createCm('p-1', { set: 'proxy' });
      await eventually('a failed watch', async () => (ends.includes('error') ? true : undefined));
      await proxy.forward();
      await eventually('p-1 after the outage', async () => (informer.get(ns, 'p-1') ? true : undefined));

      // Silent: connections stay open but nothing flows (a half-open TCP path).
      proxy.blackhole();
      await createCm('p-2', { set: 'proxy' });
      await eventually('the inactivity timeout', async () => (ends.includes('inactive') ? true : undefined));
      // A plain request into the silence ends at its deadline instead of hanging.
      const hung = await viaProxy.get(`/api/v1/namespaces/${ns}/configmaps/p-0`).catch((e: unknown) => e);
      expect(hung).toBeInstanceOf(TimeoutError);
      expect((hung as Error).message).toContain(`/api/v1/namespaces/${ns}/configmaps/p-0 did not finish within 3000 ms`);
      await proxy.forward();
      await eventually('p-2 after the silence', async () => (informer.get(ns, 'p-2') ? true : undefined));
      expect(informer.keys().sort()).toEqual([`${ns}/p-0`, `${ns}/p-1`, `${ns}/p-2`]);
      await informer.stop();
      viaProxy.close();
    } finally {
      await proxy.close();
    }
  });
});

/**
 * Wraps the real client to simulate a watch that was down longer than the server keeps history:
 * disconnect() ends the current watch and holds new ones; reconnectFromResourceVersion(rv) lets the next
 * watch through with that resourceVersion instead of the informer's. The 410 itself comes from the server.
 */
class StaleResumeClient implements ListWatchClient {
  watchCount = 0;
  goneSeen: unknown;
  private readonly inner: KubeClient;
  private current: AbortController | undefined;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private resumeFrom: string | undefined;
  constructor(inner: KubeClient) {
    this.inner = inner;
  }
  list<T>(path: string, options: { labelSelector?: string; fieldSelector?: string; timeoutMs?: number; signal?: AbortSignal }): Promise<{ items: T[]; resourceVersion: string }> {
    return this.inner.list<T>(path, options);
  }
  disconnect(): void {
    this.gate = new Promise((r) => (this.openGate = r));
    this.current?.abort(new Error('test cut the watch'));
  }
  reconnectFromResourceVersion(rv: string): void {
    this.resumeFrom = rv;
    this.openGate?.();
    this.gate = undefined;
  }
  async *watch<T extends KubernetesObject>(path: string, options: WatchOptions): AsyncGenerator<WatchEvent<T>> {
    await this.gate;
    this.watchCount += 1;
    const own = new AbortController();
    this.current = own;
    const resourceVersion = this.resumeFrom ?? options.resourceVersion;
    this.resumeFrom = undefined;
    try {
      yield* this.inner.watch<T>(path, { ...options, resourceVersion, signal: AbortSignal.any([own.signal, ...(options.signal ? [options.signal] : [])]) });
    } catch (error) {
      if (isGone(error)) this.goneSeen = error;
      throw error;
    }
  }
}

/** Makes resourceVersion 1 too old to watch from: compacts etcd unless the API server already has. */
async function ensureResourceVersionOneIsGone(): Promise<void> {
  if (await watchFromOneIsGone()) return;
  const state = JSON.parse(readFileSync(join(dirname(cluster.kubeconfigPath), 'state.json'), 'utf8')) as { ports: { etcdClient: number } };
  // Compact to this file's namespace creation: everything older is history the server then cannot replay.
  const nsObject = await cluster.core.readNamespace({ name: ns });
  const revision = nsObject.metadata!.resourceVersion!;
  const res = await fetch(`http://127.0.0.1:${state.ports.etcdClient}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision, physical: true }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  if (!res.ok && !body.includes('compacted')) throw new Error(`etcd compaction to ${revision} failed: ${res.status} ${body}`);
  await eventually('resourceVersion 1 to be gone', async () => ((await watchFromOneIsGone()) ? true : undefined), 30_000);
}

async function watchFromOneIsGone(): Promise<boolean> {
  try {
    for await (const _event of client.watch(`/api/v1/namespaces/${ns}/podtemplates`, { resourceVersion: '1', timeoutSeconds: 1 })) {
      // Events mean the server could still replay from 1.
    }
    return false;
  } catch (error) {
    if (isGone(error)) return true;
    throw error;
  }
}

function kubeConfigFor(kc: KubeConfig, server: string): KubeConfig {
  const exported = JSON.parse(kc.exportConfig()) as { clusters: { cluster: { server: string } }[] };
  for (const c of exported.clusters) c.cluster.server = server;
  const copy = new KubeConfig();
  copy.loadFromString(JSON.stringify(exported));
  return copy;
}

/** A TCP proxy on 127.0.0.1 that can forward, refuse connections, or hold them open and pass nothing. */
class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private silent = false;
  private readonly target: URL;
  readonly port: number;
  private constructor(target: URL, port: number) {
    this.target = target;
    this.port = port;
  }
  static async start(target: URL): Promise<TcpProxy> {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const proxy = new TcpProxy(target, port);
    await proxy.forward();
    return proxy;
  }
  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }
  async forward(): Promise<void> {
    this.silent = false;
    for (const pair of this.pairs) {
      // Connections held during a blackhole are dead to their clients by now; drop them.
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
    if (this.server) return;
    const server = createServer((clientSocket) => {
      const upstream = connect(Number(this.target.port), this.target.hostname);
      const pair = { client: clientSocket, upstream };
      this.pairs.add(pair);
      const drop = (): void => {
        clientSocket.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      clientSocket.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      clientSocket.on('data', (d: Buffer) => {
        if (!this.silent) upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        if (!this.silent) clientSocket.write(d);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }
  async refuse(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
  blackhole(): void {
    this.silent = true;
  }
  async close(): Promise<void> {
    await this.refuse();
  }
}
