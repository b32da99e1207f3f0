// From a deployment manifest (deployment.json, its modulesContent, YAML or JSON text, or the two
// desired-property objects twin sync receives) to the normalised DeploymentManifest: versions
// checked, twin limits checked, schema validated, module names checked, createOptions joined and
// parsed, defaults applied, routes parsed. Every fault is collected, each with its document path.

import { nestingIssue, textSizeIssue } from './input-limits.ts';
import { load as loadYaml } from 'js-yaml';
import type {
  AgentDesired,
  DeploymentManifest,
  DockerCreateOptions,
  HubDesired,
  ManifestIssue,
  ModuleSpec,
  Outcome,
  RegistryCredential,
  Route,
  SchemaVersion,
  HubSchemaVersion,
} from './model.ts';
import { defaultStartupOrder } from './model.ts';
import { checkTwinLimits } from './limits.ts';
import { checkUserModuleName, pointerJoin } from './names.ts';
import { hasDesired, hubLeniency, locateModulesContent, normaliseAgentSchemaVersion, normaliseHubSchemaVersion, systemModuleLeniency, twinDesired } from './lenient.ts';
import { checkRoutes } from './routes.ts';
import { validateAgentDesired, validateHubDesired } from './schema.ts';

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function failure<T>(errors: ManifestIssue[], warnings: ManifestIssue[] = []): Outcome<T> {
  return { ok: false, errors, warnings };
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

/**
 * JSON or YAML text to a value. Text whose first character is '{' or '[' is read as JSON (its
 * errors are clearer than YAML's for JSON documents); anything else as YAML.
 */
export function parseManifestText(text: string): Outcome<unknown> {
  const tooLarge = textSizeIssue(text);
  if (tooLarge) return failure([tooLarge]);
  const body = text.replace(/^\uFEFF/, '');
  const start = body.search(/\S/);
  if (start < 0) return failure([{ code: 'IEO_MANIFEST_JSON', path: '', message: 'the manifest is empty' }]);
  if (body[start] === '{' || body[start] === '[') {
    try {
      return withinDepth(JSON.parse(body) as unknown);
    } catch (err) {
      const reason = (err as Error).message;
      const position = /at position (\d+)/.exec(reason);
      const atEnd = /end of JSON input/.test(reason) ? body.length : undefined;
      const offset = position ? Number(position[1]) : atEnd;
      const where = offset !== undefined ? lineColumn(body, offset) : undefined;
      const detail = reason.replace(/ in JSON at position \d+(?: \(line \d+ column \d+\))?/, '');
      return failure([{
        code: 'IEO_MANIFEST_JSON',
        path: '',
        message: where ? `invalid JSON at line ${where.line}, column ${where.column}: ${detail}` : `invalid JSON: ${detail}`,
      }]);
    }
  }
  try {
    return withinDepth(loadYaml(body));
  } catch (err) {
    const e = err as { reason?: string; message?: string; mark?: { line: number; column: number } };
    const reason = e.reason ?? e.message ?? String(err);
    return failure([{
      code: 'IEO_MANIFEST_JSON',
      path: '',
      message: e.mark ? `invalid YAML at line ${e.mark.line + 1}, column ${e.mark.column + 1}: ${reason}` : `invalid YAML: ${reason}`,
    }]);
  }
}

function withinDepth(value: unknown): Outcome<unknown> {
  const tooDeep = nestingIssue(value);
  return tooDeep ? failure([tooDeep]) : { ok: true, value, warnings: [] };
}

/**
 * Parses a whole deployment manifest: a deployment.json object (`{modulesContent: …}`), just its
 * modulesContent, an `az iot edge deployment show` object (`{content: {modulesContent: …}}`), or
 * JSON/YAML text of any of those. Paths in issues are JSON pointers from the root of that input.
 */
export function parseDeploymentManifest(input: unknown): Outcome<DeploymentManifest> {
  if (typeof input === 'string') {
    const text = parseManifestText(input);
    if (!text.ok) return text;
    return parseDeploymentManifest(text.value);
  }
  const tooDeep = nestingIssue(input);
  if (tooDeep) return failure([tooDeep]);
  if (!isObject(input)) {
    return failure([{ code: 'IEO_MANIFEST_SCHEMA', path: '', message: `a deployment manifest must be a JSON object, not ${Array.isArray(input) ? 'an array' : String(input)}` }]);
  }
  const located = locateModulesContent(input);
  if (!located) {
    return failure([{ code: 'IEO_EMPTY_CONFIG', path: '/modulesContent', message: 'no modulesContent with a $edgeAgent configuration was found' }]);
  }
  const { content, prefix } = located;
  const errors: ManifestIssue[] = [];
  const twin = (name: string): unknown => {
    const entry = content[name];
    if (entry === undefined) return undefined;
    if (!isObject(entry)) {
      errors.push({ code: 'IEO_MANIFEST_SCHEMA', path: pointerJoin(prefix, name), message: `${name} must be an object holding "properties.desired"` });
      return undefined;
    }
    return twinDesired(entry);
  };
  // Module twins other than the system ones carry the modules' own desired properties; only their limits concern us here.
  for (const name of Object.keys(content)) {
    if (name === '$edgeAgent' || name === '$edgeHub') continue;
    const desired = twin(name);
    const path = pointerJoin(prefix, name, 'properties.desired');
    if (desired === undefined) {
      if (isObject(content[name])) errors.push({ code: 'IEO_MANIFEST_SCHEMA', path, message: `the module twin ${name} has no "properties.desired"` });
    } else if (!isObject(desired)) {
      errors.push({ code: 'IEO_MANIFEST_SCHEMA', path, message: `the desired properties of ${name} must be an object` });
    } else {
      errors.push(...checkTwinLimits(desired, path, name));
    }
  }
  const agentTwin = content.$edgeAgent;
  if (isObject(agentTwin) && !hasDesired(agentTwin)) {
    errors.push({ code: 'IEO_EMPTY_CONFIG', path: pointerJoin(prefix, '$edgeAgent', 'properties.desired'), message: '$edgeAgent has no "properties.desired"' });
    return failure(errors);
  }
  const hubTwin = content.$edgeHub;
  if (isObject(hubTwin) && !hasDesired(hubTwin)) {
    errors.push({ code: 'IEO_MANIFEST_SCHEMA', path: pointerJoin(prefix, '$edgeHub', 'properties.desired'), message: '$edgeHub has no "properties.desired"' });
  }
  const parsed = parseDesiredProperties(twin('$edgeAgent'), twin('$edgeHub'), prefix);
  const result: Outcome<DeploymentManifest> = { ...parsed, warnings: [...located.warnings, ...parsed.warnings] };
  if (errors.length === 0) return result;
  return result.ok ? failure(errors, result.warnings) : failure([...errors, ...result.errors], result.warnings);
}

/**
 * The desired properties of one module twin in a deployment, keyed by module id (system twins
 * excluded): what IoT Hub would write to each module's twin. The DeploymentManifest model does not
 * carry them, so twin sync and the emulator read them here.
 */
export function moduleTwinsDesired(input: unknown): Record<string, JsonObject> {
  const located = isObject(input) ? locateModulesContent(input) : undefined;
  const twins: Record<string, JsonObject> = {};
  for (const [name, entry] of Object.entries(located?.content ?? {})) {
    if (name === '$edgeAgent' || name === '$edgeHub' || !isObject(entry)) continue;
    const desired = twinDesired(entry);
    if (isObject(desired)) twins[name] = desired;
  }
  return twins;
}

/** '1.0', '1.1', '1.0.0', '1.1.0' → '1.0' | '1.1'; anything else undefined. The $edgeAgent rule (see lenient.ts). */
export function normaliseSchemaVersion(value: unknown): SchemaVersion | undefined {
  return normaliseAgentSchemaVersion(value);
}

function versionIssue(value: unknown, path: string, twinName: '$edgeAgent' | '$edgeHub'): ManifestIssue | undefined {
  const known = twinName === '$edgeAgent' ? normaliseAgentSchemaVersion(value) : normaliseHubSchemaVersion(value);
  if (value === undefined || known !== undefined) return undefined;
  if (typeof value === 'number') {
    return { code: 'IEO_SCHEMA_VERSION', path: `${path}/schemaVersion`, message: `${twinName} schemaVersion must be a string such as "1.1", not the number ${value} (in YAML, quote it)` };
  }
  const supported = twinName === '$edgeAgent' ? '"1.0" or "1.1" (also written "1.0.0", "1.1.0")' : '"1.0", "1.1", "1.2" or "1.3" (with any patch level, such as "1.2.0")';
  return {
    code: 'IEO_SCHEMA_VERSION',
    path: `${path}/schemaVersion`,
    message: `${twinName} schemaVersion ${JSON.stringify(value)} is not supported: use ${supported}`,
  };
}

const metadataKeys = new Set(['$version', '$metadata']);

function isEmptyDesired(desired: JsonObject): boolean {
  return Object.keys(desired).every((k) => metadataKeys.has(k));
}

/**
 * Parses the desired properties of the $edgeAgent and $edgeHub twins (what twin sync receives).
 * `hubDesired` may be undefined: the deployment then has no routes. Issue paths read
 * `<pathPrefix>/$edgeAgent/properties.desired/…` and `<pathPrefix>/$edgeHub/properties.desired/…`.
 */
export function parseDesiredProperties(agentDesired: unknown, hubDesired: unknown, pathPrefix = ''): Outcome<DeploymentManifest> {
  const agentBase = `${pathPrefix}/$edgeAgent/properties.desired`;
  const hubBase = `${pathPrefix}/$edgeHub/properties.desired`;
  if (agentDesired === undefined || agentDesired === null || (isObject(agentDesired) && isEmptyDesired(agentDesired))) {
    return failure([{ code: 'IEO_EMPTY_CONFIG', path: agentBase, message: 'the deployment has no $edgeAgent configuration' }]);
  }
  const tooDeep = nestingIssue(agentDesired, agentBase) ?? nestingIssue(hubDesired, hubBase);
  if (tooDeep) return failure([tooDeep]);
  const errors: ManifestIssue[] = [];
  if (!isObject(agentDesired)) errors.push({ code: 'IEO_MANIFEST_SCHEMA', path: agentBase, message: '$edgeAgent desired properties must be an object' });
  const hubPresent = hubDesired !== undefined && hubDesired !== null;
  if (hubPresent && !isObject(hubDesired)) errors.push({ code: 'IEO_MANIFEST_SCHEMA', path: hubBase, message: '$edgeHub desired properties must be an object' });
  if (errors.length > 0) return failure(errors);
  const lenientAgent = systemModuleLeniency(agentDesired as JsonObject, agentBase);
  const agent = lenientAgent.agent;
  const leniencyWarnings = [...lenientAgent.warnings];
  let hub = hubPresent ? (hubDesired as JsonObject) : undefined;

  // edgeAgent refuses a version it does not know before looking at anything else (status 412).
  const versionErrors = [versionIssue(agent.schemaVersion, agentBase, '$edgeAgent'), hub ? versionIssue(hub.schemaVersion, hubBase, '$edgeHub') : undefined].filter(
    (i): i is ManifestIssue => i !== undefined,
  );
  if (versionErrors.length > 0) return failure(versionErrors, leniencyWarnings);
  if (hub) {
    const lenientHub = hubLeniency(hub, hubBase, normaliseHubSchemaVersion(hub.schemaVersion) ?? '1.0');
    hub = lenientHub.hub;
    leniencyWarnings.push(...lenientHub.warnings);
  }

  errors.push(...checkTwinLimits(agent, agentBase, '$edgeAgent'));
  if (hub) errors.push(...checkTwinLimits(hub, hubBase, '$edgeHub'));
  // IoT Hub refuses an oversized twin outright; stopping here also bounds the work a hostile one costs.
  if (errors.length > 0) return failure(errors);
  errors.push(...validateAgentDesired(agent, agentBase));
  if (hub) errors.push(...validateHubDesired(hub, hubBase));

  const agentVersion = normaliseAgentSchemaVersion(agent.schemaVersion) ?? '1.1';
  const hubVersion: HubSchemaVersion = hub ? (normaliseHubSchemaVersion(hub.schemaVersion) ?? agentVersion) : agentVersion;

  const systemModules = isObject(agent.systemModules) ? agent.systemModules : {};
  const modules = isObject(agent.modules) ? agent.modules : {};
  const moduleEntries: [string, unknown, string, boolean][] = [
    ...(systemModules.edgeHub !== undefined ? [['edgeHub', systemModules.edgeHub, pointerJoin(agentBase, 'systemModules', 'edgeHub'), true] as [string, unknown, string, boolean]] : []),
    ...Object.entries(modules).map(([id, m]) => [id, m, pointerJoin(agentBase, 'modules', id), false] as [string, unknown, string, boolean]),
  ];
  for (const [id, , path, system] of moduleEntries) {
    if (!system) errors.push(...checkUserModuleName(id, path));
  }
  const createOptions = new Map<string, DockerCreateOptions>();
  const allModules: [string, unknown, string][] = [['edgeAgent', systemModules.edgeAgent, pointerJoin(agentBase, 'systemModules', 'edgeAgent')], ...moduleEntries.map(([id, m, p]) => [id, m, p] as [string, unknown, string])];
  for (const [id, m, path] of allModules) {
    if (!isObject(m) || !isObject(m.settings)) continue;
    const joined = joinCreateOptions(m.settings, pointerJoin(path, 'settings'));
    if ('issue' in joined) errors.push(joined.issue);
    else createOptions.set(path, joined.value);
    if (agentVersion === '1.0' && m.startupOrder !== undefined && id !== 'edgeAgent') {
      errors.push({ code: 'IEO_SCHEMA_VERSION', path: pointerJoin(path, 'startupOrder'), message: `startupOrder needs schemaVersion 1.1; $edgeAgent declares ${String(agent.schemaVersion)}` });
    }
  }
  errors.push(...checkRegistryCredentials(agent, agentBase));
  if (hub && hubVersion === '1.0' && isObject(hub.routes)) {
    for (const [name, route] of Object.entries(hub.routes)) {
      if (isObject(route)) {
        errors.push({ code: 'IEO_SCHEMA_VERSION', path: pointerJoin(hubBase, 'routes', name), message: `route '${name}' is an object (priority, timeToLiveSecs), which needs schemaVersion 1.1; $edgeHub declares ${String(hub.schemaVersion)}` });
      }
    }
  }
  if (errors.length > 0) return failure(errors, leniencyWarnings);

  // Validated above: the shapes below are the schema's.
  const manifest: DeploymentManifest = {
    agent: buildAgent(agent, agentVersion, (path) => createOptions.get(path) ?? {}, agentBase),
    hub: buildHub(hub, hubVersion),
  };
  const routes = checkRoutes(manifest, pathPrefix);
  if (routes.errors.length > 0) return failure(routes.errors, [...leniencyWarnings, ...routes.warnings]);
  return { ok: true, value: manifest, warnings: [...leniencyWarnings, ...routes.warnings] };
}

const chunkKey = /^createOptions([0-9]{2})$/;

/**
 * createOptions, then createOptions01, 02, … appended in order (how edgeAgent splits long values
 * across twin properties), parsed to an object. A string may be empty (no options).
 */
export function joinCreateOptions(settings: JsonObject, settingsPath: string): { value: DockerCreateOptions } | { issue: ManifestIssue } {
  const base = settings.createOptions;
  const chunks = Object.keys(settings)
    .map((k) => chunkKey.exec(k))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ key: m[0], n: Number(m[1]) }))
    .sort((a, b) => a.n - b.n);
  const chunkIssue = (key: string, message: string) => ({ issue: { code: 'IEO_CREATE_OPTIONS_CHUNKS', path: pointerJoin(settingsPath, key), message } });
  if (chunks.length > 0) {
    const first = chunks[0] as { key: string; n: number };
    if (base === undefined) return chunkIssue(first.key, `${first.key} continues createOptions, but there is no createOptions`);
    if (typeof base !== 'string') return chunkIssue(first.key, `${first.key} continues a string createOptions, but createOptions here is not a string`);
    for (const [i, chunk] of chunks.entries()) {
      if (chunk.n !== i + 1) {
        const expected = `createOptions${String(i + 1).padStart(2, '0')}`;
        return chunkIssue(chunk.key, `createOptions chunks must be numbered 01, 02, … without gaps: ${chunk.key} found where ${expected} was expected`);
      }
      if (typeof settings[chunk.key] !== 'string') return chunkIssue(chunk.key, `${chunk.key} must be a string`);
    }
  }
  const path = pointerJoin(settingsPath, 'createOptions');
  if (base === undefined) return { value: {} };
  if (isObject(base)) return { value: structuredClone(base) };
  if (typeof base !== 'string') {
    return { issue: { code: 'IEO_CREATE_OPTIONS', path, message: 'createOptions must be a JSON object or a string holding one' } };
  }
  const text = base + chunks.map((c) => settings[c.key] as string).join('');
  const what = chunks.length > 0 ? `createOptions (joined with ${chunks.map((c) => c.key).join(', ')})` : 'createOptions';
  if (text.trim() === '') return { value: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { issue: { code: 'IEO_CREATE_OPTIONS', path, message: `${what} is not valid JSON: ${(err as Error).message}` } };
  }
  const tooDeep = nestingIssue(parsed, path);
  if (tooDeep) return { issue: tooDeep };
  if (!isObject(parsed)) return { issue: { code: 'IEO_CREATE_OPTIONS', path, message: `${what} must be a JSON object, not ${JSON.stringify(parsed).slice(0, 200)}` } };
  return { value: parsed };
}

