// The stock edgeHub's runtime contract (shared/reference edgehub-contract.md §1, §2, §7) as checks over
// what the API server holds: the applied edgeHub Deployment, its Service, the module Deployments and the
// Secrets they reference. Each rule returns a violation naming what is wrong, so a test asserts the list
// is empty and a broken input (see test/unit/edgehub-contract.test.ts) shows every rule can fail.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { V1Container, V1Deployment, V1PodSpec, V1Secret, V1Service } from '@kubernetes/client-node';
import { isIssuedBy, keyMatchesCertificate, splitCertificates } from '../../src/certs/index.ts';

export interface ContractInput {
  namespace: string;
  edgeHub: V1Deployment;
  edgeHubService: V1Service;
  modules: V1Deployment[];
  /** Secrets by name, as read from the API server (base64 data). */
  secrets: Map<string, V1Secret>;
  /** 'local': kubectl mode, routes from routes__*; 'twin': IoT Hub mode. */
  configSource: 'local' | 'twin';
  /** The route texts of the deployment, for local mode. */
  routes: string[];
  /** The edgeHub Service name modules dial. */
  serviceName: string;
}

const forbidden = ['IOTEDGE_WORKLOADURI', 'IOTEDGE_GATEWAYHOSTNAME'];

function container(d: V1Deployment): V1Container {
  return d.spec!.template.spec!.containers[0]!;
}

/** The value of a variable: literal, or read from the Secret it references. */
export function envValue(c: V1Container, name: string, secrets: Map<string, V1Secret>): string | undefined {
  const v = c.env?.find((e) => e.name === name);
  if (!v) return undefined;
  if (v.value !== undefined) return v.value;
  const ref = v.valueFrom?.secretKeyRef;
  const data = ref?.name ? secrets.get(ref.name)?.data?.[ref.key] : undefined;
  return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
}

