import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { stopControlPlane } from '../../scripts/cluster/control-plane.ts';
import { findLeaks, readAudit, readCaptured } from './secret-leaks.ts';

/** This run's part of the audit log (from the offset global setup recorded). */
function auditText(): string | undefined {
  const path = process.env.IOTEDGE_TEST_AUDIT_LOG;
  if (!path || !existsSync(path)) return undefined;
  const from = Number(process.env.IOTEDGE_TEST_AUDIT_OFFSET ?? 0);
  const size = statSync(path).size;
  const buffer = Buffer.alloc(Math.max(0, size - from));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, from);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('utf8');
}

/** Every key and password the run stored, grepped for in every Event, status and log line it produced. */
function checkSecretLeaks(): Error | undefined {
  const text = auditText();
  if (text === undefined) {
    process.stderr.write('[test] no audit log (a control plane started before auditing was added?): secret-leak check skipped\n');
    return undefined;
  }
  const { secrets, outputs } = readAudit(text);
  const captured = readCaptured(process.env.IOTEDGE_TEST_CAPTURE_DIR ?? '');
  const leaks = findLeaks(secrets, [...outputs, ...captured]);
  process.stderr.write(`[test] secret-leak check: ${secrets.size} secrets against ${outputs.length} Events/status writes and ${captured.length} log files: ${leaks.length} leaks\n`);
  if (leaks.length === 0) return undefined;
  return new Error(`secrets leaked into outputs:\n${leaks.slice(0, 20).map((l) => `  ${l.secretPrefix} in ${l.where}`).join('\n')}`);
}

export default async function globalTeardown(): Promise<void> {
  globalThis.__iotedgeClusterUsers = (globalThis.__iotedgeClusterUsers ?? 1) - 1;
  if (globalThis.__iotedgeClusterUsers > 0) return;
  const leaked = checkSecretLeaks();
  const dir = globalThis.__iotedgeClusterStartedDir;
  if (dir && process.env.IOTEDGE_TEST_KEEP_CLUSTER) {
    process.stderr.write(`[test] leaving the control plane in ${dir} running (IOTEDGE_TEST_KEEP_CLUSTER)\n`);
  } else if (dir) {
    await stopControlPlane(dir);
    globalThis.__iotedgeClusterStartedDir = undefined;
  }
  if (leaked) throw leaked;
}
