// The adversarial suite, on the real API server: EdgeDeployments (a deployment manifest as a resource)
// that each try one way out of the device namespace. The operator runs as its own ServiceAccount with the
// shipped rights and the default policy. Each case must be refused with its precise code and path
// (status.lastDesiredStatus), and nothing of it may be applied: the EdgeDeployment never had a valid state,
// so the namespace must hold no object of it at all.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { sampleEdgeDeployment, sampleModule } from '../support/samples.ts';
import { maxNestingDepth } from '../../src/manifest/input-limits.ts';

const cluster = testCluster();
let ns: string;
let operator: RunningOperator;
const image = 'example.azurecr.io/hostile:1';
const m = '/spec/agent/modules/m';
const co = `${m}/settings/createOptions`;

beforeAll(async () => {
  await ensureCrd(cluster);
  ns = await createTestNamespace(cluster, 'hostile');
  operator = await startTestOperator(await operatorKubeConfig(cluster, ns), [ns]);
});
afterAll(async () => {
  await operator?.stop();
  await deleteTestNamespace(cluster, ns);
});

type Modules = Record<string, Record<string, unknown>>;
interface HostileCase {
  /** The way out it tries. */
  what: string;
  modules: Modules;
  routes?: Record<string, { route: string }>;
  /** Fields of the edgeHub system module to override. */
  edgeHub?: Record<string, unknown>;
  /** The code, the path and, for policy denials, the reason the operator's refusal must carry. */
  code?: string;
  path?: string;
  reason?: string;
  /** Refused by the API server itself (the CRD's schema and rules): what its answer must say. */
  apiServer?: RegExp;
}

const one = (createOptions: unknown, extra: Record<string, unknown> = {}): Modules => ({ m: sampleModule(image, extra, createOptions) });
const volume = (v: Record<string, unknown>) => one({ k8s: { volumes: [{ name: 'v', ...v }], volumeMounts: [{ name: 'v', mountPath: '/x' }] } });
// As a string, the way IoT Hub keeps createOptions: a projected volume nests past the twin depth limit as an object.
const volumeAsText = (v: Record<string, unknown>) => one(JSON.stringify({ k8s: { volumes: [{ name: 'v', ...v }], volumeMounts: [{ name: 'v', mountPath: '/x' }] } }));
const policy = (what: string, modules: Modules, path: string, reason: string): HostileCase => ({ what, modules, code: 'IEO_POLICY_DENIED', path, reason });
const deep = (depth: number): Record<string, unknown> => {
  let node: Record<string, unknown> = { leaf: true };
  for (let i = 0; i < depth; i++) node = { n: node };
  return node;
};

