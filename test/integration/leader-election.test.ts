// Leader election against the real API server: candidates in one process, each with its own
// identity, on one Lease. Durations are short so the file runs quickly; the assertions are about
// the order of events and who holds the Lease, never about how long anything took.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api } from '@kubernetes/client-node';
import type { V1Lease } from '@kubernetes/client-node';
import { LeaderElector } from '../../src/runtime/leader-election.ts';
import type { LeaderElectionOptions, StoppedReason } from '../../src/runtime/leader-election.ts';
import { OperatorMetrics } from '../../src/runtime/metrics.ts';
import { createTestNamespace, deleteTestNamespace, eventually, testCluster } from '../support/cluster.ts';

const cluster = testCluster();
const coordination = cluster.kc.makeApiClient(CoordinationV1Api);
let namespace: string;

const fast = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 } as const;

/** Everything every candidate reported, in the order it happened. */
const events: string[] = [];
const candidates: Candidate[] = [];
/** Per Lease: how many candidates believe they lead right now, and the most there ever were. */
const leading = new Map<string, { now: number; most: number }>();
function mostLeadingAtOnce(lease: string): number {
  return leading.get(lease)?.most ?? 0;
}

interface Candidate {
  elector: LeaderElector;
  run: Promise<void>;
  /** The signal handed to onStartedLeading, once it was called. */
  leadingSignal?: AbortSignal;
  stoppedReason?: StoppedReason;
  /** Holders this candidate saw on the Lease, in order. */
  observedHolders: string[];
  metrics: OperatorMetrics;
}

function candidate(identity: string, lease: string, overrides: Partial<LeaderElectionOptions> = {}): Candidate {
  const metrics = new OperatorMetrics({ processMetrics: false });
  const c: Partial<Candidate> & { observedHolders: string[] } = { observedHolders: [], metrics };
  const elector = new LeaderElector({
    coordination,
    namespace,
    name: lease,
    identity,
    ...fast,
    metrics,
    onStartedLeading: (signal) => {
      const count = leading.get(lease) ?? { now: 0, most: 0 };
      count.now += 1;
      count.most = Math.max(count.most, count.now);
      leading.set(lease, count);
      c.leadingSignal = signal;
      events.push(`${identity} started`);
      signal.addEventListener('abort', () => {
        count.now -= 1;
      });
    },
    onStoppedLeading: (reason) => {
      c.stoppedReason = reason;
      events.push(`${identity} stopped (${reason})`);
    },
    onNewLeader: (holder) => c.observedHolders.push(holder),
    ...overrides,
  });
  c.elector = elector;
  c.run = elector.run();
  candidates.push(c as Candidate);
  return c as Candidate;
}

function readLease(name: string): Promise<V1Lease> {
  return coordination.readNamespacedLease({ name, namespace });
}

async function leaseHeldBy(name: string, identity: string): Promise<V1Lease> {
  return eventually(`Lease ${name} held by ${identity}`, async () => {
    const lease = await readLease(name);
    return lease.spec?.holderIdentity === identity ? lease : undefined;
  }, 60_000);
}

