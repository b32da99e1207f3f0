/* eslint-disable @typescript-eslint/no-explicit-any -- reads merged JSON documents */
// The pure parts of configurations: which deployments are layered, and how layers merge on a base.
import { describe, expect, it } from '@jest/globals';
import { deploymentKind, mergeDeployments } from '../../../src/emulator/configurations.ts';
import type { ConfigurationRecord } from '../../../src/emulator/configurations.ts';
import type { JsonObject } from '../../../src/emulator/twin.ts';

function record(id: string, priority: number, sequence: number, modulesContent: JsonObject): ConfigurationRecord {
  return {
    id, priority, sequence, schemaVersion: '1.0', labels: {}, content: { modulesContent }, targetCondition: '', metricsQueries: {},
    createdTimeUtc: '', lastUpdatedTimeUtc: '', etag: '',
  };
}

const base = record('base', 0, 1, {
  $edgeAgent: { 'properties.desired': { schemaVersion: '1.1', modules: { a: { image: 'a:1' } } } },
  $edgeHub: { 'properties.desired': { routes: { r1: 'FROM /* INTO $upstream' } } },
});

describe('deploymentKind', () => {
  it('calls a deployment layered when any module has a properties.desired.<path> key', () => {
    expect(deploymentKind(base.content)).toBe('base');
    expect(deploymentKind({ modulesContent: { x: { 'properties.desired': {} }, $edgeAgent: { 'properties.desired.modules.x': {} } } })).toBe('layered');
    expect(deploymentKind({ deviceContent: { 'properties.desired.a': 1 } })).toBe('device');
    expect(deploymentKind({ moduleContent: { 'properties.desired': {} } })).toBe('module');
  });
});

describe('mergeDeployments', () => {
  it('sets each layered path on the base, creating objects on the way, without touching the base record', () => {
    const layer = record('layer', 5, 2, {
      $edgeAgent: { 'properties.desired.modules.b': { image: 'b:1' }, 'properties.desired.modules.a.image': 'a:2' },
      $edgeHub: { 'properties.desired.routes.r2': 'FROM /messages/modules/b/* INTO $upstream' },
      b: { 'properties.desired': { interval: 5 } },
    });
    expect(mergeDeployments(base, [layer])).toEqual({
      $edgeAgent: { schemaVersion: '1.1', modules: { a: { image: 'a:2' }, b: { image: 'b:1' } } },
      $edgeHub: { routes: { r1: 'FROM /* INTO $upstream', r2: 'FROM /messages/modules/b/* INTO $upstream' } },
      b: { interval: 5 },
    });
    expect((base.content.modulesContent as any).$edgeAgent['properties.desired'].modules).toEqual({ a: { image: 'a:1' } });
  });

  it('lets the higher priority win where layers set the same path, and the newer one on a tie', () => {
    const low = record('low', 1, 2, { $edgeAgent: { 'properties.desired.modules.a.image': 'low' } });
    const high = record('high', 9, 3, { $edgeAgent: { 'properties.desired.modules.a.image': 'high' } });
    expect((mergeDeployments(base, [high, low]).$edgeAgent as any).modules.a.image).toBe('high');
    const older = record('older', 1, 4, { $edgeAgent: { 'properties.desired.modules.a.image': 'older' } });
    const newer = record('newer', 1, 5, { $edgeAgent: { 'properties.desired.modules.a.image': 'newer' } });
    expect((mergeDeployments(base, [newer, older]).$edgeAgent as any).modules.a.image).toBe('newer');
  });
});
