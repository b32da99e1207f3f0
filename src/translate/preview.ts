// Microsoft's IoT Edge on Kubernetes preview (2019-2021) read Kubernetes settings from
// createOptions["k8s-experimental"]. Manifests written for it must deploy here unchanged, so this module
// reads that section the way the preview's parser did, and lets the `k8s` block accept the same shapes:
// - its keys without regard to case (nodeSelector, resources, volumes, securityContext, serviceOptions, strategy);
// - a null or "" value as absent; an unknown key or a section that is not an object ignored with a warning;
// - volumes as a list of {volume, volumeMounts[]} pairs;
// - securityContext as the POD's securityContext;
// - serviceOptions.type in any case ("nodeport"), an unknown type ignored (the default type applies);
// - booleans and numbers written as strings ("readOnly": "true") read as their values.
// Where k8s and k8s-experimental set the same field, k8s wins with a warning.
import { parseK8sExtensions, type K8sExtensions } from './extensions.ts';
import type { Issues } from './issues.ts';
import { pointer } from './names.ts';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isAbsent = (value: unknown) => value === null || value === undefined || value === '';

/** The known spelling of `key` among `names`, compared without case; undefined when there is none. */
function known(names: readonly string[], key: string): string | undefined {
  const lower = key.toLowerCase();
  return names.find((n) => n.toLowerCase() === lower);
}

/** An object with keys respelled as `names` spells them (unknown keys kept as written) and absent values dropped. */
function respell(value: Json, names: readonly string[]): Json {
  const out: Json = {};
  for (const [key, member] of Object.entries(value)) {
    if (isAbsent(member)) continue;
    out[known(names, key) ?? key] = member;
  }
  return out;
}

const previewKeys = ['nodeSelector', 'resources', 'volumes', 'securityContext', 'serviceOptions', 'strategy'] as const;
const serviceTypes = ['ClusterIP', 'NodePort', 'LoadBalancer'];
const strategyTypes = ['Recreate', 'RollingUpdate'];
const volumeMountFields = ['name', 'mountPath', 'readOnly', 'subPath', 'subPathExpr', 'mountPropagation', 'recursiveReadOnly'];
const volumeFields = [
  'name', 'awsElasticBlockStore', 'azureDisk', 'azureFile', 'cephfs', 'cinder', 'configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral',
  'fc', 'flexVolume', 'flocker', 'gcePersistentDisk', 'gitRepo', 'glusterfs', 'hostPath', 'image', 'iscsi', 'nfs', 'persistentVolumeClaim',
  'photonPersistentDisk', 'portworxVolume', 'projected', 'quobyte', 'rbd', 'scaleIO', 'secret', 'storageos', 'vsphereVolume',
];
const podSecurityFields = [
  'appArmorProfile', 'fsGroup', 'fsGroupChangePolicy', 'runAsGroup', 'runAsNonRoot', 'runAsUser', 'seLinuxChangePolicy', 'seLinuxOptions',
  'seccompProfile', 'supplementalGroups', 'supplementalGroupsPolicy', 'sysctls', 'windowsOptions',
];

/** Kubernetes fields that take booleans or integers; the preview's JSON reader converted strings for them. */
const booleanFields = new Set([
  'readOnly', 'optional', 'runAsNonRoot', 'privileged', 'allowPrivilegeEscalation', 'readOnlyRootFilesystem', 'automountServiceAccountToken',
]);
const integerFields = new Set([
  'defaultMode', 'mode', 'runAsUser', 'runAsGroup', 'fsGroup', 'supplementalGroups', 'maxUnavailable', 'maxSurge', 'initialDelaySeconds',
  'periodSeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds', 'port',
]);
/** Keys whose values are maps of user data, never field names. */
const mapFields = new Set(['nodeSelector', 'limits', 'requests', 'annotations', 'labels', 'matchLabels', 'volumeAttributes', 'options']);

/**
 * Booleans and integers written as JSON strings, read as their values (with a warning naming the path),
 * in every Kubernetes field that takes one. Map values (nodeSelector, resource quantities, ...) stay strings.
 */
