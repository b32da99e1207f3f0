// Between an EdgeDeployment resource and the deployment manifest model. Reading a resource reuses the
// manifest parser, so a resource and a deployment.json are validated by the same rules; only issue paths
// differ (/spec/agent/... instead of /modulesContent/$edgeAgent/properties.desired/...).
// Writing a resource (iotedge-operator convert) moves registry passwords into a Secret.
import type { V1Secret } from '@kubernetes/client-node';
import type { EdgeDeployment, EdgeDeploymentSpec } from '../api/edge-deployment.ts';
import { edgeDeploymentApiVersion, edgeDeploymentKind } from '../api/edge-deployment.ts';
import type { DeploymentManifest, ManifestIssue, Outcome } from './model.ts';
import { pointerJoin } from './names.ts';
import { locateModulesContent, normaliseHubSchemaVersion, systemModuleLeniency, twinDesired } from './lenient.ts';
import { joinCreateOptions, moduleTwinsDesired, normaliseSchemaVersion, parseDeploymentManifest, parseDesiredProperties, parseManifestText } from './parse.ts';

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function moveIssue(issue: ManifestIssue, basePath: string): ManifestIssue {
  const twins: Array<[string, string]> = [
    ['/$edgeAgent/properties.desired', `${basePath}/agent`],
    ['/$edgeHub/properties.desired', `${basePath}/hub`],
  ];
  for (const [from, to] of twins) {
    if (issue.path === from || issue.path.startsWith(`${from}/`)) return { ...issue, path: to + issue.path.slice(from.length) };
  }
  return issue;
}

/** A module as the manifest writes it: the API server defaults `type`, but a resource read from a file may lack it. */
function desiredModule(module: unknown): unknown {
  return isObject(module) ? { type: 'docker', ...module } : module;
}

function desiredAgent(agent: NonNullable<EdgeDeploymentSpec['agent']>): JsonObject {
  const { runtime, systemModules, modules, ...rest } = agent as unknown as JsonObject;
  const out: JsonObject = { ...rest, runtime: isObject(runtime) ? { type: 'docker', ...runtime } : (runtime ?? { type: 'docker' }) };
  out.systemModules = isObject(systemModules)
    ? Object.fromEntries(Object.entries(systemModules).map(([id, m]) => [id, desiredModule(m)]))
    : systemModules;
  if (modules !== undefined) {
    out.modules = isObject(modules) ? Object.fromEntries(Object.entries(modules).map(([id, m]) => [id, desiredModule(m)])) : modules;
  }
  return out;
}

/** Schema 1.0 allows only string routes; a resource always writes objects, so the plain ones go back to strings. */
function desiredHub(hub: NonNullable<EdgeDeploymentSpec['hub']>): JsonObject {
  const out: JsonObject = { ...(hub as unknown as JsonObject) };
  if (normaliseHubSchemaVersion(hub.schemaVersion) === '1.0' && isObject(hub.routes)) {
    out.routes = Object.fromEntries(
      Object.entries(hub.routes as JsonObject).map(([name, route]) =>
        isObject(route) && Object.keys(route).every((k) => k === 'route') && typeof route.route === 'string' ? [name, route.route] : [name, route],
      ),
    );
  }
  return out;
}

/**
 * An EdgeDeployment's spec as the normalised manifest model, validated as a deployment manifest is.
 * Issue paths start at `basePath`, e.g. /spec/agent/modules/<id>/settings/image.
 */
export function manifestFromResource(spec: EdgeDeploymentSpec, basePath = '/spec'): Outcome<DeploymentManifest> {
  if (!spec.agent) {
    const why = spec.iotHub ? 'the $edgeAgent twin has not been read from IoT Hub yet' : 'spec.agent is required without spec.iotHub';
    return { ok: false, errors: [{ code: 'IEO_EMPTY_CONFIG', path: `${basePath}/agent`, message: `the EdgeDeployment has no agent: ${why}` }], warnings: [] };
  }
  // The API server checks the CRD schema, but callers also hand over documents it never saw (validate, tests).
  const notObject = (['agent', 'hub'] as const).filter((k) => spec[k] !== undefined && !isObject(spec[k]));
  if (notObject.length > 0) {
    return { ok: false, errors: notObject.map((k) => ({ code: 'IEO_MANIFEST_SCHEMA', path: `${basePath}/${k}`, message: `spec.${k} must be an object` })), warnings: [] };
  }
  const inlinePasswords = Object.entries(spec.agent.runtime?.settings?.registryCredentials ?? {})
    .filter(([, credential]) => isObject(credential) && 'password' in credential)
    .map(([name]): ManifestIssue => ({
      code: 'IEO_MANIFEST_SCHEMA',
      path: pointerJoin(`${basePath}/agent/runtime/settings/registryCredentials`, name, 'password'),
      message: `registry credential '${name}': passwords are not allowed in an EdgeDeployment; put it in a Secret and name it with passwordSecretRef`,
    }));
  const outcome = parseDesiredProperties(desiredAgent(spec.agent), spec.hub ? desiredHub(spec.hub) : undefined);
  const move = (issues: ManifestIssue[]) => issues.map((i) => moveIssue(i, basePath));
  if (inlinePasswords.length > 0) {
    return { ok: false, errors: [...inlinePasswords, ...(outcome.ok ? [] : move(outcome.errors))], warnings: move(outcome.warnings) };
  }
  return outcome.ok
    ? { ok: true, value: outcome.value, warnings: move(outcome.warnings) }
    : { ok: false, errors: move(outcome.errors), warnings: move(outcome.warnings) };
}

