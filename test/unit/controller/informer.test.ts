// The informer's pure parts (relist diff, owner mapping, freezing, paths, backoff, stream parsing) and
// its list/watch state machine driven through a scripted ListWatchClient whose watch bodies are raw
// text run through the real stream decoder, so a 410 ERROR line is handled exactly as on the wire.
import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import {
  Informer,
  JitteredBackoff,
  deepFreeze,
  diffRelist,
  ingest,
  keyOf,
  mapToOwner,
  namespacedPath,
  ownerKeyOf,
} from '../../../src/controller/informer.ts';
import type { InformerEvent, ListWatchClient } from '../../../src/controller/informer.ts';
import { KubeApiError, WatchEventParser, decodeWatchStream, isGone } from '../../../src/controller/kube-client.ts';
import type { WatchEvent, WatchOptions } from '../../../src/controller/kube-client.ts';

function cm(name: string, rv: string, extra: Partial<V1ConfigMap['metadata']> = {}, data: Record<string, string> = {}): V1ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns', resourceVersion: rv, ...extra }, data };
}

describe('diffRelist', () => {
  it('finds objects added, changed and deleted while the informer was not watching', () => {
    const cache = new Map([
      ['ns/kept', cm('kept', '10')],
      ['ns/changed', cm('changed', '11')],
      ['ns/gone', cm('gone', '12')],
    ]);
    const diff = diffRelist(cache, [cm('kept', '10'), cm('changed', '20'), cm('new', '21')]);
    expect(diff.added.map(keyOf)).toEqual(['ns/new']);
    expect(diff.updated.map((u) => [u.oldObject.metadata?.resourceVersion, u.object.metadata?.resourceVersion])).toEqual([['11', '20']]);
    expect(diff.deleted.map(keyOf)).toEqual(['ns/gone']);
  });

  it('an empty list deletes everything; an empty cache adds everything', () => {
    const cache = new Map([['ns/a', cm('a', '1')]]);
    expect(diffRelist(cache, []).deleted.map(keyOf)).toEqual(['ns/a']);
    expect(diffRelist(new Map(), [cm('a', '1'), cm('b', '2')]).added.map(keyOf)).toEqual(['ns/a', 'ns/b']);
  });

  it('treats resourceVersions as opaque strings, never numbers', () => {
    const cache = new Map([['ns/a', cm('a', '010')]]);
    expect(diffRelist(cache, [cm('a', '10')]).updated).toHaveLength(1);
  });
});

describe('keys and owners', () => {
  it('keys namespaced objects as namespace/name and cluster-scoped ones as name', () => {
    expect(keyOf(cm('a', '1'))).toBe('ns/a');
    expect(keyOf({ metadata: { name: 'node-1' } })).toBe('node-1');
  });

  it('maps a child to its EdgeDeployment by controller ownerReference, else by label', () => {
    const byRef = cm('c', '1', {
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u0', controller: false },
        { apiVersion: 'iotedge-operator.io/v1alpha1', kind: 'EdgeDeployment', name: 'plant-a', uid: 'u1', controller: true },
      ],
      labels: { 'iotedge-operator.io/edge-deployment': 'other' },
    });
    expect(ownerKeyOf(byRef)).toBe('ns/plant-a');
    expect(ownerKeyOf(cm('c', '1', { labels: { 'iotedge-operator.io/edge-deployment': 'plant-b' } }))).toBe('ns/plant-b');
    // A long name is carried shortened in the label; the resolver gives the name back.
    expect(ownerKeyOf(cm('c', '1', { labels: { 'iotedge-operator.io/edge-deployment': 'short-abc123' } }), (_ns, label) => (label === 'short-abc123' ? 'a-very-long-name' : undefined))).toBe('ns/a-very-long-name');
    // A non-controller reference or another group's EdgeDeployment is not ours.
    const foreign = cm('c', '1', {
      ownerReferences: [
        { apiVersion: 'iotedge-operator.io/v1alpha1', kind: 'EdgeDeployment', name: 'x', uid: 'u', controller: false },
        { apiVersion: 'example.com/v1', kind: 'EdgeDeployment', name: 'y', uid: 'v', controller: true },
      ],
    });
    expect(ownerKeyOf(foreign)).toBeUndefined();
    expect(ownerKeyOf({ metadata: { name: 'cluster-scoped', labels: { 'iotedge-operator.io/edge-deployment': 'z' } } })).toBeUndefined();
  });

  it('mapToOwner enqueues the owner, and both owners when a child moves', () => {
    const keys: string[] = [];
    const handler = mapToOwner<V1ConfigMap>((k) => keys.push(k));
    const before = cm('c', '1', { labels: { 'iotedge-operator.io/edge-deployment': 'old' } });
    const after = cm('c', '2', { labels: { 'iotedge-operator.io/edge-deployment': 'new' } });
    void handler({ type: 'add', object: before });
    void handler({ type: 'update', object: after, oldObject: before });
    void handler({ type: 'delete', object: cm('orphan', '3') });
    expect(keys).toEqual(['ns/old', 'ns/new', 'ns/old']);
  });
});