export function coerceKubernetesScalars(value: unknown, path: string, issues: Issues): unknown {
  if (Array.isArray(value)) return value.map((item, i) => coerceKubernetesScalars(item, `${path}/${i}`, issues));
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [key, member] of Object.entries(value)) {
    const at = `${path}${pointer(key)}`;
    if (mapFields.has(key)) out[key] = member;
    else if (booleanFields.has(key) && typeof member === 'string' && /^(true|false)$/i.test(member.trim())) {
      out[key] = member.trim().toLowerCase() === 'true';
      issues.warn('IEO_W_COERCED_VALUE', at, `${key} ${JSON.stringify(member)} is read as the boolean ${String(out[key])}`);
    } else if (integerFields.has(key) && (typeof member === 'string' || Array.isArray(member))) {
      out[key] = coerceIntegers(member, at, key, issues);
    } else out[key] = coerceKubernetesScalars(member, at, issues);
  }
  return out;
}

function coerceIntegers(member: string | unknown[], at: string, key: string, issues: Issues): unknown {
  const one = (text: unknown, where: string): unknown => {
    if (typeof text !== 'string' || !/^-?\d+$/.test(text.trim())) return text;
    issues.warn('IEO_W_COERCED_VALUE', where, `${key} ${JSON.stringify(text)} is read as the number ${Number(text)}`);
    return Number(text);
  };
  return Array.isArray(member) ? member.map((m, i) => one(m, `${at}/${i}`)) : one(member, at);
}

const isPair = (entry: Json) => 'volume' in entry || 'volumeMounts' in entry;

/** A volumes entry with its keys in their known spelling, in its own shape: a preview pair or a plain volume. */
function respellVolumeEntry(entry: unknown): unknown {
  if (!isObject(entry)) return entry;
  const pair = respell(entry, ['volume', 'volumeMounts']);
  if (!isPair(pair)) return respell(entry, volumeFields);
  if (isObject(pair.volume)) pair.volume = respell(pair.volume, volumeFields);
  if (Array.isArray(pair.volumeMounts)) pair.volumeMounts = pair.volumeMounts.map((m) => (isObject(m) ? respell(m, volumeMountFields) : m));
  return pair;
}

/** One `{volume, volumeMounts}` pair of the preview, or a plain volume: the volumes and mounts it stands for. */
function splitVolumeEntry(entry: unknown): { volume?: unknown; mounts: unknown[] } {
  if (!isObject(entry) || !isPair(entry)) return { volume: entry, mounts: [] };
  return { ...(isObject(entry.volume) ? { volume: entry.volume } : {}), mounts: Array.isArray(entry.volumeMounts) ? entry.volumeMounts : [] };
}

/**
 * A block's `volumes` in either shape, as k8s volumes plus volumeMounts. The preview's pairs are
 * flattened in order; pairs without a volume contribute only their mounts.
 */
function flattenVolumes(block: Json): void {
  if (!Array.isArray(block.volumes)) return;
  const volumes: unknown[] = [];
  const mounts: unknown[] = Array.isArray(block.volumeMounts) ? [...(block.volumeMounts as unknown[])] : [];
  for (const entry of block.volumes) {
    const split = splitVolumeEntry(entry);
    if (split.volume !== undefined) volumes.push(split.volume);
    mounts.push(...split.mounts);
  }
  block.volumes = volumes;
  if (mounts.length > 0) block.volumeMounts = mounts;
}

/** serviceOptions with its keys and type in any case; `lenient` drops an unknown type with a warning, as the preview did. */
function normaliseServiceOptions(block: Json, path: string, lenient: boolean, issues: Issues): void {
  if (!isObject(block.serviceOptions)) return;
  const options = respell(block.serviceOptions, ['type', 'loadBalancerIP', 'annotations']);
  if (typeof options.type === 'string') {
    const type = known(serviceTypes, options.type);
    if (type) options.type = type;
    else if (lenient) {
      issues.warn('IEO_W_K8S_EXPERIMENTAL', `${path}/serviceOptions/type`,
        `serviceOptions.type ${JSON.stringify(options.type)} is not ClusterIP, NodePort or LoadBalancer; it is ignored, as the preview did, and the default type applies`);
      delete options.type;
    }
  }
  block.serviceOptions = options;
}

