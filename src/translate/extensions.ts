// The `k8s` block of createOptions: what a Docker create body cannot say (scheduling, probes, native
// volumes, Service options, ...). The shape is checked only as far as translation relies on it; the
// API server validates the Kubernetes objects themselves.
import type {
  V1Affinity,
  V1DeploymentStrategy,
  V1PodSecurityContext,
  V1Probe,
  V1ResourceRequirements,
  V1SecurityContext,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { isDnsSubdomain } from './docker.ts';
import type { Issues } from './issues.ts';
import { pointer } from './names.ts';
import type { PortBindingServiceType, VolumeAccessMode } from './settings.ts';

export interface VolumeClaimOptions {
  storageClassName?: string;
  size?: string;
  accessMode?: VolumeAccessMode;
  /** The PersistentVolume to bind the claim to (a pre-created one), like the preview's useMountSourceForVolumeName. */
  volumeName?: string;
}

export interface K8sExtensions {
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  affinity?: V1Affinity;
  resources?: V1ResourceRequirements;
  securityContext?: V1SecurityContext;
  podSecurityContext?: V1PodSecurityContext;
  /** Pod-only fields that were written in securityContext; k8s.podSecurityContext wins over them. */
  movedPodSecurityContext?: V1PodSecurityContext;
  volumes?: V1Volume[];
  volumeMounts?: V1VolumeMount[];
  serviceOptions?: { type?: PortBindingServiceType; loadBalancerIP?: string; annotations?: Record<string, string> };
  strategy?: V1DeploymentStrategy;
  probes?: { liveness?: V1Probe; readiness?: V1Probe; startup?: V1Probe };
  priorityClassName?: string;
  runtimeClassName?: string;
  automountServiceAccountToken?: boolean;
  /** Per Docker volume name: how its PVC is made (overrides the operator's storage settings). */
  volumeClaims?: Record<string, VolumeClaimOptions>;
}

const containerSecurityFields = [
  'allowPrivilegeEscalation', 'appArmorProfile', 'capabilities', 'privileged', 'procMount', 'readOnlyRootFilesystem', 'runAsGroup',
  'runAsNonRoot', 'runAsUser', 'seLinuxOptions', 'seccompProfile', 'windowsOptions',
];
const podOnlySecurityFields = ['fsGroup', 'fsGroupChangePolicy', 'seLinuxChangePolicy', 'supplementalGroups', 'supplementalGroupsPolicy', 'sysctls'];

export const k8sExtensionKeys = [
  'affinity', 'automountServiceAccountToken', 'nodeSelector', 'podSecurityContext', 'priorityClassName', 'probes', 'resources',
  'runtimeClassName', 'securityContext', 'serviceOptions', 'strategy', 'tolerations', 'volumeClaims', 'volumeMounts', 'volumes',
] as const;

const serviceTypes: readonly string[] = ['LoadBalancer', 'NodePort', 'ClusterIP'];
const accessModes: readonly string[] = ['ReadWriteOnce', 'ReadWriteMany', 'ReadWriteOncePod', 'ReadOnlyMany'];
const probeHandlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function isQuantityMap(value: unknown): value is Record<string, string | number> {
  return isObject(value) && Object.values(value).every((v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)));
}

/** Kubernetes quantities are strings; a bare number in JSON is accepted and written as one. */
function quantities(value: Record<string, string | number>): Record<string, string> {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
}