describe('ingest', () => {
  it('strips managedFields and deep-freezes the object', () => {
    const obj = cm('a', '1', { managedFields: [{ manager: 'kubectl', operation: 'Update' }], labels: { app: 'x' } }, { k: 'v' });
    const stored = ingest(obj);
    expect(stored.metadata).not.toHaveProperty('managedFields');
    expect(Object.isFrozen(stored)).toBe(true);
    expect(Object.isFrozen(stored.metadata?.labels)).toBe(true);
    expect(() => {
      (stored.data as Record<string, string>).k = 'changed';
    }).toThrow(TypeError);
    expect(stored.data?.k).toBe('v');
    const copy = structuredClone(stored);
    copy.data!.k = 'mine';
    expect(stored.data?.k).toBe('v');
  });

  it('deepFreeze reaches arrays and nested objects', () => {
    const value = deepFreeze({ a: [{ b: 1 }] });
    expect(Object.isFrozen(value.a)).toBe(true);
    expect(Object.isFrozen(value.a[0])).toBe(true);
  });
});

describe('namespacedPath', () => {
  it('scopes core and group paths, and keeps paths that are already namespaced', () => {
    expect(namespacedPath('/api/v1/pods', 'edge')).toBe('/api/v1/namespaces/edge/pods');
    expect(namespacedPath('/apis/iotedge-operator.io/v1alpha1/edgedeployments', 'edge')).toBe('/apis/iotedge-operator.io/v1alpha1/namespaces/edge/edgedeployments');
    expect(namespacedPath('/api/v1/namespaces/x/configmaps', 'edge')).toBe('/api/v1/namespaces/x/configmaps');
    expect(namespacedPath('/apis/apps/v1/deployments', undefined)).toBe('/apis/apps/v1/deployments');
    expect(() => namespacedPath('/healthz', 'edge')).toThrow(/cannot scope/);
  });
});

describe('JitteredBackoff', () => {
  it('doubles up to its cap, stays within the jitter band, and resets', () => {
    const high = new JitteredBackoff({ initialMs: 1000, maxMs: 30_000, jitter: 0.5, random: () => 0 });
    expect(Array.from({ length: 7 }, () => high.next())).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    high.reset();
    expect(high.next()).toBe(1000);
    const low = new JitteredBackoff({ initialMs: 1000, maxMs: 30_000, jitter: 0.5, random: () => 0.999999 });
    expect(low.next()).toBeCloseTo(500, 0);
  });
});

