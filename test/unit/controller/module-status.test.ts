import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { observeModule } from '../../../src/controller/module-status.ts';
import { admitByStartupOrder } from '../../../src/controller/startup-order.ts';
import { mergeConditions } from '../../../src/controller/conditions.ts';

const pod = (status: V1Pod['status'], created = '2026-01-01T00:00:00Z', deleting = false): V1Pod => ({
  metadata: { name: 'p', creationTimestamp: new Date(created), ...(deleting ? { deletionTimestamp: new Date(created) } : {}) },
  status,
});
const readyCondition = [{ type: 'Ready', status: 'True' }];

describe('observeModule', () => {
  it('reads a Ready running pod as running', () => {
    const o = observeModule('running', [pod({ phase: 'Running', conditions: readyCondition, containerStatuses: [{ name: 'm', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: new Date('2026-01-01T00:00:05Z') } } }] })]);
    expect(o).toMatchObject({ runtimeStatus: 'running', ready: true, restartCount: 0, lastStartTimeUtc: '2026-01-01T00:00:05.000Z' });
  });

  it('reads CrashLoopBackOff as backoff with the restart count and last exit code', () => {
    const o = observeModule('running', [pod({ phase: 'Running', containerStatuses: [{ name: 'm', image: 'i', imageID: '', ready: false, restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off' } }, lastState: { terminated: { exitCode: 1, finishedAt: new Date('2026-01-01T00:01:00Z') } } }] })]);
    expect(o).toMatchObject({ runtimeStatus: 'backoff', restartCount: 3, exitCode: 1, statusDescription: 'CrashLoopBackOff: back-off', lastRestartTimeUtc: '2026-01-01T00:01:00.000Z' });
  });

  it('carries ImagePullBackOff in the description', () => {
    const o = observeModule('running', [pod({ phase: 'Pending', containerStatuses: [{ name: 'm', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "i"' } } }] })]);
    expect(o.runtimeStatus).toBe('backoff');
    expect(o.statusDescription).toBe('ImagePullBackOff: Back-off pulling image "i"');
  });

  it('reads a failed pod as failed with its exit code, and a succeeded one as stopped', () => {
    const terminated = (exitCode: number) => [{ name: 'm', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, reason: exitCode ? 'Error' : 'Completed' } } }];
    expect(observeModule('running', [pod({ phase: 'Failed', containerStatuses: terminated(2) })])).toMatchObject({ runtimeStatus: 'failed', exitCode: 2 });
    expect(observeModule('running', [pod({ phase: 'Succeeded', containerStatuses: terminated(0) })])).toMatchObject({ runtimeStatus: 'stopped', exitCode: 0 });
  });

  it('distinguishes stopped-as-desired from not-yet-started', () => {
    expect(observeModule('stopped', []).runtimeStatus).toBe('stopped');
    expect(observeModule('running', []).runtimeStatus).toBe('unknown');
  });

  it('prefers the newest live pod over a terminating one', () => {
    const old = pod({ phase: 'Running', conditions: readyCondition }, '2026-01-01T00:00:00Z', true);
    const fresh = pod({ phase: 'Pending' }, '2026-01-01T00:00:10Z');
    expect(observeModule('running', [old, fresh]).runtimeStatus).toBe('unknown');
  });
});

describe('admitByStartupOrder', () => {
  it('holds a group back until every lower running module is ready, and names them', () => {
    const d = admitByStartupOrder([
      { id: 'edgeHub', startupOrder: 0, desiredRunning: true, exists: true, ready: false },
      { id: 'sensor', startupOrder: 1, desiredRunning: true, exists: false, ready: false },
      { id: 'stoppedLow', startupOrder: 0, desiredRunning: false, exists: false, ready: false },
    ]);
    expect(d.get('edgeHub')).toEqual({ admitted: true, waitingFor: [] });
    expect(d.get('sensor')).toEqual({ admitted: false, waitingFor: ['edgeHub'] });
  });
  it('never holds back a module that already exists', () => {
    const d = admitByStartupOrder([
      { id: 'a', startupOrder: 0, desiredRunning: true, exists: true, ready: false },
      { id: 'b', startupOrder: 1, desiredRunning: true, exists: true, ready: true },
    ]);
    expect(d.get('b')?.admitted).toBe(true);
  });
});

describe('mergeConditions', () => {
  it('keeps lastTransitionTime unless the status flips', () => {
    const before = [{ type: 'Ready', status: 'False' as const, reason: 'A', message: 'a', lastTransitionTime: 't0' }];
    expect(mergeConditions(before, [{ type: 'Ready', status: 'False', reason: 'B', message: 'b' }], 't1')[0]?.lastTransitionTime).toBe('t0');
    expect(mergeConditions(before, [{ type: 'Ready', status: 'True', reason: 'B', message: 'b' }], 't1')[0]?.lastTransitionTime).toBe('t1');
  });
});
