// Microsoft's IoT Edge on Kubernetes preview: its k8s-experimental section, label keys, volume binding and
// non-root default, as translation reads them. test/integration/migration.test.ts checks the same rules
// against the real API server, one preview mapping rule per case.
import { describe, expect, it } from '@jest/globals';
import type { V1Deployment } from '@kubernetes/client-node';
import { cleanAnnotationKey } from '../../../src/translate/names.ts';
import { settingsWith } from '../../../src/translate/index.ts';
import { moduleSpec } from './builders.ts';
import { codes, container, errors, find, one, podSpec, service, value } from './helpers.ts';

const co = (createOptions: Record<string, unknown>) => ({ createOptions });

describe('k8s-experimental', () => {
  it('maps every preview key: nodeSelector, resources, volumes, pod securityContext, serviceOptions, strategy', () => {
    const outcome = one(moduleSpec('m', co({
      ExposedPorts: { '80/tcp': {} },
      'k8s-experimental': {
        NodeSelector: { disktype: 'ssd' },
        resources: { limits: { 'nvidia.com/gpu': 1 }, requests: { cpu: '250m' } },
        volumes: [{ volume: { name: 'cfg', configMap: { name: 'settings', optional: 'true' } }, volumeMounts: [{ name: 'cfg', mountPath: '/etc/app', readOnly: 'true' }] }],
        securityContext: { runAsUser: 1000, runAsNonRoot: true, fsGroup: 2000 },
        serviceOptions: { type: 'nodeport' },
        strategy: { type: 'Recreate' },
      },
    })));
    const r = value(outcome);
    const spec = podSpec(r, 'm');
    expect(spec.nodeSelector).toEqual({ disktype: 'ssd' });
    expect(spec.securityContext).toEqual({ runAsUser: 1000, runAsNonRoot: true, fsGroup: 2000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(spec.volumes).toContainEqual({ name: 'cfg', configMap: { name: 'settings', optional: true } });
    const c = container(r, 'm');
    expect(c.resources).toEqual({ limits: { 'nvidia.com/gpu': '1' }, requests: { cpu: '250m' } });
    expect(c.volumeMounts?.filter((m) => m.name !== 'device-ca')).toEqual([{ name: 'cfg', mountPath: '/etc/app', readOnly: true }]);
    expect(c.securityContext).toBeUndefined();
    expect(service(r, 'm').spec?.type).toBe('NodePort');
    expect(find<V1Deployment>(r, 'Deployment', 'm').spec?.strategy).toEqual({ type: 'Recreate' });
    expect(codes(outcome.warnings).sort()).toEqual(['IEO_W_COERCED_VALUE', 'IEO_W_COERCED_VALUE']);
  });

  it('reads string scalars under keys in any case', () => {
    const outcome = one(moduleSpec('m', co({ 'k8s-experimental': {
      Volumes: [{ Volume: { Name: 'cfg', ConfigMap: { name: 'settings' } }, VolumeMounts: [{ Name: 'cfg', MountPath: '/etc/app', ReadOnly: 'TRUE' }] }],
      SecurityContext: { RunAsNonRoot: 'true', RunAsUser: '1000' },
    } })));
    const r = value(outcome);
    expect(container(r, 'm').volumeMounts?.filter((m) => m.name !== 'device-ca')).toEqual([{ name: 'cfg', mountPath: '/etc/app', readOnly: true }]);
    expect(podSpec(r, 'm').securityContext).toEqual({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(outcome.warnings.map((w) => [w.code, w.path.split('k8s-experimental')[1]])).toEqual([
      ['IEO_W_COERCED_VALUE', '/Volumes/0/VolumeMounts/0/ReadOnly'],
      ['IEO_W_COERCED_VALUE', '/SecurityContext/RunAsNonRoot'],
      ['IEO_W_COERCED_VALUE', '/SecurityContext/RunAsUser'],
    ]);
  });

  it('reads Kubernetes objects by their type at every level, as the preview\'s JSON reader did', () => {
    const outcome = one(moduleSpec('m', co({ 'k8s-experimental': {
      volumes: [{
        volume: { Name: 'cfg', ConfigMap: { Name: 'settings', Optional: 'true', DefaultMode: '420', Items: [{ Key: 'a', Path: 'a.yaml', Mode: '0' }] } },
        volumeMounts: [{ name: 'cfg', mountPath: '/etc/app' }],
      }],
      strategy: { Type: 'rollingupdate', RollingUpdate: { MaxUnavailable: '1', MaxSurge: '25%' } },
      securityContext: { SeLinuxOptions: { Level: 's0:c1' }, Sysctls: [{ Name: 'net.ipv4.tcp_keepalive_time', Value: 1024 }] },
    } })));
    const r = value(outcome);
    expect(podSpec(r, 'm').volumes).toContainEqual({ name: 'cfg', configMap: { name: 'settings', optional: true, defaultMode: 420, items: [{ key: 'a', path: 'a.yaml', mode: 0 }] } });
    expect(find<V1Deployment>(r, 'Deployment', 'm').spec?.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: '25%' } });
    expect(podSpec(r, 'm').securityContext).toEqual({ seLinuxOptions: { level: 's0:c1' }, sysctls: [{ name: 'net.ipv4.tcp_keepalive_time', value: '1024' }], seccompProfile: { type: 'RuntimeDefault' } });
    expect(codes(outcome.warnings).every((c) => c === 'IEO_W_COERCED_VALUE')).toBe(true);
  });

  it('treats null and "" as absent, and ignores unknown keys and a section that is not an object', () => {
    const outcome = one(moduleSpec('m', co({ 'k8s-experimental': { nodeSelector: null, resources: '', strategy: null, tolerations: [] } })));
    expect(podSpec(value(outcome), 'm').nodeSelector).toBeUndefined();
    expect(outcome.warnings.map((w) => [w.code, w.path.split('createOptions')[1]])).toEqual([['IEO_W_K8S_EXPERIMENTAL', '/k8s-experimental/tolerations']]);
    expect(codes(one(moduleSpec('m', co({ 'k8s-experimental': '' }))).warnings)).toEqual([]);
    expect(codes(one(moduleSpec('m', co({ 'k8s-experimental': 'nodeSelector' }))).warnings)).toEqual(['IEO_W_K8S_EXPERIMENTAL']);
  });

  it('ignores an unknown service type with a warning, so the default type applies', () => {
    const outcome = one(moduleSpec('m', co({ HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '8080' }] } }, 'k8s-experimental': { serviceOptions: { type: 'Ingress', loadbalancerip: '10.0.0.5' } } })));
    expect(service(value(outcome), 'm-ports').spec).toMatchObject({ type: 'LoadBalancer', loadBalancerIP: '10.0.0.5' });
    expect(codes(outcome.warnings)).toEqual(['IEO_W_K8S_EXPERIMENTAL']);
  });

  it('lets k8s win over k8s-experimental field by field, with a warning for each loser', () => {
    const outcome = one(moduleSpec('m', co({
      k8s: { nodeSelector: { zone: 'a' }, resources: { limits: { memory: '1Gi' } } },
      'k8s-experimental': { nodeSelector: { zone: 'b', disktype: 'ssd' }, resources: { limits: { memory: '2Gi', cpu: '1' } } },
    })));
    const r = value(outcome);
    expect(podSpec(r, 'm').nodeSelector).toEqual({ zone: 'a', disktype: 'ssd' });
    expect(container(r, 'm').resources).toEqual({ limits: { memory: '1Gi', cpu: '1' } });
    expect(outcome.warnings.map((w) => [w.code, w.path.split('createOptions')[1]])).toEqual([
      ['IEO_W_K8S_EXPERIMENTAL', '/k8s-experimental/nodeSelector/zone'],
      ['IEO_W_K8S_EXPERIMENTAL', '/k8s-experimental/resources/limits/memory'],
    ]);
  });

  it('reports a malformed preview value at its own path', () => {
    const e = errors(one(moduleSpec('m', co({ 'k8s-experimental': { nodeSelector: ['ssd'] } }))));
    expect(e.map((i) => [i.code, i.path.split('createOptions')[1]])).toEqual([['IEO_K8S_EXTENSION', '/k8s-experimental/nodeSelector']]);
  });
});