const cases: HostileCase[] = [
  // Secrets the manifest did not declare, and the operator's own.
  policy("mount another module's identity", volume({ secret: { secretName: 'other-iothub' } }), `${co}/k8s/volumes/0`, 'OperatorSecretDenied'),
  policy("mount the device's identity", volume({ secret: { secretName: 'device-device-identity' } }), `${co}/k8s/volumes/0`, 'OperatorSecretDenied'),
  policy("mount the device CA's key", volume({ secret: { secretName: 'device-device-ca' } }), `${co}/k8s/volumes/0`, 'OperatorSecretDenied'),
  policy("mount edgeHub's server key", volume({ secret: { secretName: 'device-edgehub-server' } }), `${co}/k8s/volumes/0`, 'OperatorSecretDenied'),
  policy('mount a Helm release (its values hold the connection string)', volume({ secret: { secretName: 'sh.helm.release.v1.dev1.v1' } }), `${co}/k8s/volumes/0`, 'OperatorSecretDenied'),
  policy('mount an undeclared Secret of the namespace', volume({ secret: { secretName: 'db-password' } }), `${co}/k8s/volumes/0`, 'UndeclaredSecretDenied'),
  policy('mount a Secret through a projected volume', volumeAsText({ projected: { sources: [{ secret: { name: 'db-password' } }] } }), `${co}/k8s/volumes/0`, 'VolumeTypeDenied'),
  // Host paths through the k8s block and through Docker fields.
  policy('hostPath / through k8s.volumes', volume({ hostPath: { path: '/' } }), `${co}/k8s/volumes/0`, 'HostPathDenied'),
  policy("hostPath to containerd's socket", volume({ hostPath: { path: '/run/containerd/containerd.sock', type: 'Socket' } }), `${co}/k8s/volumes/0`, 'HostPathDenied'),
  policy("hostPath through the preview's k8s-experimental", one(JSON.stringify({ 'k8s-experimental': { volumes: [{ volume: { name: 'h', hostPath: { path: '/' } }, volumeMounts: [{ name: 'h', mountPath: '/h' }] }] } })), `${co}/k8s-experimental/volumes/0/volume`, 'HostPathDenied'),
  policy('hostPath that climbs out of /dev', volume({ hostPath: { path: '/dev/../etc' } }), `${co}/k8s/volumes/0`, 'HostPathDenied'),
  policy('bind the host /etc', one({ HostConfig: { Binds: ['/etc:/host-etc:ro'] } }), `${co}/HostConfig/Binds/0`, 'HostPathDenied'),
  policy('bind mount of / through Mounts', one({ HostConfig: { Mounts: [{ Type: 'bind', Source: '/', Target: '/host' }] } }), `${co}/HostConfig/Mounts/0`, 'HostPathDenied'),
  policy('map /dev/mem', one({ HostConfig: { Devices: [{ PathOnHost: '/dev/mem' }] } }), `${co}/HostConfig/Devices/0`, 'DevicesDenied'),
  policy('an NFS volume', volume({ nfs: { server: '10.0.0.1', path: '/' } }), `${co}/k8s/volumes/0`, 'VolumeTypeDenied'),
  policy('a CSI volume', volume({ csi: { driver: 'secrets-store.csi.k8s.io' } }), `${co}/k8s/volumes/0`, 'VolumeTypeDenied'),
  policy('a gitRepo volume', volume({ gitRepo: { repository: 'https://example.invalid/x.git' } }), `${co}/k8s/volumes/0`, 'VolumeTypeDenied'),
  policy('an iSCSI volume', volume({ iscsi: { targetPortal: '10.0.0.1:3260', iqn: 'iqn.2001-04.com.example:storage', lun: 0 } }), `${co}/k8s/volumes/0`, 'VolumeTypeDenied'),
  // Privileges through the k8s block and Docker fields.
  policy('privileged through k8s.securityContext', one({ k8s: { securityContext: { privileged: true } } }), `${co}/k8s/securityContext/privileged`, 'PrivilegedDenied'),
  policy('privileged through HostConfig', one({ HostConfig: { Privileged: true } }), `${co}/HostConfig/Privileged`, 'PrivilegedDenied'),
  policy('SYS_ADMIN through the k8s block', one({ k8s: { securityContext: { capabilities: { add: ['SYS_ADMIN'] } } } }), `${co}/k8s/securityContext/capabilities/add`, 'AddedCapabilitiesDenied'),
  policy('ALL capabilities through the k8s block', one({ k8s: { securityContext: { capabilities: { add: ['ALL'] } } } }), `${co}/k8s/securityContext/capabilities/add`, 'AddedCapabilitiesDenied'),
  policy('NET_ADMIN through CapAdd', one({ HostConfig: { CapAdd: ['NET_ADMIN'] } }), `${co}/HostConfig/CapAdd`, 'AddedCapabilitiesDenied'),
  policy('an unmasked /proc', one({ k8s: { securityContext: { procMount: 'Unmasked' } } }), `${co}/k8s/securityContext/procMount`, 'UnmaskedProcMountDenied'),
  policy('unconfined seccomp on the container', one({ k8s: { securityContext: { seccompProfile: { type: 'Unconfined' } } } }), `${co}/k8s/securityContext/seccompProfile/type`, 'UnconfinedSeccompDenied'),
  policy('unconfined seccomp on the pod', one({ k8s: { podSecurityContext: { seccompProfile: { type: 'Unconfined' } } } }), `${co}/k8s/podSecurityContext/seccompProfile/type`, 'UnconfinedSeccompDenied'),
  policy('unconfined AppArmor', one({ k8s: { securityContext: { appArmorProfile: { type: 'Unconfined' } } } }), `${co}/k8s/securityContext/appArmorProfile/type`, 'UnconfinedAppArmorDenied'),
  policy('unconfined AppArmor by annotation', one({ Labels: { 'container.apparmor.security.beta.kubernetes.io/m': 'unconfined' } }), `${co}/Labels`, 'UnconfinedAppArmorDenied'),
  policy('the spc_t SELinux type', one({ k8s: { securityContext: { seLinuxOptions: { type: 'spc_t' } } } }), `${co}/k8s/securityContext/seLinuxOptions`, 'SELinuxOptionsDenied'),
  policy('an unsafe sysctl through Docker', one({ HostConfig: { Sysctls: { 'kernel.core_pattern': '|/tmp/x' } } }), `${co}/HostConfig/Sysctls/kernel.core_pattern`, 'UnsafeSysctlDenied'),
  policy('an unsafe sysctl through the preview\'s k8s-experimental', one({ 'k8s-experimental': { securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '1' }] } } }), `${co}/k8s-experimental/securityContext/sysctls/0`, 'UnsafeSysctlDenied'),
  policy('an unsafe sysctl through the k8s block', one({ k8s: { podSecurityContext: { sysctls: [{ name: 'net.core.somaxconn', value: '4096' }] } } }), `${co}/k8s/podSecurityContext/sysctls/0`, 'UnsafeSysctlDenied'),
  policy('a Windows host process', one({ k8s: { securityContext: { windowsOptions: { hostProcess: true } } } }), `${co}/k8s/securityContext/windowsOptions/hostProcess`, 'HostProcessDenied'),
  // API tokens.
  policy('an API token by automount', one({ k8s: { automountServiceAccountToken: true } }), `${co}/k8s/automountServiceAccountToken`, 'ServiceAccountTokenDenied'),
  policy('an API token by projected volume', volumeAsText({ projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'https://kubernetes.default.svc' } }] } }), `${co}/k8s/volumes/0`, 'ServiceAccountTokenDenied'),
  // The host's namespaces and ports.
  policy("the host's network", one({ HostConfig: { NetworkMode: 'host' } }), `${co}/HostConfig/NetworkMode`, 'HostNetworkDenied'),
  policy("the host's PIDs", one({ HostConfig: { PidMode: 'host' } }), `${co}/HostConfig/PidMode`, 'HostPidDenied'),
  policy("the host's IPC", one({ HostConfig: { IpcMode: 'host' } }), `${co}/HostConfig/IpcMode`, 'HostIpcDenied'),
  // Names of the operator's own objects.
  { what: "a module named like the default-deny NetworkPolicy", modules: { 'device-default-deny': sampleModule(image, {}, { ExposedPorts: { '80/tcp': {} } }) }, code: 'IEO_NAME_COLLISION', path: '/spec/agent/modules/device-default-deny' },
  { what: "a module whose Service takes another's PortBindings Service", modules: { a: sampleModule(image, {}, { HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '8080' }] } } }), 'a-ports': sampleModule(image, {}, { ExposedPorts: { '81/tcp': {} } }) }, code: 'IEO_NAME_COLLISION', path: '/spec/agent/modules/a-ports' },
  { what: "a module named edgehub, edgeHub's name", modules: { edgehub: sampleModule(image) }, apiServer: /spec\.agent\.modules: Invalid value: "object": edgeAgent and edgeHub are system modules/ },
  {
    what: "a volume named like the operator's routes volume", modules: one({}), code: 'IEO_K8S_EXTENSION', path: '/spec/agent/systemModules/edgeHub/settings/createOptions/k8s/volumes/0/name',
    edgeHub: { settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5', createOptions: { k8s: { volumes: [{ name: 'iotedge-operator-routes', emptyDir: {} }] } } } },
  },
  {
    what: "privileged edgeHub (the built-in hub runs in its place, judged the same)", modules: one({}), code: 'IEO_POLICY_DENIED', reason: 'PrivilegedDenied',
    path: '/spec/agent/systemModules/edgeHub/settings/createOptions/HostConfig/Privileged',
    edgeHub: { settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5', createOptions: { HostConfig: { Privileged: true } } } },
  },
  // Size, depth, routes.
  { what: 'an oversized manifest', modules: one({}, { env: { BLOB: { value: 'x'.repeat(40_000) } } }), code: 'IEO_TWIN_LIMIT', path: '/spec/agent' },
  // Nesting counts from $edgeAgent's desired properties: modules, m, settings, createOptions, Labels, then the n's.
  { what: 'deep JSON in createOptions', modules: one({ Labels: deep(80) }), code: 'IEO_MANIFEST_LIMIT', path: `${co}/Labels${'/n'.repeat(maxNestingDepth - 5)}` },
  { what: 'a huge route string', modules: one({}), routes: { big: { route: `FROM /messages/* WHERE ${Array.from({ length: 3000 }, (_, i) => `a${i} = 1`).join(' OR ')} INTO $upstream` } }, apiServer: /spec\.hub\.routes\.big\.route: Too long/ },
  { what: 'many long routes', modules: one({}), routes: Object.fromEntries(Array.from({ length: 12 }, (_, r) => [`r${r}`, { route: `FROM /messages/* WHERE ${Array.from({ length: 300 }, (_, i) => `a${i} = 1`).join(' OR ')} INTO $upstream` }])), code: 'IEO_TWIN_LIMIT', path: '/spec/hub' },
  { what: 'a ReDoS-shaped route condition', modules: one({}), routes: { nested: { route: `FROM /messages/* WHERE ${'('.repeat(1500)}a = 'x'${')'.repeat(1500)} INTO $upstream` } }, code: 'IEO_ROUTE_SYNTAX', path: '/spec/hub/routes/nested' },
];

async function status(): Promise<EdgeDeployment> {
  return JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
}

/**
 * The device's identity, CA and edgeHub certificate: made for the EdgeDeployment before its manifest is read,
 * whatever the manifest says, so they are not something a manifest got applied.
 */
const deviceTrustSecrets = ['secret/device-device-identity', 'secret/device-device-ca', 'secret/device-edgehub-server'];

/** Every object of the EdgeDeployment in the namespace, of every kind the operator creates, but the device's trust. */
async function applied(): Promise<string[]> {
  const text = await kubectl(cluster, ['-n', ns, 'get', 'deployments,pods,services,serviceaccounts,secrets,configmaps,networkpolicies,persistentvolumeclaims',
    '-l', 'iotedge-operator.io/edge-deployment=device', '-o', 'name']);
  return text.split('\n').filter((line) => line !== '' && !deviceTrustSecrets.includes(line));
}

describe('hostile EdgeDeployments, each refused with its code and path, nothing applied', () => {
  it('has at least 40 ways out', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    const ed = sampleEdgeDeployment(ns, c.modules, {
      ...(c.routes ? { routes: c.routes } : {}),
      ...(c.edgeHub ? { edgeHub: c.edgeHub } : {}),
    });
    const applying = kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--field-manager=hostile-author', '-f', '-'], JSON.stringify(ed));
    if (c.apiServer) {
      await expect(applying).rejects.toThrow(c.apiServer);
      expect(await applied()).toEqual([]);
      return;
    }
    await applying;
    const refused = await eventually(`${c.what}: Valid=False for the new generation`, async () => {
      const current = await status();
      const valid = current.status?.conditions?.find((x) => x.type === 'Valid');
      return current.status?.observedGeneration === current.metadata?.generation && valid?.status === 'False' ? current : undefined;
    });
    const lines = (refused.status?.lastDesiredStatus?.description ?? '').split('\n');
    const match = lines.find((line) => line.startsWith(`${c.code} ${c.path}:`));
    expect({ what: c.what, match: match !== undefined, lines: match ? [] : lines }).toEqual({ what: c.what, match: true, lines: [] });
    if (c.reason) expect(match).toContain(`[${c.reason}]`);
    expect(await applied()).toEqual([]);
  });

  it('refuses an env value taken from a Secret at the API server', async () => {
    const ed = sampleEdgeDeployment(ns, one({}, { env: { TOKEN: { value: 'x', valueFrom: { secretKeyRef: { name: 'device-device-identity', key: 'rootKey' } } } } }));
    await expect(kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--field-manager=hostile-author', '-f', '-'], JSON.stringify(ed)))
      .rejects.toThrow(/\.spec\.agent\.modules\.m\.env\.TOKEN\.valueFrom: field not declared in schema/);
    expect(await applied()).toEqual([]);
  });
});
