// Migration from Microsoft's IoT Edge on Kubernetes preview (2019-2021), checked on the real API server.
// Each case below is one mapping rule of the preview's edgeAgent (its Deployment, Service and PVC mappers and
// its k8s-experimental parser), written as an input fragment of a module's createOptions (or an operator
// setting) and the Kubernetes fields the API server must end up holding. The translation's objects are sent
// through server-side dry-run, so the fields are checked after the API server's defaulting and validation.
// Where this operator deliberately differs from the preview, the case says so and checks this operator's rule.
// The last part runs the operator itself: a preview manifest deploys unchanged, and a version bump restarts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type {
  KubernetesObject,
  V1Container,
  V1Deployment,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodSpec,
  V1Service,
} from '@kubernetes/client-node';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import type { ManifestIssue, ModuleSpec } from '../../src/manifest/model.ts';
import { annotationKeys, settingsWith, translate, type OperatorSettings } from '../../src/translate/index.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { sampleEdgeDeployment, sampleModule } from '../support/samples.ts';
import { input, manifest, moduleSpec } from '../unit/translate/builders.ts';

const cluster = testCluster();
let ns: string;

beforeAll(async () => {
  ns = await createTestNamespace(cluster, 'migration');
});
afterAll(async () => {
  await deleteTestNamespace(cluster, ns);
});

/** The preview had no security policy; its rules are checked with every capability allowed. */
const previewPolicy = settingsWith({
  allowPrivileged: true, allowHostNetwork: true, allowHostPid: true, allowHostIpc: true, allowHostPath: true,
  allowAddedCapabilities: true, allowDevices: true, portBindingServiceType: 'ClusterIP',
});

interface Accepted {
  deployment: V1Deployment;
  pod: V1PodSpec;
  container: V1Container;
  services: Map<string, V1Service>;
  claims: V1PersistentVolumeClaim[];
  warnings: ManifestIssue[];
}

let caseNumber = 0;

/**
 * Translates one module "module1" with these createOptions and sends its objects through server-side
 * dry-run. Module names differ per case so that the ServiceAccounts (created for real, since admission
 * needs them) do not collide.
 */
type SettingsChange = Partial<Omit<OperatorSettings, 'storage'>> & { storage?: Partial<OperatorSettings['storage']> };

async function deploy(createOptions: Record<string, unknown>, options: { settings?: SettingsChange; module?: Partial<ModuleSpec> } = {}): Promise<Accepted> {
  const id = `module1-${++caseNumber}`;
  const settings = { ...previewPolicy, ...options.settings, storage: { ...previewPolicy.storage, ...options.settings?.storage } };
  const outcome = translate(input(manifest([moduleSpec(id, { createOptions, ...options.module })], { edgeHub: null }), settings, { namespace: ns }));
  if (!outcome.ok) throw new Error(`translation failed: ${JSON.stringify(outcome.errors)}`);
  const objects = [...outcome.value.objects, ...outcome.value.volumeClaims].filter((o) => o.kind !== 'NetworkPolicy' || o.metadata?.name === id);
  const accounts = objects.filter((o) => o.kind === 'ServiceAccount');
  await kubectl(cluster, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: accounts }));
  const accepted: KubernetesObject[] = [];
  for (const object of objects.filter((o) => o.kind !== 'ServiceAccount')) {
    try {
      accepted.push(await cluster.objects.create(object, undefined, 'All'));
    } catch (error) {
      const body = (error as { body?: unknown }).body;
      throw new Error(`${object.kind}/${object.metadata?.name} rejected: ${typeof body === 'string' ? body : JSON.stringify(body ?? String(error))}`, { cause: error });
    }
  }
  const deployment = accepted.find((o) => o.kind === 'Deployment') as V1Deployment;
  const pod = deployment.spec!.template.spec!;
  return {
    deployment,
    pod,
    container: pod.containers[0]!,
    // Services by their role: "" for the module's own, "-ports" for its PortBindings.
    services: new Map(accepted.filter((o) => o.kind === 'Service').map((s) => [s.metadata!.name!.slice(id.length), s as V1Service])),
    claims: accepted.filter((o) => o.kind === 'PersistentVolumeClaim') as V1PersistentVolumeClaim[],
    warnings: outcome.warnings,
  };
}