function isStringMap(value: unknown): value is Record<string, string> {
  return isObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

/** Reads and checks a module's k8s block; returns what is usable, reporting the rest. */
export function parseK8sExtensions(raw: unknown, path: string, issues: Issues): K8sExtensions {
  if (raw === undefined) return {};
  const bad = (key: string | undefined, expected: string) =>
    issues.error('IEO_K8S_EXTENSION', key === undefined ? path : `${path}${pointer(key)}`, `k8s${key === undefined ? '' : `.${key}`} must be ${expected}`);
  if (!isObject(raw)) {
    bad(undefined, 'an object');
    return {};
  }
  const ext: K8sExtensions = {};
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'nodeSelector':
        if (isStringMap(value)) ext.nodeSelector = value;
        else bad(key, 'an object of string values');
        break;
      case 'tolerations':
        if (Array.isArray(value) && value.every(isObject)) ext.tolerations = value as V1Toleration[];
        else bad(key, 'an array of tolerations');
        break;
      case 'volumes':
        if (Array.isArray(value) && value.every((v) => isObject(v) && typeof v.name === 'string' && (v.hostPath === undefined || (isObject(v.hostPath) && typeof v.hostPath.path === 'string')))) {
          ext.volumes = value as V1Volume[];
        }
        else bad(key, 'an array of volumes, each with a name (and a hostPath, if any, with a path)');
        break;
      case 'volumeMounts':
        if (Array.isArray(value) && value.every((v) => isObject(v) && typeof v.name === 'string' && typeof v.mountPath === 'string')) {
          ext.volumeMounts = value as V1VolumeMount[];
        } else bad(key, 'an array of volume mounts, each with a name and a mountPath');
        break;
      case 'resources':
        if (isObject(value) && ['limits', 'requests'].every((k) => value[k] === undefined || isQuantityMap(value[k]))) {
          ext.resources = Object.fromEntries(
            ['limits', 'requests'].filter((k) => value[k] !== undefined).map((k) => [k, quantities(value[k] as Record<string, string | number>)]),
          );
        } else bad(key, 'an object whose limits and requests map resource names to quantities');
        break;
      case 'securityContext':
        if (!isObject(value)) bad(key, 'an object');
        else if (value.privileged !== undefined && typeof value.privileged !== 'boolean') bad('securityContext', 'an object whose privileged is true or false');
        else if (value.capabilities !== undefined && !(isObject(value.capabilities) && ['add', 'drop'].every((k) => (value.capabilities as Record<string, unknown>)[k] === undefined || isStringArray((value.capabilities as Record<string, unknown>)[k])))) {
          bad('securityContext', 'an object whose capabilities.add and capabilities.drop are arrays of capability names');
        } else {
          // The preview's k8s-experimental.securityContext was pod-level; pod-only fields found here are
          // moved to the pod, and fields neither context knows are reported.
          const container: Record<string, unknown> = {};
          const moved: Record<string, unknown> = {};
          for (const [field, v] of Object.entries(value)) {
            if (containerSecurityFields.includes(field)) container[field] = v;
            else if (podOnlySecurityFields.includes(field)) {
              moved[field] = v;
              issues.warn('IEO_W_K8S_FIELD_MOVED', `${path}/securityContext${pointer(field)}`,
                `k8s.securityContext.${field} exists only in a pod securityContext; it is applied to the pod (write it in k8s.podSecurityContext)`);
            } else issues.unsupported(`${path}/securityContext${pointer(field)}`, `k8s.securityContext.${field}`, 'it is not a container securityContext field');
          }
          ext.securityContext = container as V1SecurityContext;
          if (Object.keys(moved).length > 0) ext.movedPodSecurityContext = moved as V1PodSecurityContext;
        }
        break;
      case 'affinity':
      case 'podSecurityContext':
      case 'strategy':
        if (isObject(value)) (ext as Record<string, unknown>)[key] = value;
        else bad(key, 'an object');
        break;
      case 'priorityClassName':
      case 'runtimeClassName':
        if (typeof value === 'string' && value !== '') ext[key] = value;
        else bad(key, 'a non-empty string');
        break;
      case 'automountServiceAccountToken':
        if (typeof value === 'boolean') ext.automountServiceAccountToken = value;
        else bad(key, 'true or false');
        break;
      case 'serviceOptions':
        parseServiceOptions(value, `${path}${pointer(key)}`, ext, issues);
        break;
      case 'probes':
        parseProbes(value, `${path}${pointer(key)}`, ext, issues);
        break;
      case 'volumeClaims':
        parseVolumeClaims(value, `${path}${pointer(key)}`, ext, issues);
        break;
      default:
        issues.unsupported(`${path}${pointer(key)}`, `k8s.${key}`, `it is not a k8s extension key (known: ${k8sExtensionKeys.join(', ')})`);
    }
  }
  if (ext.strategy?.type !== undefined && ext.strategy.type !== 'Recreate' && ext.strategy.type !== 'RollingUpdate') {
    bad('strategy', 'a strategy of type Recreate or RollingUpdate');
    delete ext.strategy;
  }
  return ext;
}

