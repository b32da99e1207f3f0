// Configurations: IoT Hub's automatic device management. An IoT Edge deployment (content.modulesContent)
// is written to the `$edgeAgent`, `$edgeHub` and other module twins of every IoT Edge device its
// targetCondition matches:
// - a standard (base) deployment gives each module's whole `properties.desired`; of the base
//   deployments that target a device, the one with the highest priority is applied (a tie goes to the
//   one created last), the others are only "Targeted";
// - a layered deployment (any `properties.desired.<path>` key) sets single paths on top of the applied
//   base, in priority order (highest last, so it wins); without a base it is not applied;
// - the twins are rewritten only when what the device should have changes (a configuration is created,
//   updated or deleted, or the device's tags or properties change what it matches); a device no longer
//   targeted keeps its modules, as on IoT Hub;
// - `$edgeAgent`'s twin carries `configurations.<id>.status` = Applied | Targeted, which the
//   system metric appliedCount counts.
// Content is immutable after creation; targetCondition, priority, labels and metrics may change.
// ADM configurations (deviceContent, moduleContent) are stored and counted but not applied (docs/emulator.md).
import { createHash } from 'node:crypto';
import { HubError } from './errors.ts';
import { compileCondition, compileQuery } from './query/index.ts';
import type { QuerySource, TwinDocument } from './query/index.ts';
import { unquoteEtag } from './registry.ts';
import type { DeviceRecord } from './registry.ts';
import { isJsonObject, keyProblem } from './twin.ts';
import type { Json, JsonObject } from './twin.ts';

export interface ConfigurationRecord {
  id: string;
  schemaVersion: string;
  labels: Record<string, string>;
  content: JsonObject;
  targetCondition: string;
  priority: number;
  metricsQueries: Record<string, string>;
  createdTimeUtc: string;
  lastUpdatedTimeUtc: string;
  etag: string;
  /** Creation order: breaks priority ties (the most recently created wins). */
  sequence: number;
}

export interface ConfigurationsSnapshot {
  counter: number;
  configurations: ConfigurationRecord[];
  /** `<deviceId>/<moduleId>` → hash of the desired document last written by a deployment. */
  written: Record<string, string>;
}

export type ConfigurationStatus = 'Applied' | 'Targeted';

/** What the configurations need from the hub. */
export interface ConfigurationHost {
  devices(): DeviceRecord[];
  deviceTwin(deviceId: string): TwinDocument;
  querySource(): QuerySource;
  /** Overwrites the desired properties of existing module twins (as applyConfigurationContent does) and notifies. */
  writeModulesDesired(deviceId: string, desired: Record<string, JsonObject>): void;
  changed(): void;
  log(message: string, fields?: Record<string, unknown>): void;
}

const idPattern = /^[a-z0-9\-:+%_#*?!(),=@;$']{1,128}$/;
const layeredPrefix = 'properties.desired.';
const maxConfigurations = 100;

export type DeploymentKind = 'base' | 'layered' | 'device' | 'module';

/** base or layered for modulesContent (az CLI's rule: layered if any module has a `properties.desired.*` key). */
export function deploymentKind(content: JsonObject): DeploymentKind {
  if (isJsonObject(content.modulesContent)) {
    const layered = Object.values(content.modulesContent).some((m) => isJsonObject(m) && Object.keys(m).some((k) => k.startsWith(layeredPrefix)));
    return layered ? 'layered' : 'base';
  }
  return isJsonObject(content.moduleContent) ? 'module' : 'device';
}

function bad(message: string): HubError {
  return new HubError('ArgumentInvalid', message);
}

function checkPathKeys(path: string, where: string): void {
  for (const segment of path.split('.')) {
    const problem = keyProblem(segment);
    if (problem) throw bad(`${where}: ${problem}`);
  }
}

function checkModulesContent(modulesContent: JsonObject): void {
  for (const [moduleId, moduleContent] of Object.entries(modulesContent)) {
    if (!isJsonObject(moduleContent)) throw bad(`content.modulesContent.${moduleId} must be an object`);
    for (const [key, value] of Object.entries(moduleContent)) {
      if (key === 'properties.desired') {
        if (!isJsonObject(value)) throw bad(`content.modulesContent.${moduleId}["properties.desired"] must be an object`);
      } else if (key.startsWith(layeredPrefix) && key.length > layeredPrefix.length) {
        checkPathKeys(key.slice(layeredPrefix.length), `content.modulesContent.${moduleId}["${key}"]`);
      } else {
        throw bad(`content.modulesContent.${moduleId} may hold only "properties.desired" or "properties.desired.<path>", not "${key}"`);
      }
    }
  }
}

function checkContent(content: unknown): JsonObject {
  if (!isJsonObject(content)) throw bad('a configuration needs a content object');
  const kinds = (['modulesContent', 'moduleContent', 'deviceContent'] as const).filter((k) => content[k] !== undefined && content[k] !== null);
  if (kinds.length !== 1) throw bad('content needs exactly one of modulesContent, moduleContent or deviceContent');
  const kind = kinds[0] as string;
  const inner = content[kind];
  if (!isJsonObject(inner)) throw bad(`content.${kind} must be an object`);
  if (kind === 'modulesContent') checkModulesContent(inner);
  return content;
}

function checkLabels(labels: unknown): Record<string, string> {
  if (labels === undefined || labels === null) return {};
  if (!isJsonObject(labels) || !Object.values(labels).every((v) => typeof v === 'string')) throw bad('labels must be an object of strings');
  return labels as Record<string, string>;
}

function checkMetrics(metrics: unknown): Record<string, string> {
  if (metrics === undefined || metrics === null) return {};
  const queries = isJsonObject(metrics) ? metrics.queries : undefined;
  if (queries === undefined || queries === null) return {};
  if (!isJsonObject(queries) || !Object.values(queries).every((v) => typeof v === 'string')) throw bad('metrics.queries must be an object of query strings');
  for (const text of Object.values(queries) as string[]) compileQuery(text);
  return queries as Record<string, string>;
}

function checkPriority(priority: unknown): number {
  if (priority === undefined || priority === null) return 0;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0) throw bad('priority must be a non-negative integer');
  return priority;
}

