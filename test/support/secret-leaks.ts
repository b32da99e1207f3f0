// After a test run: every key and password the run used, found where it was stored (Secret writes in the
// API server's audit log), must appear in nothing the run showed a person: Events, EdgeDeployment status
// (both from the audit log) and the operator's log lines (written to the run's capture directory).
// The audit log is complete whatever a test cleaned up, which makes the check reliable in CI.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Output {
  where: string;
  text: string;
}

export interface Leak {
  where: string;
  /** The secret's first characters only: the report must not leak it again. */
  secretPrefix: string;
}

interface AuditEvent {
  verb?: string;
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  requestObject?: Record<string, unknown>;
}

/** Secret data keys whose values are not secret (certificates are public). */
const publicKey = /(^|\.)crt$|^ca\.crt$|^tls\.crt$|username/i;
/** Secret data keys whose whole value is a secret. */
const secretKey = /key|password|passwd|token|secret|connectionstring|auth/i;

function decode(value: unknown, base64: boolean): string | undefined {
  if (typeof value !== 'string') return undefined;
  return base64 ? Buffer.from(value, 'base64').toString('utf8') : value;
}

/** The secrets inside one Secret value: the value itself for secret keys, and keys embedded in connection strings or docker configs. */
export function secretsInValue(key: string, value: string): string[] {
  const found = new Set<string>();
  if (secretKey.test(key) && !publicKey.test(key)) found.add(value.trim());
  for (const m of value.matchAll(/SharedAccessKey=([^;\s"]+)/g)) found.add(m[1]!);
  if (key === '.dockerconfigjson') {
    try {
      const auths = (JSON.parse(value) as { auths?: Record<string, { password?: string; auth?: string }> }).auths ?? {};
      for (const entry of Object.values(auths)) {
        if (entry.password) found.add(entry.password);
        if (entry.auth) found.add(entry.auth);
      }
    } catch {
      // not JSON: nothing embedded
    }
  }
  // Short values (a "1", a "true") would match everywhere and protect nothing.
  return [...found].filter((s) => s.length >= 8 && !s.includes('-----BEGIN CERTIFICATE'));
}

function parseLines(text: string): AuditEvent[] {
  return text.split('\n').filter(Boolean).flatMap((line) => {
    try {
      return [JSON.parse(line) as AuditEvent];
    } catch {
      return [];
    }
  });
}

/** Secrets written and outputs shown, from the audit log's JSON lines. */
export function readAudit(text: string): { secrets: Set<string>; outputs: Output[] } {
  const secrets = new Set<string>();
  const outputs: Output[] = [];
  for (const event of parseLines(text)) {
    const ref = event.objectRef ?? {};
    const body = event.requestObject;
    if (!body) continue;
    const where = `${ref.resource}${ref.subresource ? `/${ref.subresource}` : ''} ${ref.namespace ?? ''}/${ref.name ?? (body.metadata as { name?: string } | undefined)?.name ?? ''}`;
    if (ref.resource === 'secrets') {
      for (const [field, base64] of [['data', true], ['stringData', false]] as const) {
        for (const [key, raw] of Object.entries((body[field] as Record<string, unknown> | undefined) ?? {})) {
          const value = decode(raw, base64);
          if (value !== undefined) for (const s of secretsInValue(key, value)) secrets.add(s);
        }
      }
    } else if (ref.resource === 'events' || ref.subresource === 'status') {
      outputs.push({ where, text: JSON.stringify(ref.resource === 'events' ? body : body.status ?? body) });
    }
  }
  return { secrets, outputs };
}

/** Every file of the capture directory (log lines, CLI output) as an output. */
export function readCaptured(dir: string): Output[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => ({ where: `captured ${f}`, text: readFileSync(join(dir, f), 'utf8') }));
}

export function findLeaks(secrets: Iterable<string>, outputs: readonly Output[]): Leak[] {
  const leaks: Leak[] = [];
  for (const secret of secrets) {
    // Outputs are JSON-encoded; a secret with quotes or backslashes would appear escaped.
    const forms = [...new Set([secret, JSON.stringify(secret).slice(1, -1)])];
    for (const output of outputs) {
      if (forms.some((form) => output.text.includes(form))) leaks.push({ where: output.where, secretPrefix: `${secret.slice(0, 4)}…` });
    }
  }
  return leaks;
}

/** Keeps a process's or command's output for the check at teardown (no-op outside a test run's setup). */
export function captureOutput(name: string, text: string): void {
  const dir = process.env.IOTEDGE_TEST_CAPTURE_DIR;
  if (dir && existsSync(dir)) writeFileSync(join(dir, `${name}-${process.pid}-${Date.now()}.log`), text);
}
