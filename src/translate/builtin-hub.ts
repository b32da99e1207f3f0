// The $edgeHub system module as the built-in hub (`iotedge-operator edgehub`, docs/builtin-hub.md):
// the operator's own image, configured by IOTEDGE_EDGEHUB_* variables and files only — the device root key,
// edgeHub's server certificate, the routes ConfigMap, a PVC for the store and, in IoT Hub mode, the binding's
// connection string. Routes are re-read by the hub when the ConfigMap changes, so no hash rolls the pod.
import type { V1EnvVar, V1Probe, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { routesKey, routesMountPath } from './edgehub.ts';

/** What decides that the built-in hub runs, and how it reaches IoT Hub. */
export interface BuiltinEdgeHub {
  image: string;
  /** The hub process's NODE_OPTIONS; default builtinHubNodeOptions. */
  nodeOptions?: string;
  /** IoT Hub mode: the binding Secret's connection string key, and its optional CA (`ca.crt`) for a private hub. */
  upstream?: { secretName: string; key: string };
}

export const builtinHubMqttPort = 8883;
/** edgeHub's metrics port. */
export const builtinHubMetricsPort = 9600;
export const builtinHubProbePort = 8081;
/** The image's user (see the Dockerfile); the store's PVC is made writable for it with fsGroup. */
export const builtinHubUser = 65532;

const identityMountPath = '/etc/iotedge-operator/device-identity';
const tlsMountPath = '/etc/iotedge-operator/edgehub-server';
const upstreamMountPath = '/etc/iotedge-operator/upstream';
const upstreamCaMountPath = '/etc/iotedge-operator/upstream-ca';
export const builtinHubStorePath = '/var/lib/iotedge-operator/edgehub';

export interface BuiltinHubInput {
  builtin: BuiltinEdgeHub;
  deviceId: string;
  /** `<edep>-device-identity`: data rootKey. */
  identitySecretName: string;
  /** `<edep>-edgehub-server`: tls.crt (leaf + chain), tls.key, ca.crt. */
  serverSecretName: string;
  storageClaimName: string;
}

export interface BuiltinHubRuntime {
  image: string;
  args: string[];
  env: V1EnvVar[];
  volumes: V1Volume[];
  volumeMounts: V1VolumeMount[];
  readinessProbe: V1Probe;
  livenessProbe: V1Probe;
  fsGroup: number;
}

/**
 * V8's heap settings for the hub's Node process. Left to its defaults, V8 lets the old generation grow
 * lazily on a machine with gigabytes free: `npm run bench -- hub` measured 309–318 MB of RSS with 10
 * modules moving 25,000 msg/s. With these, 131–143 MB at 20,000–22,800 msg/s. What the hub keeps alive
 * is far smaller than either: messages wait in the store, whose memory cache holds their bytes outside the
 * JS heap. A 2 MB young generation cost more in scavenges than it saved (19,000 msg/s at the same RSS).
 */
export const builtinHubNodeOptions = '--max-semi-space-size=4 --max-old-space-size=128';

export function builtinEdgeHubRuntime(input: BuiltinHubInput): BuiltinHubRuntime {
  const v = (name: string, value: string): V1EnvVar => ({ name: `IOTEDGE_EDGEHUB_${name}`, value });
  const env: V1EnvVar[] = [
    v('DEVICE_ID', input.deviceId),
    v('ROOT_KEY_FILE', `${identityMountPath}/rootKey`),
    v('SERVER_CERT_FILE', `${tlsMountPath}/tls.crt`),
    v('SERVER_KEY_FILE', `${tlsMountPath}/tls.key`),
    v('CA_FILE', `${tlsMountPath}/ca.crt`),
    v('ROUTES_FILE', `${routesMountPath}/${routesKey}`),
    v('STORE_DIR', builtinHubStorePath),
    v('PORT', String(builtinHubMqttPort)),
    v('METRICS_BIND_ADDRESS', `0.0.0.0:${builtinHubMetricsPort}`),
    v('HEALTH_PROBE_BIND_ADDRESS', `0.0.0.0:${builtinHubProbePort}`),
    { name: 'NODE_OPTIONS', value: input.builtin.nodeOptions ?? builtinHubNodeOptions },
  ];
  const volumes: V1Volume[] = [
    { name: 'edgehub-device-identity', secret: { secretName: input.identitySecretName, items: [{ key: 'rootKey', path: 'rootKey' }], defaultMode: 0o440 } },
    { name: 'edgehub-server-tls', secret: { secretName: input.serverSecretName, defaultMode: 0o440 } },
    { name: 'edgehub-store', persistentVolumeClaim: { claimName: input.storageClaimName } },
  ];
  const volumeMounts: V1VolumeMount[] = [
    { name: 'edgehub-device-identity', mountPath: identityMountPath, readOnly: true },
    { name: 'edgehub-server-tls', mountPath: tlsMountPath, readOnly: true },
    { name: 'edgehub-store', mountPath: builtinHubStorePath },
  ];
  const upstream = input.builtin.upstream;
  if (upstream) {
    env.push(v('UPSTREAM_CONNECTION_STRING_FILE', `${upstreamMountPath}/connectionString`));
    // A private IoT Hub CA (the emulator's) rides in the binding Secret as ca.crt; Node adds it to its trust.
    env.push({ name: 'NODE_EXTRA_CA_CERTS', value: `${upstreamCaMountPath}/ca.crt` });
    volumes.push(
      { name: 'edgehub-upstream', secret: { secretName: upstream.secretName, items: [{ key: upstream.key, path: 'connectionString' }], defaultMode: 0o440 } },
      { name: 'edgehub-upstream-ca', secret: { secretName: upstream.secretName, items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true, defaultMode: 0o444 } },
    );
    volumeMounts.push(
      { name: 'edgehub-upstream', mountPath: upstreamMountPath, readOnly: true },
      { name: 'edgehub-upstream-ca', mountPath: upstreamCaMountPath, readOnly: true },
    );
  }
  const probe = (path: string): V1Probe => ({ httpGet: { path, port: builtinHubProbePort }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5 });
  return {
    image: input.builtin.image,
    args: ['edgehub'],
    env,
    volumes,
    volumeMounts,
    readinessProbe: probe('/readyz'),
    livenessProbe: { ...probe('/healthz'), initialDelaySeconds: 10 },
    fsGroup: builtinHubUser,
  };
}

/**
 * The Service ports of the built-in hub: MQTT on 8883, and 5671 (AMQP) and 443 (WebSockets) sent to the same
 * listener, which refuses those protocols with a reason instead of leaving the client to time out.
 */
export function builtinHubTargetPort(servicePort: number): number {
  return servicePort === 5671 || servicePort === 443 ? builtinHubMqttPort : servicePort;
}