function parseServiceOptions(value: unknown, path: string, ext: K8sExtensions, issues: Issues): void {
  if (!isObject(value)) {
    issues.error('IEO_K8S_EXTENSION', path, 'k8s.serviceOptions must be an object');
    return;
  }
  const options: NonNullable<K8sExtensions['serviceOptions']> = {};
  for (const [key, v] of Object.entries(value)) {
    const at = `${path}${pointer(key)}`;
    if (key === 'type') {
      if (typeof v === 'string' && serviceTypes.includes(v)) options.type = v as PortBindingServiceType;
      else issues.error('IEO_K8S_EXTENSION', at, `k8s.serviceOptions.type must be one of ${serviceTypes.join(', ')}`);
    } else if (key === 'loadBalancerIP') {
      if (typeof v === 'string') options.loadBalancerIP = v;
      else issues.error('IEO_K8S_EXTENSION', at, 'k8s.serviceOptions.loadBalancerIP must be a string');
    } else if (key === 'annotations') {
      if (isStringMap(v)) options.annotations = v;
      else issues.error('IEO_K8S_EXTENSION', at, 'k8s.serviceOptions.annotations must be an object of string values');
    } else {
      issues.unsupported(at, `k8s.serviceOptions.${key}`, 'known keys are type, loadBalancerIP and annotations');
    }
  }
  ext.serviceOptions = options;
}

function parseProbes(value: unknown, path: string, ext: K8sExtensions, issues: Issues): void {
  if (!isObject(value)) {
    issues.error('IEO_K8S_EXTENSION', path, 'k8s.probes must be an object');
    return;
  }
  const probes: NonNullable<K8sExtensions['probes']> = {};
  for (const [key, v] of Object.entries(value)) {
    const at = `${path}${pointer(key)}`;
    if (key !== 'liveness' && key !== 'readiness' && key !== 'startup') {
      issues.unsupported(at, `k8s.probes.${key}`, 'known probes are liveness, readiness and startup');
      continue;
    }
    const handlers = isObject(v) ? probeHandlers.filter((h) => v[h] !== undefined) : [];
    if (!isObject(v) || handlers.length !== 1) {
      issues.error('IEO_K8S_EXTENSION', at, `k8s.probes.${key} must be a probe with exactly one of ${probeHandlers.join(', ')}`);
      continue;
    }
    probes[key] = v as V1Probe;
  }
  ext.probes = probes;
}

function parseVolumeClaims(value: unknown, path: string, ext: K8sExtensions, issues: Issues): void {
  if (!isObject(value)) {
    issues.error('IEO_K8S_EXTENSION', path, 'k8s.volumeClaims must be an object keyed by volume name');
    return;
  }
  const claims: Record<string, VolumeClaimOptions> = {};
  for (const [volume, v] of Object.entries(value)) {
    const at = `${path}${pointer(volume)}`;
    if (!isObject(v)) {
      issues.error('IEO_K8S_EXTENSION', at, `k8s.volumeClaims.${volume} must be an object`);
      continue;
    }
    const claim: VolumeClaimOptions = {};
    for (const [key, option] of Object.entries(v)) {
      if (key === 'storageClassName' && typeof option === 'string') claim.storageClassName = option;
      else if (key === 'size' && typeof option === 'string' && /^\d+(\.\d+)?([KMGTPE]i?|[mk])?$/.test(option)) claim.size = option;
      else if (key === 'accessMode' && typeof option === 'string' && accessModes.includes(option)) claim.accessMode = option as VolumeAccessMode;
      else if (key === 'volumeName' && typeof option === 'string' && isDnsSubdomain(option)) claim.volumeName = option;
      else {
        issues.error('IEO_K8S_EXTENSION', `${at}${pointer(key)}`,
          `k8s.volumeClaims.${volume}.${key} is not valid (storageClassName: string, size: a quantity such as 5Gi, accessMode: one of ${accessModes.join(', ')}, volumeName: a PersistentVolume name)`);
      }
    }
    claims[volume] = claim;
  }
  ext.volumeClaims = claims;
}