/** A module configuration's condition may name its collection: `FROM devices.modules WHERE …`. */
function moduleCondition(targetCondition: string): string {
  return targetCondition.replace(/^\s*from\s+devices\.modules\s+where\s+/i, '');
}

function compileTarget(record: Pick<ConfigurationRecord, 'targetCondition' | 'content'>): ((twin: TwinDocument) => boolean) | undefined {
  const text = deploymentKind(record.content) === 'module' ? moduleCondition(record.targetCondition) : record.targetCondition;
  return text.trim() === '' ? undefined : compileCondition(text);
}

function hash(value: Json): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64');
}

/** Sets `value` at a dotted path inside `doc`, making objects along the way. */
function setPath(doc: JsonObject, path: string[], value: Json): void {
  let node = doc;
  for (const segment of path.slice(0, -1)) {
    const child = node[segment];
    node = isJsonObject(child) ? child : (node[segment] = {});
  }
  node[path.at(-1) as string] = structuredClone(value);
}

/** Deployments ordered so that the one applied last wins: lower priority first, then older first. */
function byPrecedence(a: ConfigurationRecord, b: ConfigurationRecord): number {
  return a.priority - b.priority || a.sequence - b.sequence;
}

/** The desired document of each module, base first and layers on top. */
export function mergeDeployments(base: ConfigurationRecord, layers: ConfigurationRecord[]): Record<string, JsonObject> {
  const modules: Record<string, JsonObject> = {};
  for (const deployment of [base, ...[...layers].sort(byPrecedence)]) {
    const modulesContent = deployment.content.modulesContent as JsonObject;
    for (const [moduleId, moduleContent] of Object.entries(modulesContent)) {
      for (const [key, value] of Object.entries(moduleContent as JsonObject)) {
        if (key === 'properties.desired') modules[moduleId] = structuredClone(value as JsonObject);
        else setPath((modules[moduleId] ??= {}), key.slice(layeredPrefix.length).split('.'), value);
      }
    }
  }
  return modules;
}

export class Configurations {
  private readonly host: ConfigurationHost;
  private readonly records = new Map<string, ConfigurationRecord>();
  private readonly targets = new Map<string, ((twin: TwinDocument) => boolean) | undefined>();
  private readonly written: Map<string, string>;
  /** deviceId → configuration id → status, from the last evaluation. */
  private statuses = new Map<string, Map<string, ConfigurationStatus>>();
  private counter: number;
  private scheduled = false;
  private evaluating = false;
  private stopped = false;

  constructor(host: ConfigurationHost, snapshot?: ConfigurationsSnapshot) {
    this.host = host;
    this.counter = snapshot?.counter ?? 0;
    this.written = new Map(Object.entries(snapshot?.written ?? {}));
    for (const record of snapshot?.configurations ?? []) {
      this.records.set(record.id, record);
      this.targets.set(record.id, compileTarget(record));
    }
  }

  snapshot(): ConfigurationsSnapshot {
    return structuredClone({ counter: this.counter, configurations: [...this.records.values()], written: Object.fromEntries(this.written) });
  }

  private nextEtag(): string {
    return Buffer.from(String(++this.counter)).toString('base64');
  }

  private find(id: string): ConfigurationRecord {
    const record = this.records.get(id);
    if (!record) throw new HubError('ConfigurationNotFound', `Configuration ${id} not found`);
    return record;
  }

