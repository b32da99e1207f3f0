// A device's identity and trust, kept in Secrets the EdgeDeployment owns: the device root key module
// keys are derived from, the device CA, and edgeHub's server certificate (renewed at 2/3 of its
// lifetime). Decisions are made from the informer cache, which holds these Secrets' metadata only:
// annotations carry the fingerprints and renewal times, so a steady state costs no API request and
// the operator's heap holds no key unless it is issuing. Nothing here logs key material.
import type { V1Secret } from '@kubernetes/client-node';
import { edgeDeploymentApiVersion, edgeDeploymentKind, type EdgeDeployment } from '../api/edge-deployment.ts';
import { describeCertificate, issueDeviceCa, issueServerCertificate, renewalTime, splitCertificates, checkIssuer, type KeyPairPem } from '../certs/index.ts';
import { generateSymmetricKey } from '../runtime/sas.ts';
import { deviceCaSecretName, deviceIdentitySecretName, edgeHubDnsNames, edgeHubServerSecretName, rootKeyKey } from '../translate/identity.ts';
import { commonLabels } from '../translate/names.ts';
import { KubeApiError, type KubeClient, type Logger } from './kube-client.ts';
import type { ObjectCache } from './reconciler.ts';

export const trustAnnotationKeys = {
  certificateSha256: 'iotedge-operator.io/certificate-sha256',
  caSha256: 'iotedge-operator.io/ca-sha256',
  notAfter: 'iotedge-operator.io/not-after',
  renewAfter: 'iotedge-operator.io/renew-after',
  dnsNames: 'iotedge-operator.io/dns-names',
  caSource: 'iotedge-operator.io/ca-source',
} as const;

export interface CertificateLifetimes {
  /** Lifetime of the operator-made device CA. */
  caMs: number;
  /** Lifetime of edgeHub's server certificate. The stock edgeHub exits when less than 5 minutes remain, so keep it well above that. */
  serverMs: number;
}

/** How long a Secret this process wrote is trusted over a cache that does not show it yet. */
const cacheLagAllowanceMs = 30_000;

export const defaultLifetimes: CertificateLifetimes = { caMs: 5 * 365 * 86400_000, serverMs: 90 * 86400_000 };

/** A CA the operator cannot use: the EdgeDeployment's desired state is at fault, not the cluster. */
export class DeviceCaError extends Error {
  override name = 'DeviceCaError';
}

export interface DeviceTrust {
  caSha256: string;
  serverCertSha256: string;
  /** The earliest time a certificate here must be renewed: the reconcile is requeued for it. */
  renewAt: Date;
}

export interface DeviceTrustOptions {
  client: KubeClient;
  /** The operator's Secrets (metadata and key names only). */
  secrets: ObjectCache<V1Secret> | undefined;
  lifetimes: CertificateLifetimes;
  edgeHubServiceName: string;
  logger: Logger;
  now?: () => Date;
}

interface CertificateRecord {
  certificateSha256: string;
  caSha256: string;
  renewAfter: Date;
  dnsNames: string;
  caSource: string;
}