function normaliseStrategy(block: Json): void {
  if (!isObject(block.strategy)) return;
  const strategy = respell(block.strategy, ['type', 'rollingUpdate']);
  if (typeof strategy.type === 'string') strategy.type = known(strategyTypes, strategy.type) ?? strategy.type;
  if (isObject(strategy.rollingUpdate)) strategy.rollingUpdate = respell(strategy.rollingUpdate, ['maxUnavailable', 'maxSurge']);
  block.strategy = strategy;
}

function normaliseResources(block: Json): void {
  if (isObject(block.resources)) block.resources = respell(block.resources, ['limits', 'requests', 'claims']);
}

/** nodeSelector values written as JSON numbers or booleans become the strings a label value is. */
function normaliseNodeSelector(block: Json, path: string, issues: Issues): void {
  if (!isObject(block.nodeSelector)) return;
  const selector: Json = {};
  for (const [key, v] of Object.entries(block.nodeSelector)) {
    if (typeof v === 'number' || typeof v === 'boolean') {
      issues.warn('IEO_W_COERCED_VALUE', `${path}/nodeSelector${pointer(key)}`, `nodeSelector.${key} ${JSON.stringify(v)} is read as the string "${String(v)}"`);
      selector[key] = String(v);
    } else selector[key] = v;
  }
  block.nodeSelector = selector;
}

/** What both blocks share: the preview's spellings, shapes and string scalars. */
function normaliseBlock(raw: Json, path: string, names: readonly string[], lenient: boolean, issues: Issues): Json {
  const respelled = respell(raw, names);
  if (Array.isArray(respelled.volumes)) respelled.volumes = respelled.volumes.map(respellVolumeEntry);
  normaliseStrategy(respelled);
  normaliseResources(respelled);
  // Scalars are read once every key has its known spelling ("ReadOnly": "true" is a readOnly too), and
  // before volume pairs are flattened, so that warnings point into the document as written.
  const block = coerceKubernetesScalars(respelled, path, issues) as Json;
  flattenVolumes(block);
  normaliseServiceOptions(block, path, lenient, issues);
  normaliseNodeSelector(block, path, issues);
  return block;
}

/** The `k8s` block, accepting the preview's shapes too. Anything that is not an object is left for the parser to report. */
export function normaliseK8sBlock(raw: unknown, path: string, names: readonly string[], issues: Issues): unknown {
  return isObject(raw) ? normaliseBlock(raw, path, names, false, issues) : raw;
}

/** The preview's section, read as the preview read it, in the `k8s` block's terms. */
export function previewBlock(raw: unknown, path: string, issues: Issues): Json | undefined {
  if (isAbsent(raw)) return undefined;
  if (!isObject(raw)) {
    issues.warn('IEO_W_K8S_EXPERIMENTAL', path, 'k8s-experimental is not an object; it is ignored, as the preview did');
    return undefined;
  }
  const respelled = respell(raw, previewKeys);
  if (isObject(respelled.securityContext)) respelled.securityContext = respell(respelled.securityContext, podSecurityFields);
  const block = normaliseBlock(respelled, path, previewKeys, true, issues);
  for (const key of Object.keys(block)) {
    if (!(previewKeys as readonly string[]).includes(key) && key !== 'volumeMounts') {
      issues.warn('IEO_W_K8S_EXPERIMENTAL', `${path}${pointer(key)}`,
        `k8s-experimental.${key} is not a setting the preview knew (${previewKeys.join(', ')}); it is ignored, as the preview did (write it in the k8s block)`);
      delete block[key];
    }
  }
  // The preview's securityContext is the pod's (a V1PodSecurityContext), not the container's.
  if (isObject(block.securityContext)) {
    const pod = respell(block.securityContext, podSecurityFields);
    for (const field of Object.keys(pod)) {
      if (!podSecurityFields.includes(field)) {
        issues.warn('IEO_W_K8S_EXPERIMENTAL', `${path}/securityContext${pointer(field)}`,
          `k8s-experimental.securityContext.${field} is not a pod securityContext field; the preview ignored it, and so does this operator (use k8s.securityContext for the container)`);
        delete pod[field];
      }
    }
    block.podSecurityContext = pod;
  }
  delete block.securityContext;
  return block;
}

