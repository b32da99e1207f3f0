import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EdgeDeployment, EdgeDeploymentCondition } from '../../../src/api/edge-deployment.ts';
import type { ConditionInput } from '../../../src/controller/conditions.ts';
import type { EventRecorder } from '../../../src/controller/events.ts';
import {
  answeringHubPod, edgeHubStatusFromDocument, hubStartedAtMs, hubStatusCondition, hubStatusEvent, HubStatusReader, hubStatusWriteDecision,
} from '../../../src/controller/hub-status.ts';
import type { HubReadFailure } from '../../../src/controller/hub-status.ts';
import { KubeApiError } from '../../../src/controller/kube-client.ts';
import type { KubeClient, Logger } from '../../../src/controller/kube-client.ts';
import { defaultSettings } from '../../../src/translate/settings.ts';

const doc = (upstream: Record<string, unknown>, clients: Record<string, unknown> = {}) => ({ schemaVersion: '1.0', clients, upstream });

describe('status.edgeHub from the hub\'s /status', () => {
  it('keeps edgeHub\'s clients, counts the connected ones and names the upstream state', () => {
    const status = edgeHubStatusFromDocument(doc({ connected: false, expiring: true, queued: 3, expired: 40 }, {
      'd/filter': { status: 'Disconnected', lastConnectedTimeUtc: '2026-12-03T11:00:00.000Z', lastDisconnectedTimeUtc: '2026-12-03T11:05:00.000Z' },
      'd/sensor': { status: 'Connected', lastConnectedTimeUtc: '2026-12-03T11:00:01.000Z' },
    }));
    expect(status).toEqual({
      clients: {
        'd/filter': { status: 'Disconnected', lastConnectedTimeUtc: '2026-12-03T11:00:00.000Z', lastDisconnectedTimeUtc: '2026-12-03T11:05:00.000Z' },
        'd/sensor': { status: 'Connected', lastConnectedTimeUtc: '2026-12-03T11:00:01.000Z' },
      },
      connectedClients: 1,
      upstream: { state: 'Expiring', connected: false, expiring: true, queued: 3, expired: 40 },
    });
    expect(edgeHubStatusFromDocument(doc({ connected: true, expiring: false, queued: 0, expired: 0 })).upstream?.state).toBe('Connected');
    expect(edgeHubStatusFromDocument(doc({ connected: false, expiring: false, queued: 9, expired: 0 })).upstream?.state).toBe('Offline');
  });

  it('refuses a document that is not the hub\'s', () => {
    expect(() => edgeHubStatusFromDocument({ hello: 1 })).toThrow(/schemaVersion 1.0/);
    expect(() => edgeHubStatusFromDocument(doc({}, { 'd/m': { status: 'Maybe' } }))).toThrow(/status Maybe/);
  });
});

describe('when status.edgeHub is written', () => {
  const base = edgeHubStatusFromDocument(doc({ connected: false, expiring: true, queued: 1, expired: 10 }, { 'd/m': { status: 'Connected', lastConnectedTimeUtc: '2026-12-03T11:00:00.000Z' } }));
  const counts = (queued: number, expired: number) => ({ ...base, upstream: { ...base.upstream, queued, expired } });

  it('writes nothing when nothing changed', () => {
    expect(hubStatusWriteDecision(base, structuredClone(base), 0, 1_000, 60_000)).toBe('none');
  });

  it('writes a change of the table or of the upstream state at once', () => {
    const left = { ...base, clients: { 'd/m': { status: 'Disconnected' as const, lastConnectedTimeUtc: '2026-12-03T11:00:00.000Z', lastDisconnectedTimeUtc: '2026-12-03T11:01:00.000Z' } }, connectedClients: 0 };
    expect(hubStatusWriteDecision(base, left, 0, 1_000, 60_000)).toBe('now');
    expect(hubStatusWriteDecision(base, { ...base, message: 'cannot read' }, 0, 1_000, 60_000)).toBe('now');
    expect(hubStatusWriteDecision(undefined, base, undefined, 1_000, 60_000)).toBe('now');
  });

  it('writes changed counts at most once per interval', () => {
    expect(hubStatusWriteDecision(base, counts(0, 11), 0, 30_000, 60_000)).toBe('later');
    expect(hubStatusWriteDecision(base, counts(0, 11), 0, 60_000, 60_000)).toBe('now');
  });
});