export class DeviceTrustKeeper {
  private readonly o: DeviceTrustOptions;
  /** What this process last wrote, by Secret path, and when: the informer may not have seen it yet. */
  private readonly written = new Map<string, { record: CertificateRecord; at: number }>();
  constructor(options: DeviceTrustOptions) {
    this.o = options;
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /**
   * Makes sure the device CA (unless the user supplies one) and edgeHub's certificate exist, cover every
   * name modules dial, chain to the current CA and are not due for renewal.
   */
  async ensure(ed: EdgeDeployment): Promise<DeviceTrust> {
    const ca = await this.ensureCa(ed);
    const server = await this.ensureServerCertificate(ed, ca);
    return {
      caSha256: ca.record.certificateSha256,
      serverCertSha256: server.certificateSha256,
      renewAt: new Date(Math.min(ca.record.renewAfter.getTime(), server.renewAfter.getTime())),
    };
  }

  private async ensureCa(ed: EdgeDeployment): Promise<{ record: CertificateRecord; load: () => Promise<KeyPairPem> }> {
    const userRef = ed.spec?.certificates?.deviceCaSecretRef;
    if (userRef) return this.userCa(ed, userRef.name);
    const name = deviceCaSecretName(ed.metadata!.name!);
    const path = secretPath(ed, name);
    const load = async () => pairFrom(await this.o.client.get<V1Secret>(path), `Secret ${ed.metadata!.namespace}/${name}`);
    const current = this.recordOf(path, this.o.secrets?.get(ed.metadata!.namespace!, name));
    if (current && current.renewAfter > this.now()) return { record: current, load };
    const pair = issueDeviceCa({ commonName: `${ed.spec?.deviceId ?? ed.metadata!.namespace} device CA`, lifetimeMs: this.o.lifetimes.caMs, now: this.now() });
    const record = recordFor(pair.cert, pair.cert, '', 'operator');
    await this.apply(ed, name, { 'tls.crt': pair.cert, 'tls.key': pair.key, 'ca.crt': pair.cert }, record);
    this.o.logger.info({ edgeDeployment: keyOf(ed), secret: name, renewAfter: record.renewAfter.toISOString(), replaced: current !== undefined }, 'device CA issued');
    return { record, load: async () => pair };
  }

  /** A CA the user keeps in a Secret (tls.crt, tls.key, optional ca.crt for the chain above it); read each time it is needed. */
  private async userCa(ed: EdgeDeployment, name: string): Promise<{ record: CertificateRecord; load: () => Promise<KeyPairPem> }> {
    const where = `Secret ${ed.metadata!.namespace}/${name} (spec.certificates.deviceCaSecretRef)`;
    const secret = await this.o.client.get<V1Secret>(secretPath(ed, name)).catch(ignoreNotFound);
    if (!secret) throw new DeviceCaError(`${where} was not found`);
    let pair: KeyPairPem;
    let facts: ReturnType<typeof describeCertificate>;
    try {
      pair = pairFrom(secret, where);
      checkIssuer(pair);
      facts = describeCertificate(pair.cert);
    } catch (error) {
      if (error instanceof DeviceCaError) throw error;
      throw new DeviceCaError(`${where}: ${(error as Error).message}`);
    }
    // A user CA is not renewed here; the reconcile comes back when it is two thirds through its life.
    return { record: { certificateSha256: facts.sha256, caSha256: facts.sha256, renewAfter: renewalTime(pair.cert), dnsNames: '', caSource: `secret/${name}` }, load: async () => pair };
  }

  private async ensureServerCertificate(ed: EdgeDeployment, ca: { record: CertificateRecord; load: () => Promise<KeyPairPem> }): Promise<CertificateRecord> {
    const name = edgeHubServerSecretName(ed.metadata!.name!);
    const path = secretPath(ed, name);
    const dnsNames = edgeHubDnsNames(this.o.edgeHubServiceName, ed.metadata!.namespace!);
    const current = this.recordOf(path, this.o.secrets?.get(ed.metadata!.namespace!, name));
    const why = !current ? 'missing'
      : current.renewAfter <= this.now() ? 'due for renewal'
        : current.dnsNames !== dnsNames.join(',') ? 'names changed'
          : current.caSha256 !== ca.record.certificateSha256 ? 'CA changed'
            : undefined;
    if (!why) return current!;
    const caPair = await ca.load();
    const pair = issueServerCertificate({ ca: caPair, dnsNames, lifetimeMs: this.o.lifetimes.serverMs, now: this.now() });
    const caBundle = splitCertificates(caPair.cert).join('');
    const record = recordFor(pair.cert, caPair.cert, dnsNames.join(','), ca.record.caSource);
    await this.apply(ed, name, { 'tls.crt': pair.cert, 'tls.key': pair.key, 'ca.crt': caBundle }, record);
    this.o.logger.info({ edgeDeployment: keyOf(ed), secret: name, reason: why, renewAfter: record.renewAfter.toISOString() }, 'edgeHub server certificate issued');
    return record;
  }

  /**
   * The cached Secret's record, or what this process wrote moments ago if the cache has not caught up.
   * Only moments: a Secret deleted (or replaced) by someone else later must be noticed and made again.
   */
  private recordOf(path: string, cached: V1Secret | undefined): CertificateRecord | undefined {
    const fromCache = cached && parseRecord(cached);
    const mine = this.written.get(path);
    const recent = mine !== undefined && this.now().getTime() - mine.at < cacheLagAllowanceMs;
    if (recent && fromCache?.certificateSha256 !== mine.record.certificateSha256) return mine.record;
    return fromCache;
  }

  private async apply(ed: EdgeDeployment, name: string, data: Record<string, string>, record: CertificateRecord): Promise<void> {
    const annotations = {
      [trustAnnotationKeys.certificateSha256]: record.certificateSha256,
      [trustAnnotationKeys.caSha256]: record.caSha256,
      [trustAnnotationKeys.renewAfter]: record.renewAfter.toISOString(),
      [trustAnnotationKeys.caSource]: record.caSource,
      ...(record.dnsNames ? { [trustAnnotationKeys.dnsNames]: record.dnsNames } : {}),
    };
    const path = secretPath(ed, name);
    await this.o.client.request('PATCH', path, { fieldManager: trustFieldManager, force: 'true' }, {
      body: trustSecret(ed, name, 'kubernetes.io/tls', data, annotations),
      contentType: 'application/apply-patch+yaml',
    });
    this.written.set(path, { record, at: this.now().getTime() });
  }
}

/**
 * The device root key (base64) from Secret `<edep>-device-identity`, created on first use with 32 random
 * bytes. Read from the API only when asked for; never rotated here (module keys derive from it).
 */
export async function readOrCreateRootKey(client: KubeClient, ed: EdgeDeployment, logger: Logger): Promise<string> {
  const name = deviceIdentitySecretName(ed.metadata!.name!);
  const existing = await client.get<V1Secret>(secretPath(ed, name)).catch(ignoreNotFound);
  const stored = existing?.data?.[rootKeyKey];
  if (stored !== undefined) return Buffer.from(stored, 'base64').toString('utf8');
  if (existing) throw new Error(`Secret ${ed.metadata!.namespace}/${name} has no ${rootKeyKey}; delete it to have a new device root key made`);
  const rootKey = generateSymmetricKey();
  try {
    // Created, never applied: a second writer must not replace a key whose derived keys are in use.
    await client.request('POST', secretCollection(ed), {}, { body: trustSecret(ed, name, 'Opaque', { [rootKeyKey]: rootKey }, {}) });
    logger.info({ edgeDeployment: keyOf(ed), secret: name }, 'device root key created');
    return rootKey;
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 409) return readOrCreateRootKey(client, ed, logger);
    throw error;
  }
}

