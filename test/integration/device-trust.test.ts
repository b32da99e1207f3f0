// edgeHub's server certificate is renewed before it expires, and a CA the user supplies is used instead
// of the operator's own. The operator runs with a 60-second certificate lifetime (an operator setting),
// so renewal is watched happening, on the real API server.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Secret } from '@kubernetes/client-node';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { describeCertificate, isIssuedBy, issueDeviceCa, splitCertificates } from '../../src/certs/index.ts';
import { createTestNamespace, deleteTestNamespace, eventually, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { sampleEdgeDeployment, sampleModule } from '../support/samples.ts';

const cluster = testCluster();
const lifetimeMs = 60_000;
let renewing: string;
let userCa: string;
let operator: RunningOperator;

async function secret(namespace: string, name: string): Promise<V1Secret | undefined> {
  return cluster.core.readNamespacedSecret({ name, namespace }).catch(() => undefined);
}

function decoded(s: V1Secret, key: string): string {
  return Buffer.from(s.data![key]!, 'base64').toString('utf8');
}

async function edgeDeployment(namespace: string): Promise<EdgeDeployment> {
  return (await cluster.objects.read({ apiVersion: 'iotedge-operator.io/v1alpha1', kind: 'EdgeDeployment', metadata: { name: 'device', namespace } })) as EdgeDeployment;
}

beforeAll(async () => {
  await ensureCrd(cluster);
  renewing = await createTestNamespace(cluster, 'renewal');
  userCa = await createTestNamespace(cluster, 'user-ca');
  operator = await startTestOperator(await operatorKubeConfig(cluster, renewing), [renewing, userCa], {}, {
    certificateLifetimes: { caMs: 365 * 86400_000, serverMs: lifetimeMs },
  });
});

afterAll(async () => {
  await operator?.stop();
  await deleteTestNamespace(cluster, renewing);
  await deleteTestNamespace(cluster, userCa);
});

describe('edgeHub certificate renewal', () => {
  it('replaces a short-lived certificate before it expires, rolls edgeHub onto it and leaves the modules running', async () => {
    await cluster.objects.create(sampleEdgeDeployment(renewing, { sensor: sampleModule('example.azurecr.io/sensor:1.0', { startupOrder: 1 }) }) as never);
    const first = await eventually('edgeHub server certificate', () => secret(renewing, 'device-edgehub-server'));
    const firstCert = describeCertificate(decoded(first, 'tls.crt'));
    const sensorPods = await eventually('the sensor pod', async () => {
      const pods = (await cluster.core.listNamespacedPod({ namespace: renewing, labelSelector: 'iotedge-operator.io/module=sensor' })).items;
      return pods.length > 0 ? pods.map((p) => p.metadata?.uid).sort() : undefined;
    });

    const renewed = await eventually('a new certificate', async () => {
      const s = await secret(renewing, 'device-edgehub-server');
      return s && describeCertificate(decoded(s, 'tls.crt')).sha256 !== firstCert.sha256 ? { secret: s, seenAt: new Date() } : undefined;
    }, 3 * lifetimeMs);
    // Seen while the first one was still valid: replaced before expiry, not after.
    expect(renewed.seenAt.getTime()).toBeLessThan(firstCert.notAfter.getTime());
    const next = describeCertificate(decoded(renewed.secret, 'tls.crt'));
    expect(next.notAfter.getTime()).toBeGreaterThan(firstCert.notAfter.getTime());
    expect(next.dnsNames).toEqual(firstCert.dnsNames);
    // Same CA: modules need not restart to trust it.
    expect(decoded(renewed.secret, 'ca.crt')).toBe(decoded(first, 'ca.crt'));
    expect(isIssuedBy(decoded(renewed.secret, 'tls.crt'), decoded(renewed.secret, 'ca.crt'))).toBe(true);

    await eventually('edgeHub rolled onto the new certificate', async () => {
      const hub = await cluster.apps.readNamespacedDeployment({ name: 'edgehub', namespace: renewing });
      const annotated = hub.spec?.template.metadata?.annotations?.['iotedge-operator.io/edgehub-cert-sha256'];
      return annotated !== undefined && annotated !== firstCert.sha256 ? true : undefined;
    }, 3 * lifetimeMs);
    const podsAfter = (await cluster.core.listNamespacedPod({ namespace: renewing, labelSelector: 'iotedge-operator.io/module=sensor' })).items;
    expect(podsAfter.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata?.uid).sort()).toEqual(sensorPods);
  });
});

describe('a device CA the user supplies', () => {
  it('issues edgeHub\'s certificate from it, makes no CA of its own, and reports a missing CA Secret as invalid', async () => {
    const ed = sampleEdgeDeployment(userCa, { sensor: sampleModule('example.azurecr.io/sensor:1.0') });
    ed.spec!.certificates = { deviceCaSecretRef: { name: 'my-ca' } };
    await cluster.objects.create(ed as never);
    const invalid = await eventually('Valid=False with IEO_CA_SECRET', async () => {
      const e = await edgeDeployment(userCa);
      return e.status?.conditions?.some((c) => c.type === 'Valid' && c.status === 'False') && e.status?.lastDesiredStatus?.description?.includes('IEO_CA_SECRET') ? e : undefined;
    });
    expect(invalid.status?.lastDesiredStatus?.description).toContain('my-ca');

    const ca = issueDeviceCa({ commonName: 'my organisation device CA', lifetimeMs: 365 * 86400_000 });
    await cluster.core.createNamespacedSecret({ namespace: userCa, body: {
      metadata: { name: 'my-ca' }, type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': ca.cert, 'tls.key': ca.key },
    } });
    const server = await eventually('edgeHub certificate from the user CA', () => secret(userCa, 'device-edgehub-server'), 90_000);
    const [leaf] = splitCertificates(decoded(server, 'tls.crt'));
    expect(isIssuedBy(leaf!, ca.cert)).toBe(true);
    expect(decoded(server, 'ca.crt')).toBe(ca.cert.replace(/\r\n/g, '\n'));
    expect(await secret(userCa, 'device-device-ca')).toBeUndefined();
    // The operator never writes the user's Secret.
    const mine = await secret(userCa, 'my-ca');
    expect(mine?.metadata?.ownerReferences).toBeUndefined();
    expect(decoded(mine!, 'tls.key')).toBe(ca.key);
  });
});
