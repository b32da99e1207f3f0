// The election itself runs against the real API server in test/integration/leader-election.test.ts;
// here only the option checks that keep a misconfigured elector from ever starting.
import { describe, expect, it } from '@jest/globals';
import { hostname } from 'node:os';
import type { CoordinationV1Api } from '@kubernetes/client-node';
import { LeaderElector, defaultIdentity } from '../../../src/runtime/leader-election.ts';
import type { LeaderElectionOptions } from '../../../src/runtime/leader-election.ts';

// Never called: construction validates options before any request.
const unusedClient = {} as CoordinationV1Api;

function options(overrides: Partial<LeaderElectionOptions> = {}): LeaderElectionOptions {
  return { coordination: unusedClient, namespace: 'iotedge-system', name: 'iotedge-operator', onStartedLeading: () => undefined, ...overrides };
}

describe('LeaderElector options', () => {
  it('accepts the client-go defaults (15 s / 10 s / 2 s) and starts as a follower', () => {
    const elector = new LeaderElector(options());
    expect(elector.isLeader()).toBe(false);
    expect(elector.leadingSignal).toBeUndefined();
  });

  it.each([
    [{ leaseDurationMs: 2_500 }, 'whole number of seconds'],
    [{ leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }, 'must be greater than renewDeadlineMs'],
    [{ renewDeadlineMs: 2_400, retryPeriodMs: 2_000 }, 'must be greater than 1.2 × retryPeriodMs'],
    [{ identity: '' }, 'identity must not be empty'],
  ])('rejects %j', (overrides, message) => {
    expect(() => new LeaderElector(options(overrides))).toThrow(`leader election iotedge-system/iotedge-operator: `);
    expect(() => new LeaderElector(options(overrides))).toThrow(message);
  });

  it('names a process by hostname and a unique suffix, as controller-runtime does', () => {
    const a = defaultIdentity();
    const b = defaultIdentity();
    expect(a.startsWith(`${hostname()}_`)).toBe(true);
    expect(a).not.toBe(b);
  });
});