describe('the hub pod that answers', () => {
  const pod = (name: string, extra: { phase?: string; deleting?: boolean; created?: string; owner?: string; module?: string } = {}): KubernetesObject => ({
    metadata: {
      name, creationTimestamp: (extra.created ?? '2026-12-03T11:00:00Z') as unknown as Date,
      labels: { 'iotedge-operator.io/module': extra.module ?? 'edgehub', 'iotedge-operator.io/edge-deployment': extra.owner ?? 'device' },
      ...(extra.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    status: { phase: extra.phase ?? 'Running', podIP: '10.200.0.9' },
  } as KubernetesObject);

  it('is the newest running edgehub pod of the EdgeDeployment', () => {
    const pods = [
      pod('old', { created: '2026-12-03T10:00:00Z' }),
      pod('new', { created: '2026-12-03T11:00:00Z' }),
      pod('newest-pending', { created: '2026-12-03T12:00:00Z', phase: 'Pending' }),
      pod('going', { created: '2026-12-03T12:00:00Z', deleting: true }),
      pod('other-device', { created: '2026-12-03T12:00:00Z', owner: 'other' }),
      pod('a-module', { created: '2026-12-03T12:00:00Z', module: 'filter' }),
    ];
    expect(answeringHubPod(pods, 'device')?.metadata?.name).toBe('new');
    expect(answeringHubPod([pod('p', { phase: 'Pending' })], 'device')).toBeUndefined();
  });
});

describe('EdgeHubStatusKnown: whether the hub\'s status can be read', () => {
  const grace = 120_000;
  const t0 = Date.parse('2026-12-03T12:00:00.000Z');
  const noPod: HubReadFailure = { reason: 'PodNotRunning', message: 'cannot read the hub\'s /status: edgeHub has no running pod' };
  const refused = (startedAt: number): HubReadFailure => ({ reason: 'StatusUnreadable', message: 'cannot read the hub\'s /status through the pod proxy: HTTP 503: connection refused', podStartedAtMs: startedAt });
  const stored = (c: ConditionInput, at: number): EdgeDeploymentCondition => ({ ...c, lastTransitionTime: new Date(at).toISOString() });

  it('is True once read', () => {
    expect(hubStatusCondition(undefined, undefined, t0, grace)).toMatchObject({ type: 'EdgeHubStatusKnown', status: 'True', reason: 'StatusRead' });
  });

  it('is Unknown (HubStarting) while the hub has no running pod yet or has just started, then False after the grace', () => {
    const first = hubStatusCondition(noPod, undefined, t0, grace);
    expect(first).toMatchObject({ status: 'Unknown', reason: 'HubStarting' });
    expect(first.message).toMatch(/no running pod \(the hub is starting\)/);
    const unknown = stored(first, t0);
    expect(hubStatusCondition(refused(t0 + 60_000), unknown, t0 + 61_000, grace)).toMatchObject({ status: 'Unknown', reason: 'HubStarting' });
    expect(hubStatusCondition(noPod, unknown, t0 + grace, grace)).toMatchObject({ status: 'False', reason: 'PodNotRunning' });
  });

  it('is False at once when a long-running hub cannot be read, or answers with something else', () => {
    expect(hubStatusCondition(refused(t0 - 3_600_000), undefined, t0, grace)).toMatchObject({ status: 'False', reason: 'StatusUnreadable' });
    const invalid: HubReadFailure = { reason: 'InvalidStatus', message: 'cannot read the hub\'s /status: the hub\'s /status is not a schemaVersion 1.0 document', podStartedAtMs: t0 - 3_600_000 };
    expect(hubStatusCondition(invalid, undefined, t0, grace)).toMatchObject({ status: 'False', reason: 'InvalidStatus' });
  });

  it('goes Unknown, not False, when a read hub restarts, and stays False once False', () => {
    const read = stored(hubStatusCondition(undefined, undefined, t0, grace), t0);
    expect(hubStatusCondition(noPod, read, t0 + 1_000, grace)).toMatchObject({ status: 'Unknown' });
    const down = stored(hubStatusCondition(refused(t0 - 3_600_000), read, t0, grace), t0);
    expect(hubStatusCondition(noPod, down, t0 + 1_000, grace)).toMatchObject({ status: 'False', reason: 'PodNotRunning' });
  });

  it('keeps secrets out of the message', () => {
    const leaky: HubReadFailure = { reason: 'StatusUnreadable', message: 'proxy said HostName=h;DeviceId=d;SharedAccessKey=c2VjcmV0a2V5c2VjcmV0a2V5' };
    expect(hubStatusCondition(leaky, undefined, t0, grace).message).not.toContain('c2VjcmV0a2V5c2VjcmV0a2V5');
  });

  it('raises a Warning Event on entering False or a new False reason, a Normal one back to True, and none otherwise', () => {
    const f = (reason: string): ConditionInput => ({ type: 'EdgeHubStatusKnown', status: 'False', reason, message: `m ${reason}` });
    const ok: ConditionInput = { type: 'EdgeHubStatusKnown', status: 'True', reason: 'StatusRead', message: 'read' };
    const starting: ConditionInput = { type: 'EdgeHubStatusKnown', status: 'Unknown', reason: 'HubStarting', message: 'starting' };
    expect(hubStatusEvent(undefined, starting)).toBeUndefined();
    expect(hubStatusEvent(starting, ok)).toBeUndefined();
    expect(hubStatusEvent(undefined, ok)).toBeUndefined();
    expect(hubStatusEvent(ok, f('StatusUnreadable'))).toEqual({ type: 'Warning', reason: 'EdgeHubStatusUnreadable', message: 'm StatusUnreadable' });
    expect(hubStatusEvent(f('StatusUnreadable'), f('StatusUnreadable'))).toBeUndefined();
    expect(hubStatusEvent(f('StatusUnreadable'), f('PodNotRunning'))).toMatchObject({ type: 'Warning', reason: 'EdgeHubPodNotRunning' });
    expect(hubStatusEvent(f('PodNotRunning'), ok)).toMatchObject({ type: 'Normal', reason: 'EdgeHubStatusRead' });
  });

  it('takes the start of the hub\'s running container, else of the pod', () => {
    expect(hubStartedAtMs({ status: { startTime: new Date(t0), containerStatuses: [{ name: 'edgehub', state: { running: { startedAt: new Date(t0 + 5_000) } } }] } } as never)).toBe(t0 + 5_000);
    expect(hubStartedAtMs({ status: { startTime: '2026-12-03T12:00:00.000Z' } } as never)).toBe(t0);
    expect(hubStartedAtMs({ status: {} } as never)).toBeUndefined();
  });
});

describe('HubStatusReader: the condition and its Events through polls', () => {
  const ed: EdgeDeployment = { apiVersion: 'iotedge-operator.io/v1alpha1', kind: 'EdgeDeployment', metadata: { name: 'device', namespace: 'ns', uid: 'u1' }, spec: {} } as EdgeDeployment;
  const runningPod = (startedAt: string): KubernetesObject => ({
    metadata: { name: 'edgehub-0', labels: { 'iotedge-operator.io/module': 'edgehub', 'iotedge-operator.io/edge-deployment': 'device' } },
    status: { phase: 'Running', podIP: '10.0.0.9', startTime: startedAt },
  } as KubernetesObject);

  function harness() {
    let now = Date.parse('2026-12-03T12:00:00.000Z');
    let pods: KubernetesObject[] = [];
    let answer: () => unknown = () => doc({ connected: false, expiring: true, queued: 0, expired: 0 });
    const patches: Array<{ status: Record<string, unknown> }> = [];
    const events: Array<{ type: string; reason: string; message: string }> = [];
    let stored = structuredClone(ed);
    const client = {
      request: (method: string, path: string, _q: unknown, opts?: { body?: { status: Record<string, unknown> } }) => {
        if (method === 'GET') return Promise.resolve().then(answer);
        patches.push(structuredClone(opts!.body!));
        // What the informer would show after the apply (this manager's fields only).
        stored = { ...stored, status: { ...(stored.status ?? {}), ...opts!.body!.status } } as EdgeDeployment;
        if (!('conditions' in opts!.body!.status)) delete (stored.status as Record<string, unknown>).conditions;
        return Promise.resolve({});
      },
    } as unknown as KubeClient;
    const logger = { info: () => undefined, warn: () => undefined, debug: () => undefined, error: () => undefined, child: () => logger } as unknown as Logger;
    const recorder = { record: (_e: unknown, type: string, reason: string, message: string) => { events.push({ type, reason, message }); return Promise.resolve(); } } as unknown as EventRecorder;
    const reader = new HubStatusReader({
      client,
      edgeDeployments: { get: () => stored, list: () => [stored] },
      pods: { get: () => undefined, list: () => pods },
      settings: defaultSettings,
      logger,
      events: recorder,
      timings: { startGraceMs: 60_000 },
      now: () => now,
    });
    const condition = () => (stored.status?.conditions ?? []).find((c) => c.type === 'EdgeHubStatusKnown');
    return {
      reader, patches, events, condition,
      advance: (ms: number) => { now += ms; },
      setPods: (p: KubernetesObject[]) => { pods = p; },
      setAnswer: (a: () => unknown) => { answer = a; },
      now: () => now,
      stored: () => stored,
    };
  }

  it('shows a hub that never answers without an earlier table, once, and an Event only on each change', async () => {
    const h = harness();
    await h.reader.pollOnce();
    expect(h.condition()).toMatchObject({ status: 'Unknown', reason: 'HubStarting' });
    expect(h.events).toEqual([]);
    h.advance(15_000);
    await h.reader.pollOnce();
    expect(h.patches).toHaveLength(1);

    h.advance(60_000);
    await h.reader.pollOnce();
    expect(h.condition()).toMatchObject({ status: 'False', reason: 'PodNotRunning' });
    expect(h.stored().status?.edgeHub).toBeUndefined();
    expect(h.events).toEqual([{ type: 'Warning', reason: 'EdgeHubPodNotRunning', message: 'cannot read the hub\'s /status: edgeHub has no running pod' }]);

    h.setPods([runningPod(new Date(h.now() - 3_600_000).toISOString())]);
    h.setAnswer(() => { throw new KubeApiError({ status: 503, method: 'GET', path: '/proxy', body: { message: 'error trying to reach service: connection refused' } as never }); });
    for (let i = 0; i < 3; i++) {
      h.advance(15_000);
      await h.reader.pollOnce();
    }
    expect(h.condition()).toMatchObject({ status: 'False', reason: 'StatusUnreadable', message: 'cannot read the hub\'s /status through the pod proxy: HTTP 503: error trying to reach service: connection refused' });
    expect(h.patches).toHaveLength(3);
    expect(h.events.map((e) => e.reason)).toEqual(['EdgeHubPodNotRunning', 'EdgeHubStatusUnreadable']);

    h.setAnswer(() => ({ hello: 'world' }));
    h.advance(15_000);
    await h.reader.pollOnce();
    expect(h.condition()).toMatchObject({ status: 'False', reason: 'InvalidStatus' });

    h.setAnswer(() => doc({ connected: false, expiring: true, queued: 0, expired: 0 }, { 'ns/m': { status: 'Connected' } }));
    h.advance(15_000);
    await h.reader.pollOnce();
    expect(h.condition()).toMatchObject({ status: 'True', reason: 'StatusRead' });
    expect(h.stored().status?.edgeHub?.connectedClients).toBe(1);
    expect(h.events.map((e) => `${e.type} ${e.reason}`)).toEqual(['Warning EdgeHubPodNotRunning', 'Warning EdgeHubStatusUnreadable', 'Warning EdgeHubInvalidStatus', 'Normal EdgeHubStatusRead']);
    const writes = h.patches.length;
    h.advance(15_000);
    await h.reader.pollOnce();
    expect(h.patches).toHaveLength(writes);
  });

  it('gives the condition up with the table when the EdgeDeployment moves to a stock edgeHub', async () => {
    const h = harness();
    h.setPods([runningPod(new Date(h.now() - 3_600_000).toISOString())]);
    await h.reader.pollOnce();
    expect(h.condition()).toMatchObject({ status: 'True' });
    const stock = new HubStatusReader({
      client: { request: (_m: string, _p: string, _q: unknown, opts: { body: { status: Record<string, unknown> } }) => { h.patches.push(opts.body); return Promise.resolve({}); } } as unknown as KubeClient,
      edgeDeployments: { get: () => h.stored(), list: () => [h.stored()] },
      pods: { get: () => undefined, list: () => [] },
      settings: { ...defaultSettings, edgeHub: 'stock' },
      logger: { info: () => undefined, warn: () => undefined } as unknown as Logger,
    });
    await stock.pollOnce();
    expect(h.patches.at(-1)?.status).toEqual({});
  });
});