const mount = (a: Accepted, path: string) => a.container.volumeMounts?.find((m) => m.mountPath === path);
const volumeOf = (a: Accepted, path: string) => a.pod.volumes?.find((v) => v.name === mount(a, path)?.name);

describe('preview Deployment mapping', () => {
  it('a running module is a Deployment with one replica', async () => {
    expect((await deploy({})).deployment.spec?.replicas).toBe(1);
  });

  it('a stopped module keeps its Deployment with zero replicas', async () => {
    expect((await deploy({}, { module: { status: 'stopped' } })).deployment.spec?.replicas).toBe(0);
  });

  it('Docker Labels become pod annotations, never pod labels', async () => {
    const a = await deploy({ Labels: { demo: 'test' } });
    expect(a.deployment.spec?.template.metadata?.annotations?.demo).toBe('test');
    expect(a.deployment.spec?.template.metadata?.labels).not.toHaveProperty('demo');
  });

  it('HostConfig.Privileged makes the module container privileged', async () => {
    expect((await deploy({ HostConfig: { Privileged: true } })).container.securityContext?.privileged).toBe(true);
  });

  it('a read-only Bind becomes a DirectoryOrCreate hostPath volume mounted read-only', async () => {
    const a = await deploy({ HostConfig: { Binds: ['/home/blah:/home/blah2:ro'] } });
    expect(volumeOf(a, '/home/blah2')).toEqual({ name: 'homeblah', hostPath: { path: '/home/blah', type: 'DirectoryOrCreate' } });
    expect(mount(a, '/home/blah2')?.readOnly).toBe(true);
  });

  it('pod volumes of Docker mounts are named as the preview named them, so k8s-experimental mounts can use them', async () => {
    const a = await deploy({
      HostConfig: { Binds: ['/home/blah:/home/blah2:ro'], Mounts: [{ Type: 'volume', Source: 'a-volume', Target: '/tmp/volume' }] },
      'k8s-experimental': { volumes: [{ volumeMounts: [{ name: 'homeblah', mountPath: '/etc/blah', subPath: 'conf' }, { name: 'a-volume', mountPath: '/tmp/sub', subPath: 'x' }] }] },
    });
    expect(mount(a, '/etc/blah')).toMatchObject({ name: 'homeblah', subPath: 'conf' });
    expect(volumeOf(a, '/tmp/sub')?.persistentVolumeClaim?.claimName).toBe('a-volume');
  });

  it('a Mounts entry of type volume becomes a claim named after its source, mounted read-only when asked', async () => {
    const a = await deploy({ HostConfig: { Mounts: [{ Type: 'volume', ReadOnly: true, Source: 'a-volume', Target: '/tmp/volume' }] } });
    expect(volumeOf(a, '/tmp/volume')).toMatchObject({ name: 'a-volume', persistentVolumeClaim: { claimName: 'a-volume' } });
    expect(mount(a, '/tmp/volume')?.readOnly).toBe(true);
  });

  it('one volume or host path mounted twice is one pod volume with two mounts, each keeping its read-only flag', async () => {
    const a = await deploy({
      HostConfig: {
        Binds: ['/home/bind:/home/bind1', '/home/bind:/home/bind2:ro'],
        Mounts: [
          { Type: 'volume', ReadOnly: true, Source: 'a-volume', Target: '/tmp/volume1' },
          { Type: 'volume', ReadOnly: false, Source: 'a-volume', Target: '/tmp/volume2' },
          { Type: 'Bind', ReadOnly: true, Source: '/home/data/test', Target: '/home/test1' },
          { Type: 'Bind', ReadOnly: false, Source: '/home/data/test', Target: '/home/test2' },
        ],
      },
    });
    expect(volumeOf(a, '/tmp/volume1')).toEqual(volumeOf(a, '/tmp/volume2'));
    expect(volumeOf(a, '/home/test1')?.hostPath?.path).toBe('/home/data/test');
    expect(volumeOf(a, '/home/test1')).toEqual(volumeOf(a, '/home/test2'));
    expect(volumeOf(a, '/home/bind1')).toEqual(volumeOf(a, '/home/bind2'));
    // Besides the device CA every module mounts.
    expect(a.pod.volumes?.filter((v) => v.name !== 'device-ca')).toHaveLength(3);
    expect([1, 2].map((n) => mount(a, `/tmp/volume${n}`)?.readOnly ?? false)).toEqual([true, false]);
    expect([1, 2].map((n) => mount(a, `/home/test${n}`)?.readOnly ?? false)).toEqual([true, false]);
    expect([1, 2].map((n) => mount(a, `/home/bind${n}`)?.readOnly ?? false)).toEqual([false, true]);
    expect(a.claims.map((c) => c.metadata?.name)).toEqual(['a-volume']);
  });

  it('k8s-experimental.nodeSelector is the pod nodeSelector; without it there is none', async () => {
    expect((await deploy({ 'k8s-experimental': { nodeSelector: { disktype: 'ssd' } } })).pod.nodeSelector).toEqual({ disktype: 'ssd' });
    expect((await deploy({})).pod.nodeSelector).toBeUndefined();
  });

  // The preview's own case asked 1 of an extended resource with a limit of 2, which the API server refuses
  // (extended resources cannot be overcommitted); the rule is checked with equal values.
  it('k8s-experimental.resources are the module container resources, extended resources included; without them there are none', async () => {
    const resources = {
      limits: { memory: '128Mi', cpu: '500M', 'hardware-vendor.example/foo': 2 },
      requests: { memory: '64Mi', cpu: '250M', 'hardware-vendor.example/foo': 2 },
    };
    expect((await deploy({ 'k8s-experimental': { resources } })).container.resources).toEqual({
      limits: { memory: '128Mi', cpu: '500M', 'hardware-vendor.example/foo': '2' },
      requests: { memory: '64Mi', cpu: '250M', 'hardware-vendor.example/foo': '2' },
    });
    expect((await deploy({})).container.resources).toEqual({});
  });

  it('k8s-experimental.volumes pairs add their volume to the pod and their mounts to the module container', async () => {
    const a = await deploy({ 'k8s-experimental': { volumes: [{
      volume: { name: 'additional-volume', configMap: { name: 'additional-config-map' } },
      volumeMounts: [{ name: 'additional-volume', mountPath: '/etc' }],
    }] } });
    expect(volumeOf(a, '/etc')?.configMap?.name).toBe('additional-config-map');
  });

  it('a k8s-experimental volume with only a name is an emptyDir; string booleans and an empty subPath in its mount are accepted', async () => {
    const a = await deploy({
      HostConfig: { Mounts: [{ Type: 'volume', ReadOnly: true, Source: 'a-volume', Target: '/tmp/volume' }] },
      'k8s-experimental': { volumes: [{
        volume: { name: 'module-config' },
        volumeMounts: [{ name: 'module-config', mountPath: '/etc/module', mountPropagation: 'None', readOnly: 'true', subPath: '' }],
      }] },
    });
    expect(volumeOf(a, '/etc/module')).toEqual({ name: 'module-config', emptyDir: {} });
    expect(mount(a, '/etc/module')).toMatchObject({ readOnly: true, mountPropagation: 'None' });
    expect(a.warnings.map((w) => w.code)).toContain('IEO_W_COERCED_VALUE');
  });

  it('a k8s-experimental volume named like a Docker bind does not clash with it (the preview produced two; this operator renames the bind)', async () => {
    const a = await deploy({
      HostConfig: { Binds: ['/home/blah:/home/blah2:ro'] },
      'k8s-experimental': { volumes: [{ volume: { name: 'homeblah', configMap: { name: 'additional-config-map' } }, volumeMounts: [{ name: 'homeblah', mountPath: '/home/blah' }] }] },
    });
    expect(volumeOf(a, '/home/blah')?.configMap?.name).toBe('additional-config-map');
    expect(volumeOf(a, '/home/blah2')?.hostPath?.path).toBe('/home/blah');
  });

  it('k8s-experimental.securityContext is the POD securityContext', async () => {
    const a = await deploy({ 'k8s-experimental': { securityContext: { runAsNonRoot: true, runAsUser: 20001 } } });
    expect(a.pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 20001 });
  });

  it('the operator-wide runAsNonRoot setting gives pods runAsNonRoot and user 1000', async () => {
    const a = await deploy({}, { settings: { runAsNonRoot: true } });
    expect(a.pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
  });

  it('a module securityContext wins over the runAsNonRoot default', async () => {
    const a = await deploy({ 'k8s-experimental': { securityContext: { runAsNonRoot: true, runAsUser: 0 } } }, { settings: { runAsNonRoot: true } });
    expect(a.pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 0 });
  });

  it('without a security setting the pod securityContext holds only the seccomp profile Docker applies too', async () => {
    expect((await deploy({})).pod.securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' } });
  });

  it('k8s-experimental.strategy is the Deployment strategy (without one this operator uses Recreate where the preview left RollingUpdate)', async () => {
    expect((await deploy({ 'k8s-experimental': { strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } } } })).deployment.spec?.strategy)
      .toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: '25%' } });
    expect((await deploy({})).deployment.spec?.strategy).toEqual({ type: 'Recreate' });
  });

  it('Cmd, Entrypoint and WorkingDir are the container args, command and workingDir; absent, none are set', async () => {
    const a = await deploy({ Cmd: ['argument1', 'argument2'], Entrypoint: ['command', 'argument-a'], WorkingDir: '/tmp/working' });
    expect([a.container.args, a.container.command, a.container.workingDir]).toEqual([['argument1', 'argument2'], ['command', 'argument-a'], '/tmp/working']);
    const none = await deploy({});
    expect([none.container.args, none.container.command, none.container.workingDir]).toEqual([undefined, undefined, undefined]);
  });

  it('lower-case cmd, entrypoint and workingdir are read like the capitalised keys', async () => {
    const a = await deploy({ cmd: ['argument3', 'argument4'], entrypoint: ['a-command2'], workingdir: '/tmp/working2' });
    expect([a.container.args, a.container.command, a.container.workingDir]).toEqual([['argument3', 'argument4'], ['a-command2'], '/tmp/working2']);
  });

  it('Env entries split at the first "="; an entry without a name is dropped', async () => {
    const a = await deploy({ Env: ['a=b', 'ALL_EQUALS=====', 'HAS_SPACES=this variable has spaces', 'B=b=c', 'BASE64_TEXT=YmFzZTY0Cg==', '==not a valid env var'] });
    const env = Object.fromEntries((a.container.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ a: 'b', ALL_EQUALS: '====', HAS_SPACES: 'this variable has spaces', B: 'b=c', BASE64_TEXT: 'YmFzZTY0Cg==' });
    expect(Object.values(env).some((v) => v?.endsWith('valid env var'))).toBe(false);
  });

  it.each([
    ['IpcMode', 'host', 'hostIPC'], ['NetworkMode', 'host', 'hostNetwork'], ['PidMode', 'host', 'hostPID'],
  ])('HostConfig.%s "%s" shares the host namespace (%s)', async (field, mode, podField) => {
    const a = await deploy({ HostConfig: { [field]: mode } });
    expect(a.pod[podField as 'hostIPC']).toBe(true);
    if (field === 'NetworkMode') expect(a.pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
  });

  it.each([['IpcMode', 'private'], ['NetworkMode', 'bridge'], ['PidMode', 'container:module-a']])('HostConfig.%s "%s" keeps the pod its own namespace', async (field, mode) => {
    const a = await deploy({ HostConfig: { [field]: mode } });
    expect([a.pod.hostIPC, a.pod.hostNetwork, a.pod.hostPID].some((v) => v === true)).toBe(false);
    expect(a.pod.dnsPolicy).toBe('ClusterFirst');
  });

  it('without namespace modes the pod shares none and keeps the default DNS policy', async () => {
    const a = await deploy({});
    expect([a.pod.hostIPC, a.pod.hostNetwork, a.pod.hostPID].some((v) => v === true)).toBe(false);
    expect(a.pod.dnsPolicy).toBe('ClusterFirst');
  });

  it('a Mounts entry without a Type or Target fails the deployment (the preview threw InvalidMountException)', () => {
    for (const bad of [{ Source: 'a-volume', Target: '/tmp/volume' }, { Type: 'volume', Source: 'a-volume' }]) {
      const outcome = translate(input(manifest([moduleSpec('module1', { createOptions: { HostConfig: { Mounts: [bad] } } })]), previewPolicy));
      expect(outcome.ok).toBe(false);
    }
  });
});