async function leaderStatus(c: Candidate, lease: string): Promise<number | undefined> {
  const line = (await c.metrics.text()).split('\n').find((l) => l.startsWith(`leader_election_master_status{name="${lease}"} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

beforeAll(async () => {
  namespace = await createTestNamespace(cluster, 'leader');
});

afterAll(async () => {
  await Promise.all(candidates.map((c) => c.elector.stop({ release: false })));
  await deleteTestNamespace(cluster, namespace);
});

describe('leader election on a Lease', () => {
  it('two candidates racing for a Lease that does not exist yet: exactly one leads, and the Lease names it', async () => {
    const a = candidate('alpha', 'crash');
    const b = candidate('beta', 'crash');
    const leader = await eventually('a leader', async () => [a, b].find((c) => c.elector.isLeader()));
    const follower = leader === a ? b : a;
    const lease = await leaseHeldBy('crash', leader.elector.identity);
    expect(lease.spec?.leaseDurationSeconds).toBe(3);
    // Several renewals later the follower still waits and the leader still holds.
    const firstRenew = String(lease.spec?.renewTime);
    await eventually('a later renewal by the same leader', async () => {
      const now = await readLease('crash');
      return String(now.spec?.renewTime) !== firstRenew && now.spec?.holderIdentity === leader.elector.identity ? now : undefined;
    });
    // The follower may have lost the create race and not read the Lease yet; wait until it has.
    await eventually('the follower to see the leader', async () => (follower.observedHolders.includes(leader.elector.identity) ? true : undefined));
    expect(follower.elector.isLeader()).toBe(false);
    expect(leader.elector.isLeader()).toBe(true);
    expect(await leaderStatus(leader, 'crash')).toBe(1);
    expect(await leaderStatus(follower, 'crash')).toBe(0);
    expect(mostLeadingAtOnce('crash')).toBe(1);
  });

  it('after the leader crashes (stops renewing, no release), the other takes over once the Lease expires', async () => {
    const [a, b] = candidates.slice(-2) as [Candidate, Candidate];
    const crashed = a.elector.isLeader() ? a : b;
    const survivor = crashed === a ? b : a;
    const transitionsBefore = (await readLease('crash')).spec?.leaseTransitions ?? 0;

    await crashed.elector.stop({ release: false });
    // Not released: the record still names the crashed process until it expires.
    expect((await readLease('crash')).spec?.holderIdentity).toBe(crashed.elector.identity);
    expect(crashed.leadingSignal?.aborted).toBe(true);

    const lease = await leaseHeldBy('crash', survivor.elector.identity);
    await eventually('the survivor to lead', async () => (survivor.elector.isLeader() ? true : undefined));
    expect(lease.spec?.leaseTransitions).toBe(transitionsBefore + 1);
    const crashedStopped = events.indexOf(`${crashed.elector.identity} stopped (stopped)`);
    const survivorStarted = events.indexOf(`${survivor.elector.identity} started`);
    expect(crashedStopped).toBeGreaterThanOrEqual(0);
    expect(survivorStarted).toBeGreaterThan(crashedStopped);
    // The survivor never saw the Lease free: it waited out the crashed holder's record.
    expect(survivor.observedHolders).not.toContain('');
    expect(mostLeadingAtOnce('crash')).toBe(1);
  });

  it('a graceful stop releases the Lease and the waiting candidate takes it without waiting for expiry', async () => {
    // A long Lease: had the release not happened, nobody could take over within the wait below.
    const slow = { leaseDurationMs: 60_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
    const first = candidate('gamma', 'graceful', slow);
    await leaseHeldBy('graceful', 'gamma');
    const second = candidate('delta', 'graceful', slow);
    await eventually('delta to see gamma leading', async () => (second.observedHolders.includes('gamma') ? true : undefined));

    await first.elector.stop();
    expect(first.stoppedReason).toBe('stopped');
    expect(first.leadingSignal?.aborted).toBe(true);

    const lease = await eventually('delta to take the released Lease', async () => {
      const now = await readLease('graceful');
      return now.spec?.holderIdentity === 'delta' ? now : undefined;
    }, 30_000);
    expect(lease.spec?.leaseDurationSeconds).toBe(60);
    await eventually('delta to lead', async () => (second.elector.isLeader() ? true : undefined));
    // delta saw the released record (no holder) and then itself.
    expect(second.observedHolders.slice(-3)).toEqual(['gamma', '', 'delta']);
    expect(events.indexOf('delta started')).toBeGreaterThan(events.indexOf('gamma stopped (stopped)'));
    expect(await leaderStatus(first, 'graceful')).toBe(0);
    expect(mostLeadingAtOnce('graceful')).toBe(1);
  });

  it('a leader that cannot renew because someone else wrote the Lease stops leading with reason "lost"', async () => {
    const victim = candidate('epsilon', 'stolen');
    await leaseHeldBy('stolen', 'epsilon');
    await eventually('epsilon to lead', async () => (victim.elector.isLeader() ? true : undefined));
    // Another writer takes the Lease over (as a Go candidate with a skewed view might); epsilon's
    // next renewals see a valid foreign holder and fail until the renew deadline passes.
    await eventually('the intruder to write the Lease', async () => {
      // epsilon keeps renewing, so a write may hit 409 and is retried on a fresh read.
      const current = await readLease('stolen');
      await coordination.replaceNamespacedLease({
        name: 'stolen',
        namespace,
        body: { ...current, spec: { ...current.spec, holderIdentity: 'intruder', leaseDurationSeconds: 60 } },
      });
      return true;
    });
    await victim.run;
    expect(victim.stoppedReason).toBe('lost');
    expect(victim.leadingSignal?.aborted).toBe(true);
    expect(victim.elector.isLeader()).toBe(false);
    expect(victim.observedHolders).toContain('intruder');
    expect(events.indexOf('epsilon stopped (lost)')).toBeGreaterThan(events.indexOf('epsilon started'));
    expect(await leaderStatus(victim, 'stolen')).toBe(0);
    // A lost Lease is not released: the intruder's record stays untouched.
    expect((await readLease('stolen')).spec?.holderIdentity).toBe('intruder');
  });
});
