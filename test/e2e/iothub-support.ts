// Shared pieces of the IoT Hub e2e tests: an emulator on its own loopback address, a device bound to
// an EdgeDeployment in its own namespace, and deployment manifests pushed with azure-iothub.
import iothub from 'azure-iothub';
import type { Registry } from 'azure-iothub';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import type { HubEmulator, JsonObject } from '../../src/emulator/index.ts';
import { eventually, kubectl, type TestCluster } from '../support/cluster.ts';

export const group = 'iotedge-operator.io';

export function serviceRegistry(hub: HubEmulator): Registry {
  return iothub.Registry.fromConnectionString(hub.serviceConnectionString);
}

/** The binding Secret (device connection string + the emulator's CA) and an EdgeDeployment with only spec.iotHub. */
export async function bindDevice(cluster: TestCluster, hub: HubEmulator, namespace: string, connectionString = hub.deviceConnectionString(namespace)): Promise<void> {
  const secret = {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'iothub', namespace },
    stringData: { connectionString, 'ca.crt': hub.caCertPem },
  };
  const ed = {
    apiVersion: `${group}/v1alpha1`, kind: 'EdgeDeployment', metadata: { name: 'device', namespace },
    spec: { iotHub: { connectionStringSecretRef: { name: 'iothub', key: 'connectionString' } } },
  };
  await kubectl(cluster, ['apply', '--server-side', '--field-manager=test-user', '-f', '-'], `${JSON.stringify(secret)}\n---\n${JSON.stringify(ed)}`);
}

export interface ModuleOptions {
  image?: string;
  status?: 'running' | 'stopped';
  startupOrder?: number;
}

/** A deployment manifest with edgeHub, the given modules and a route per module. */
export function manifest(modules: Record<string, ModuleOptions>, extraAgent: JsonObject = {}): JsonObject {
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker', settings: { minDockerVersion: 'v1.25', registryCredentials: { acr: { username: 'user', password: 'registry-password-123', address: 'example.azurecr.io' } } } },
          systemModules: {
            edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5', createOptions: '{}' } },
            edgeHub: { type: 'docker', status: 'running', restartPolicy: 'always', startupOrder: 0, settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5', createOptions: '{}' } },
          },
          modules: Object.fromEntries(Object.entries(modules).map(([id, m]) => [id, {
            version: '1.0', type: 'docker', status: m.status ?? 'running', restartPolicy: 'always', startupOrder: m.startupOrder ?? 1,
            settings: { image: m.image ?? `example.azurecr.io/${id.toLowerCase()}:1.0`, createOptions: '{}' },
          }])),
          ...extraAgent,
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.1',
          routes: Object.fromEntries(Object.keys(modules).map((id) => [`${id}ToUpstream`, { route: `FROM /messages/modules/${id}/outputs/* INTO $upstream`, priority: 0 }])),
          storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
        },
      },
    },
  };
}

export async function deploy(registry: Registry, deviceId: string, content: JsonObject): Promise<void> {
  await registry.applyConfigurationContentOnDevice(deviceId, content as never);
}

export async function edgeDeployment(cluster: TestCluster, namespace: string): Promise<EdgeDeployment> {
  return JSON.parse(await kubectl(cluster, ['-n', namespace, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
}

export async function until(cluster: TestCluster, namespace: string, what: string, predicate: (ed: EdgeDeployment) => boolean, timeoutMs = 120_000): Promise<EdgeDeployment> {
  return eventually(`${namespace}: ${what}`, async () => {
    const ed = await edgeDeployment(cluster, namespace);
    return predicate(ed) ? ed : undefined;
  }, timeoutMs);
}

export const condition = (ed: EdgeDeployment, type: string) => ed.status?.conditions?.find((c) => c.type === type);

/** The $edgeAgent reported properties the emulator holds. */
export function reported(hub: HubEmulator, deviceId: string): JsonObject {
  const twin = hub.admin.twin(deviceId, '$edgeAgent');
  return ((twin.properties as JsonObject).reported ?? {}) as JsonObject;
}

export async function untilReported(hub: HubEmulator, deviceId: string, what: string, predicate: (r: JsonObject) => boolean, timeoutMs = 120_000): Promise<JsonObject> {
  let last: JsonObject = {};
  try {
    return await eventually(`${deviceId}: reported ${what}`, async () => {
      last = reported(hub, deviceId);
      return predicate(last) ? last : undefined;
    }, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}; last reported: ${JSON.stringify(last).slice(0, 3000)}`, { cause: error });
  }
}

type Reported = { modules?: Record<string, { runtimeStatus?: string; settings?: { image?: string }; status?: string }>; systemModules?: Record<string, { runtimeStatus?: string }>; lastDesiredStatus?: { code?: number; description?: string }; lastDesiredVersion?: number };

export function asReported(r: JsonObject): Reported {
  return r as Reported;
}

export function desiredVersionOf(hub: HubEmulator, deviceId: string): number {
  const twin = hub.admin.twin(deviceId, '$edgeAgent');
  return ((twin.properties as JsonObject).desired as JsonObject).$version as number;
}

/** Every listed module reported running, and the given desired version accepted with 200. */
export function allRunning(r: JsonObject, modules: string[], version: number): boolean {
  const rep = asReported(r);
  return rep.lastDesiredVersion === version && rep.lastDesiredStatus?.code === 200
    && rep.systemModules?.edgeHub?.runtimeStatus === 'running'
    && modules.every((m) => rep.modules?.[m]?.runtimeStatus === 'running')
    && Object.keys(rep.modules ?? {}).length === modules.length;
}