/** The content of a file the container reads, from the Secret volume mounted over its path; with how it is mounted. */
export function fileContent(pod: V1PodSpec, c: V1Container, path: string, secrets: Map<string, V1Secret>): { text: string; readOnly: boolean } | undefined {
  const mount = c.volumeMounts?.find((m) => path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
  const volume = mount && pod.volumes?.find((v) => v.name === mount.name);
  if (!mount || !volume?.secret?.secretName) return undefined;
  const relative = path.slice(mount.mountPath.replace(/\/$/, '').length + 1);
  const items = volume.secret.items;
  const key = items ? items.find((i) => i.path === relative)?.key : relative;
  const data = key === undefined ? undefined : secrets.get(volume.secret.secretName)?.data?.[key];
  return data === undefined ? undefined : { text: Buffer.from(data, 'base64').toString('utf8'), readOnly: mount.readOnly === true };
}

function connectionFields(text: string): Record<string, string> {
  return Object.fromEntries(text.split(';').filter(Boolean).map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
}

/** Every rule of the contract that the objects break, each as one sentence. */
export function stockEdgeHubViolations(input: ContractInput): string[] {
  const v: string[] = [];
  const hub = container(input.edgeHub);
  const pod = input.edgeHub.spec!.template.spec!;
  const env = (name: string) => envValue(hub, name, input.secrets);

  // §1.1 identity: the $edgeHub module connection string, no gateway (that would name a parent edge).
  const cs = env('IotHubConnectionString');
  if (!cs) v.push('IotHubConnectionString is not set or its Secret key is missing');
  else {
    const f = connectionFields(cs);
    if (f.ModuleId !== '$edgeHub') v.push(`IotHubConnectionString is for module ${f.ModuleId}, not $edgeHub`);
    if (!f.HostName || !f.DeviceId) v.push('IotHubConnectionString lacks HostName or DeviceId');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(f.SharedAccessKey ?? '') || Buffer.from(f.SharedAccessKey ?? '', 'base64').length < 16) v.push('IotHubConnectionString has no usable SharedAccessKey');
    if (f.GatewayHostName) v.push('IotHubConnectionString carries a GatewayHostName');
  }
  for (const name of forbidden) if (hub.env?.some((e) => e.name.toLowerCase() === name.toLowerCase())) v.push(`${name} is set on edgeHub`);

  // §1.2 b: the three dev PEM files, read-only, parseable, leaf first, key matching, chaining to the bundle.
  const files: Record<string, { text: string; readOnly: boolean } | undefined> = {};
  for (const key of ['EdgeHubDevServerCertificateFile', 'EdgeHubDevServerPrivateKeyFile', 'EdgeHubDevTrustBundleFile']) {
    const path = env(key);
    if (!path) {
      v.push(`${key} is not set`);
      continue;
    }
    files[key] = fileContent(pod, hub, path, input.secrets);
    if (!files[key]) v.push(`${key}=${path} is not a file of a mounted Secret`);
    else if (!files[key]!.readOnly) v.push(`${key}=${path} is mounted writable`);
  }
  const chain = files.EdgeHubDevServerCertificateFile ? splitCertificates(files.EdgeHubDevServerCertificateFile.text) : [];
  const bundle = files.EdgeHubDevTrustBundleFile ? splitCertificates(files.EdgeHubDevTrustBundleFile.text) : [];
  const leaf = chain[0] ? new X509Certificate(chain[0]) : undefined;
  if (files.EdgeHubDevServerCertificateFile && !leaf) v.push('the server certificate file holds no PEM certificate');
  if (leaf?.ca) v.push('the first certificate of the server certificate file is a CA, not the leaf');
  if (leaf && (new Date(leaf.validTo).getTime() - Date.now() < 5 * 60_000)) v.push('the server certificate expires within 5 minutes, so edgeHub would exit at once');
  if (files.EdgeHubDevServerPrivateKeyFile) {
    try {
      createPrivateKey(files.EdgeHubDevServerPrivateKeyFile.text);
      if (chain[0] && !keyMatchesCertificate(chain[0], files.EdgeHubDevServerPrivateKeyFile.text)) v.push('the private key does not belong to the server certificate');
    } catch {
      v.push('the private key file is not a PEM private key');
    }
  }
  if (files.EdgeHubDevTrustBundleFile && (bundle.length === 0 || !bundle.every((c) => new X509Certificate(c).ca))) v.push('the trust bundle is not a list of PEM CA certificates');
  if (chain[0] && bundle.length > 0 && !bundle.some((ca) => isIssuedBy(chain[chain.length - 1]!, ca) || isIssuedBy(chain[0]!, ca))) v.push('the server certificate does not chain to the trust bundle');

  // §7: the leaf names every host a module dials.
  const sans = leaf ? (leaf.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)) : [];
  const dialled = new Set([input.serviceName, `${input.serviceName}.${input.namespace}`, `${input.serviceName}.${input.namespace}.svc`, `${input.serviceName}.${input.namespace}.svc.cluster.local`]);
  for (const m of input.modules) {
    const moduleCs = envValue(container(m), 'EdgeHubConnectionString', input.secrets);
    const gateway = moduleCs ? connectionFields(moduleCs).GatewayHostName : undefined;
    if (gateway) dialled.add(gateway);
  }
  for (const host of dialled) if (leaf && !sans.includes(host)) v.push(`the server certificate has no SAN for ${host}`);

  // §1.4 storage, §1.2 writable home, §1.5 port 443 without NET_BIND_SERVICE.
  const storage = env('StorageFolder');
  const storageMount = hub.volumeMounts?.find((m) => m.mountPath === storage);
  const storageVolume = storageMount && pod.volumes?.find((x) => x.name === storageMount.name);
  if (!storage || !storageVolume?.persistentVolumeClaim || storageMount?.readOnly) v.push('StorageFolder is not a writable PVC mount');
  const home = env('HOME');
  const homeMount = hub.volumeMounts?.find((m) => m.mountPath === home);
  if (!home || !homeMount || homeMount.readOnly) v.push('HOME is not a writable mount');
  const httpsPort = Number(env('httpSettings__port'));
  if (!(httpsPort >= 1024)) v.push('httpSettings__port is not an unprivileged port');
  if (!hub.ports?.some((p) => p.containerPort === httpsPort)) v.push(`the edgeHub container does not expose ${httpsPort}`);
  const https = input.edgeHubService.spec?.ports?.find((p) => p.port === 443);
  if (!https || https.targetPort !== httpsPort) v.push(`the edgeHub Service does not map 443 to ${httpsPort}`);
  if (hub.securityContext?.capabilities?.add?.includes('NET_BIND_SERVICE')) v.push('edgeHub is given NET_BIND_SERVICE');

  // §4 routes.
  const configSource = env('configSource');
  const routeEnv = (hub.env ?? []).filter((e) => e.name.toLowerCase().startsWith('routes__'));
  if (configSource !== input.configSource) v.push(`configSource is ${configSource}, not ${input.configSource}`);
  if (input.configSource === 'local') {
    if (!routeEnv.some((e) => e.name.toLowerCase() === 'routes__r1')) v.push('the built-in route r1 is not overridden');
    const texts = routeEnv.map((e) => e.value);
    for (const route of input.routes) if (!texts.includes(route)) v.push(`route "${route}" is not among the routes__* variables`);
  } else if (routeEnv.length > 0) v.push('routes__* variables are set although edgeHub reads its twin');

  // .NET keys are case-insensitive with __ for ':': two variables for one key race each other.
  const keys = (hub.env ?? []).map((e) => e.name.replace(/__/g, ':').toLowerCase());
  for (const key of new Set(keys.filter((k, i) => keys.indexOf(k) !== i))) v.push(`configuration key ${key} is set twice`);

  // Modules: the device CA and a connection string through edgeHub.
  const trusted = bundle[0];
  for (const m of input.modules) {
    const c = container(m);
    const name = m.metadata?.name;
    const caPath = envValue(c, 'EdgeModuleCACertificateFile', input.secrets);
    const ca = caPath ? fileContent(m.spec!.template.spec!, c, caPath, input.secrets) : undefined;
    if (!ca) v.push(`module ${name}: EdgeModuleCACertificateFile is not a file of a mounted Secret`);
    else if (!ca.readOnly) v.push(`module ${name}: the device CA is mounted writable`);
    else if (chain[0] && !splitCertificates(ca.text).some((cert) => isIssuedBy(chain[chain.length - 1]!, cert) || isIssuedBy(chain[0]!, cert))) v.push(`module ${name}: EdgeModuleCACertificateFile is not the CA edgeHub's certificate chains to`);
    else if (trusted && !ca.text.includes(trusted.trim())) v.push(`module ${name}: its CA file differs from edgeHub's trust bundle`);
    const moduleCs = envValue(c, 'EdgeHubConnectionString', input.secrets);
    if (!moduleCs) v.push(`module ${name}: EdgeHubConnectionString is not set or its Secret key is missing`);
    else if (connectionFields(moduleCs).GatewayHostName !== input.serviceName) v.push(`module ${name}: GatewayHostName is not ${input.serviceName}`);
  }
  return v;
}
