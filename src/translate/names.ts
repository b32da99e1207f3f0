// Kubernetes names and labels derived from IoT Edge ids. Module ids allow characters and lengths that
// Kubernetes names do not, so names are sanitised; the original id is kept in an annotation.
import { createHash } from 'node:crypto';

export const labelKeys = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  partOf: 'app.kubernetes.io/part-of',
  module: 'iotedge-operator.io/module',
  device: 'iotedge-operator.io/device',
  /** The controller selects an EdgeDeployment's children by this label (see ownerSelector). */
  edgeDeployment: 'iotedge-operator.io/edge-deployment',
} as const;

export const annotationKeys = {
  moduleId: 'iotedge-operator.io/module-id',
  deviceId: 'iotedge-operator.io/device-id',
  /** On PVCs: "true" means the controller neither owns nor prunes the claim. */
  retain: 'iotedge-operator.io/retain',
  /** On edgeHub's pod template: hash of the routes ConfigMap, so a route change rolls edgeHub. */
  configHash: 'iotedge-operator.io/config-hash',
  /** On bare Pods: hash of the desired pod, since a Pod's spec cannot be updated in place. */
  specHash: 'iotedge-operator.io/spec-hash',
  /**
   * On pod templates and bare Pods: the module's desired `version`. edgeAgent recreates a module whose version
   * changes (users bump it to re-pull a moved tag), so a new version rolls the Deployment or replaces the Pod.
   */
  moduleVersion: 'iotedge-operator.io/module-version',
  /** On PVCs: the Docker volume name the claim stands for. */
  volumeName: 'iotedge-operator.io/volume-name',
} as const;

export const managedBy = 'iotedge-operator';

/**
 * Module names leave room for the "-ports" suffix of the port-binding Service, so every name derived from
 * a module stays a valid 63-character DNS label.
 */
export const maxModuleNameLength = 57;

export function shortHash(text: string, length = 6): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * An RFC 1035 label (what a Service name must be, the strictest of the names a module gets): lowercase,
 * runs of other characters become one '-', no '-' at either end, a letter first (unless letterFirst is
 * false: an RFC 1123 label, enough for PVCs and volumes), at most maxLength.
 * Anything shortened or emptied gets a hash of the original so distinct ids stay distinct.
 */
export function sanitizeDnsLabel(raw: string, maxLength = 63, letterFirst = true): string {
  let name = raw.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '');
  if (name === '') return `m-${shortHash(raw, 8)}`.slice(0, maxLength);
  if (letterFirst && !/^[a-z]/.test(name)) name = `m-${name}`;
  if (name.length > maxLength) name = `${name.slice(0, maxLength - 7).replace(/-+$/, '')}-${shortHash(raw)}`;
  return name;
}

export function moduleName(moduleId: string): string {
  return sanitizeDnsLabel(moduleId, maxModuleNameLength);
}

const labelValuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A valid label value: the input itself when it is one, else a sanitised, hash-suffixed form. */
export function sanitizeLabelValue(raw: string): string {
  if (raw.length <= 63 && labelValuePattern.test(raw)) return raw;
  let value = raw.replace(/[^-A-Za-z0-9_.]+/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  const suffix = shortHash(raw);
  value = value.slice(0, 63 - suffix.length - 1).replace(/[^A-Za-z0-9]+$/, '');
  return value === '' ? suffix : `${value}-${suffix}`;
}

/** The label selector (string form) that picks every object made for one EdgeDeployment. */
export function ownerSelector(ownerName: string): string {
  return `${labelKeys.edgeDeployment}=${sanitizeLabelValue(ownerName)}`;
}

export interface LabelContext {
  ownerName: string;
  deviceId: string;
}

/** Labels every object of an EdgeDeployment carries; module objects add the module's own. */
export function commonLabels(ctx: LabelContext, component: string): Record<string, string> {
  const owner = sanitizeLabelValue(ctx.ownerName);
  return {
    [labelKeys.component]: component,
    [labelKeys.device]: sanitizeLabelValue(ctx.deviceId),
    [labelKeys.edgeDeployment]: owner,
    [labelKeys.instance]: owner,
    [labelKeys.managedBy]: managedBy,
    [labelKeys.partOf]: owner,
  };
}

export function moduleLabels(ctx: LabelContext, name: string): Record<string, string> {
  return { ...commonLabels(ctx, 'edge-module'), [labelKeys.name]: name, [labelKeys.module]: name };
}

/** The immutable selector of a module's Deployment and Services: this deployment, this module. */
export function moduleSelector(ctx: LabelContext, name: string): Record<string, string> {
  return { [labelKeys.edgeDeployment]: sanitizeLabelValue(ctx.ownerName), [labelKeys.module]: name };
}

/** JSON pointer segment escaping (RFC 6901). */
export function pointer(...segments: (string | number)[]): string {
  return segments.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

const qualifiedNamePart = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Whether `key` is a valid annotation/label key: [prefix/]name. */
export function isQualifiedName(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  if (name.length === 0 || name.length > 63 || !qualifiedNamePart.test(name)) return false;
  return prefix === undefined || (prefix.length <= 253 && dnsSubdomain.test(prefix));
}

/** A name for an object derived from a Docker volume name (PVCs may start with a digit). */
export function volumeClaimName(volume: string): string {
  return sanitizeDnsLabel(volume, 63, false);
}

/**
 * A valid annotation key made from a Docker label key, the way Microsoft's preview cleaned them: the prefix
 * (before the first '/') lowercased, each of its dot-separated labels trimmed to start and end with a letter
 * or digit and stripped of other characters than [a-z0-9-]; the name trimmed to start and end with a letter
 * or digit and stripped of other characters than [A-Za-z0-9-_.]. "$edgeAgent" becomes "edgeAgent" and
 * "K8S.IO/---a-0--" becomes "k8s.io/a-0". Where the preview failed (nothing left, too long), parts are
 * dropped or shortened with a hash of the original key, so every key gives a valid one. Valid keys are kept.
 */
export function cleanAnnotationKey(key: string): string {
  if (isQualifiedName(key)) return key;
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? '' : cleanDnsSubdomain(key.slice(0, slash));
  let name = trimToAlphanumeric(slash < 0 ? key : key.slice(slash + 1)).replace(/[^-A-Za-z0-9_.]/g, '');
  if (name === '') name = `label-${shortHash(key)}`;
  if (name.length > 63) name = `${name.slice(0, 56).replace(/[^A-Za-z0-9]+$/, '')}-${shortHash(key)}`;
  return prefix === '' ? name : `${prefix}/${name}`;
}

function trimToAlphanumeric(text: string): string {
  return text.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
}

/** A DNS subdomain from free text: lowercased, labels cleaned, empty labels dropped, at most 253 characters. */
function cleanDnsSubdomain(text: string): string {
  const labels = text
    .toLowerCase()
    .split('.')
    .map((label) => trimToAlphanumeric(label.replace(/[^-a-z0-9]/g, '')).slice(0, 63).replace(/-+$/, ''))
    .filter((label) => label !== '');
  const joined = labels.join('.');
  return joined.length <= 253 ? joined : `${joined.slice(0, 246).replace(/[-.]+$/, '')}-${shortHash(text)}`;
}