describe('the k8s block accepts the preview shapes', () => {
  it('reads {volume, volumeMounts} pairs, keys in any case, service types in any case, string booleans', () => {
    const outcome = one(moduleSpec('m', co({
      ExposedPorts: { '80/tcp': {} },
      k8s: {
        Volumes: [{ volume: { name: 'data', emptyDir: {} }, volumeMounts: [{ name: 'data', mountPath: '/data', readOnly: 'false' }] }],
        serviceOptions: { type: 'loadBalancer', loadBalancerIP: '' },
        nodeSelector: null,
      },
    })));
    const r = value(outcome);
    expect(podSpec(r, 'm').volumes).toContainEqual({ name: 'data', emptyDir: {} });
    expect(container(r, 'm').volumeMounts?.filter((m) => m.name !== 'device-ca')).toEqual([{ name: 'data', mountPath: '/data', readOnly: false }]);
    expect(service(r, 'm').spec?.type).toBe('LoadBalancer');
  });

  it('gives a module with only ExposedPorts the Service type it asks for', () => {
    const r = value(one(moduleSpec('m', co({ ExposedPorts: { '80/tcp': {} }, k8s: { serviceOptions: { type: 'NodePort' } } }))));
    expect(service(r, 'm').spec?.type).toBe('NodePort');
  });
});