export interface ResourceTarget {
  namespace: string;
  /** metadata.name of the EdgeDeployment. */
  name: string;
  /** spec.deviceId; left out when absent, so the namespace name is the device id. */
  deviceId?: string;
}

export interface ConvertedResource {
  resource: EdgeDeployment;
  /** The Secret holding registry passwords, when the manifest had any. */
  secrets: V1Secret[];
}

/** The name of the Secret `convert` puts an EdgeDeployment's registry passwords in. */
export function registryCredentialsSecretName(resourceName: string): string {
  return `${resourceName}-registry-credentials`;
}

/** Secret data keys allow [-._a-zA-Z0-9]; credential names are free-form, so they are mapped and kept distinct. */
function secretKeys(credentialNames: string[]): Map<string, string> {
  const keys = new Map<string, string>();
  const used = new Set<string>();
  for (const name of credentialNames) {
    const base = name.replace(/[^-._a-zA-Z0-9]+/g, '-').replace(/^\.+$/, 'credential') || 'credential';
    let key = base;
    for (let n = 2; used.has(key); n++) key = `${base}-${n}`;
    used.add(key);
    keys.set(name, key);
  }
  return keys;
}

function desiredOf(content: JsonObject, twin: string): JsonObject | undefined {
  const entry = content[twin];
  const desired = isObject(entry) ? twinDesired(entry) : undefined;
  return isObject(desired) ? desiredWithLenientSystemModules(twin, desired) : undefined;
}

/** The system modules as validated (members edgeAgent ignores are left out; parsing warned about each). */
function desiredWithLenientSystemModules(twin: string, desired: JsonObject): JsonObject {
  return twin === '$edgeAgent' ? systemModuleLeniency(desired, '').agent : desired;
}

function envSpec(env: unknown): Record<string, { value: string }> | undefined {
  if (!isObject(env)) return undefined;
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, { value: String(isObject(v) ? v.value : v) }]));
}

/** A manifest module as the resource writes it: createOptions joined and parsed into an object, env values as strings. */
function moduleSpec(module: JsonObject, path: string, fields: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const field of fields) if (module[field] !== undefined) out[field] = module[field];
  const settings = isObject(module.settings) ? module.settings : {};
  const resourceSettings: JsonObject = { image: settings.image };
  if (Object.keys(settings).some((k) => k.startsWith('createOptions'))) {
    const joined = joinCreateOptions(settings, pointerJoin(path, 'settings'));
    // parseDeploymentManifest has accepted the manifest, so createOptions join; the fallback keeps the text as written.
    resourceSettings.createOptions = 'value' in joined ? joined.value : settings.createOptions;
  }
  out.settings = resourceSettings;
  const env = envSpec(module.env);
  if (env) out.env = env;
  return out;
}

const moduleFields = ['version', 'type', 'status', 'restartPolicy', 'startupOrder', 'imagePullPolicy'] as const;
const edgeAgentFields = ['type', 'imagePullPolicy'] as const;

/**
 * A deployment manifest (deployment.json, its modulesContent, or `{content: {modulesContent}}`) as an
 * EdgeDeployment, for kubectl apply; JSON or YAML text is parsed first. Inline registry passwords go into one Secret,
 * `<name>-registry-credentials`, that passwordSecretRef points to; createOptions become objects
 * (chunks joined); string routes become route objects. The manifest is validated first, and an invalid
 * one yields its issues with the manifest's own paths.
 */
