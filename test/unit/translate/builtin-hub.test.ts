import { describe, expect, it } from '@jest/globals';
import type { V1Deployment, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { builtinEdgeHubFor } from '../../../src/controller/reconciler.ts';
import type { EdgeDeployment } from '../../../src/api/edge-deployment.ts';
import { annotationKeys, defaultSettings, settingsWith, translate } from '../../../src/translate/index.ts';
import { input, manifest, moduleSpec } from './builders.ts';
import { container, env, find, podSpec, service, value } from './helpers.ts';

const image = 'localhost/iotedge-operator:dev';
const routes = { r: { name: 'r', route: 'FROM /messages/modules/sensor/* INTO $upstream', priority: 9 } };

describe('the built-in edge hub as $edgeHub', () => {
  const builtin = (upstream?: { secretName: string; key: string }) =>
    value(translate(input(manifest([moduleSpec('sensor')], { routes }), defaultSettings, { ownerName: 'device', builtinEdgeHub: { image, ...(upstream ? { upstream } : {}) } })));

  it('runs `iotedge-operator edgehub` from the operator image with its files, store and probes', () => {
    const r = builtin();
    const c = container(r, 'edgehub');
    expect(c.image).toBe(image);
    expect(c.args).toEqual(['edgehub']);
    const e = env(r, 'edgehub');
    expect(e).toMatchObject({
      IOTEDGE_EDGEHUB_ROOT_KEY_FILE: '/etc/iotedge-operator/device-identity/rootKey',
      IOTEDGE_EDGEHUB_SERVER_CERT_FILE: '/etc/iotedge-operator/edgehub-server/tls.crt',
      IOTEDGE_EDGEHUB_ROUTES_FILE: '/etc/iotedge-operator/edgehub/routes.json',
      IOTEDGE_EDGEHUB_PORT: '8883',
      // The heap settings the hub bench measured RSS with.
      NODE_OPTIONS: '--max-semi-space-size=4 --max-old-space-size=128',
    });
    expect(e.IOTEDGE_EDGEHUB_UPSTREAM_CONNECTION_STRING_FILE).toBeUndefined();
    const pod = podSpec(r, 'edgehub');
    const secrets = (pod.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []));
    expect(secrets).toEqual(expect.arrayContaining(['device-device-identity', 'device-edgehub-server']));
    const claim = (pod.volumes ?? []).find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName;
    expect(r.volumeClaims.map((c: V1PersistentVolumeClaim) => c.metadata?.name)).toContain(claim);
    expect(pod.securityContext?.fsGroup).toBe(65532);
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    // Routes are re-read in place: no hash rolls the pod when they change.
    expect(find<V1Deployment>(r, 'Deployment', 'edgehub').spec?.template.metadata?.annotations?.[annotationKeys.configHash]).toBeUndefined();
  });

  it('gives the hub the operator\'s --edge-hub-node-options in place of the default heap settings', () => {
    const ed = { metadata: { name: 'device', namespace: 'ns' }, spec: {} } as unknown as EdgeDeployment;
    const settings = settingsWith({ edgeHubNodeOptions: '--max-old-space-size=512' });
    const hub = builtinEdgeHubFor(ed, settings).builtinEdgeHub;
    expect(hub?.nodeOptions).toBe('--max-old-space-size=512');
    const r = value(translate(input(manifest([moduleSpec('sensor')], { routes }), settings, { ownerName: 'device', ...(hub ? { builtinEdgeHub: hub } : {}) })));
    expect(env(r, 'edgehub').NODE_OPTIONS).toBe('--max-old-space-size=512');
  });

  it('sends 5671 and 443 to the one TLS listener, which refuses AMQP and WebSockets with a reason', () => {
    const ports = service(builtin(), 'edgehub').spec?.ports ?? [];
    expect(ports.map((p) => [p.port, p.targetPort])).toEqual(expect.arrayContaining([[8883, 8883], [5671, 8883], [443, 8883]]));
  });

  it('reaches IoT Hub with the binding Secret in IoT Hub mode', () => {
    const r = builtin({ secretName: 'iothub-device', key: 'connectionString' });
    expect(env(r, 'edgehub').IOTEDGE_EDGEHUB_UPSTREAM_CONNECTION_STRING_FILE).toBe('/etc/iotedge-operator/upstream/connectionString');
    expect(podSpec(r, 'edgehub').volumes?.find((v) => v.name === 'edgehub-upstream')?.secret?.items).toEqual([{ key: 'connectionString', path: 'connectionString' }]);
  });

  it('is the default in kubectl mode and not in IoT Hub mode, unless --edge-hub says otherwise', () => {
    const kubectl = { spec: {} } as EdgeDeployment;
    const bound = { spec: { iotHub: { connectionStringSecretRef: { name: 'iothub-device', key: 'cs' } } } } as unknown as EdgeDeployment;
    expect(builtinEdgeHubFor(kubectl, defaultSettings).builtinEdgeHub).toEqual({ image: defaultSettings.edgeHubImage });
    expect(builtinEdgeHubFor(bound, defaultSettings).builtinEdgeHub).toBeUndefined();
    expect(builtinEdgeHubFor(bound, settingsWith({ edgeHub: 'builtin' })).builtinEdgeHub?.upstream).toEqual({ secretName: 'iothub-device', key: 'cs' });
    expect(builtinEdgeHubFor(kubectl, settingsWith({ edgeHub: 'stock' })).builtinEdgeHub).toBeUndefined();
  });

  it('leaves the stock edgeHub as it was when not chosen', () => {
    const r = value(translate(input(manifest([moduleSpec('sensor')], { routes }))));
    expect(container(r, 'edgehub').image).toBe('mcr.microsoft.com/azureiotedge-hub:1.5');
    expect(find<V1Deployment>(r, 'Deployment', 'edgehub').spec?.template.metadata?.annotations?.[annotationKeys.configHash]).toBeDefined();
  });
});
