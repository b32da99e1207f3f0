// Reading the desired state a subcommand is given: a deployment manifest (deployment.json, JSON or
// YAML) or an EdgeDeployment (YAML or JSON, possibly among other documents such as convert's Secret).
import { loadAll } from 'js-yaml';
import type { EdgeDeployment } from '../api/edge-deployment.ts';
import { edgeDeploymentApiVersion, edgeDeploymentKind } from '../api/edge-deployment.ts';
import type { DeploymentManifest, ManifestIssue, Outcome } from '../manifest/model.ts';
import { parseDeploymentManifest, parseManifestText } from '../manifest/parse.ts';
import { issueAtResourcePath, manifestFromResource } from '../manifest/resource.ts';
import { defaultSettings, settingsWith, translate } from '../translate/index.ts';
import type { OperatorSettings, TranslateInput, TranslationResult } from '../translate/index.ts';
import { CliError } from './io.ts';

export type DesiredStateSource =
  | { kind: 'manifest'; document: unknown }
  | { kind: 'resource'; resource: EdgeDeployment };

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function textIssue(message: string): Outcome<never> {
  return { ok: false, errors: [{ code: 'IEO_MANIFEST_JSON', path: '', message }], warnings: [] };
}

/** The documents of JSON text or (multi-document) YAML text. */
function documentsOf(text: string): Outcome<unknown[]> {
  const body = text.replace(/^\uFEFF/, '');
  if (/^\s*[{[]/.test(body)) {
    const parsed = parseManifestText(body);
    return parsed.ok ? { ok: true, value: [parsed.value], warnings: [] } : parsed;
  }
  try {
    const documents = loadAll(body).filter((d) => d !== null && d !== undefined);
    return documents.length === 0 ? textIssue('the input is empty') : { ok: true, value: documents, warnings: [] };
  } catch (error) {
    const e = error as { reason?: string; message?: string; mark?: { line: number; column: number } };
    const reason = e.reason ?? e.message ?? String(error);
    return textIssue(e.mark ? `invalid YAML at line ${e.mark.line + 1}, column ${e.mark.column + 1}: ${reason}` : `invalid YAML: ${reason}`);
  }
}

/** Decides what the text holds: one EdgeDeployment (other kinds beside it are ignored) or one deployment manifest. */
export function desiredStateSource(text: string): Outcome<DesiredStateSource> {
  const documents = documentsOf(text);
  if (!documents.ok) return documents;
  const resources = documents.value.filter((d) => isObject(d) && d.kind === edgeDeploymentKind);
  if (resources.length > 1) return textIssue(`the input holds ${resources.length} EdgeDeployments; give one at a time`);
  const [resource] = resources;
  if (isObject(resource)) {
    if (resource.apiVersion !== edgeDeploymentApiVersion) {
      return { ok: false, errors: [{ code: 'IEO_MANIFEST_SCHEMA', path: '/apiVersion', message: `an EdgeDeployment has apiVersion ${edgeDeploymentApiVersion}, not ${JSON.stringify(resource.apiVersion)}` }], warnings: [] };
    }
    if (!isObject(resource.spec)) return { ok: false, errors: [{ code: 'IEO_MANIFEST_SCHEMA', path: '/spec', message: 'the EdgeDeployment has no spec object' }], warnings: [] };
    return { ok: true, value: { kind: 'resource', resource: { ...resource, metadata: isObject(resource.metadata) ? resource.metadata : {} } as unknown as EdgeDeployment }, warnings: [] };
  }
  if (documents.value.length > 1) return textIssue(`the input holds ${documents.value.length} YAML documents and no EdgeDeployment; a deployment manifest is one document`);
  return { ok: true, value: { kind: 'manifest', document: documents.value[0] }, warnings: [] };
}

/** The parsed input, to find the passwords it holds. */
export function sourceDocument(source: DesiredStateSource): unknown {
  return source.kind === 'manifest' ? source.document : source.resource;
}

export function manifestOf(source: DesiredStateSource): Outcome<DeploymentManifest> {
  return source.kind === 'manifest' ? parseDeploymentManifest(source.document) : manifestFromResource(source.resource.spec);
}

export interface TranslationTarget {
  namespace: string;
  deviceId: string;
  ownerName: string;
  hubHostName: string;
  settings: OperatorSettings;
}

/** Stands in for passwords held in Secrets, which an offline command cannot read; never a real password. */
export const redactedPassword = 'REDACTED';

/**
 * Translates as the operator would. Passwords kept in Secrets are replaced by a placeholder, so a
 * resource still renders its pull Secrets' shape.
 */
export function translateOffline(manifest: DeploymentManifest, target: TranslationTarget, source: DesiredStateSource): Outcome<TranslationResult> {
  const registryPasswords: Record<string, string> = {};
  for (const [id, credential] of Object.entries(manifest.agent.runtime.settings.registryCredentials)) {
    if (credential.password === undefined) registryPasswords[id] = redactedPassword;
  }
  const input: TranslateInput = { manifest, ...target, registryPasswords };
  const outcome = translate(input);
  if (source.kind === 'manifest') return outcome;
  return outcome.ok ? { ...outcome, warnings: issuesAtResourcePath(outcome.warnings) } : { ok: false, errors: issuesAtResourcePath(outcome.errors), warnings: issuesAtResourcePath(outcome.warnings) };
}

/** Operator settings from a YAML or JSON file's text, over the defaults; unknown keys and wrong types are refused. */
export function settingsFromText(text: string, file: string): OperatorSettings {
  const parsed = parseManifestText(text);
  if (!parsed.ok) throw new CliError(`${file}: ${parsed.errors.map((e) => e.message).join('; ')}`, 1);
  if (parsed.value === null || parsed.value === undefined) return defaultSettings;
  if (!isObject(parsed.value)) throw new CliError(`${file}: operator settings must be a mapping`, 1);
  const problems: string[] = [];
  const check = (value: Record<string, unknown>, defaults: Record<string, unknown>, at: string, optional: string[]) => {
    for (const [key, v] of Object.entries(value)) {
      const expected = defaults[key];
      if (expected === undefined && !optional.includes(key)) problems.push(`${at}${key}: unknown setting (known: ${[...Object.keys(defaults), ...optional].join(', ')})`);
      else if (expected !== undefined && typeof expected !== typeof v) problems.push(`${at}${key}: must be a ${typeof expected}`);
      else if (expected === undefined && typeof v !== 'string') problems.push(`${at}${key}: must be a string`);
    }
  };
  const { storage, ...rest } = parsed.value;
  check(rest, defaultSettings as unknown as Record<string, unknown>, '', []);
  if (storage !== undefined) {
    if (!isObject(storage)) problems.push('storage: must be a mapping');
    else check(storage, defaultSettings.storage as unknown as Record<string, unknown>, 'storage.', ['storageClassName']);
  }
  if (problems.length > 0) throw new CliError(`${file}: ${problems.join('; ')}`, 1);
  return settingsWith(parsed.value as Parameters<typeof settingsWith>[0]);
}

export interface TargetOptions {
  namespace?: string;
  name?: string;
  deviceId?: string;
  hubHostName?: string;
}

/**
 * Where the desired state would run: options first, then the resource's own metadata and spec, then the
 * defaults the operator applies (device id = namespace name, no IoT Hub host).
 */
export function targetFor(source: DesiredStateSource, options: TargetOptions, settings: OperatorSettings): TranslationTarget {
  const resource = source.kind === 'resource' ? source.resource : undefined;
  const namespace = options.namespace ?? resource?.metadata.namespace ?? 'default';
  return {
    namespace,
    deviceId: options.deviceId ?? resource?.spec.deviceId ?? namespace,
    ownerName: options.name ?? resource?.metadata.name ?? namespace,
    hubHostName: options.hubHostName ?? resource?.spec.iotHub?.hostName ?? '',
    settings,
  };
}

/** Every string under a key named like "password" in the input, so output can be scrubbed of them. */
export function passwordsIn(value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) passwordsIn(item, found);
  else if (isObject(value)) {
    for (const [key, member] of Object.entries(value)) {
      if (/password/i.test(key) && typeof member === 'string' && member.length > 0) found.add(member);
      else passwordsIn(member, found);
    }
  }
  return found;
}

/** Replaces each of `secrets` in text by ***; a safety net for messages that quote input values. */
export function scrubber(secrets: Set<string>): (text: string) => string {
  const list = [...secrets].sort((a, b) => b.length - a.length);
  return (text) => list.reduce((acc, secret) => acc.split(secret).join('***'), text);
}

function issuesAtResourcePath(issues: ManifestIssue[]): ManifestIssue[] {
  return issues.map(issueAtResourcePath);
}