function checkRegistryCredentials(agent: JsonObject, agentBase: string): ManifestIssue[] {
  const runtime = isObject(agent.runtime) ? agent.runtime : {};
  const settings = isObject(runtime.settings) ? runtime.settings : {};
  const credentials = isObject(settings.registryCredentials) ? settings.registryCredentials : {};
  const issues: ManifestIssue[] = [];
  for (const [name, c] of Object.entries(credentials)) {
    if (isObject(c) && c.password === undefined && c.passwordSecretRef === undefined) {
      issues.push({
        code: 'IEO_MANIFEST_SCHEMA',
        path: pointerJoin(agentBase, 'runtime', 'settings', 'registryCredentials', name),
        message: `registry credential '${name}' needs a password or a passwordSecretRef {name, key}`,
      });
    }
  }
  return issues;
}

function envOf(m: JsonObject): Record<string, string> {
  const env = isObject(m.env) ? m.env : {};
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String((v as { value: string | number | boolean }).value)]));
}

function buildModule(id: string, m: JsonObject, system: boolean, createOptions: DockerCreateOptions): ModuleSpec {
  const settings = m.settings as JsonObject;
  const spec: ModuleSpec = {
    id,
    system,
    type: 'docker',
    status: (m.status as ModuleSpec['status'] | undefined) ?? 'running',
    restartPolicy: (m.restartPolicy as ModuleSpec['restartPolicy'] | undefined) ?? 'always',
    startupOrder: (m.startupOrder as number | undefined) ?? defaultStartupOrder,
    imagePullPolicy: (m.imagePullPolicy as ModuleSpec['imagePullPolicy'] | undefined) ?? 'on-create',
    image: settings.image as string,
    createOptions,
    env: envOf(m),
  };
  if (typeof m.version === 'string') spec.version = m.version;
  return spec;
}

