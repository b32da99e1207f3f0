// Where IoT Edge is lenient, so is this parser: the document wrappers the az CLI and older tools write,
// layered-deployment keys, the schema versions edgeAgent and edgeHub read, and the system-module fields
// that have no effect here. Each leniency is a warning, so nothing is dropped without a word. The rules and
// the edgeAgent/edgeHub behaviour they follow are written down in src/translate/README.md ("Leniency").
import type { HubSchemaVersion, ManifestIssue, SchemaVersion } from './model.ts';
import { pointerJoin } from './names.ts';

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export interface LocatedContent {
  /** The modulesContent object: twin name → {"properties.desired": …}. */
  content: JsonObject;
  /** JSON pointer of `content` in the document. */
  prefix: string;
  warnings: ManifestIssue[];
}

/**
 * Where the modulesContent object is in a document, and the pointer prefix of its entries. Accepted:
 * `{modulesContent}`, its legacy spelling `{moduleContent}` (iotedgehubdev and older templates), the az CLI's
 * `{content: {modulesContent}}` (deployment show, layered deployment files) with either spelling, and a bare
 * modulesContent object.
 */
export function locateModulesContent(input: JsonObject): LocatedContent | undefined {
  const legacy = (prefix: string): ManifestIssue => ({
    code: 'IEO_W_LEGACY_MODULE_CONTENT',
    path: prefix,
    message: 'moduleContent is the legacy spelling of modulesContent; it is read as modulesContent',
  });
  if (isObject(input.modulesContent)) return { content: input.modulesContent, prefix: '/modulesContent', warnings: [] };
  if (isObject(input.moduleContent)) return { content: input.moduleContent, prefix: '/moduleContent', warnings: [legacy('/moduleContent')] };
  const wrapper = input.content;
  if (isObject(wrapper)) {
    if (isObject(wrapper.modulesContent)) return { content: wrapper.modulesContent, prefix: '/content/modulesContent', warnings: [] };
    if (isObject(wrapper.moduleContent)) return { content: wrapper.moduleContent, prefix: '/content/moduleContent', warnings: [legacy('/content/moduleContent')] };
  }
  if ('$edgeAgent' in input || '$edgeHub' in input) return { content: input, prefix: '', warnings: [] };
  return undefined;
}

const desiredKey = 'properties.desired';
const layeredPrefix = `${desiredKey}.`;
/** Members whose keys are ids that may themselves contain dots: the rest of a layered key is one id. */
const idMaps = new Set(['modules', 'routes', 'systemModules', 'registryCredentials']);

/** "modules.my.module.settings" is not splittable on dots alone: after an id map, the rest is the id. */
function layeredPath(suffix: string): string[] {
  const parts = suffix.split('.');
  const path: string[] = [];
  while (parts.length > 0) {
    const part = parts.shift() as string;
    path.push(part);
    if (idMaps.has(part) && parts.length > 0) {
      path.push(parts.join('.'));
      break;
    }
  }
  return path;
}

function setAt(target: JsonObject, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as JsonObject;
  }
  node[path[path.length - 1] as string] = structuredClone(value);
}

/**
 * The desired properties of one twin entry. Layered deployments write members as
 * `"properties.desired.modules.<id>": {…}` or `"properties.desired.routes.<name>": "…"`; IoT Hub merges them
 * into the twin's desired properties, and so does this, on top of `properties.desired` when both are given.
 * Undefined when the entry has neither.
 */
export function twinDesired(entry: JsonObject): unknown {
  const layered = Object.keys(entry).filter((k) => k.startsWith(layeredPrefix) && k.length > layeredPrefix.length).sort();
  if (layered.length === 0) return entry[desiredKey];
  const base = entry[desiredKey];
  if (base !== undefined && !isObject(base)) return base;
  const desired: JsonObject = isObject(base) ? structuredClone(base) : {};
  for (const key of layered) setAt(desired, layeredPath(key.slice(layeredPrefix.length)), entry[key]);
  return desired;
}

/** Whether a twin entry carries desired properties, plainly or as layered keys. */
export function hasDesired(entry: JsonObject): boolean {
  return Object.keys(entry).some((k) => k === desiredKey || (k.startsWith(layeredPrefix) && k.length > layeredPrefix.length));
}

/**
 * edgeAgent reads its desired properties when the version parses as major 1 and is at most 1.1.0: "1.0",
 * "1.1", "1.0.0", "1.1.0", and patch levels of 1.0 such as "1.0.3". Anything else it refuses (status 412).
 */