export function resourceFromManifest(input: unknown, target: ResourceTarget): Outcome<ConvertedResource> {
  let manifest = input;
  if (typeof input === 'string') {
    const text = parseManifestText(input);
    if (!text.ok) return text;
    manifest = text.value;
  }
  const parsed = parseDeploymentManifest(manifest);
  if (!parsed.ok) return parsed;
  const located = isObject(manifest) ? locateModulesContent(manifest) : undefined;
  if (!located) throw new Error('parseDeploymentManifest accepted a manifest without modulesContent');
  const { content, prefix } = located;
  const agent = desiredOf(content, '$edgeAgent') ?? {};
  const hub = desiredOf(content, '$edgeHub');
  const agentPath = pointerJoin(prefix, '$edgeAgent', 'properties.desired');
  const warnings = [...parsed.warnings];

  const secretName = registryCredentialsSecretName(target.name);
  const runtime = isObject(agent.runtime) ? agent.runtime : {};
  const runtimeSettings = isObject(runtime.settings) ? runtime.settings : {};
  const credentials = isObject(runtimeSettings.registryCredentials) ? runtimeSettings.registryCredentials : {};
  const keys = secretKeys(Object.keys(credentials).filter((name) => isObject(credentials[name]) && typeof credentials[name].password === 'string'));
  const passwords: Record<string, string> = {};
  const registryCredentials: JsonObject = {};
  for (const [name, raw] of Object.entries(credentials)) {
    if (!isObject(raw)) continue;
    const key = keys.get(name);
    if (key !== undefined) passwords[key] = raw.password as string;
    registryCredentials[name] = {
      address: raw.address,
      username: raw.username,
      passwordSecretRef: key !== undefined ? { name: secretName, key } : raw.passwordSecretRef,
    };
  }
  const settings: JsonObject = {};
  for (const field of ['minDockerVersion', 'loggingOptions'] as const) if (runtimeSettings[field] !== undefined) settings[field] = runtimeSettings[field];
  if (Object.keys(registryCredentials).length > 0) settings.registryCredentials = registryCredentials;

  const systemModules = isObject(agent.systemModules) ? agent.systemModules : {};
  const systemSpec: JsonObject = {};
  if (isObject(systemModules.edgeAgent)) {
    systemSpec.edgeAgent = moduleSpec(systemModules.edgeAgent, pointerJoin(agentPath, 'systemModules', 'edgeAgent'), edgeAgentFields);
  }
  if (isObject(systemModules.edgeHub)) {
    systemSpec.edgeHub = moduleSpec(systemModules.edgeHub, pointerJoin(agentPath, 'systemModules', 'edgeHub'), moduleFields);
  }
  const agentSpec: JsonObject = {
    schemaVersion: normaliseSchemaVersion(agent.schemaVersion),
    runtime: { type: 'docker', ...(Object.keys(settings).length > 0 ? { settings } : {}) },
    systemModules: systemSpec,
  };
  if (isObject(agent.modules) && Object.keys(agent.modules).length > 0) {
    agentSpec.modules = Object.fromEntries(
      Object.entries(agent.modules).map(([id, m]) => [id, moduleSpec(m as JsonObject, pointerJoin(agentPath, 'modules', id), moduleFields)]),
    );
  }

  const spec: JsonObject = {};
  if (target.deviceId !== undefined) spec.deviceId = target.deviceId;
  spec.agent = agentSpec;
  if (hub) {
    const hubSpec: JsonObject = { schemaVersion: normaliseHubSchemaVersion(hub.schemaVersion) };
    if (isObject(hub.routes)) {
      hubSpec.routes = Object.fromEntries(
        Object.entries(hub.routes).map(([name, route]) => [name, typeof route === 'string' ? { route } : route]),
      );
    }
    if (isObject(hub.storeAndForwardConfiguration)) hubSpec.storeAndForwardConfiguration = hub.storeAndForwardConfiguration;
    spec.hub = hubSpec;
  }

  for (const twin of Object.keys(moduleTwinsDesired(manifest))) {
    warnings.push({
      code: 'IEO_W_MODULE_TWIN_NOT_CONVERTED',
      path: pointerJoin(prefix, twin, 'properties.desired'),
      message: `the desired properties of module twin ${twin} are left out: an EdgeDeployment holds only $edgeAgent and $edgeHub; set them on the module twin in IoT Hub`,
    });
  }

  const resource: EdgeDeployment = {
    apiVersion: edgeDeploymentApiVersion,
    kind: edgeDeploymentKind,
    metadata: { name: target.name, namespace: target.namespace },
    spec: spec as EdgeDeploymentSpec,
  };
  const secrets: V1Secret[] =
    Object.keys(passwords).length === 0
      ? []
      : [
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: secretName, namespace: target.namespace },
            type: 'Opaque',
            stringData: passwords,
          },
        ];
  return { ok: true, value: { resource, secrets }, warnings };
}

const manifestAgentPath = '/modulesContent/$edgeAgent/properties.desired';
const manifestHubPath = '/modulesContent/$edgeHub/properties.desired';

/**
 * Translation names a fault by its place in a deployment manifest; for an EdgeDeployment the user needs
 * the place in its spec (/spec/agent/…, /spec/hub/…). The message is rewritten where it quotes the path.
 */
export function issueAtResourcePath(issue: ManifestIssue): ManifestIssue {
  const move = (path: string) =>
    path.startsWith(manifestAgentPath) ? `/spec/agent${path.slice(manifestAgentPath.length)}`
      : path.startsWith(manifestHubPath) ? `/spec/hub${path.slice(manifestHubPath.length)}` : path;
  const path = move(issue.path);
  return path === issue.path ? issue : { ...issue, path, message: issue.message.split(issue.path).join(path) };
}