  list(top?: number): JsonObject[] {
    const all = [...this.records.values()].sort((a, b) => a.sequence - b.sequence);
    return (top === undefined ? all : all.slice(0, top)).map((r) => this.json(r));
  }

  get(id: string): JsonObject {
    return this.json(this.find(id));
  }

  /** PUT /configurations/{id}: creates without If-Match (409 if it exists), updates with it (412 on a stale etag). */
  put(id: string, body: unknown, ifMatch: string | undefined): JsonObject {
    if (!idPattern.test(id)) throw bad(`the configuration id "${id}" is not valid: 1–128 lower-case letters, digits and - : + % _ # * ? ! ( ) , = @ ; $ '`);
    if (!isJsonObject(body)) throw bad('the configuration body must be a JSON object');
    if (body.id !== undefined && body.id !== id) throw bad(`body id ${JSON.stringify(body.id)} differs from the URL's ${id}`);
    const targetCondition = body.targetCondition ?? '';
    if (typeof targetCondition !== 'string') throw bad('targetCondition must be a string');
    const fields = {
      labels: checkLabels(body.labels),
      targetCondition,
      priority: checkPriority(body.priority),
      metricsQueries: checkMetrics(body.metrics),
    };
    const existing = this.records.get(id);
    const record = existing ? this.update(existing, body, fields, ifMatch) : this.create(id, body, fields, ifMatch);
    const target = compileTarget(record);
    this.records.set(id, record);
    this.targets.set(id, target);
    this.host.changed();
    this.evaluate();
    return this.json(record);
  }

  private create(id: string, body: JsonObject, fields: Pick<ConfigurationRecord, 'labels' | 'targetCondition' | 'priority' | 'metricsQueries'>, ifMatch: string | undefined): ConfigurationRecord {
    if (ifMatch !== undefined) throw new HubError('ConfigurationNotFound', `Configuration ${id} not found`);
    if (this.records.size >= maxConfigurations) throw bad(`a hub holds at most ${maxConfigurations} configurations`);
    const content = checkContent(body.content);
    const now = new Date().toISOString();
    const record: ConfigurationRecord = {
      id,
      schemaVersion: typeof body.schemaVersion === 'string' ? body.schemaVersion : '1.0',
      content: structuredClone(content),
      ...fields,
      createdTimeUtc: now,
      lastUpdatedTimeUtc: now,
      etag: this.nextEtag(),
      sequence: this.counter,
    };
    compileTarget(record);
    return record;
  }

  private update(existing: ConfigurationRecord, body: JsonObject, fields: Pick<ConfigurationRecord, 'labels' | 'targetCondition' | 'priority' | 'metricsQueries'>, ifMatch: string | undefined): ConfigurationRecord {
    if (ifMatch === undefined) throw new HubError('ConfigurationAlreadyExists', `A configuration with ID '${existing.id}' already exists.`);
    const wanted = unquoteEtag(ifMatch);
    if (wanted !== '*' && wanted !== existing.etag) throw new HubError('PreconditionFailed', `configuration ${existing.id}: If-Match "${wanted}" does not match the current etag "${existing.etag}"`);
    if (body.content !== undefined && hash(body.content as Json) !== hash(existing.content)) {
      throw bad(`the content of configuration ${existing.id} cannot be changed: only targetCondition, priority, labels and metrics can`);
    }
    const record: ConfigurationRecord = { ...existing, ...fields, lastUpdatedTimeUtc: new Date().toISOString(), etag: this.nextEtag() };
    compileTarget(record);
    return record;
  }

  delete(id: string, ifMatch: string | undefined): void {
    const record = this.find(id);
    if (ifMatch !== undefined) {
      const wanted = unquoteEtag(ifMatch);
      if (wanted !== '*' && wanted !== record.etag) throw new HubError('PreconditionFailed', `configuration ${id}: If-Match "${wanted}" does not match the current etag "${record.etag}"`);
    }
    this.records.delete(id);
    this.targets.delete(id);
    this.host.changed();
    this.evaluate();
  }

  /** The `configurations` member of a module twin ($edgeAgent's, for IoT Edge deployments). */
  twinMember(deviceId: string, moduleId: string | undefined): JsonObject {
    if (moduleId !== '$edgeAgent') return {};
    const statuses = this.statuses.get(deviceId);
    if (!statuses || statuses.size === 0) return {};
    return { configurations: Object.fromEntries([...statuses].map(([id, status]) => [id, { status }])) };
  }