describe('preview Service mapping', () => {
  it('no ports, no Service', async () => {
    expect((await deploy({})).services.size).toBe(0);
  });

  it.each(['aa/TCP', '123/XXX'])('an invalid ExposedPorts key %s is skipped with a warning: no Service, the module still deploys', async (key) => {
    const a = await deploy({ ExposedPorts: { [key]: {} } });
    expect(a.services.size).toBe(0);
    expect(a.warnings.map((w) => w.code)).toContain('IEO_W_PORT_SKIPPED');
  });

  it('an exposed port makes a ClusterIP Service at the module name, selecting the module pod', async () => {
    const a = await deploy({ ExposedPorts: { '10/TCP': {} } });
    const own = a.services.get('')!;
    expect(own.spec).toMatchObject({ type: 'ClusterIP', ports: [{ port: 10, protocol: 'TCP', targetPort: 10 }] });
    expect(own.spec?.selector).toEqual(Object.fromEntries(Object.entries(own.spec?.selector ?? {}).filter(([k]) => k in (a.deployment.spec?.template.metadata?.labels ?? {}))));
  });

  it('Docker Labels become Service annotations', async () => {
    const a = await deploy({ ExposedPorts: { '10/TCP': {} }, Labels: { GPU: 'Enabled' } });
    expect(a.services.get('')!.metadata?.annotations?.GPU).toBe('Enabled');
  });

  it('label keys Kubernetes cannot hold are cleaned as the preview cleaned them', async () => {
    const a = await deploy({
      ExposedPorts: { '80/tcp': {} },
      Labels: { "Complicated Value that doesn't fit in k8s label name": "Complicated Value that doesn't fit in k8s label value", Label2: 'Value2', '$edgeAgent': 'x', 'K8S.IO/---a-0--': 'y' },
    });
    expect(a.services.get('')!.metadata?.annotations).toMatchObject({
      ComplicatedValuethatdoesntfitink8slabelname: "Complicated Value that doesn't fit in k8s label value", Label2: 'Value2', edgeAgent: 'x', 'k8s.io/a-0': 'y',
    });
    expect(a.deployment.spec?.template.metadata?.annotations).toMatchObject({ edgeAgent: 'x', 'k8s.io/a-0': 'y' });
  });

  it('a port binding publishes the host port with the container port as target (in this operator, on the "-ports" Service)', async () => {
    const a = await deploy({ HostConfig: { PortBindings: { '10/TCP': [{ HostPort: '10' }] } } });
    expect(a.services.get('-ports')!.spec).toMatchObject({ type: 'ClusterIP', ports: [{ port: 10, targetPort: 10, protocol: 'TCP' }] });
  });

  it('a port binding and an exposed port of the same number give one published port', async () => {
    const a = await deploy({ ExposedPorts: { '10/TCP': {} }, HostConfig: { PortBindings: { '10/TCP': [{ HostPort: '10' }] } } });
    expect(a.services.get('-ports')!.spec?.ports).toHaveLength(1);
    expect(a.services.get('')!.spec?.ports).toHaveLength(1);
  });

  it('exposed ports alone give ClusterIP even when the default type is LoadBalancer', async () => {
    const a = await deploy({ ExposedPorts: { '80/tcp': {}, '5000/udp': {} } }, { settings: { portBindingServiceType: 'LoadBalancer' } });
    expect(a.services.get('')!.spec?.type).toBe('ClusterIP');
    expect(a.services.get('')!.spec?.ports?.map((p) => [p.port, p.protocol])).toEqual([[80, 'TCP'], [5000, 'UDP']]);
  });

  it('host ports take the default service type and target the container ports', async () => {
    const a = await deploy({ HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '8080' }], '5000/udp': [{ HostPort: '5050' }] } } }, { settings: { portBindingServiceType: 'LoadBalancer' } });
    const published = a.services.get('-ports')!;
    expect(published.spec?.type).toBe('LoadBalancer');
    expect(published.spec?.ports?.map((p) => [p.port, p.targetPort, p.protocol])).toEqual([[8080, 80, 'TCP'], [5050, 5000, 'UDP']]);
  });

  it('serviceOptions.type "nodeport" (any case) sets the type of a module with only exposed ports', async () => {
    const a = await deploy({ ExposedPorts: { '80/tcp': {} }, 'k8s-experimental': { serviceOptions: { type: 'nodeport' } } });
    expect(a.services.get('')!.spec?.type).toBe('NodePort');
  });

  it('serviceOptions.type "clusterIP" overrides a LoadBalancer default for host ports, loadBalancerIP kept only for LoadBalancer', async () => {
    const a = await deploy({ HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '8080' }] } }, 'k8s-experimental': { serviceOptions: { type: 'clusterIP', loadBalancerIP: '100.1.2.3' } } },
      { settings: { portBindingServiceType: 'LoadBalancer' } });
    expect(a.services.get('-ports')!.spec?.type).toBe('ClusterIP');
  });

  it('serviceOptions.type "loadBalancer" without loadBalancerIP gives a LoadBalancer with no fixed IP', async () => {
    const a = await deploy({ ExposedPorts: { '80/tcp': {} }, 'k8s-experimental': { serviceOptions: { type: 'loadBalancer' } } });
    expect(a.services.get('')!.spec).toMatchObject({ type: 'LoadBalancer' });
    expect(a.services.get('')!.spec?.loadBalancerIP).toBeUndefined();
  });

  it('serviceOptions with only a (lower-case) loadbalancerip keeps the default type and uses the IP', async () => {
    const a = await deploy({ HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '8080' }] } }, 'k8s-experimental': { serviceOptions: { loadbalancerip: '100.1.2.3' } } },
      { settings: { portBindingServiceType: 'LoadBalancer' } });
    expect(a.services.get('-ports')!.spec).toMatchObject({ type: 'LoadBalancer', loadBalancerIP: '100.1.2.3' });
  });

  it('the Service is named after the module', async () => {
    const a = await deploy({ ExposedPorts: { '80/tcp': {} } });
    expect(a.services.get('')!.metadata?.name).toBe(a.deployment.metadata?.name);
  });
});

