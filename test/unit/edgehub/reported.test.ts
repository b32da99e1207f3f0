// $edgeHub's reported properties: which patches the connection table's changes make, and the reporter's
// coalescing, ordering and keeping of changes while IoT Hub cannot be reached (a fake link, real timers).
import { describe, expect, it } from '@jest/globals';
import { ConnectionTable } from '../../../src/edgehub/connections.ts';
import { checkReportedPatch } from '../../../src/edgehub/twins.ts';
import type { JsonObject } from '../../../src/edgehub/twins.ts';
import { EdgeHubReporter, emptyPending, encodeTwinKey, nextBackoff, refusedStatus, reportedPatches, requeue } from '../../../src/edgehub/reported.ts';
import type { PendingReport } from '../../../src/edgehub/reported.ts';

const connectedAt = '2026-12-03T10:00:00.000Z';
const leftAt = '2026-12-03T10:05:00.000Z';

function pending(p: Partial<Omit<PendingReport, 'clients'>> & { clients?: string[] }): PendingReport {
  return { ...emptyPending(), ...p, clients: new Set(p.clients ?? []) };
}

describe('$edgeHub reported patches', () => {
  it('encodes client ids as edgeHub writes twin keys', () => {
    expect(encodeTwinKey('dev1/$edgeAgent')).toBe('dev1/%24edgeAgent');
    expect(encodeTwinKey('dev.1/my module')).toBe('dev%2E1/my%20module');
    expect(encodeTwinKey('dev1/filter')).toBe('dev1/filter');
  });

  it('clears clients first, in a patch of its own, then sets the changed entries', () => {
    const table = { 'dev1/sensor': { status: 'Connected' as const, lastConnectedTimeUtc: connectedAt } };
    const patches = reportedPatches(pending({ clear: true, clients: ['dev1/sensor'], desiredStatus: { code: 200, description: '' } }), table);
    expect(patches).toEqual([
      { schemaVersion: '1.0', lastDesiredStatus: { code: 200, description: '' }, clients: null },
      { schemaVersion: '1.0', clients: { 'dev1/sensor': { status: 'Connected', lastConnectedTimeUtc: connectedAt } } },
    ]);
    for (const patch of patches) checkReportedPatch(patch);
  });

  it('sends each changed client\'s latest entry with both times, and null for a client no longer in the table', () => {
    const table = {
      'dev1/filter': { status: 'Disconnected' as const, lastConnectedTimeUtc: connectedAt, lastDisconnectedTimeUtc: leftAt },
      'dev1/sensor': { status: 'Connected' as const, lastConnectedTimeUtc: connectedAt },
    };
    expect(reportedPatches(pending({ clients: ['dev1/filter', 'dev1/$edgeAgent'] }), table)).toEqual([{
      schemaVersion: '1.0',
      clients: {
        'dev1/%24edgeAgent': null,
        'dev1/filter': { status: 'Disconnected', lastConnectedTimeUtc: connectedAt, lastDisconnectedTimeUtc: leftAt },
      },
    }]);
  });

  it('sends a desired status alone, and nothing when nothing is pending', () => {
    expect(reportedPatches(pending({ desiredStatus: { code: 400, description: 'bad' } }), {})).toEqual([{ schemaVersion: '1.0', lastDesiredStatus: { code: 400, description: 'bad' } }]);
    expect(reportedPatches(emptyPending(), { 'dev1/a': { status: 'Connected' } })).toEqual([]);
  });

  it('cuts a long description', () => {
    const [patch] = reportedPatches(pending({ desiredStatus: { code: 400, description: 'x'.repeat(5000) } }), {});
    expect(((patch as { lastDesiredStatus: { description: string } }).lastDesiredStatus.description).length).toBe(1000);
  });

  it('puts a failed send back under newer changes: a newer desired status wins', () => {
    const into = pending({ clients: ['dev1/b'], desiredStatus: { code: 200, description: '' } });
    requeue(into, pending({ clear: true, clients: ['dev1/a'], desiredStatus: { code: 400, description: 'old' } }));
    expect(into).toEqual(pending({ clear: true, clients: ['dev1/b', 'dev1/a'], desiredStatus: { code: 200, description: '' } }));
  });

  it('says why routes were refused', () => {
    expect(refusedStatus([{ routeName: 'r1', message: 'syntax error' }, { routeName: '', message: 'no routes' }]))
      .toEqual({ code: 400, description: 'the routes were refused (the previous routes stay in use): route r1: syntax error; no routes' });
  });

  it('backs off doubling, within bounds', () => {
    expect(nextBackoff(0, 1000, 30_000)).toBe(1000);
    expect(nextBackoff(1000, 1000, 30_000)).toBe(2000);
    expect(nextBackoff(20_000, 1000, 30_000)).toBe(30_000);
  });
});

