// Names and shapes of a device's identity and trust objects, shared by the controller (which creates
// them), twin sync (which writes module identities in IoT Hub mode) and the translation (which mounts
// them). Pure: key material comes in as arguments.
import type { V1Secret } from '@kubernetes/client-node';
import { annotationKeys, commonLabels, labelKeys, moduleName, type LabelContext } from './names.ts';

/** `<edep>-device-identity`: data `rootKey`, the device root key module keys are derived from. */
export function deviceIdentitySecretName(ownerName: string): string {
  return `${ownerName}-device-identity`;
}

/** `<edep>-device-ca` (kubernetes.io/tls): the operator-made device CA; ca.crt = tls.crt. */
export function deviceCaSecretName(ownerName: string): string {
  return `${ownerName}-device-ca`;
}

/** `<edep>-edgehub-server` (kubernetes.io/tls): edgeHub's certificate (leaf + chain), key, and ca.crt = the device CA. */
export function edgeHubServerSecretName(ownerName: string): string {
  return `${ownerName}-edgehub-server`;
}

export const rootKeyKey = 'rootKey';
export const moduleSecretSuffix = '-iothub';
/** The key of a module identity Secret that ModuleClient.fromEnvironment() reads. */
export const moduleConnectionStringKey = 'EdgeHubConnectionString';
/** The key of edgeHub's identity Secret: the $edgeHub module connection string (no GatewayHostName). */
export const edgeHubConnectionStringKey = 'IotHubConnectionString';
export const edgeHubModuleId = '$edgeHub';

/** `<module name>-iothub`: the Secret holding a module's identity (`edgehub-iothub` for $edgeHub). */
export function moduleSecretName(moduleId: string): string {
  return `${moduleName(moduleId)}${moduleSecretSuffix}`;
}

/** Every name a module may dial edgeHub by, and so the SANs of edgeHub's server certificate. */
export function edgeHubDnsNames(serviceName: string, namespace: string): string[] {
  return [serviceName, `${serviceName}.${namespace}`, `${serviceName}.${namespace}.svc`, `${serviceName}.${namespace}.svc.cluster.local`];
}

/** The HostName of identities in kubectl mode, where no IoT Hub names the device. */
export function localHubHostName(deviceId: string): string {
  return `${deviceId}.local`;
}

/** A module connection string as azure-iot-device (and edgeHub) reads it. */
export function moduleConnectionString(c: { hostName: string; deviceId: string; moduleId: string; sharedAccessKey: string; gatewayHostName?: string }): string {
  return `HostName=${c.hostName};DeviceId=${c.deviceId};ModuleId=${c.moduleId};SharedAccessKey=${c.sharedAccessKey}${c.gatewayHostName ? `;GatewayHostName=${c.gatewayHostName}` : ''}`;
}

export interface ModuleIdentitySecretInput {
  moduleId: string;
  hostName: string;
  deviceId: string;
  /** The module's SAS key (derived from the device root key). */
  key: string;
  /** The edgeHub Service name modules dial; not used for $edgeHub itself. */
  gatewayHostName: string;
  namespace: string;
  labels: LabelContext;
}

/**
 * The identity Secret of one module: `EdgeHubConnectionString` with GatewayHostName = edgeHub's Service;
 * for $edgeHub, `IotHubConnectionString` to the hub itself, as the stock edgeHub wants.
 */
export function moduleIdentitySecret(input: ModuleIdentitySecretInput): V1Secret {
  const isHub = input.moduleId === edgeHubModuleId;
  const connection = moduleConnectionString({
    hostName: input.hostName, deviceId: input.deviceId, moduleId: input.moduleId, sharedAccessKey: input.key,
    ...(isHub ? {} : { gatewayHostName: input.gatewayHostName }),
  });
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: moduleSecretName(input.moduleId),
      namespace: input.namespace,
      labels: { ...commonLabels(input.labels, 'module-identity'), [labelKeys.module]: moduleName(input.moduleId) },
      annotations: { [annotationKeys.moduleId]: input.moduleId },
    },
    stringData: { [isHub ? edgeHubConnectionStringKey : moduleConnectionStringKey]: connection },
  };
}