describe('preview PersistentVolumeClaim mapping', () => {
  const twoVolumes = { HostConfig: { Mounts: [
    { Type: 'volume', ReadOnly: true, Source: 'a-volume', Target: '/tmp/volumea' },
    { Type: 'volume', ReadOnly: false, Source: 'b-volume', Target: '/tmp/volumeb' },
  ] } };

  it('each volume mount gets a claim named after its source, with the configured storage class and size', async () => {
    const a = await deploy(twoVolumes, { settings: { storage: { storageClassName: 'default', defaultVolumeSize: '10Mi' } } });
    expect(a.claims.map((c) => [c.metadata?.name, c.spec?.storageClassName, c.spec?.resources?.requests?.storage, c.spec?.volumeName])).toEqual([
      ['a-volume', 'default', '10Mi', undefined], ['b-volume', 'default', '10Mi', undefined],
    ]);
  });

  it('an empty storage class name is kept as "" (static binding)', async () => {
    const a = await deploy(twoVolumes, { settings: { storage: { storageClassName: '' } } });
    expect(a.claims.map((c) => c.spec?.storageClassName)).toEqual(['', '']);
  });

  it('useMountSourceForVolumeName binds each claim to the PersistentVolume named after the source', async () => {
    const a = await deploy(twoVolumes, { settings: { storage: { storageClassName: 'storage-class', defaultVolumeSize: '37Mi', useMountSourceForVolumeName: true } } });
    expect(a.claims.map((c) => [c.metadata?.name, c.spec?.volumeName, c.spec?.storageClassName])).toEqual([
      ['a-volume', 'a-volume', 'storage-class'], ['b-volume', 'b-volume', 'storage-class'],
    ]);
  });

  it('k8s.volumeClaims.<volume>.volumeName binds one claim to a named PersistentVolume', async () => {
    const a = await deploy({ ...twoVolumes, k8s: { volumeClaims: { 'a-volume': { volumeName: 'pv-a', storageClassName: '' } } } });
    expect(a.claims.find((c) => c.metadata?.name === 'a-volume')?.spec).toMatchObject({ volumeName: 'pv-a', storageClassName: '' });
    expect(a.claims.find((c) => c.metadata?.name === 'b-volume')?.spec?.volumeName).toBeUndefined();
  });

  it('claims are made without a storage class setting (the preview made none and left the pod Pending) and use the configured access mode', async () => {
    const a = await deploy(twoVolumes);
    expect(a.claims.map((c) => c.spec?.accessModes)).toEqual([['ReadWriteOnce'], ['ReadWriteOnce']]);
  });

  it('no mounts, no claims', async () => {
    expect((await deploy({ HostConfig: { Mounts: null } })).claims).toEqual([]);
  });
});