  /** Re-evaluates soon (after a registry change: tags, a new device or module). Coalesces. */
  schedule(): void {
    if (this.scheduled || this.evaluating || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) this.evaluate();
    });
  }

  stop(): void {
    this.stopped = true;
  }

  /** Decides, for every IoT Edge device, which deployments apply, and writes what changed. */
  evaluate(): void {
    if (this.evaluating) return;
    this.evaluating = true;
    try {
      const edgeDeployments = [...this.records.values()].filter((r) => isJsonObject(r.content.modulesContent));
      const statuses = new Map<string, Map<string, ConfigurationStatus>>();
      for (const device of this.host.devices()) {
        if (!device.iotEdge || edgeDeployments.length === 0) {
          this.forget(device);
          continue;
        }
        const deviceStatuses = this.evaluateDevice(device, edgeDeployments);
        if (deviceStatuses.size > 0) statuses.set(device.deviceId, deviceStatuses);
      }
      this.statuses = statuses;
    } finally {
      this.evaluating = false;
    }
  }

  private forget(device: DeviceRecord): void {
    for (const moduleId of Object.keys(device.modules)) this.written.delete(`${device.deviceId}/${moduleId}`);
  }

  private evaluateDevice(device: DeviceRecord, deployments: ConfigurationRecord[]): Map<string, ConfigurationStatus> {
    const twin = this.host.deviceTwin(device.deviceId);
    const targeting = deployments.filter((d) => this.targets.get(d.id)?.(twin) === true);
    const statuses = new Map<string, ConfigurationStatus>(targeting.map((d) => [d.id, 'Targeted']));
    const bases = targeting.filter((d) => deploymentKind(d.content) === 'base').sort(byPrecedence);
    const base = bases.at(-1);
    if (!base) {
      this.forget(device);
      return statuses;
    }
    const layers = targeting.filter((d) => deploymentKind(d.content) === 'layered');
    const merged = mergeDeployments(base, layers);
    const toWrite: Record<string, JsonObject> = {};
    for (const [moduleId, desired] of Object.entries(merged)) {
      if (!device.modules[moduleId]) continue; // written once the module identity exists
      const key = `${device.deviceId}/${moduleId}`;
      const digest = hash(desired);
      if (this.written.get(key) !== digest) toWrite[moduleId] = desired;
    }
    if (Object.keys(toWrite).length > 0) this.write(device, toWrite);
    for (const d of [base, ...layers]) statuses.set(d.id, 'Applied');
    return statuses;
  }

  private write(device: DeviceRecord, toWrite: Record<string, JsonObject>): void {
    try {
      this.host.writeModulesDesired(device.deviceId, toWrite);
    } catch (error) {
      // Recorded as written all the same: the same content would fail again on every change.
      this.host.log('configuration content could not be applied', { deviceId: device.deviceId, error: (error as Error).message });
    }
    for (const [moduleId, desired] of Object.entries(toWrite)) this.written.set(`${device.deviceId}/${moduleId}`, hash(desired));
    this.host.changed();
  }

  private systemQueries(record: ConfigurationRecord): Record<string, string> {
    const kind = deploymentKind(record.content);
    const condition = record.targetCondition.trim();
    if (kind === 'base' || kind === 'layered') {
      return {
        ...(condition === '' ? {} : { targetedCount: `select deviceId from devices where capabilities.iotEdge = true and (${condition})` }),
        appliedCount: `select deviceId from devices.modules where moduleId = '$edgeAgent' and configurations.[[${record.id}]].status = 'Applied'`,
      };
    }
    const collection = kind === 'module' ? 'devices.modules' : 'devices';
    const targetCondition = kind === 'module' ? moduleCondition(condition) : condition;
    return {
      ...(targetCondition === '' ? {} : { targetedCount: `select deviceId from ${collection} where ${targetCondition}` }),
      appliedCount: `select deviceId from ${collection} where configurations.[[${record.id}]].status = 'Applied'`,
    };
  }

  private count(text: string, source: QuerySource): number {
    try {
      return compileQuery(text).results(source).length;
    } catch (error) {
      this.host.log('configuration metric query failed', { query: text, error: (error as Error).message });
      return 0;
    }
  }

  private json(record: ConfigurationRecord): JsonObject {
    const source = this.host.querySource();
    const systemQueries = this.systemQueries(record);
    const results = (queries: Record<string, string>) => Object.fromEntries(Object.entries(queries).map(([name, q]) => [name, this.count(q, source)]));
    return {
      id: record.id,
      schemaVersion: record.schemaVersion,
      labels: structuredClone(record.labels),
      content: structuredClone(record.content),
      targetCondition: record.targetCondition,
      createdTimeUtc: record.createdTimeUtc,
      lastUpdatedTimeUtc: record.lastUpdatedTimeUtc,
      priority: record.priority,
      systemMetrics: { results: { targetedCount: 0, ...results(systemQueries) }, queries: systemQueries },
      metrics: { results: results(record.metricsQueries), queries: structuredClone(record.metricsQueries) },
      etag: record.etag,
    };
  }
}
