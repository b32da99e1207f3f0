// Microsoft's IoT Edge on Kubernetes preview (2019-2021) read Kubernetes settings from
// createOptions["k8s-experimental"]. Manifests written for it must deploy here unchanged, so this module
// reads that section the way the preview's parser did, and lets the `k8s` block accept the same shapes:
// - its keys without regard to case (nodeSelector, resources, volumes, securityContext, serviceOptions, strategy);
// - a null or "" value as absent; an unknown key or a section that is not an object ignored with a warning;
// - volumes as a list of {volume, volumeMounts[]} pairs;
// - securityContext as the POD's securityContext;
// - serviceOptions.type in any case ("nodeport"), an unknown type ignored (the default type applies);
// - Kubernetes objects read by their type (generated/k8s-fields.ts): field names in any case, booleans and
//   numbers written as strings ("readOnly": "true") read as their values.
// Where k8s and k8s-experimental set the same field, k8s wins with a warning.
import { parseK8sExtensions, type K8sExtensions } from './extensions.ts';
import type { Issues } from './issues.ts';
import { kubernetesFields } from './generated/k8s-fields.ts';
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
/** The preview's securityContext is a V1PodSecurityContext: these are its fields. */
const podSecurityFields = Object.keys(kubernetesFields.V1PodSecurityContext ?? {});

/** The Kubernetes type each top-level key of a block holds (k8s-experimental's securityContext is the pod's). */
const blockKinds: Record<string, string> = {
  volumeMounts: 'list:V1VolumeMount',
  securityContext: 'V1SecurityContext',
  podSecurityContext: 'V1PodSecurityContext',
  resources: 'V1ResourceRequirements',
  strategy: 'V1DeploymentStrategy',
  tolerations: 'list:V1Toleration',
  affinity: 'V1Affinity',
  nodeSelector: 'map',
};

/** The field a JSON pointer ends at, unescaped. */
const lastField = (at: string) => at.slice(at.lastIndexOf('/') + 1).replace(/~1/g, '/').replace(/~0/g, '~');

const coerced = (issues: Issues, at: string, value: unknown, as: unknown) =>
  issues.warn('IEO_W_COERCED_VALUE', at,
    `${lastField(at)} ${JSON.stringify(value)} is read as ${typeof as === 'string' ? `the string "${as}"` : `the ${typeof as} ${String(as)}`}`);

/** Own members only: a key such as "valueOf" or "constructor" names no field. */
const own = <T>(table: Record<string, T> | undefined, key: string): T | undefined => (table && Object.hasOwn(table, key) ? table[key] : undefined);

/**
 * A value read as the Kubernetes type `kind` the way the preview's JSON reader read it: object keys matched
 * to the type's fields without regard to case, null members dropped, "true"/"false" and digit strings read
 * as booleans and integers, numbers and booleans in string fields read as strings (each with a warning).
 * Keys the type does not have are kept as written, for the parser or the API server to judge.
 */
export function readKubernetes(value: unknown, kind: string, path: string, issues: Issues): unknown {
  if (value === null || value === undefined) return value;
  if (kind.startsWith('list:')) {
    return Array.isArray(value) ? value.map((item, i) => readKubernetes(item, kind.slice(5), `${path}/${i}`, issues)) : value;
  }
  switch (kind) {
    case 'boolean':
      if (typeof value === 'string' && /^\s*(true|false)\s*$/i.test(value)) {
        const read = value.trim().toLowerCase() === 'true';
        coerced(issues, path, value, read);
        return read;
      }
      return value;
    case 'integer':
    case 'number':
    case 'int-or-string':
      if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) {
        coerced(issues, path, value, Number(value));
        return Number(value);
      }
      return value;
    case 'string':
      if (typeof value === 'number' || typeof value === 'boolean') {
        coerced(issues, path, value, String(value));
        return String(value);
      }
      return value;
    case 'map':
      return isObject(value) ? readStringMap(value, path, issues) : value;
    default:
      return isObject(value) ? readObject(value, own(kubernetesFields, kind), path, issues) : value;
  }
}

/** Map values are strings: JSON numbers (quantities such as `"nvidia.com/gpu": 1`) are taken as written, booleans with a warning. */
function readStringMap(value: Json, path: string, issues: Issues): Json {
  const out: Json = {};
  for (const [key, member] of Object.entries(value)) {
    if (typeof member === 'boolean') coerced(issues, `${path}${pointer(key)}`, member, String(member));
    out[key] = typeof member === 'number' || typeof member === 'boolean' ? String(member) : member;
  }
  return out;
}

