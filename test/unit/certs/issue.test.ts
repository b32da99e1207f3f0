import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity as tlsCheckServerIdentity } from 'node:tls';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  checkIssuer, describeCertificate, isIssuedBy, issueDeviceCa, issueServerCertificate, keyMatchesCertificate, renewalTime, splitCertificates,
} from '../../../src/certs/index.ts';

const day = 86400_000;
const names = ['edgehub', 'edgehub.dev1', 'edgehub.dev1.svc', 'edgehub.dev1.svc.cluster.local'];
const ca = issueDeviceCa({ commonName: 'dev1 device CA', lifetimeMs: 365 * day });
const server = issueServerCertificate({ ca, dnsNames: names, lifetimeMs: 90 * day });
const dir = mkdtempSync(join(tmpdir(), 'certs-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('device CA', () => {
  it('is a CA whose key is the one returned', () => {
    const facts = describeCertificate(ca.cert);
    expect(facts.isCa).toBe(true);
    expect(facts.subject).toBe('CN=dev1 device CA');
    expect(keyMatchesCertificate(ca.cert, ca.key)).toBe(true);
    expect(() => checkIssuer(ca)).not.toThrow();
  });
});

describe('edgeHub server certificate', () => {
  it('holds the leaf then the CA, and the leaf chains to the CA (openssl agrees)', () => {
    const [leaf, chained, extra] = splitCertificates(server.cert);
    expect(extra).toBeUndefined();
    expect(chained).toBe(ca.cert);
    expect(isIssuedBy(leaf!, ca.cert)).toBe(true);
    expect(new X509Certificate(leaf!).ca).toBe(false);
    writeFileSync(join(dir, 'ca.pem'), ca.cert);
    writeFileSync(join(dir, 'leaf.pem'), leaf!);
    const out = execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
    expect(out).toContain(': OK');
  });

  it('names every host modules dial, which TLS hostname checks accept', () => {
    const [leaf] = splitCertificates(server.cert);
    expect(describeCertificate(leaf!).dnsNames).toEqual(names);
    const x509 = new X509Certificate(leaf!);
    const peer = { subject: { CN: 'edgehub' }, subjectaltname: x509.subjectAltName } as unknown as Parameters<typeof tlsCheckServerIdentity>[1];
    for (const host of names) expect(tlsCheckServerIdentity(host, peer)).toBeUndefined();
    expect(tlsCheckServerIdentity('other', peer)?.message).toMatch(/does not match/);
  });

  it('has a key that belongs to it', () => {
    expect(keyMatchesCertificate(server.cert, server.key)).toBe(true);
    expect(keyMatchesCertificate(server.cert, ca.key)).toBe(false);
  });

  it('is not issued by another CA', () => {
    const other = issueDeviceCa({ commonName: 'dev1 device CA', lifetimeMs: day });
    expect(isIssuedBy(server.cert, other.cert)).toBe(false);
  });
});

describe('validity and renewal', () => {
  const now = new Date('2026-01-01T00:00:00Z');

  it('is valid for the lifetime asked, backdated a little for clock skew', () => {
    const short = issueServerCertificate({ ca, dnsNames: names, lifetimeMs: 90 * day, now });
    const facts = describeCertificate(short.cert);
    expect(facts.notAfter.toISOString()).toBe('2026-04-01T00:00:00.000Z');
    expect(facts.notBefore.toISOString()).toBe('2025-12-31T23:55:00.000Z');
  });

  it('renews two thirds into the validity, also for a lifetime of seconds', () => {
    const short = issueServerCertificate({ ca, dnsNames: names, lifetimeMs: 60_000, now });
    // Backdated by a tenth (6 s): valid 66 s in all, renewed 44 s after notBefore = 38 s after issue.
    expect(renewalTime(short.cert).toISOString()).toBe('2026-01-01T00:00:38.000Z');
  });

  it('refuses a CA that is not one, or a key that is not its own', () => {
    expect(() => issueServerCertificate({ ca: { cert: server.cert, key: server.key }, dnsNames: names, lifetimeMs: day })).toThrow(/not a CA/);
    expect(() => issueServerCertificate({ ca: { cert: ca.cert, key: server.key }, dnsNames: names, lifetimeMs: day })).toThrow(/does not belong/);
    expect(() => issueServerCertificate({ ca, dnsNames: [], lifetimeMs: day })).toThrow(/DNS name/);
    expect(() => issueDeviceCa({ commonName: 'x', lifetimeMs: 0 })).toThrow(/positive/);
  });
});
