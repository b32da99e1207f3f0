import { describe, expect, it } from '@jest/globals';
import { buildReported } from '../../../src/iothub/reported.ts';
import type { EdgeDeploymentSpec } from '../../../src/api/edge-deployment.ts';
import { KubeApiError } from '../../../src/controller/kube-client.ts';
import { boundText, edgeAgentStatusOf, isRefusal, refusalBackoffMs, refusalOf, TakeoverRefused } from '../../../src/controller/refusals.ts';

const apiError = (status: number, method = 'PATCH') => new KubeApiError({ status, method, path: '/x', body: { message: `status ${status}` } as never });

describe('refusals', () => {
  it('counts 4xx but conflicts and throttling, 500 from an apply, and a takeover as refusals', () => {
    expect([400, 403, 404, 422].map((s) => isRefusal(apiError(s)))).toEqual([true, true, true, true]);
    expect([409, 429, 503].map((s) => isRefusal(apiError(s)))).toEqual([false, false, false]);
    expect(isRefusal(apiError(500))).toBe(true);
    expect(isRefusal(apiError(500, 'GET'))).toBe(false);
    expect(isRefusal(new TakeoverRefused('Deployment/x', 'ReplicaSet'))).toBe(true);
    expect(isRefusal(new Error('network'))).toBe(false);
  });
  it('names the object, its module and the API message; 500 when the server failed it', () => {
    const object = { kind: 'Deployment', metadata: { name: 'camera', labels: { 'iotedge-operator.io/module': 'camera' } } };
    const r = refusalOf(object, apiError(422), new Map([['camera', 'Camera']]));
    expect(r).toEqual({ object: 'Deployment/camera', moduleId: 'Camera', status: 422, message: 'status 422' });
    expect(edgeAgentStatusOf([r])).toBe(400);
    expect(edgeAgentStatusOf([r, { ...r, status: 500 }])).toBe(500);
  });
  it('backs off from 5 s to 5 min', () => {
    expect([1, 2, 3, 10, 100].map(refusalBackoffMs)).toEqual([5_000, 10_000, 20_000, 300_000, 300_000]);
  });
  it('bounds text in UTF-8 bytes, and says it was cut', () => {
    expect(boundText('short')).toBe('short');
    const long = boundText('é'.repeat(5000));
    expect(Buffer.byteLength(long, 'utf8')).toBeLessThanOrEqual(4000);
    expect(long.endsWith('(cut)')).toBe(true);
  });
  it('keeps every reported string within IoT Hub\'s 4 KB', () => {
    const spec = { agent: { schemaVersion: '1.1', runtime: { type: 'docker' }, systemModules: { edgeAgent: { type: 'docker', settings: { image: 'a' } } } } } as unknown as EdgeDeploymentSpec;
    const reported = buildReported({
      spec,
      status: { lastDesiredStatus: { code: 400, description: 'x'.repeat(20_000) }, lastDesiredVersion: 3 },
      platform: { os: 'linux', architecture: 'amd64', version: '' }, operator: { version: '0', build: '0', commit: '0' }, startedAt: '2026-01-01T00:00:00Z',
    });
    const strings: string[] = [];
    JSON.stringify(reported, (_k, v: unknown) => (typeof v === 'string' && strings.push(v), v));
    expect(Math.max(...strings.map((s) => Buffer.byteLength(s, 'utf8')))).toBeLessThanOrEqual(4000);
  });
});
