// The contract checker that the integration tests run against the API server must be able to fail:
// here it judges translated objects with real certificates, first as the operator makes them, then
// with one rule broken at a time.
import { describe, expect, it } from '@jest/globals';
import type { V1Deployment, V1Secret, V1Service } from '@kubernetes/client-node';
import { issueDeviceCa, issueServerCertificate } from '../../src/certs/index.ts';
import { edgeHubDnsNames, edgeHubServerSecretName } from '../../src/translate/identity.ts';
import { translate } from '../../src/translate/index.ts';
import { stockEdgeHubViolations, type ContractInput } from '../support/edgehub-contract.ts';
import { input, manifest, moduleSpec } from './translate/builders.ts';

const day = 86400_000;
const ca = issueDeviceCa({ commonName: 'dev1 CA', lifetimeMs: 365 * day });
const routes = { sensorToFilter: { name: 'sensorToFilter', route: 'FROM /messages/modules/sensor/outputs/* INTO BrokeredEndpoint("/modules/filter/inputs/in")', priority: 9 } };

function serverSecret(dnsNames: string[], key?: string): V1Secret {
  const pair = issueServerCertificate({ ca, dnsNames, lifetimeMs: 90 * day });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return { metadata: { name: edgeHubServerSecretName('dev1-deployment') }, data: { 'tls.crt': b64(pair.cert), 'tls.key': b64(key ?? pair.key), 'ca.crt': b64(ca.cert) } };
}

function contractInput(options: { dnsNames?: string[]; key?: string } = {}): ContractInput {
  const outcome = translate(input(manifest([moduleSpec('sensor'), moduleSpec('filter')], { routes }), undefined, {
    edgeHubConfigSource: 'local',
    localIdentities: { hostName: 'dev1.local', keys: { $edgeHub: Buffer.alloc(32, 1).toString('base64'), sensor: Buffer.alloc(32, 2).toString('base64'), filter: Buffer.alloc(32, 3).toString('base64') } },
  }));
  if (!outcome.ok) throw new Error(JSON.stringify(outcome.errors));
  const objects = outcome.value.objects;
  const secrets = new Map<string, V1Secret>();
  for (const s of objects.filter((o) => o.kind === 'Secret') as V1Secret[]) {
    secrets.set(s.metadata!.name!, { ...s, data: Object.fromEntries(Object.entries(s.stringData ?? {}).map(([k, val]) => [k, Buffer.from(val).toString('base64')])) });
  }
  const server = serverSecret(options.dnsNames ?? edgeHubDnsNames('edgehub', 'dev1'), options.key);
  secrets.set(server.metadata!.name!, server);
  const deployments = objects.filter((o) => o.kind === 'Deployment') as V1Deployment[];
  return {
    namespace: 'dev1',
    edgeHub: deployments.find((d) => d.metadata?.name === 'edgehub')!,
    edgeHubService: (objects as V1Service[]).find((o) => o.kind === 'Service' && o.metadata?.name === 'edgehub')!,
    modules: deployments.filter((d) => d.metadata?.name !== 'edgehub'),
    secrets,
    configSource: 'local',
    routes: [routes.sensorToFilter.route],
    serviceName: 'edgehub',
  };
}

describe('stock edgeHub contract checker', () => {
  it('passes what the operator makes', () => {
    expect(stockEdgeHubViolations(contractInput())).toEqual([]);
  });

  it('fails a certificate missing a name modules dial', () => {
    expect(stockEdgeHubViolations(contractInput({ dnsNames: ['edgehub'] }))).toContain('the server certificate has no SAN for edgehub.dev1.svc');
  });

  it('fails a key that is not the certificate\'s', () => {
    expect(stockEdgeHubViolations(contractInput({ key: ca.key }))).toContain('the private key does not belong to the server certificate');
  });

  it('fails a forbidden variable, a writable certificate mount, a privileged port and a missing route', () => {
    const c = contractInput();
    const hub = c.edgeHub.spec!.template.spec!.containers[0]!;
    hub.env = [...(hub.env ?? []).filter((e) => !e.name.startsWith('routes__')), { name: 'IOTEDGE_WORKLOADURI', value: 'unix:///var/run/iotedge/workload.sock' }];
    hub.volumeMounts = hub.volumeMounts!.map((m) => (m.name === 'edgehub-tls' ? { ...m, readOnly: false } : m));
    c.edgeHubService.spec!.ports = c.edgeHubService.spec!.ports!.map((p) => (p.port === 443 ? { ...p, targetPort: 443 } : p));
    const found = stockEdgeHubViolations(c);
    expect(found).toEqual(expect.arrayContaining([
      'IOTEDGE_WORKLOADURI is set on edgeHub',
      'EdgeHubDevServerCertificateFile=/etc/iotedge-operator/edgehub-tls/tls.crt is mounted writable',
      'the edgeHub Service does not map 443 to 8443',
      'the built-in route r1 is not overridden',
      `route "${routes.sensorToFilter.route}" is not among the routes__* variables`,
    ]));
  });

  it('fails a module that does not trust the device CA or has no identity', () => {
    const c = contractInput();
    const other = issueDeviceCa({ commonName: 'other', lifetimeMs: day });
    c.secrets.set('dev1-deployment-edgehub-server', { ...c.secrets.get('dev1-deployment-edgehub-server')!, data: { ...c.secrets.get('dev1-deployment-edgehub-server')!.data, 'ca.crt': Buffer.from(other.cert).toString('base64') } });
    c.secrets.delete('sensor-iothub');
    const found = stockEdgeHubViolations(c);
    expect(found).toEqual(expect.arrayContaining([
      'the server certificate does not chain to the trust bundle',
      'module filter: EdgeModuleCACertificateFile is not the CA edgeHub\'s certificate chains to',
      'module sensor: EdgeHubConnectionString is not set or its Secret key is missing',
    ]));
  });
});