describe('preview k8s-experimental parsing', () => {
  it('an empty section, or one that is not an object, changes nothing', async () => {
    for (const section of [{}, '']) {
      const a = await deploy({ 'k8s-experimental': section });
      expect([a.pod.nodeSelector, a.container.resources, a.pod.securityContext]).toEqual([undefined, {}, { seccompProfile: { type: 'RuntimeDefault' } }]);
    }
  });

  it('unknown keys are ignored with a warning', async () => {
    const a = await deploy({ 'k8s-experimental': { a: { a: 'b' } } });
    expect(a.warnings.map((w) => w.code)).toEqual(['IEO_W_K8S_EXPERIMENTAL']);
  });

  it('null values are absent', async () => {
    const a = await deploy({ 'k8s-experimental': { nodeSelector: null, resources: null, volumes: null, securityContext: null, strategy: null, serviceOptions: null } });
    // The pod keeps only the seccomp profile Docker applies too.
    expect([a.pod.nodeSelector, a.container.resources, a.pod.securityContext, a.deployment.spec?.strategy?.type]).toEqual([undefined, {}, { seccompProfile: { type: 'RuntimeDefault' } }, 'Recreate']);
  });

  it('empty values are empty: nodeSelector {}, resources {limits: {}, requests: {}}, volumes [], securityContext {}, serviceOptions {}', async () => {
    const a = await deploy({ ExposedPorts: { '80/tcp': {} }, 'k8s-experimental': { nodeSelector: {}, resources: { limits: {}, requests: {} }, volumes: [], securityContext: {}, serviceOptions: {} } });
    expect([a.pod.nodeSelector ?? {}, a.container.resources, a.pod.securityContext, a.services.get('')!.spec?.type]).toEqual([{}, {}, { seccompProfile: { type: 'RuntimeDefault' } }, 'ClusterIP']);
  });

  it('keys in any case: NodeSelector, Resources, SecurityContext', async () => {
    const a = await deploy({ 'k8s-experimental': { NodeSelector: { disktype: 'ssd', gpu: 'true' }, Resources: { limits: { memory: '128Mi' }, requests: { cpu: '250m' } }, SecurityContext: { runAsGroup: 1001, runAsUser: 1000, runAsNonRoot: true } } });
    expect(a.pod.nodeSelector).toEqual({ disktype: 'ssd', gpu: 'true' });
    expect(a.container.resources).toEqual({ limits: { memory: '128Mi' }, requests: { cpu: '250m' } });
    expect(a.pod.securityContext).toMatchObject({ runAsGroup: 1001, runAsUser: 1000, runAsNonRoot: true });
  });

  it('a configMap volume with string booleans, modes and items', async () => {
    const a = await deploy({ 'k8s-experimental': { volumes: [{
      volume: { name: 'module-a', configMap: { optional: 'true', defaultMode: 420, items: [{ key: 'config-file', path: 'config.yaml', mode: 420 }], name: 'module-config' } },
      volumeMounts: [{ name: 'module-a', mountPath: '/etc/module/config.yaml', mountPropagation: 'None', readOnly: 'true', subPath: '' }],
    }] } });
    expect(volumeOf(a, '/etc/module/config.yaml')?.configMap).toEqual({ optional: true, defaultMode: 420, items: [{ key: 'config-file', path: 'config.yaml', mode: 420 }], name: 'module-config' });
  });

  it('k8s wins over k8s-experimental on the same field, with a warning', async () => {
    const a = await deploy({ k8s: { nodeSelector: { zone: 'a' } }, 'k8s-experimental': { nodeSelector: { zone: 'b' } } });
    expect(a.pod.nodeSelector).toEqual({ zone: 'a' });
    expect(a.warnings.map((w) => w.code)).toEqual(['IEO_W_K8S_EXPERIMENTAL']);
  });
});