function buildAgent(agent: JsonObject, schemaVersion: SchemaVersion, createOptionsAt: (path: string) => DockerCreateOptions, agentBase: string): AgentDesired {
  const runtime = agent.runtime as JsonObject;
  const settings = isObject(runtime.settings) ? runtime.settings : {};
  const registryCredentials: Record<string, RegistryCredential> = {};
  for (const [name, raw] of Object.entries(isObject(settings.registryCredentials) ? settings.registryCredentials : {})) {
    const c = raw as { address: string; username: string; password?: string; passwordSecretRef?: { name: string; key: string } };
    registryCredentials[name] = {
      name,
      address: c.address,
      username: c.username,
      ...(c.password !== undefined ? { password: c.password } : {}),
      ...(c.passwordSecretRef !== undefined ? { passwordSecretRef: { name: c.passwordSecretRef.name, key: c.passwordSecretRef.key } } : {}),
    };
  }
  const systemModules = agent.systemModules as JsonObject;
  const edgeAgent = systemModules.edgeAgent as JsonObject;
  const edgeAgentPath = pointerJoin(agentBase, 'systemModules', 'edgeAgent');
  const edgeHubPath = pointerJoin(agentBase, 'systemModules', 'edgeHub');
  const modules: Record<string, ModuleSpec> = {};
  for (const [id, m] of Object.entries(isObject(agent.modules) ? agent.modules : {})) {
    modules[id] = buildModule(id, m as JsonObject, false, createOptionsAt(pointerJoin(agentBase, 'modules', id)));
  }
  return {
    schemaVersion,
    runtime: {
      type: 'docker',
      settings: {
        ...(typeof settings.minDockerVersion === 'string' ? { minDockerVersion: settings.minDockerVersion } : {}),
        ...(typeof settings.loggingOptions === 'string' ? { loggingOptions: settings.loggingOptions } : {}),
        registryCredentials,
      },
    },
    systemModules: {
      edgeAgent: { image: (edgeAgent.settings as JsonObject).image as string, createOptions: createOptionsAt(edgeAgentPath), env: envOf(edgeAgent) },
      ...(isObject(systemModules.edgeHub) ? { edgeHub: buildModule('edgeHub', systemModules.edgeHub, true, createOptionsAt(edgeHubPath)) } : {}),
    },
    modules,
  };
}

function buildHub(hub: JsonObject | undefined, schemaVersion: HubSchemaVersion): HubDesired {
  const routes: Record<string, Route> = {};
  for (const [name, raw] of Object.entries(hub && isObject(hub.routes) ? hub.routes : {})) {
    if (typeof raw === 'string') {
      routes[name] = { name, route: raw, priority: 9 };
    } else {
      const r = raw as { route: string; priority?: number; timeToLiveSecs?: number };
      routes[name] = { name, route: r.route, priority: r.priority ?? 9, ...(r.timeToLiveSecs !== undefined ? { timeToLiveSecs: r.timeToLiveSecs } : {}) };
    }
  }
  const sf = hub && isObject(hub.storeAndForwardConfiguration) ? hub.storeAndForwardConfiguration : {};
  return {
    schemaVersion,
    routes,
    storeAndForwardConfiguration: typeof sf.timeToLiveSecs === 'number' ? { timeToLiveSecs: sf.timeToLiveSecs } : {},
  };
}
