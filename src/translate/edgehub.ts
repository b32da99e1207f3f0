// edgeHub's routes as a ConfigMap. The content is $edgeHub's desired properties (what edgeHub would read
// from its twin), so edgeHub can run from local configuration in kubectl-only mode.
import type { V1ConfigMap, V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { HubDesired } from '../manifest/model.ts';
import { canonical } from './canonical.ts';
import { edgeHubConnectionStringKey } from './identity.ts';
import { commonLabels, sha256, type LabelContext } from './names.ts';

export const edgeHubPorts = [
  { name: 'amqps', port: 5671 },
  { name: 'mqtts', port: 8883 },
  { name: 'https', port: 443 },
] as const;

export const routesKey = 'routes.json';
export const routesMountPath = '/etc/iotedge-operator/edgehub';
export const routesVolumeName = 'iotedge-operator-routes';

export function edgeHubConfigMap(hub: HubDesired, name: string, namespace: string, labels: LabelContext): { configMap: V1ConfigMap; hash: string } {
  const routes: Record<string, unknown> = {};
  for (const key of Object.keys(hub.routes).sort()) {
    const route = hub.routes[key];
    if (!route) continue;
    routes[key] = { route: route.route, priority: route.priority, ...(route.timeToLiveSecs !== undefined ? { timeToLiveSecs: route.timeToLiveSecs } : {}) };
  }
  const content = `${JSON.stringify(canonical({ schemaVersion: hub.schemaVersion, routes, storeAndForwardConfiguration: hub.storeAndForwardConfiguration }), null, 2)}\n`;
  return {
    configMap: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace, labels: commonLabels(labels, 'edgehub-config') },
      data: { [routesKey]: content },
    },
    hash: sha256(content),
  };
}

/** Where edgeHub's server certificate Secret is mounted (tls.crt, tls.key, ca.crt). */
export const edgeHubTlsMountPath = '/etc/iotedge-operator/edgehub-tls';
export const edgeHubTlsVolumeName = 'edgehub-tls';
/** StorageFolder: the store-and-forward database and the twin cache, on a PVC. */
export const edgeHubStoragePath = '/var/lib/edgehub';
export const edgeHubStorageVolumeName = 'edgehub-storage';
/** HOME: edgeHub puts its trust bundle into the .NET CurrentUser certificate store there. */
export const edgeHubHomePath = '/var/lib/edgehub-home';
export const edgeHubHomeVolumeName = 'edgehub-home';
/** edgeHub's HTTPS listener inside the pod: unprivileged, so no NET_BIND_SERVICE; the Service maps 443 to it. */
export const edgeHubHttpsContainerPort = 8443;
/** Variables that must never reach a root edgeHub: the first enables workload-API calls, the second names a parent edge. */
export const forbiddenEdgeHubEnv = ['IOTEDGE_WORKLOADURI', 'IOTEDGE_GATEWAYHOSTNAME'] as const;
/** A route that matches nothing, to replace edgeHub's built-in `r1` (FROM /* INTO $upstream) when the deployment has no routes. */
export const noRoute = 'FROM /messages/* WHERE false INTO $upstream';

export interface StockEdgeHubInput {
  hub: HubDesired;
  /** `twin`: edgeHub reads its routes from its own $edgeHub twin (IoT Hub mode). `local`: from routes__* variables (kubectl mode). */
  configSource: 'twin' | 'local';
  /** The Secret with tls.crt (leaf + chain), tls.key and ca.crt (the device CA). */
  serverSecretName: string;
  /** The Secret with IotHubConnectionString: the $edgeHub module connection string. */
  identitySecretName: string;
  storageClaimName: string;
}

export interface StockEdgeHubRuntime {
  /** Set by the runtime; the deployment's own variables of these names (compared as .NET config keys) are dropped. */
  env: V1EnvVar[];
  volumes: V1Volume[];
  volumeMounts: V1VolumeMount[];
  /** Route names whose priority or timeToLiveSecs local configuration cannot carry. */
  routesLosingFields: string[];
}

/**
 * What the stock edgeHub image (1.1–1.5) needs in connection-string mode, with no workload API:
 * its identity, the dev PEM certificate files, storage, a writable home, an unprivileged HTTPS port and,
 * in kubectl mode, its routes as local configuration. See docs/edgehub.md for each rule's source.
 */
export function stockEdgeHubRuntime(input: StockEdgeHubInput): StockEdgeHubRuntime {
  const env: V1EnvVar[] = [
    { name: 'IotHubConnectionString', valueFrom: { secretKeyRef: { name: input.identitySecretName, key: edgeHubConnectionStringKey } } },
    { name: 'EdgeHubDevServerCertificateFile', value: `${edgeHubTlsMountPath}/tls.crt` },
    { name: 'EdgeHubDevServerPrivateKeyFile', value: `${edgeHubTlsMountPath}/tls.key` },
    { name: 'EdgeHubDevTrustBundleFile', value: `${edgeHubTlsMountPath}/ca.crt` },
    { name: 'StorageFolder', value: edgeHubStoragePath },
    { name: 'HOME', value: edgeHubHomePath },
    { name: 'httpSettings__port', value: String(edgeHubHttpsContainerPort) },
    { name: 'configSource', value: input.configSource },
  ];
  const routesLosingFields: string[] = [];
  if (input.configSource === 'local') {
    env.push(...localRouteEnv(input.hub, routesLosingFields));
    const ttl = input.hub.storeAndForwardConfiguration.timeToLiveSecs;
    if (ttl !== undefined) env.push({ name: 'storeAndForward__timeToLiveSecs', value: String(ttl) });
  }
  return {
    env,
    volumes: [
      { name: edgeHubTlsVolumeName, secret: { secretName: input.serverSecretName, defaultMode: 0o440 } },
      { name: edgeHubStorageVolumeName, persistentVolumeClaim: { claimName: input.storageClaimName } },
      { name: edgeHubHomeVolumeName, emptyDir: {} },
    ],
    volumeMounts: [
      { name: edgeHubTlsVolumeName, mountPath: edgeHubTlsMountPath, readOnly: true },
      { name: edgeHubStorageVolumeName, mountPath: edgeHubStoragePath },
      { name: edgeHubHomeVolumeName, mountPath: edgeHubHomePath },
    ],
    routesLosingFields,
  };
}

/**
 * routes__<name> for each route. edgeHub's built-in `r1` (everything to $upstream) stays unless a
 * variable replaces it, so the first route takes the name r1 when none is called that, and a
 * deployment without routes gets a route that matches nothing.
 */
function localRouteEnv(hub: HubDesired, routesLosingFields: string[]): V1EnvVar[] {
  const names = Object.keys(hub.routes).sort();
  const renamed = names.includes('r1') ? undefined : names[0];
  const env: V1EnvVar[] = [];
  for (const name of names) {
    const route = hub.routes[name];
    if (!route) continue;
    // 9 is the priority of a route given as a plain string (schema 1.0).
    if (route.priority !== 9 || route.timeToLiveSecs !== undefined) routesLosingFields.push(name);
    env.push({ name: `routes__${name === renamed ? 'r1' : name}`, value: route.route });
  }
  if (names.length === 0) env.push({ name: 'routes__r1', value: noRoute });
  return env;
}

/** .NET configuration keys are case-insensitive and `__` stands for `:`; two variables naming one key are ambiguous. */
export function configKeyOf(envName: string): string {
  return envName.replace(/__/g, ':').toLowerCase();
}
