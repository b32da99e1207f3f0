import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { answeringHubPod, edgeHubStatusFromDocument, hubStatusWriteDecision } from '../../../src/controller/hub-status.ts';

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