function readObject(value: Json, fields: Record<string, string> | undefined, path: string, issues: Issues): Json {
  if (!fields) return value;
  const names = Object.keys(fields);
  const out: Json = {};
  for (const [key, member] of Object.entries(value)) {
    if (member === null || member === undefined) continue;
    const name = known(names, key) ?? key;
    const fieldKind = own(fields, name);
    out[name] = fieldKind ? readKubernetes(member, fieldKind, `${path}${pointer(key)}`, issues) : member;
  }
  return out;
}

const isPair = (entry: Json) => Object.keys(entry).some((k) => k.toLowerCase() === 'volume' || k.toLowerCase() === 'volumemounts');

/** A volumes entry read in its own shape: a preview pair {volume, volumeMounts[]} or a plain volume. */
function readVolumeEntry(entry: unknown, path: string, issues: Issues): unknown {
  if (!isObject(entry)) return entry;
  if (!isPair(entry)) return readKubernetes(entry, 'V1Volume', path, issues);
  const pair = respell(entry, ['volume', 'volumeMounts']);
  const volumeAt = `${path}/${Object.keys(entry).find((k) => k.toLowerCase() === 'volume') ?? 'volume'}`;
  const mountsAt = `${path}/${Object.keys(entry).find((k) => k.toLowerCase() === 'volumemounts') ?? 'volumeMounts'}`;
  return {
    ...(pair.volume !== undefined ? { volume: readKubernetes(pair.volume, 'V1Volume', volumeAt, issues) } : {}),
    ...(pair.volumeMounts !== undefined ? { volumeMounts: readKubernetes(pair.volumeMounts, 'list:V1VolumeMount', mountsAt, issues) } : {}),
  };
}

/** Every Kubernetes object of a block read as its type; `podLevel` reads securityContext as the pod's (the preview). */
function readBlockValues(block: Json, raw: Json, path: string, podLevel: boolean, issues: Issues): void {
  const writtenAs = (key: string) => Object.keys(raw).find((k) => k.toLowerCase() === key.toLowerCase()) ?? key;
  for (const key of Object.keys(block)) {
    const at = `${path}${pointer(writtenAs(key))}`;
    if (key === 'volumes' && Array.isArray(block.volumes)) block.volumes = block.volumes.map((v, i) => readVolumeEntry(v, `${at}/${i}`, issues));
    else if (key === 'probes' && isObject(block.probes)) {
      const probes = respell(block.probes, ['liveness', 'readiness', 'startup']);
      for (const probe of Object.keys(probes)) probes[probe] = readKubernetes(probes[probe], 'V1Probe', `${at}${pointer(probe)}`, issues);
      block.probes = probes;
    } else {
      const kind = key === 'securityContext' && podLevel ? 'V1PodSecurityContext' : own(blockKinds, key);
      if (kind) block[key] = readKubernetes(block[key], kind, at, issues);
    }
  }
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

/** strategy.type in any case; its fields are read by readKubernetes. */
function normaliseStrategy(block: Json): void {
  if (isObject(block.strategy) && typeof block.strategy.type === 'string') {
    block.strategy = { ...block.strategy, type: known(strategyTypes, block.strategy.type) ?? block.strategy.type };
  }
}

/** What both blocks share: the preview's spellings, shapes and string scalars. `preview` reads as the preview did. */
function normaliseBlock(raw: Json, path: string, names: readonly string[], preview: boolean, issues: Issues, written: Json = raw): Json {
  const block = respell(raw, names);
  // Values are read before volume pairs are flattened, so that warnings point into the document as written.
  readBlockValues(block, written, path, preview, issues);
  normaliseStrategy(block);
  flattenVolumes(block);
  normaliseServiceOptions(block, path, preview, issues);
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
  const recognised: Json = {};
  for (const [key, value] of Object.entries(respell(raw, previewKeys))) {
    if ((previewKeys as readonly string[]).includes(key)) recognised[key] = value;
    else {
      issues.warn('IEO_W_K8S_EXPERIMENTAL', `${path}${pointer(key)}`,
        `k8s-experimental.${key} is not a setting the preview knew (${previewKeys.join(', ')}); it is ignored, as the preview did (write it in the k8s block)`);
    }
  }
  const block = normaliseBlock(recognised, path, previewKeys, true, issues, raw);
  // The preview's securityContext is the pod's (a V1PodSecurityContext), not the container's.
  if (isObject(block.securityContext)) {
    const pod = { ...block.securityContext };
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