describe('a preview manifest on the operator', () => {
  let operator: RunningOperator;
  let opNs: string;

  beforeAll(async () => {
    await ensureCrd(cluster);
    opNs = await createTestNamespace(cluster, 'migration-op');
    operator = await startTestOperator(await operatorKubeConfig(cluster, opNs), [opNs], { allowHostPath: true });
  });
  afterAll(async () => {
    await operator?.stop();
    await deleteTestNamespace(cluster, opNs);
  });

  const previewCreateOptions = JSON.stringify({
    ExposedPorts: { '8080/tcp': {} },
    Labels: { 'service.beta.kubernetes.io/azure-load-balancer-internal': 'true' },
    'k8s-experimental': {
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      resources: { limits: { 'nvidia.com/gpu': 1, memory: '256Mi' }, requests: { cpu: '100m' } },
      securityContext: { runAsUser: 1000, runAsNonRoot: true, fsGroup: 2000 },
      strategy: { type: 'Recreate' },
      volumes: [{ volume: { name: 'module-config', configMap: { name: 'vision-config', optional: 'true' } }, volumeMounts: [{ name: 'module-config', mountPath: '/etc/vision', readOnly: 'true' }] }],
      serviceOptions: { type: 'loadbalancer' },
    },
  });

  /** vision is a Deployment with the preview's k8s-experimental block; job (restartPolicy never) is a bare Pod. */
  async function applyDeployment(version: string): Promise<void> {
    const modules = {
      vision: sampleModule('example.azurecr.io/vision:1.0', { version }, previewCreateOptions),
      job: sampleModule('example.azurecr.io/job:1.0', { version, restartPolicy: 'never' }),
    };
    const resource: EdgeDeployment = sampleEdgeDeployment(opNs, modules);
    await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--field-manager=test-user', '-f', '-'], JSON.stringify(resource));
  }

  it('deploys a k8s-experimental block unchanged with the placement, resources, security context, strategy, volumes and Service type it asks for', async () => {
    await applyDeployment('1.0');
    const deployment = await eventually('vision Deployment', async () => {
      const list = await cluster.apps.listNamespacedDeployment({ namespace: opNs });
      return list.items.find((d) => d.metadata?.name === 'vision');
    }, 90_000);
    const pod = deployment.spec!.template.spec!;
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.containers[0]?.resources).toEqual({ limits: { 'nvidia.com/gpu': '1', memory: '256Mi' }, requests: { cpu: '100m' } });
    expect(pod.securityContext).toEqual({ runAsUser: 1000, runAsNonRoot: true, fsGroup: 2000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(deployment.spec?.strategy?.type).toBe('Recreate');
    expect(pod.volumes).toContainEqual({ name: 'module-config', configMap: { name: 'vision-config', optional: true, defaultMode: 420 } });
    expect(pod.containers[0]?.volumeMounts).toContainEqual({ name: 'module-config', mountPath: '/etc/vision', readOnly: true });
    expect(deployment.spec?.template.metadata?.annotations?.['service.beta.kubernetes.io/azure-load-balancer-internal']).toBe('true');
    const svc = await cluster.core.readNamespacedService({ name: 'vision', namespace: opNs });
    expect(svc.spec?.type).toBe('LoadBalancer');
    expect(svc.metadata?.annotations?.['service.beta.kubernetes.io/azure-load-balancer-internal']).toBe('true');
  });

  it('restarts a module when only its version changes: a new pod template for a Deployment, a new Pod for a bare Pod', async () => {
    const before = await eventually('vision and job at version 1.0', async () => {
      const d = await cluster.apps.readNamespacedDeployment({ name: 'vision', namespace: opNs });
      const p = await cluster.core.readNamespacedPod({ name: 'job', namespace: opNs }).catch(() => undefined);
      return d.spec?.template.metadata?.annotations?.[annotationKeys.moduleVersion] === '1.0' && p ? { generation: d.metadata?.generation ?? 0, podUid: p.metadata?.uid } : undefined;
    }, 90_000);
    await applyDeployment('1.1');
    const after = await eventually('vision rolled and job replaced for version 1.1', async () => {
      const d = await cluster.apps.readNamespacedDeployment({ name: 'vision', namespace: opNs });
      const p: V1Pod | undefined = await cluster.core.readNamespacedPod({ name: 'job', namespace: opNs }).catch(() => undefined);
      const rolled = d.spec?.template.metadata?.annotations?.[annotationKeys.moduleVersion] === '1.1';
      const replaced = p?.metadata?.uid !== undefined && p.metadata.uid !== before.podUid && p.metadata.annotations?.[annotationKeys.moduleVersion] === '1.1';
      return rolled && replaced ? { generation: d.metadata?.generation ?? 0 } : undefined;
    }, 120_000);
    expect(after.generation).toBeGreaterThan(before.generation);
    const replicaSets = await cluster.apps.listNamespacedReplicaSet({ namespace: opNs });
    const templates = replicaSets.items.filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.name === 'vision'))
      .map((rs) => rs.spec?.template?.metadata?.annotations?.[annotationKeys.moduleVersion]).sort();
    expect(templates).toEqual(['1.0', '1.1']);
  });
});