describe('watch stream decoding', () => {
  it('parses events split across chunks and a last line without newline', () => {
    const parser = new WatchEventParser();
    const line1 = JSON.stringify({ type: 'ADDED', object: cm('a', '1') });
    const line2 = JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '7' } } });
    expect(parser.push(line1.slice(0, 10))).toEqual([]);
    expect(parser.push(`${line1.slice(10)}\n${line2.slice(0, 5)}`).map((e) => e.type)).toEqual(['ADDED']);
    expect(parser.push(line2.slice(5))).toEqual([]);
    expect(parser.end().map((e) => e.type)).toEqual(['BOOKMARK']);
  });

  it('rejects lines that are not watch events', () => {
    expect(() => new WatchEventParser().push('{"kind":"Status"}\n')).toThrow(/not a watch event/);
    expect(() => new WatchEventParser().push('<html>\n')).toThrow(/not JSON/);
  });

  it('throws an ERROR event with code 410 as a Gone KubeApiError', async () => {
    const body = `${JSON.stringify({ type: 'ADDED', object: cm('a', '1') })}\n${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version: 1 (500)' } })}\n`;
    const seen: string[] = [];
    let caught: unknown;
    try {
      for await (const ev of decodeWatchStream<V1ConfigMap>([Buffer.from(body)], '/api/v1/configmaps')) seen.push(ev.type);
    } catch (error) {
      caught = error;
    }
    expect(seen).toEqual(['ADDED']);
    expect(isGone(caught)).toBe(true);
    expect((caught as KubeApiError).inWatchStream).toBe(true);
    expect((caught as KubeApiError).message).toContain('too old resource version');
  });

  it('keeps a multi-byte character split between chunks intact', async () => {
    const body = Buffer.from(`${JSON.stringify({ type: 'ADDED', object: cm('a', '1', {}, { k: 'ünïcødé ✓' }) })}\n`);
    const cut = body.indexOf(Buffer.from('✓')) + 1;
    const events: WatchEvent<V1ConfigMap>[] = [];
    for await (const ev of decodeWatchStream<V1ConfigMap>([body.subarray(0, cut), body.subarray(cut)], 'p')) events.push(ev);
    expect(events[0]?.object.data?.k).toBe('ünïcødé ✓');
  });
});