export function normaliseAgentSchemaVersion(value: unknown): SchemaVersion | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^1\.(0|1)(?:\.(\d+))?$/.exec(value.trim());
  if (!m) return undefined;
  if (m[1] === '1' && m[2] !== undefined && Number(m[2]) !== 0) return undefined;
  return `1.${m[1]}` as SchemaVersion;
}

/** edgeHub picks its reader by major 1 and minor 0 to 3, whatever the patch level ("1.2", "1.2.0", "1.3.1"). */
export function normaliseHubSchemaVersion(value: unknown): HubSchemaVersion | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^1\.([0-3])(?:\.\d+)?$/.exec(value.trim());
  return m ? (`1.${m[1]}` as HubSchemaVersion) : undefined;
}

/** $edgeHub members of schema 1.2 and later that this operator's hub does not implement, and why. */
const unsupportedHubMembers: Record<string, { since: HubSchemaVersion; what: string }> = {
  mqttBroker: { since: '1.2', what: "edgeHub's MQTT broker settings (topic authorizations and bridges) are not implemented here" },
  integrity: { since: '1.3', what: 'signed deployments are not verified here' },
};

/**
 * $edgeHub desired properties without the members translation does not use, with a warning for each.
 * edgeHub reads mqttBroker from schema 1.2 and integrity from 1.3, and ignores them in older schemas.
 */
export function hubLeniency(hub: JsonObject, hubBase: string, version: HubSchemaVersion): { hub: JsonObject; warnings: ManifestIssue[] } {
  const warnings: ManifestIssue[] = [];
  const kept: JsonObject = {};
  for (const [key, value] of Object.entries(hub)) {
    const known = unsupportedHubMembers[key];
    if (!known) {
      kept[key] = value;
      continue;
    }
    const honoured = version >= known.since;
    warnings.push({
      code: 'IEO_W_HUB_FEATURE_IGNORED',
      path: pointerJoin(hubBase, key),
      message: honoured
        ? `$edgeHub ${key} (schema ${known.since}) is ignored: ${known.what}`
        : `$edgeHub ${key} is ignored: it needs schemaVersion ${known.since} or later, and edgeHub ignores it at ${version}`,
    });
  }
  return { hub: kept, warnings };
}

const systemModuleKeys: Record<'edgeAgent' | 'edgeHub', ReadonlySet<string>> = {
  edgeAgent: new Set(['type', 'imagePullPolicy', 'settings', 'env']),
  edgeHub: new Set(['version', 'type', 'status', 'restartPolicy', 'startupOrder', 'imagePullPolicy', 'settings', 'env']),
};
const settingsKeys = /^(image|createOptions|createOptions[0-9]{2})$/;

/**
 * edgeAgent reads the system modules leniently: unknown members are skipped, and edgeAgent's own env only
 * configures the edgeAgent container, which is never deployed here (the operator is edgeAgent). Those are
 * removed from a copy of the $edgeAgent desired properties, each with a warning; the copy is validated.
 */
export function systemModuleLeniency(agent: JsonObject, agentBase: string): { agent: JsonObject; warnings: ManifestIssue[] } {
  const systemModules = agent.systemModules;
  if (!isObject(systemModules)) return { agent, warnings: [] };
  const warnings: ManifestIssue[] = [];
  const ignored = (path: string, message: string) => warnings.push({ code: 'IEO_W_SYSTEM_MODULE_FIELD_IGNORED', path, message });
  const cleaned: JsonObject = { ...systemModules };
  for (const id of ['edgeAgent', 'edgeHub'] as const) {
    const module = systemModules[id];
    if (!isObject(module)) continue;
    const base = pointerJoin(agentBase, 'systemModules', id);
    const copy: JsonObject = {};
    for (const [key, value] of Object.entries(module)) {
      if (systemModuleKeys[id].has(key)) copy[key] = value;
      else ignored(pointerJoin(base, key), `${id} member '${key}' is not read by edgeAgent and is ignored`);
    }
    if (isObject(module.settings)) {
      const settings: JsonObject = {};
      for (const [key, value] of Object.entries(module.settings)) {
        if (settingsKeys.test(key)) settings[key] = value;
        else ignored(pointerJoin(base, 'settings', key), `${id} settings '${key}' has no effect here and is ignored`);
      }
      copy.settings = settings;
    }
    if (id === 'edgeAgent' && isObject(module.env) && Object.keys(module.env).length > 0) {
      for (const name of Object.keys(module.env).sort()) {
        ignored(pointerJoin(base, 'env', name), `edgeAgent env ${name} configures the edgeAgent container, which is not deployed: the operator plays edgeAgent`);
      }
      delete copy.env;
    }
    cleaned[id] = copy;
  }
  return { agent: { ...agent, systemModules: cleaned }, warnings };
}
