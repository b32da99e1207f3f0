// From the $edgeAgent and $edgeHub twins' desired properties to an EdgeDeployment spec, and the rules
// that keep the local copy of the desired properties in step with the twin's $version.
import type { V1Secret } from '@kubernetes/client-node';
import type { EdgeDeploymentSpec, LastDesiredStatus } from '../api/edge-deployment.ts';
import { errorCatalogue, type ErrorCode } from '../api/errors.ts';
import type { ManifestIssue } from '../manifest/model.ts';
import { resourceFromManifest } from '../manifest/resource.ts';

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * What to do with a desired-properties notification, given the $version of the desired state held:
 * the next version is applied as a patch; an older or equal one is stale (already in a later GET);
 * a gap, a missing version, or nothing held yet means a notification was lost, so the twin is read again.
 */
export type PatchDecision = 'apply' | 'ignore' | 'refetch';

export function decidePatch(heldVersion: number | undefined, patchVersion: unknown): PatchDecision {
  if (heldVersion === undefined) return 'refetch';
  if (typeof patchVersion !== 'number' || !Number.isInteger(patchVersion)) return 'refetch';
  if (patchVersion <= heldVersion) return 'ignore';
  return patchVersion === heldVersion + 1 ? 'apply' : 'refetch';
}

/**
 * A twin patch applied to a desired document: objects merge member by member, `null` deletes, anything
 * else (arrays included) replaces. Neither input is changed.
 */
export function mergeDesiredPatch(base: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isJsonObject(value) && isJsonObject(out[key])) out[key] = mergeDesiredPatch(out[key], value);
    else if (isJsonObject(value)) out[key] = mergeDesiredPatch({}, value);
    else out[key] = structuredClone(value);
  }
  return out;
}

/** The desired properties without the twin's own bookkeeping ($version, $metadata), at every depth. */
export function stripTwinMetadata(desired: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(desired)) {
    if (key === '$version' || key === '$metadata') continue;
    out[key] = isJsonObject(value) ? stripTwinMetadata(value) : value;
  }
  return out;
}

export function desiredVersionOf(desired: JsonObject): number | undefined {
  const v = desired.$version;
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

export interface DesiredSpec {
  /** spec.agent and spec.hub, as twin sync applies them (spec.iotHub and spec.deviceId stay the user's). */
  spec: Pick<EdgeDeploymentSpec, 'agent' | 'hub'>;
  /** The registry-password Secret passwordSecretRef points to, when the desired state has passwords. */
  secrets: V1Secret[];
}

export interface DesiredTarget {
  namespace: string;
  name: string;
}

export type DesiredOutcome = { ok: true; value: DesiredSpec } | { ok: false; status: LastDesiredStatus; issues: ManifestIssue[] };

/**
 * The twins' desired properties as an EdgeDeployment spec. `hubDesired` undefined leaves spec.hub out
 * (the binding cannot read the $edgeHub twin). Registry passwords move into a Secret, never the spec.
 * Invalid desired properties give the edgeAgent status code and a description naming each faulty path.
 */
export function specFromDesired(agentDesired: JsonObject, hubDesired: JsonObject | undefined, target: DesiredTarget): DesiredOutcome {
  const modulesContent: JsonObject = { $edgeAgent: { 'properties.desired': stripTwinMetadata(agentDesired) } };
  if (hubDesired) modulesContent.$edgeHub = { 'properties.desired': stripTwinMetadata(hubDesired) };
  const converted = resourceFromManifest({ modulesContent }, { namespace: target.namespace, name: target.name });
  if (!converted.ok) {
    const issues = converted.errors.map((i) => ({ ...i, path: twinPath(i.path), message: i.message.split(i.path).join(twinPath(i.path)) }));
    return { ok: false, status: statusForIssues(issues), issues };
  }
  const { agent, hub } = converted.value.resource.spec ?? {};
  return { ok: true, value: { spec: { agent, ...(hub ? { hub } : {}) }, secrets: converted.value.secrets } };
}

/** `/modulesContent/$edgeAgent/properties.desired/…` → `$edgeAgent/…`: the twin and path the user edits. */
export function twinPath(path: string): string {
  const match = /^\/modulesContent\/(\$edgeAgent|\$edgeHub)\/properties\.desired(.*)$/.exec(path);
  return match ? `${match[1]}${match[2]}` : path;
}

/** lastDesiredStatus for rejected desired properties: the first issue's edgeAgent code, every issue described. */
export function statusForIssues(issues: readonly ManifestIssue[]): LastDesiredStatus {
  const first = issues[0]?.code;
  const code = first !== undefined && first in errorCatalogue ? errorCatalogue[first as ErrorCode].edgeAgentStatus : 400;
  return { code: code as LastDesiredStatus['code'], description: describe(issues) };
}

/** Twin strings are limited to 4 KB; a long list of issues is cut with a count. */
export function describe(issues: readonly ManifestIssue[], limit = 3500): string {
  let text = '';
  for (const [i, issue] of issues.entries()) {
    const line = `${issue.code} ${issue.path}: ${issue.message}`;
    if (text.length + line.length + 1 > limit) return `${text}\n… and ${issues.length - i} more`;
    text += (text ? '\n' : '') + line;
  }
  return text;
}
