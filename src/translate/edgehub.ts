// edgeHub's routes as a ConfigMap. The content is $edgeHub's desired properties (what edgeHub would read
// from its twin), so edgeHub can run from local configuration in kubectl-only mode.
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { HubDesired } from '../manifest/model.ts';
import { canonical } from './canonical.ts';
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
