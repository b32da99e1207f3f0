// cluster:prune stops only the clusters whose owning run has died, and only their recorded processes.
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pruneOrphanClusters } from '../../../scripts/cluster/control-plane.ts';

const parent = mkdtempSync(join(tmpdir(), 'prune-test-'));
const children: ChildProcess[] = [];

/** A cluster directory whose "etcd" is a copy of sleep living inside it, as the real binaries are recorded. */
function fakeCluster(name: string, ownerPid: number | undefined): { dir: string; etcd: ChildProcess } {
  const dir = join(parent, name);
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync('/bin/sleep', join(bin, 'etcd'));
  const etcd = spawn(join(bin, 'etcd'), ['600'], { stdio: 'ignore' });
  children.push(etcd);
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ dir, bin, kubeconfig: '', apiServerUrl: '', ports: {}, pids: { etcd: etcd.pid }, startedAt: '', ownerPid }));
  return { dir, etcd };
}

async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(parent, { recursive: true, force: true });
});

describe('pruneOrphanClusters', () => {
  it('stops and removes a cluster whose owner is gone, and leaves live and ownerless clusters alone', async () => {
    const orphan = fakeCluster('iotedge-operator-test-orphan', await deadPid());
    const owned = fakeCluster('iotedge-operator-test-owned', process.pid);
    const ownerless = fakeCluster('iotedge-operator-cluster-up', undefined);
    const foreign = fakeCluster('someone-else', await deadPid());

    const removed = await pruneOrphanClusters(parent);

    expect(removed).toEqual([orphan.dir]);
    await exited(orphan.etcd);
    expect(orphan.etcd.signalCode).toBe('SIGTERM');
    expect(existsSync(orphan.dir)).toBe(false);
    for (const kept of [owned, ownerless, foreign]) {
      expect(existsSync(join(kept.dir, 'state.json'))).toBe(true);
      expect(kept.etcd.exitCode).toBeNull();
      expect(kept.etcd.signalCode).toBeNull();
    }
  });
});
