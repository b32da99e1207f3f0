import { describe, expect, it } from '@jest/globals';
import type { V1Deployment, V1EnvVar, V1Secret, V1Service } from '@kubernetes/client-node';
import { noRoute } from '../../../src/translate/edgehub.ts';
import { moduleCaMountPath, translate, trustAnnotations } from '../../../src/translate/index.ts';
import { edgeHubSpec, input, manifest, moduleSpec } from './builders.ts';

function deploymentOf(objects: unknown[], name: string): V1Deployment {
  return (objects as V1Deployment[]).find((o) => o.kind === 'Deployment' && o.metadata?.name === name)!;
}

function envOf(d: V1Deployment): Record<string, V1EnvVar> {
  return Object.fromEntries((d.spec!.template.spec!.containers[0]!.env ?? []).map((e) => [e.name, e]));
}

function ok<T>(outcome: { ok: true; value: T } | { ok: false; errors: unknown }): T {
  if (!outcome.ok) throw new Error(JSON.stringify(outcome.errors));
  return outcome.value;
}

describe('module credentials and trust', () => {
  it('gives a module with an identity Secret its connection string, and every module the device CA, as ModuleClient.fromEnvironment reads them', () => {
    const result = ok(translate(input(manifest([moduleSpec('sensor'), moduleSpec('other')]), undefined, { moduleCredentialSecrets: { sensor: 'sensor-iothub' } })));
    const sensor = deploymentOf(result.objects, 'sensor').spec!.template.spec!;
    const container = sensor.containers[0]!;
    expect(container.env).toEqual(expect.arrayContaining([
      { name: 'EdgeHubConnectionString', valueFrom: { secretKeyRef: { name: 'sensor-iothub', key: 'EdgeHubConnectionString' } } },
      { name: 'EdgeModuleCACertificateFile', value: `${moduleCaMountPath}/ca.crt` },
    ]));
    expect(container.volumeMounts).toContainEqual({ name: 'device-ca', mountPath: moduleCaMountPath, readOnly: true });
    // The device CA comes from edgeHub's server Secret (ca.crt only), so it is always the CA edgeHub's certificate chains to.
    expect(sensor.volumes).toContainEqual({ name: 'device-ca', secret: { secretName: 'dev1-deployment-edgehub-server', items: [{ key: 'ca.crt', path: 'ca.crt' }] } });

    const other = envOf(deploymentOf(result.objects, 'other'));
    expect(other.EdgeHubConnectionString).toBeUndefined();
    expect(other.EdgeModuleCACertificateFile).toEqual({ name: 'EdgeModuleCACertificateFile', value: `${moduleCaMountPath}/ca.crt` });
  });

  it('in kubectl mode emits each module identity Secret with its derived key and GatewayHostName=edgehub, and $edgeHub\'s without a gateway', () => {
    const result = ok(translate(input(manifest([moduleSpec('sensor')]), undefined, {
      hubHostName: '',
      localIdentities: { hostName: 'dev1.local', keys: { sensor: 'c2Vuc29yLWtleQ==', $edgeHub: 'aHViLWtleQ==' } },
    })));
    const secrets = (result.objects as V1Secret[]).filter((o) => o.kind === 'Secret');
    const sensor = secrets.find((s) => s.metadata?.name === 'sensor-iothub');
    expect(sensor?.stringData).toEqual({ EdgeHubConnectionString: 'HostName=dev1.local;DeviceId=dev1;ModuleId=sensor;SharedAccessKey=c2Vuc29yLWtleQ==;GatewayHostName=edgehub' });
    expect(sensor?.metadata?.annotations?.['iotedge-operator.io/module-id']).toBe('sensor');
    const hub = secrets.find((s) => s.metadata?.name === 'edgehub-iothub');
    expect(hub?.stringData).toEqual({ IotHubConnectionString: 'HostName=dev1.local;DeviceId=dev1;ModuleId=$edgeHub;SharedAccessKey=aHViLWtleQ==' });
    expect(envOf(deploymentOf(result.objects, 'sensor')).EdgeHubConnectionString?.valueFrom?.secretKeyRef).toEqual({ name: 'sensor-iothub', key: 'EdgeHubConnectionString' });
  });

  it('rolls modules when the device CA changes and edgeHub when its certificate changes', () => {
    const result = ok(translate(input(manifest([moduleSpec('sensor')]), undefined, { trust: { caSha256: 'ca1', serverCertSha256: 'leaf1' } })));
    expect(deploymentOf(result.objects, 'sensor').spec!.template.metadata!.annotations![trustAnnotations.ca]).toBe('ca1');
    expect(deploymentOf(result.objects, 'edgehub').spec!.template.metadata!.annotations![trustAnnotations.serverCert]).toBe('leaf1');
  });
});