class FakeLink {
  patches: JsonObject[] = [];
  failing = false;
  attempts = 0;
  closed = false;
  patchReported(patch: JsonObject): Promise<void> {
    this.attempts += 1;
    if (this.failing) return Promise.reject(new Error('IoT Hub unreachable'));
    this.patches.push(structuredClone(patch));
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function reporterWith(link: FakeLink, table: ConnectionTable, options: { coalesceMs?: number; holdOffMs?: number } = {}): { reporter: EdgeHubReporter; logs: string[] } {
  const logs: string[] = [];
  const reporter = new EdgeHubReporter({
    link,
    table: () => table.snapshot(),
    ownId: 'dev1/$edgeHub',
    coalesceMs: options.coalesceMs ?? 30,
    holdOffMs: options.holdOffMs ?? 0,
    minBackoffMs: 20,
    maxBackoffMs: 40,
    log: (level, message) => logs.push(`${level}: ${message}`),
  });
  return { reporter, logs };
}

describe('EdgeHubReporter', () => {
  it('clears at start, then coalesces a burst of connects and disconnects into one patch of the latest entries', async () => {
    const link = new FakeLink();
    const table = new ConnectionTable();
    const { reporter } = reporterWith(link, table);
    reporter.start();
    await until(() => link.patches.length === 1, 'the clear');
    expect(link.patches[0]).toEqual({ schemaVersion: '1.0', clients: null });

    for (let i = 0; i < 50; i++) {
      const id = `dev1/m${i % 5}`;
      table.connected(id, new Date());
      reporter.clientChanged(id);
      if (i % 2 === 0) {
        table.disconnected(id, new Date());
        reporter.clientChanged(id);
      }
    }
    table.connected('dev1/$edgeHub', new Date());
    reporter.clientChanged('dev1/$edgeHub');
    await until(() => link.patches.length === 2, 'the entries');
    await sleep(100);
    expect(link.patches).toHaveLength(2);
    const clients = link.patches[1]?.clients as Record<string, { status: string }>;
    expect(Object.keys(clients)).toEqual(['dev1/m0', 'dev1/m1', 'dev1/m2', 'dev1/m3', 'dev1/m4']);
    const snapshot = table.snapshot();
    for (const [id, entry] of Object.entries(clients)) expect(entry).toEqual(snapshot[id]);
    await reporter.stop();
    expect(link.closed).toBe(true);
  });

  it('keeps changes while IoT Hub cannot be reached, logs once, and sends the latest state when it can', async () => {
    const link = new FakeLink();
    const table = new ConnectionTable();
    const { reporter, logs } = reporterWith(link, table);
    link.failing = true;
    reporter.start();
    table.connected('dev1/sensor', new Date(connectedAt));
    reporter.clientChanged('dev1/sensor');
    reporter.routesApplied();
    await until(() => link.attempts >= 4, 'retries');
    expect(logs.filter((l) => l.startsWith('warn'))).toHaveLength(1);
    table.disconnected('dev1/sensor', new Date(leftAt));
    reporter.clientChanged('dev1/sensor');
    link.failing = false;
    reporter.upstreamBack();
    await until(() => link.patches.length === 2, 'the clear and the entries');
    expect(link.patches).toEqual([
      { schemaVersion: '1.0', lastDesiredStatus: { code: 200, description: '' }, clients: null },
      { schemaVersion: '1.0', clients: { 'dev1/sensor': { status: 'Disconnected', lastConnectedTimeUtc: connectedAt, lastDisconnectedTimeUtc: leftAt } } },
    ]);
    expect(logs).toContain('info: $edgeHub reported properties sent again');
    await reporter.stop();
  });

  it('sends within the coalescing window while module links keep connecting', async () => {
    const link = new FakeLink();
    const table = new ConnectionTable();
    const { reporter } = reporterWith(link, table, { coalesceMs: 50 });
    reporter.start();
    await until(() => link.patches.length === 1, 'the clear');
    const started = Date.now();
    table.connected('dev1/a', new Date());
    reporter.clientChanged('dev1/a');
    while (link.patches.length < 2 && Date.now() - started < 1_000) {
      reporter.upstreamBack();
      await sleep(10);
    }
    expect(link.patches).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(500);
    await reporter.stop();
  });

  it('stops without waiting for a send stuck on an unreachable IoT Hub', async () => {
    const table = new ConnectionTable();
    let closed = false;
    const stuck = { patchReported: () => new Promise<void>(() => undefined), close: () => { closed = true; return Promise.resolve(); } };
    const reporter = new EdgeHubReporter({ link: stuck, table: () => table.snapshot(), log: () => undefined, coalesceMs: 1 });
    reporter.start();
    await sleep(20);
    await reporter.stop();
    expect(closed).toBe(true);
  });

  it('after the link was lost, reconnects only when there is something to send, after the hold-off', async () => {
    const link = new FakeLink();
    const table = new ConnectionTable();
    const { reporter } = reporterWith(link, table, { coalesceMs: 10, holdOffMs: 200 });
    reporter.start();
    await until(() => link.patches.length === 1, 'the clear');
    reporter.linkLost();
    await sleep(50);
    expect(link.attempts).toBe(1);
    const changedAt = Date.now();
    table.connected('dev1/sensor', new Date());
    reporter.clientChanged('dev1/sensor');
    await until(() => link.patches.length === 2, 'the entry');
    expect(Date.now() - changedAt).toBeGreaterThanOrEqual(100);
    await reporter.stop();
  });
});