/** A watch body the test writes to line by line; it ends when told, or fails when its signal aborts. */
class ScriptedWatch {
  private readonly chunks: string[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  readonly options: WatchOptions;
  constructor(options: WatchOptions) {
    this.options = options;
    options.signal?.addEventListener('abort', () => this.wake?.());
  }
  send(type: string, object: object): void {
    this.chunks.push(`${JSON.stringify({ type, object })}\n`);
    this.wake?.();
  }
  end(): void {
    this.ended = true;
    this.wake?.();
  }
  async *body(): AsyncGenerator<string> {
    for (;;) {
      if (this.options.signal?.aborted) throw new Error('aborted');
      const next = this.chunks.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** The transport for these tests: list answers are queued by the test; each watch is scripted. */
class ScriptedClient implements ListWatchClient {
  readonly listAnswers: ({ items: KubernetesObject[]; resourceVersion: string } | Error)[] = [];
  readonly listCalls: number[] = [];
  readonly watches: ScriptedWatch[] = [];
  /** Errors to throw when a watch opens (HTTP-status failures), in order. */
  readonly watchOpenErrors: Error[] = [];
  async list<T>(): Promise<{ items: T[]; resourceVersion: string }> {
    this.listCalls.push(Date.now());
    const answer = this.listAnswers.shift();
    if (!answer) throw new Error('no list answer scripted');
    if (answer instanceof Error) throw answer;
    return { items: structuredClone(answer.items) as T[], resourceVersion: answer.resourceVersion };
  }
  watch<T extends KubernetesObject>(path: string, options: WatchOptions): AsyncIterable<WatchEvent<T>> {
    const openError = this.watchOpenErrors.shift();
    if (openError) {
      return (async function* () {
        yield* [] as WatchEvent<T>[];
        throw openError;
      })();
    }
    const watch = new ScriptedWatch(options);
    this.watches.push(watch);
    return decodeWatchStream<T>(watch.body(), path);
  }
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function summary(events: InformerEvent<V1ConfigMap>[]): string[] {
  return events.map((e) => `${e.type} ${e.object.metadata?.name}@${e.object.metadata?.resourceVersion}`);
}

function informer(client: ScriptedClient, extra: Partial<ConstructorParameters<typeof Informer>[0]> = {}): { inf: Informer<V1ConfigMap>; events: InformerEvent<V1ConfigMap>[] } {
  const inf = new Informer<V1ConfigMap>({ client, path: '/api/v1/configmaps', namespace: 'ns', backoff: { initialMs: 1, maxMs: 5 }, ...extra });
  const events: InformerEvent<V1ConfigMap>[] = [];
  inf.onEvent((e) => void events.push(e));
  return { inf, events };
}

describe('Informer state machine', () => {
  it('lists, then applies watch events, and bookmarks only move the resourceVersion', async () => {
    const client = new ScriptedClient();
    client.listAnswers.push({ items: [cm('a', '10', { managedFields: [{ manager: 'm' }] })], resourceVersion: '10' });
    const { inf, events } = informer(client);
    await inf.start();
    expect(inf.hasSynced()).toBe(true);
    expect(summary(events)).toEqual(['add a@10']);
    expect(inf.get('ns', 'a')?.metadata).not.toHaveProperty('managedFields');
    const w = await until('first watch', () => client.watches[0]);
    expect(w.options.resourceVersion).toBe('10');
    expect(w.options.allowWatchBookmarks).toBe(true);
    w.send('ADDED', cm('b', '11', { labels: { tier: 'edge' } }));
    w.send('MODIFIED', cm('a', '12', {}, { k: 'v2' }));
    w.send('BOOKMARK', { kind: 'ConfigMap', metadata: { resourceVersion: '15' } });
    w.send('DELETED', cm('b', '16', { labels: { tier: 'edge' } }));
    w.send('BOOKMARK', { kind: 'ConfigMap', metadata: { resourceVersion: '20' } });
    await until('events', () => events.length === 4);
    await until('bookmark applied', () => inf.lastResourceVersion() === '20');
    expect(summary(events)).toEqual(['add a@10', 'add b@11', 'update a@12', 'delete b@16']);
    expect(events[2]?.oldObject?.metadata?.resourceVersion).toBe('10');
    // The server closes the watch (its timeoutSeconds): the next one resumes from the bookmark, no relist.
    w.end();
    const w2 = await until('second watch', () => client.watches[1]);
    expect(w2.options.resourceVersion).toBe('20');
    expect(client.listCalls).toHaveLength(1);
    expect(inf.list().map(keyOf)).toEqual(['ns/a']);
    await inf.stop();
  });

  it('relists on a 410 ERROR event and emits the deletes and changes it missed, without re-adding the rest', async () => {
    const client = new ScriptedClient();
    client.listAnswers.push({ items: [cm('kept', '1'), cm('changed', '2'), cm('deleted', '3')], resourceVersion: '3' });
    client.listAnswers.push({ items: [cm('kept', '1'), cm('changed', '50'), cm('created', '51')], resourceVersion: '60' });
    const { inf, events } = informer(client);
    await inf.start();
    const w = await until('watch', () => client.watches[0]);
    w.send('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version: 3 (40)' });
    const w2 = await until('watch after relist', () => client.watches[1]);
    expect(w2.options.resourceVersion).toBe('60');
    expect(summary(events).slice(3)).toEqual(['add created@51', 'update changed@50', 'delete deleted@3']);
    expect(inf.keys().sort()).toEqual(['ns/changed', 'ns/created', 'ns/kept']);
    await inf.stop();
  });

  it('relists on an HTTP 410 when opening the watch', async () => {
    const client = new ScriptedClient();
    client.listAnswers.push({ items: [cm('a', '1')], resourceVersion: '5' });
    client.listAnswers.push({ items: [], resourceVersion: '9' });
    client.watchOpenErrors.push(new KubeApiError({ status: 410, method: 'GET', path: '/api/v1/namespaces/ns/configmaps', body: { reason: 'Expired', code: 410 } }));
    const { inf, events } = informer(client);
    await inf.start();
    await until('second list', () => client.listCalls.length === 2);
    await until('watch from the new list', () => client.watches[0]?.options.resourceVersion === '9');
    expect(summary(events)).toEqual(['add a@1', 'delete a@1']);
    await inf.stop();
  });

  it('retries a failed list and a failed watch with backoff; a failed watch resumes without relisting', async () => {
    const client = new ScriptedClient();
    client.listAnswers.push(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { items: [cm('a', '1')], resourceVersion: '7' });
    client.watchOpenErrors.push(new KubeApiError({ status: 500, method: 'GET', path: 'p', body: { message: 'etcd leader changed' } }), new Error('socket hang up'));
    const ends: string[] = [];
    const { inf, events } = informer(client, { hooks: { onWatchEnd: (i) => void ends.push(i.reason) } });
    await inf.start();
    const w = await until('a watch that opened', () => client.watches[0]);
    expect(w.options.resourceVersion).toBe('7');
    expect(client.listCalls).toHaveLength(2);
    expect(ends).toEqual(['error', 'error']);
    expect(summary(events)).toEqual(['add a@1']);
    await inf.stop();
  });

  it('reopens a watch that goes silent, from the same resourceVersion', async () => {
    const client = new ScriptedClient();
    client.listAnswers.push({ items: [], resourceVersion: '42' });
    const ends: string[] = [];
    const { inf } = informer(client, { inactivityTimeoutMs: 30, hooks: { onWatchEnd: (i) => void ends.push(i.reason) } });
    await inf.start();
    const w2 = await until('a second watch', () => client.watches[1]);
    expect(ends[0]).toBe('inactive');
    expect(w2.options.resourceVersion).toBe('42');
    expect(client.listCalls).toHaveLength(1);
    await inf.stop();
  });

  it('keeps delivering when a handler throws or rejects, and logs both', async () => {
    const client = new ScriptedClient();
    client.listAnswers.push({ items: [cm('a', '1'), cm('b', '2')], resourceVersion: '2' });
    const errors: string[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: (obj: object) => void errors.push(String((obj as { err?: Error }).err?.message)),
      child: () => logger,
    };
    const { inf, events } = informer(client, { logger });
    inf.on('add', () => {
      throw new Error('sync handler bug');
    });
    inf.on('add', async () => {
      throw new Error('async handler bug');
    });
    await inf.start();
    await until('both handler failures logged', () => errors.length === 4);
    expect(summary(events)).toEqual(['add a@1', 'add b@2']);
    expect(errors.sort()).toEqual(['async handler bug', 'async handler bug', 'sync handler bug', 'sync handler bug']);
    await inf.stop();
  });

  it('gives a handler added after sync an add for every cached object', async () => {
    const client = new ScriptedClient();
    client.listAnswers.push({ items: [cm('a', '1'), cm('b', '2')], resourceVersion: '2' });
    const { inf } = informer(client);
    await inf.start();
    const late: string[] = [];
    inf.on('add', (o) => void late.push(keyOf(o)));
    await until('replay', () => late.length === 2);
    expect(late.sort()).toEqual(['ns/a', 'ns/b']);
    await inf.stop();
  });

  it('hands out frozen objects: a consumer cannot corrupt the cache', async () => {
    const client = new ScriptedClient();
    client.listAnswers.push({ items: [cm('a', '1', { labels: { app: 'x' } }, { k: 'v' })], resourceVersion: '1' });
    const { inf, events } = informer(client);
    await inf.start();
    const fromEvent = events[0]!.object;
    const fromGet = inf.get('ns', 'a')!;
    expect(() => {
      fromEvent.data!.k = 'corrupt';
    }).toThrow(TypeError);
    expect(() => {
      fromGet.metadata!.labels!.app = 'corrupt';
    }).toThrow(TypeError);
    expect(() => {
      inf.list()[0]!.metadata!.name = 'corrupt';
    }).toThrow(TypeError);
    expect(inf.get('ns', 'a')?.data?.k).toBe('v');
    expect(inf.listByLabel({ app: 'x' }).map(keyOf)).toEqual(['ns/a']);
    expect(inf.listByLabel({ app: 'y' })).toEqual([]);
    await inf.stop();
  });

  it('replays the cache as updates on resync', async () => {
    const client = new ScriptedClient();
    client.listAnswers.push({ items: [cm('a', '1')], resourceVersion: '1' });
    const { inf, events } = informer(client, { resyncPeriodMs: 20 });
    await inf.start();
    const resync = await until('a resync update', () => events.find((e) => e.type === 'update'));
    expect(resync.oldObject).toBe(resync.object);
    await inf.stop();
  });

  it('rejects start when stopped before the first list, and on its sync timeout', async () => {
    const never: ListWatchClient = {
      list: () => new Promise(() => undefined),
      watch: () => (async function* () {})(),
    };
    const stopped = new Informer({ client: never, path: '/api/v1/configmaps' });
    const starting = stopped.start();
    await stopped.stop();
    await expect(starting).rejects.toThrow(/stopped before it synced/);

    const slow = new Informer({ client: never, path: '/api/v1/configmaps', syncTimeoutMs: 10 });
    await expect(slow.start()).rejects.toThrow(/first list not in within 10 ms/);
    expect(slow.hasSynced()).toBe(false);
  });
});