/**
 * A module's Kubernetes settings: the `k8s` block and the preview's `k8s-experimental` section, each checked
 * at its own path, then merged with `k8s` winning field by field.
 */
export function moduleExtensions(createOptions: Record<string, unknown>, base: string, keys: readonly string[], issues: Issues): K8sExtensions {
  const own = parseK8sExtensions(normaliseK8sBlock(createOptions.k8s, `${base}/k8s`, keys, issues), `${base}/k8s`, issues);
  const previewRaw = previewBlock(createOptions['k8s-experimental'], `${base}/k8s-experimental`, issues);
  if (!previewRaw) return own;
  const preview = parseK8sExtensions(previewRaw, `${base}/k8s-experimental`, issues);
  return mergeExtensions(own, preview, `${base}/k8s-experimental`, issues);
}

type Named = { name?: string; mountPath?: string };

/** own (the k8s block) over preview, field by field; each preview value that loses is reported. */
export function mergeExtensions(own: K8sExtensions, preview: K8sExtensions, previewPath: string, issues: Issues): K8sExtensions {
  const merged: Record<string, unknown> = { ...own };
  const overridden = (field: string) =>
    issues.warn('IEO_W_K8S_EXPERIMENTAL', `${previewPath}/${field.replace(/\./g, '/')}`, `k8s-experimental ${field} is overridden by k8s ${field}`);
  for (const [key, value] of Object.entries(preview) as [keyof K8sExtensions, unknown][]) {
    const mine = own[key];
    if (mine === undefined) merged[key] = value;
    else if (key === 'volumes' || key === 'volumeMounts') {
      const id = (v: Named) => (key === 'volumes' ? v.name : v.mountPath) ?? '';
      const taken = new Set((mine as Named[]).map(id));
      const kept = (value as Named[]).filter((v) => {
        if (!taken.has(id(v))) return true;
        overridden(`${key}.${id(v)}`);
        return false;
      });
      merged[key] = [...(mine as Named[]), ...kept];
    } else if (key === 'resources') {
      merged[key] = mergeResources(own.resources ?? {}, preview.resources ?? {}, overridden);
    } else if (isObject(mine) && isObject(value) && key !== 'strategy') {
      const ownFields: Json = mine;
      const fields: Json = { ...value, ...ownFields };
      for (const field of Object.keys(value)) {
        if (field in ownFields && JSON.stringify(ownFields[field]) !== JSON.stringify(value[field])) overridden(`${key}.${field}`);
      }
      merged[key] = fields;
    } else if (JSON.stringify(mine) !== JSON.stringify(value)) overridden(key);
  }
  return merged as K8sExtensions;
}

function mergeResources(
  own: NonNullable<K8sExtensions['resources']>,
  preview: NonNullable<K8sExtensions['resources']>,
  overridden: (field: string) => void,
): NonNullable<K8sExtensions['resources']> {
  const out: Record<string, Record<string, string>> = {};
  for (const part of ['limits', 'requests'] as const) {
    const mine = (own[part] ?? {}) as Record<string, string>;
    const theirs = (preview[part] ?? {}) as Record<string, string>;
    for (const name of Object.keys(theirs)) if (name in mine && mine[name] !== theirs[name]) overridden(`resources.${part}.${name}`);
    if (own[part] !== undefined || preview[part] !== undefined) out[part] = { ...theirs, ...mine };
  }
  return out;
}