/** A Secret of the device's trust: labelled as the operator's, owned (not controlled) by the EdgeDeployment. */
function trustSecret(ed: EdgeDeployment, name: string, type: string, data: Record<string, string>, annotations: Record<string, string>): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type,
    metadata: {
      name,
      namespace: ed.metadata!.namespace!,
      labels: commonLabels({ ownerName: ed.metadata!.name!, deviceId: ed.spec?.deviceId ?? ed.metadata!.namespace! }, 'device-trust'),
      ...(Object.keys(annotations).length ? { annotations } : {}),
      // Not the controller: the reconciler prunes only what it controls, and these outlive every translation.
      ownerReferences: [{ apiVersion: edgeDeploymentApiVersion, kind: edgeDeploymentKind, name: ed.metadata!.name!, uid: ed.metadata!.uid!, controller: false, blockOwnerDeletion: false }],
    },
    stringData: data,
  };
}

/** Server-side apply of the trust Secrets, apart from the reconciler's field manager. */
export const trustFieldManager = 'iotedge-operator-trust';

function recordFor(certPem: string, caPem: string, dnsNames: string, caSource: string): CertificateRecord {
  return {
    certificateSha256: describeCertificate(certPem).sha256,
    caSha256: describeCertificate(caPem).sha256,
    renewAfter: renewalTime(certPem),
    dnsNames,
    caSource,
  };
}

function parseRecord(secret: V1Secret): CertificateRecord | undefined {
  const a = secret.metadata?.annotations ?? {};
  const renewAfter = new Date(a[trustAnnotationKeys.renewAfter] ?? '');
  const certificateSha256 = a[trustAnnotationKeys.certificateSha256];
  const caSha256 = a[trustAnnotationKeys.caSha256];
  if (!certificateSha256 || !caSha256 || Number.isNaN(renewAfter.getTime())) return undefined;
  return { certificateSha256, caSha256, renewAfter, dnsNames: a[trustAnnotationKeys.dnsNames] ?? '', caSource: a[trustAnnotationKeys.caSource] ?? '' };
}

function pairFrom(secret: V1Secret | undefined, where: string): KeyPairPem {
  const read = (key: string) => {
    const value = secret?.data?.[key];
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
  };
  const cert = read('tls.crt');
  const key = read('tls.key');
  if (!cert || !key) throw new DeviceCaError(`${where} needs keys tls.crt and tls.key`);
  // ca.crt, when present, is the chain above the CA: modules must trust the root, and the leaf carries the whole chain.
  const chain = read('ca.crt');
  const above = chain ? splitCertificates(chain).filter((c) => describeCertificate(c).sha256 !== describeCertificate(cert).sha256) : [];
  return { cert: [...splitCertificates(cert), ...above].join(''), key };
}

function secretCollection(ed: EdgeDeployment): string {
  return `/api/v1/namespaces/${ed.metadata!.namespace}/secrets`;
}

function secretPath(ed: EdgeDeployment, name: string): string {
  return `${secretCollection(ed)}/${encodeURIComponent(name)}`;
}

function keyOf(ed: EdgeDeployment): string {
  return `${ed.metadata!.namespace}/${ed.metadata!.name}`;
}

function ignoreNotFound(error: unknown): undefined {
  if (error instanceof KubeApiError && error.status === 404) return undefined;
  throw error;
}
