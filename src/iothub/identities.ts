// Module identities of a device's modules, as IoT Edge's identity service keeps them: created through
// the device-scoped REST API when a module appears, with SAS keys derived from the device root key
// (so the built-in hub and the operator know every key without storing it), deleted when it goes.
// Each module gets a Secret `<module>-iothub` with an edgeHub-style connection string (GatewayHostName
// = the edgeHub Service); $edgeHub's Secret `edgehub-iothub` holds the connection string the stock
// edgeHub dials IoT Hub with.
import { edgeDeploymentApiVersion, edgeDeploymentKind, type EdgeDeployment } from '../api/edge-deployment.ts';
import { KubeApiError, type KubeClient, type Logger } from '../controller/kube-client.ts';
import { deriveModuleKey } from '../runtime/sas.ts';
import { edgeHubModuleId, moduleIdentitySecret, moduleSecretName } from '../translate/identity.ts';
import { defaultSettings } from '../translate/settings.ts';
import type { DeviceApi, ModuleIdentity } from './device-api.ts';

export { moduleSecretName, moduleSecretSuffix } from '../translate/identity.ts';

/** IoT Edge marks the identities it manages so; only such identities are ever deleted. */
export const edgeManagedBy = 'IotEdge';
/** The edgeHub Service name modules reach edgeHub by (the translation names it so). */
export const edgeHubGatewayHostName = defaultSettings.edgeHubServiceName;
export const twinSyncFieldManager = 'iotedge-operator-twin';

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

/** The keys an identity gets: primary derived as aziot-identityd does, secondary derived apart so the two differ. */
export function derivedKeys(rootKey: string, deviceId: string, moduleId: string): { primaryKey: string; secondaryKey: string } {
  return { primaryKey: deriveModuleKey(rootKey, deviceId, moduleId), secondaryKey: deriveModuleKey(rootKey, deviceId, `${moduleId}/secondary`) };
}

export interface IdentitySyncInput {
  api: DeviceApi;
  client: KubeClient;
  resource: EdgeDeployment;
  hostName: string;
  deviceId: string;
  /** The device root key (base64) from `<edep>-device-identity`. */
  rootKey: string;
  logger: Logger;
}

/**
 * Brings the hub's module identities (and $edgeHub's) and their Secrets in line with spec.agent.modules.
 * An identity whose key is not the derived one is given it: once, when the operator first manages the
 * device or after its root key was re-made.
 */
export async function syncModuleIdentities(input: IdentitySyncInput): Promise<IdentityPlan> {
  const { api, client, resource } = input;
  const namespace = resource.metadata!.namespace!;
  const desired = Object.keys(resource.spec?.agent?.modules ?? {});
  const existing = await api.listModules();
  const plan = planIdentities(desired, existing);
  const byId = new Map(existing.map((m) => [m.moduleId, m]));
  for (const id of [edgeHubModuleId, ...desired]) {
    const keys = derivedKeys(input.rootKey, input.deviceId, id);
    const identity = byId.get(id);
    if (!identity) await api.putModule(id, { managedBy: edgeManagedBy, keys });
    else if (identity.authentication?.symmetricKey?.primaryKey !== keys.primaryKey) {
      await api.putModule(id, { managedBy: identity.managedBy ?? edgeManagedBy, keys }, '*');
      input.logger.info({ module: id }, 'module identity given the key derived from the device root key');
    }
    const secret = moduleIdentitySecret({
      moduleId: id, key: keys.primaryKey, hostName: input.hostName, deviceId: input.deviceId,
      gatewayHostName: edgeHubGatewayHostName, namespace, labels: { ownerName: resource.metadata!.name!, deviceId: input.deviceId },
    });
    await applyObject(client, `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(secret.metadata!.name!)}`, {
      ...secret,
      metadata: { ...secret.metadata, ownerReferences: [ownerReference(resource)] },
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