describe('label keys', () => {
  it.each([
    ['$edgeAgent', 'edgeAgent'],
    ['iothub.azure-device.net/$edgeHub', 'iothub.azure-device.net/edgeHub'],
    ['K8S.IO/---a-0--', 'k8s.io/a-0'],
    ["Complicated Value that doesn't fit in k8s label name", 'ComplicatedValuethatdoesntfitink8slabelname'],
    ['com.example/ok', 'com.example/ok'],
  ])('cleans %j into %j', (raw, clean) => {
    expect(cleanAnnotationKey(raw)).toBe(clean);
  });

  it('turns keys the preview refused into valid ones, deterministically', () => {
    for (const raw of ['', '!!!', '!!!!/abc', 'x'.repeat(80), `${'a'.repeat(300)}.com/b`]) {
      const key = cleanAnnotationKey(raw);
      expect(cleanAnnotationKey(raw)).toBe(key);
      expect(key).toMatch(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
      expect(key.split('/').pop()?.length).toBeLessThanOrEqual(63);
    }
  });

  it('puts labels on the pod and on both Services, and keeps two keys that clean alike apart', () => {
    const outcome = one(moduleSpec('m', co({
      Labels: { '$edgeAgent': 'a', edgeAgent: 'b', 'service.beta.kubernetes.io/azure-load-balancer-internal': 'true' },
      ExposedPorts: { '80/tcp': {} },
      HostConfig: { PortBindings: { '443/tcp': [{ HostPort: '443' }] } },
    })));
    const r = value(outcome);
    const annotations = find<V1Deployment>(r, 'Deployment', 'm').spec?.template.metadata?.annotations ?? {};
    expect(annotations.edgeAgent).toBe('b');
    const cleaned = Object.keys(annotations).find((k) => k.startsWith('edgeAgent-'));
    expect(cleaned && annotations[cleaned]).toBe('a');
    for (const name of ['m', 'm-ports']) {
      expect(service(r, name).metadata?.annotations).toMatchObject({ edgeAgent: 'b', 'service.beta.kubernetes.io/azure-load-balancer-internal': 'true' });
    }
    expect(codes(outcome.warnings)).toEqual(['IEO_W_LABEL_KEY_CLEANED']);
  });
});

describe('volumes bound by name', () => {
  const mounts = co({ HostConfig: { Mounts: [{ Type: 'volume', Source: 'Sensor_Data', Target: '/data' }] } });

  it('binds each claim to the PersistentVolume of the same name under useMountSourceForVolumeName', () => {
    const r = value(one(moduleSpec('m', mounts), settingsWith({ storage: { useMountSourceForVolumeName: true } })));
    // edgeHub's own store is not a Docker volume: no pre-created PersistentVolume is looked for.
    expect(r.volumeClaims.map((c) => [c.metadata?.name, c.spec?.volumeName])).toEqual([['edgehub-storage', undefined], ['sensor-data', 'sensor-data']]);
  });

  it('binds a claim to the volume k8s.volumeClaims names, over the setting', () => {
    const spec = moduleSpec('m', co({ ...mounts.createOptions, k8s: { volumeClaims: { Sensor_Data: { volumeName: 'pv-7', storageClassName: '' } } } }));
    const r = value(one(spec, settingsWith({ storage: { useMountSourceForVolumeName: true } })));
    expect(r.volumeClaims.find((c) => c.metadata?.name === 'sensor-data')?.spec).toMatchObject({ volumeName: 'pv-7', storageClassName: '' });
    expect(codes(errors(one(moduleSpec('m', co({ ...mounts.createOptions, k8s: { volumeClaims: { Sensor_Data: { volumeName: 'Not A Name' } } } }))))))
      .toEqual(['IEO_K8S_EXTENSION']);
  });

  it('leaves volumeName unset by default', () => {
    expect(value(one(moduleSpec('m', mounts))).volumeClaims[0]?.spec?.volumeName).toBeUndefined();
  });
});

describe('runAsNonRoot default', () => {
  const nonRoot = settingsWith({ runAsNonRoot: true });

  it('runs pods as non-root user 1000 when the setting is on', () => {
    expect(podSpec(value(one(moduleSpec('m'), nonRoot)), 'm').securityContext).toEqual({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(podSpec(value(one(moduleSpec('m'), settingsWith({ runAsNonRoot: true, runAsUser: 4242 }))), 'm').securityContext)
      .toEqual({ runAsNonRoot: true, runAsUser: 4242, seccompProfile: { type: 'RuntimeDefault' } });
  });

  it('keeps what the module sets itself', () => {
    const preview = value(one(moduleSpec('m', co({ 'k8s-experimental': { securityContext: { runAsNonRoot: true, runAsUser: 0 } } })), nonRoot));
    expect(podSpec(preview, 'm').securityContext).toEqual({ runAsNonRoot: true, runAsUser: 0, seccompProfile: { type: 'RuntimeDefault' } });
    const user = value(one(moduleSpec('m', co({ User: '2000' })), nonRoot));
    expect(podSpec(user, 'm').securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container(user, 'm').securityContext).toEqual({ runAsUser: 2000 });
  });

  it('sets no user when the setting is off (only the seccomp profile Docker applies too)', () => {
    expect(podSpec(value(one(moduleSpec('m'))), 'm').securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' } });
  });
});
