import { describe, expect, it } from '@jest/globals';
import type { EdgeDeploymentSpec, EdgeDeploymentStatus } from '../../../src/api/edge-deployment.ts';
import { buildReported, diffReported, unknownTime } from '../../../src/iothub/reported.ts';

const spec = {
  agent: {
    schemaVersion: '1.1',
    runtime: { type: 'docker', settings: { minDockerVersion: 'v1.25' } },
    systemModules: {
      edgeAgent: { type: 'docker', settings: { image: 'agent:1' } },
      edgeHub: { type: 'docker', status: 'running', restartPolicy: 'always', settings: { image: 'hub:1' } },
    },
    modules: { sensor: { version: '1.0', type: 'docker', status: 'running', restartPolicy: 'on-failure', settings: { image: 'sensor:1' } } },
  },
} as unknown as EdgeDeploymentSpec;
const status: EdgeDeploymentStatus = {
  lastDesiredVersion: 4,
  lastDesiredStatus: { code: 200, description: '' },
  modules: {
    edgeHub: { runtimeStatus: 'running', restartCount: 0, lastStartTimeUtc: '2026-01-01T00:00:00Z' },
    sensor: { runtimeStatus: 'backoff', restartCount: 3, exitCode: 1, statusDescription: 'CrashLoopBackOff', lastExitTimeUtc: '2026-01-01T00:01:00Z' },
  },
};
const base = { platform: { os: 'linux', architecture: 'arm64', version: 'Ubuntu' }, operator: { version: '0.1.0', build: '7', commit: 'abc' }, startedAt: '2026-01-01T00:00:00Z' };

describe('buildReported', () => {
  it('follows edgeAgent\'s schema from the spec and the status', () => {
    const r = buildReported({ ...base, spec, status }) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(r.schemaVersion).toBe('1.0');
    expect(r.lastDesiredVersion).toBe(4);
    expect(r.lastDesiredStatus).toEqual({ code: 200, description: '' });
    expect(r.version).toEqual({ version: '0.1.0', build: '7', commit: 'abc' });
    expect(r.runtime).toEqual({ type: 'docker', platform: { os: 'linux', architecture: 'arm64', version: 'Ubuntu' }, settings: { minDockerVersion: 'v1.25', loggingOptions: '' } });
    expect(r.systemModules.edgeAgent).toMatchObject({ runtimeStatus: 'running', settings: { image: 'agent:1' }, lastStartTimeUtc: '2026-01-01T00:00:00Z' });
    expect(r.systemModules.edgeHub).toMatchObject({ runtimeStatus: 'running', status: 'running', restartPolicy: 'always', settings: { image: 'hub:1' } });
    expect(r.modules.sensor).toEqual({
      type: 'docker', runtimeStatus: 'backoff', exitCode: 1, statusDescription: 'CrashLoopBackOff', lastStartTimeUtc: unknownTime,
      lastExitTimeUtc: '2026-01-01T00:01:00Z', restartCount: 3, lastRestartTimeUtc: unknownTime, status: 'running', restartPolicy: 'on-failure',
      version: '1.0', settings: { image: 'sensor:1' },
    });
  });

  it('reports a rejected newer desired version over the status of the older one still running', () => {
    const r = buildReported({ ...base, spec, status, rejected: { version: 5, status: { code: 400, description: 'bad' } } });
    expect(r.lastDesiredVersion).toBe(5);
    expect(r.lastDesiredStatus).toEqual({ code: 400, description: 'bad' });
    const older = buildReported({ ...base, spec, status, rejected: { version: 3, status: { code: 400, description: 'bad' } } });
    expect(older.lastDesiredVersion).toBe(4);
  });

  it('marks modules without status unknown', () => {
    const r = buildReported({ ...base, spec, status: undefined }) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(r.modules.sensor.runtimeStatus).toBe('unknown');
    expect(r.lastDesiredStatus).toBeUndefined();
  });
});

describe('diffReported', () => {
  it('sends only changed leaves and null for what is gone', () => {
    const before = { a: 1, modules: { m1: { s: 'running', n: 1 }, m2: { s: 'running' } }, list: [1] };
    const after = { a: 1, modules: { m1: { s: 'backoff', n: 1 } }, list: [1, 2], b: { c: 1 } };
    expect(diffReported(before, after)).toEqual({ modules: { m1: { s: 'backoff' }, m2: null }, list: [1, 2], b: { c: 1 } });
  });

  it('is undefined when nothing changed, and the whole document against nothing', () => {
    const doc = { a: { b: 1 } };
    expect(diffReported(doc, structuredClone(doc))).toBeUndefined();
    expect(diffReported(undefined, doc)).toEqual(doc);
  });

  it('replaces a leaf that became an object and an object that became a leaf', () => {
    expect(diffReported({ a: 1, b: { c: 1 } }, { a: { x: 1 }, b: 2 })).toEqual({ a: { x: 1 }, b: 2 });
  });
});