describe('stock edgeHub in connection-string mode', () => {
  const routes = {
    sensorToFilter: { name: 'sensorToFilter', route: 'FROM /messages/modules/sensor/outputs/* INTO BrokeredEndpoint("/modules/filter/inputs/in")', priority: 9 },
    up: { name: 'up', route: 'FROM /messages/modules/filter/outputs/* INTO $upstream', priority: 0, timeToLiveSecs: 60 },
  };

  it('gets its identity, PEM files, storage, home and an unprivileged HTTPS port, and none of the forbidden variables', () => {
    const hubSpec = edgeHubSpec({ env: { IOTEDGE_WORKLOADURI: 'unix:///x', storagefolder: '/elsewhere', OptimizeForPerformance: 'false' } });
    const outcome = translate(input(manifest([moduleSpec('sensor')], { edgeHub: hubSpec, routes }), undefined, { edgeHubConfigSource: 'twin' }));
    const result = ok(outcome);
    const hub = deploymentOf(result.objects, 'edgehub');
    const env = envOf(hub);
    expect(env.IotHubConnectionString?.valueFrom?.secretKeyRef).toEqual({ name: 'edgehub-iothub', key: 'IotHubConnectionString' });
    expect(env.EdgeHubDevServerCertificateFile?.value).toBe('/etc/iotedge-operator/edgehub-tls/tls.crt');
    expect(env.EdgeHubDevServerPrivateKeyFile?.value).toBe('/etc/iotedge-operator/edgehub-tls/tls.key');
    expect(env.EdgeHubDevTrustBundleFile?.value).toBe('/etc/iotedge-operator/edgehub-tls/ca.crt');
    expect(env.StorageFolder?.value).toBe('/var/lib/edgehub');
    expect(env.httpSettings__port?.value).toBe('8443');
    expect(env.configSource?.value).toBe('twin');
    expect(env.OptimizeForPerformance?.value).toBe('false');
    // The deployment's own spelling of a runtime key, and a forbidden variable, are dropped with a warning.
    expect(env.storagefolder).toBeUndefined();
    expect(env.IOTEDGE_WORKLOADURI).toBeUndefined();
    expect(env.IOTEDGE_GATEWAYHOSTNAME).toBeUndefined();
    expect(outcome.warnings.filter((w) => w.code === 'IEO_W_RESERVED_ENV').map((w) => w.path).sort()).toEqual([
      '/modulesContent/$edgeAgent/properties.desired/systemModules/edgeHub/env/IOTEDGE_WORKLOADURI',
      '/modulesContent/$edgeAgent/properties.desired/systemModules/edgeHub/env/storagefolder',
    ]);
    // In twin mode edgeHub reads its routes itself.
    expect(Object.keys(env).filter((n) => n.startsWith('routes__'))).toEqual([]);

    const pod = hub.spec!.template.spec!;
    const mounts = pod.containers[0]!.volumeMounts ?? [];
    expect(mounts).toContainEqual({ name: 'edgehub-tls', mountPath: '/etc/iotedge-operator/edgehub-tls', readOnly: true });
    expect(mounts).toContainEqual({ name: 'edgehub-storage', mountPath: '/var/lib/edgehub' });
    expect(mounts).toContainEqual({ name: 'edgehub-home', mountPath: env.HOME?.value });
    expect(pod.volumes).toContainEqual({ name: 'edgehub-tls', secret: { secretName: 'dev1-deployment-edgehub-server', defaultMode: 0o440 } });
    expect(pod.volumes).toContainEqual({ name: 'edgehub-storage', persistentVolumeClaim: { claimName: 'edgehub-storage' } });
    expect(result.volumeClaims.map((c) => c.metadata?.name)).toContain('edgehub-storage');
    expect(pod.containers[0]!.ports).toContainEqual({ containerPort: 8443, protocol: 'TCP' });
    expect(pod.containers[0]!.ports).not.toContainEqual({ containerPort: 443, protocol: 'TCP' });
    const service = (result.objects as V1Service[]).find((o) => o.kind === 'Service' && o.metadata?.name === 'edgehub')!;
    expect(service.spec!.ports).toContainEqual({ name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' });
  });

  it('in kubectl mode takes its routes as routes__<name>, replacing the built-in r1, with the store-and-forward TTL', () => {
    const m = manifest([moduleSpec('sensor'), moduleSpec('filter')], { routes });
    m.hub.storeAndForwardConfiguration = { timeToLiveSecs: 7200 };
    const outcome = translate(input(m, undefined, { edgeHubConfigSource: 'local' }));
    const env = envOf(deploymentOf(ok(outcome).objects, 'edgehub'));
    expect(env.configSource?.value).toBe('local');
    // No route is called r1, so the first (by name) takes its place; the others keep their names.
    expect(env.routes__r1?.value).toBe(routes.sensorToFilter.route);
    expect(env.routes__up?.value).toBe(routes.up.route);
    expect(env.routes__sensorToFilter).toBeUndefined();
    expect(env.storeAndForward__timeToLiveSecs?.value).toBe('7200');
    // Local configuration has no priority or TTL per route.
    expect(outcome.warnings.filter((w) => w.code === 'IEO_W_ROUTE_FIELD_IGNORED').map((w) => w.path)).toEqual(['/modulesContent/$edgeHub/properties.desired/routes/up']);
  });

  it('with no routes replaces r1 by a route that matches nothing, so nothing goes upstream unasked', () => {
    const env = envOf(deploymentOf(ok(translate(input(manifest([moduleSpec('sensor')], { routes: {} }), undefined, { edgeHubConfigSource: 'local' }))).objects, 'edgehub'));
    expect(env.routes__r1?.value).toBe(noRoute);
  });

  it('rolls edgeHub when a route changes in kubectl mode', () => {
    const a = deploymentOf(ok(translate(input(manifest([], { routes }), undefined, { edgeHubConfigSource: 'local' }))).objects, 'edgehub');
    const changed = { ...routes, up: { ...routes.up, route: 'FROM /messages/* INTO $upstream' } };
    const b = deploymentOf(ok(translate(input(manifest([], { routes: changed }), undefined, { edgeHubConfigSource: 'local' }))).objects, 'edgehub');
    expect(JSON.stringify(a.spec!.template)).not.toBe(JSON.stringify(b.spec!.template));
  });
});
