// The local cluster's throwaway PKI (openssl): one CA, the API server's serving certificate, client
// certificates for the admin and the node agents, the service-account key pair, and kubeconfigs.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump as toYaml } from 'js-yaml';
import { run } from './processes.ts';

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd });
}

/** A certificate `<name>.crt`/`<name>.key` signed by the CA in `pki`; `ext` is an extension file there. */
export async function issueCertificate(pki: string, name: string, subject: string, ext = 'client.ext'): Promise<void> {
  await openssl(pki, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`);
  await openssl(pki, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key',
    // A random serial rather than -CAcreateserial: certificates are issued concurrently, and ca.srl would race.
    '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '30', '-out', `${name}.crt`, '-extfile', ext);
}

/**
 * The CA, the API server's serving certificate (for loopback, the `kubernetes` Service's first IP, and
 * `apiServerIps`, e.g. the bridge address pods reach it at), an admin client certificate (system:masters)
 * and the service-account key pair.
 */
export async function createPki(pki: string, apiServerIps: string[] = []): Promise<void> {
  mkdirSync(pki, { recursive: true });
  const sans = [
    'IP:127.0.0.1',
    'IP:10.96.0.1',
    ...apiServerIps.map((ip) => `IP:${ip}`),
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
  ].join(',');
  writeFileSync(join(pki, 'serving.ext'), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
  writeFileSync(join(pki, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  await openssl(pki, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', '/CN=iotedge-operator-local-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  await Promise.all([
    issueCertificate(pki, 'apiserver', '/CN=kube-apiserver', 'serving.ext'),
    issueCertificate(pki, 'admin', '/CN=admin/O=system:masters'),
    openssl(pki, 'genrsa', '-out', 'sa.key', '2048').then(() => openssl(pki, 'rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub')),
  ]);
}

/** A kubeconfig for `server` that authenticates with the client certificate `<user>.crt` from `pki`. */
export function kubeconfigYaml(server: string, pki: string, user = 'admin'): string {
  const b64 = (file: string) => readFileSync(join(pki, file)).toString('base64');
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority-data': b64('ca.crt') } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(`${user}.crt`), 'client-key-data': b64(`${user}.key`) } }],
    contexts: [{ name: 'local', context: { cluster: 'local', user } }],
    'current-context': 'local',
  });
}
