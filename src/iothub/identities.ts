// Module identities of a device's custom modules, as IoT Edge's security daemon keeps them: created
// through the device-scoped REST API when a module appears, deleted when it goes. Each module gets a
// Secret `<module>-iothub` with an edgeHub-style connection string (GatewayHostName = the edgeHub
// Service) and the hub's CA certificate, for the module's pod to read.
import type { V1Secret } from '@kubernetes/client-node';
import { edgeDeploymentApiVersion, edgeDeploymentKind, type EdgeDeployment } from '../api/edge-deployment.ts';
import { KubeApiError, type KubeClient } from '../controller/kube-client.ts';
import { labelKeys, managedBy, moduleName, sanitizeLabelValue } from '../translate/names.ts';
import { defaultSettings } from '../translate/settings.ts';
import { moduleConnectionString } from './connection-string.ts';
import type { DeviceApi, ModuleIdentity } from './device-api.ts';

/** IoT Edge marks the identities it manages so; only such identities are ever deleted. */
export const edgeManagedBy = 'IotEdge';
/** The edgeHub Service name modules reach edgeHub by (the translation names it so). */
export const edgeHubGatewayHostName = defaultSettings.edgeHubServiceName;
export const moduleSecretSuffix = '-iothub';
export const twinSyncFieldManager = 'iotedge-operator-twin';

/** `<module name>-iothub`: the Secret holding a module's identity. */
export function moduleSecretName(moduleId: string): string {
  return `${moduleName(moduleId)}${moduleSecretSuffix}`;
}

export interface IdentityPlan {
  create: string[];
  remove: string[];
}

/** Which identities to create and which to delete, from the desired module ids and the hub's list. */
export function planIdentities(desired: readonly string[], existing: readonly Pick<ModuleIdentity, 'moduleId' | 'managedBy'>[]): IdentityPlan {
  const have = new Set(existing.map((m) => m.moduleId));
  const want = new Set(desired);
  return {
    create: desired.filter((id) => !have.has(id)),
    // System modules ($edgeAgent, $edgeHub) and identities someone else manages are never deleted.
    remove: existing.filter((m) => !want.has(m.moduleId) && !m.moduleId.startsWith('$') && m.managedBy === edgeManagedBy).map((m) => m.moduleId),
  };
}

export interface IdentitySyncInput {
  api: DeviceApi;
  client: KubeClient;
  resource: EdgeDeployment;
  hostName: string;
  deviceId: string;
  caCertPem: string | undefined;
}

/**
 * Brings the hub's module identities and the per-module Secrets in line with spec.agent.modules.
 * A module whose identity exists keeps its keys: re-putting an identity would rotate them under a
 * running module.
 */
export async function syncModuleIdentities(input: IdentitySyncInput): Promise<IdentityPlan> {
  const { api, client, resource } = input;
  const namespace = resource.metadata!.namespace!;
  const desired = Object.keys(resource.spec?.agent?.modules ?? {});
  const existing = await api.listModules();
  const plan = planIdentities(desired, existing);
  const byId = new Map(existing.map((m) => [m.moduleId, m]));
  for (const id of desired) {
    let identity = byId.get(id);
    if (!identity) identity = await api.putModule(id, { managedBy: edgeManagedBy });
    else if (!identity.authentication?.symmetricKey?.primaryKey) identity = await api.putModule(id, { managedBy: identity.managedBy ?? edgeManagedBy }, '*');
    const key = identity.authentication?.symmetricKey?.primaryKey;
    if (!key) throw new Error(`IoT Hub returned no key for module identity ${input.deviceId}/${id}`);
    await applySecret(client, resource, moduleSecretName(id), id, {
      EdgeHubConnectionString: moduleConnectionString({ hostName: input.hostName, deviceId: input.deviceId, moduleId: id, sharedAccessKey: key, gatewayHostName: edgeHubGatewayHostName }),
      ...(input.caCertPem ? { 'ca.crt': input.caCertPem } : {}),
    });
  }
  for (const id of plan.remove) {
    await api.deleteModule(id);
    await client.request('DELETE', `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(moduleSecretName(id))}`).catch((error: unknown) => {
      if (!(error instanceof KubeApiError && error.status === 404)) throw error;
    });
  }
  return plan;
}

async function applySecret(client: KubeClient, owner: EdgeDeployment, name: string, moduleId: string, data: Record<string, string>): Promise<void> {
  const namespace = owner.metadata!.namespace!;
  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace,
      labels: { [labelKeys.edgeDeployment]: sanitizeLabelValue(owner.metadata!.name!), [labelKeys.module]: moduleName(moduleId), [labelKeys.managedBy]: managedBy },
      annotations: { 'iotedge-operator.io/module-id': moduleId },
      ownerReferences: [ownerReference(owner)],
    },
    stringData: data,
  };
  await applyObject(client, `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(name)}`, secret);
}

export function ownerReference(owner: EdgeDeployment) {
  return { apiVersion: edgeDeploymentApiVersion, kind: edgeDeploymentKind, name: owner.metadata!.name!, uid: owner.metadata!.uid!, controller: false, blockOwnerDeletion: false };
}

/** Server-side apply under twin sync's own field manager. */
export async function applyObject<T = unknown>(client: KubeClient, path: string, body: unknown, query: Record<string, string> = {}): Promise<T> {
  return client.request<T>('PATCH', path, { fieldManager: twinSyncFieldManager, force: 'true', fieldValidation: 'Strict', ...query }, {
    body,
    contentType: 'application/apply-patch+yaml',
  });
}
