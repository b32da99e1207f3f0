// Twin documents as IoT Hub keeps them: desired, reported and tags, each with its own version and a
// $metadata tree ($lastUpdated at every object level). Pure logic: no I/O, the clock is an argument.
// Limits and key rules follow the IoT Hub twin documentation (see docs/emulator.md, "Fidelity").

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export interface TwinState {
  tags: JsonObject;
  desired: JsonObject;
  desiredVersion: number;
  desiredMetadata: JsonObject;
  reported: JsonObject;
  reportedVersion: number;
  reportedMetadata: JsonObject;
  /** Counts tag and desired changes, like the hub's twin `version`. */
  version: number;
}

export type TwinSectionName = 'desired' | 'reported' | 'tags';

export const twinLimits = {
  maxDepth: 10,
  maxKeyBytes: 1024,
  maxStringBytes: 4096,
  maxSafeInteger: 4503599627370495,
  sectionBytes: { desired: 32 * 1024, reported: 32 * 1024, tags: 8 * 1024 } as Record<TwinSectionName, number>,
} as const;

export type TwinValidationKind = 'shape' | 'key' | 'depth' | 'value' | 'size';

export class TwinValidationError extends Error {
  override name = 'TwinValidationError';
  readonly kind: TwinValidationKind;
  /** Dotted path of the fault inside the section, e.g. `reported.a.b`. */
  readonly path: string;
  constructor(kind: TwinValidationKind, path: string, message: string) {
    super(`${path}: ${message}`);
    this.kind = kind;
    this.path = path;
  }
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function newTwinState(now: string): TwinState {
  return {
    tags: {},
    desired: {},
    desiredVersion: 1,
    desiredMetadata: { $lastUpdated: now },
    reported: {},
    reportedVersion: 1,
    reportedMetadata: { $lastUpdated: now },
    version: 1,
  };
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Why a key is not allowed, or undefined. Keys exclude control characters (C0, C1), `.`, `$` and space. */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'empty key';
  if (utf8Bytes(key) > twinLimits.maxKeyBytes) return `key longer than ${twinLimits.maxKeyBytes} bytes`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(key)) return 'key contains a control character';
  if (/[.$ ]/.test(key)) return `key "${key}" contains ".", "$" or a space`;
  return undefined;
}

/**
 * Checks a patch (or a full document) for a section. `null` is allowed as a value (it deletes).
 * Depth counts objects and arrays nested below the section root: in `{one:{two:{}}}` the object
 * under `one` is level 1; ten levels are allowed, the eleventh is refused.
 */
export function validateTwinDocument(doc: unknown, section: TwinSectionName): asserts doc is JsonObject {
  if (!isJsonObject(doc)) throw new TwinValidationError('shape', section, 'must be a JSON object');
  container(doc, section, 0);

  function container(value: JsonObject | Json[], path: string, depth: number): void {
    if (depth > twinLimits.maxDepth) throw new TwinValidationError('depth', path, `nested deeper than ${twinLimits.maxDepth} levels`);
    if (Array.isArray(value)) {
      value.forEach((item, i) => member(item, `${path}[${i}]`, depth));
      return;
    }
    for (const [key, child] of Object.entries(value)) {
      const problem = keyProblem(key);
      if (problem) throw new TwinValidationError('key', `${path}.${key}`, problem);
      member(child, `${path}.${key}`, depth);
    }
  }

  function member(value: Json, path: string, parentDepth: number): void {
    if (value === null || typeof value === 'boolean') return;
    if (typeof value === 'string') {
      if (utf8Bytes(value) > twinLimits.maxStringBytes) throw new TwinValidationError('value', path, `string longer than ${twinLimits.maxStringBytes} bytes`);
      return;
    }
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new TwinValidationError('value', path, 'number is not finite');
      if (Number.isInteger(value) && Math.abs(value) > twinLimits.maxSafeInteger) {
        throw new TwinValidationError('value', path, `integer outside ±${twinLimits.maxSafeInteger}`);
      }
      return;
    }
    container(value, path, parentDepth + 1);
  }
}

function clone<T extends Json>(value: T): T {
  return structuredClone(value);
}

function withoutNulls(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isJsonObject(value)) return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
  return out;
}

/** Metadata for a freshly written value: $lastUpdated on it and on every object below it. */
function freshMetadata(value: Json, now: string, version: number | undefined): JsonObject {
  const meta: JsonObject = { $lastUpdated: now };
  if (version !== undefined) meta.$lastUpdatedVersion = version;
  if (isJsonObject(value)) for (const [k, v] of Object.entries(value)) meta[k] = freshMetadata(v, now, version);
  return meta;
}

/**
 * JSON merge patch with IoT Hub's rules: `null` deletes, objects merge key by key, anything else
 * (arrays included) replaces. Updates the metadata tree along every touched path.
 */
export function mergeWithMetadata(target: JsonObject, meta: JsonObject, patch: JsonObject, now: string, version: number | undefined): void {
  meta.$lastUpdated = now;
  if (version !== undefined) meta.$lastUpdatedVersion = version;
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete target[key];
      delete meta[key];
      continue;
    }
    const current = target[key];
    if (isJsonObject(value) && isJsonObject(current)) {
      const childMeta = meta[key];
      const m = isJsonObject(childMeta) ? childMeta : (meta[key] = {});
      mergeWithMetadata(current, m, value, now, version);
    } else {
      const written = withoutNulls(clone(value));
      target[key] = written;
      meta[key] = freshMetadata(written, now, version);
    }
  }
}

/** The patch that turns `from` into `to`: changed members, and `null` for removed ones. */
export function diffDocuments(from: JsonObject, to: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    const old = from[key];
    if (isJsonObject(value) && isJsonObject(old)) {
      const sub = diffDocuments(old, value);
      if (Object.keys(sub).length > 0) patch[key] = sub;
    } else if (old === undefined || JSON.stringify(old) !== JSON.stringify(value)) {
      patch[key] = clone(value);
    }
  }
  return patch;
}

function checkSize(doc: JsonObject, section: TwinSectionName): void {
  const limit = twinLimits.sectionBytes[section];
  const size = utf8Bytes(JSON.stringify(doc));
  if (size > limit) throw new TwinValidationError('size', section, `would be ${size} bytes, more than the ${limit}-byte limit`);
}

/** Applies a device's reported patch; returns the new reported $version. Nothing changes when it throws. */
export function applyReportedPatch(twin: TwinState, patch: unknown, now: string): number {
  validateTwinDocument(patch, 'reported');
  const next = clone(twin.reported);
  const nextMeta = clone(twin.reportedMetadata);
  const version = twin.reportedVersion + 1;
  mergeWithMetadata(next, nextMeta, patch, now, undefined);
  checkSize(next, 'reported');
  twin.reported = next;
  twin.reportedMetadata = nextMeta;
  twin.reportedVersion = version;
  return version;
}

export interface ServiceTwinPatch {
  tags?: JsonObject;
  desired?: JsonObject;
}

/** A service twin write as the REST body gives it: a section may be absent, an object, or `null` (clear it). */
export interface ServiceTwinWrite {
  tags?: JsonObject | null;
  desired?: JsonObject | null;
}

/** The merge patch that deletes every member of `doc`: what writing a whole section as `null` means. */
export function clearingPatch(doc: JsonObject): JsonObject {
  return Object.fromEntries(Object.keys(doc).map((key) => [key, null]));
}

/**
 * Applies a service PATCH (`merge`) or PUT (`replace`) of tags and desired properties. A section given as
 * `null` is cleared, as IoT Hub does: the desired $version moves on and the notification names every removed
 * member with `null`, so a device SDK merging it ends with an empty section. Returns the desired patch to
 * notify (`diff`, with `$version`) and the full desired document, or undefined when desired was not written.
 * Nothing changes when it throws.
 */
export function applyServiceWrite(twin: TwinState, write: ServiceTwinWrite, mode: 'merge' | 'replace', now: string): DesiredReplacement | undefined {
  const tagsPatch = write.tags === undefined ? undefined
    : write.tags === null || mode === 'replace' ? { ...clearingPatch(twin.tags), ...(write.tags ?? {}) } : write.tags;
  const staged = structuredClone(twin);
  let notify: DesiredReplacement | undefined;
  if (write.desired !== undefined && mode === 'replace') {
    if (tagsPatch !== undefined) applyServicePatch(staged, { tags: tagsPatch }, now);
    notify = replaceDesired(staged, write.desired ?? {}, now);
  } else {
    const desiredPatch = write.desired === undefined ? undefined : write.desired ?? clearingPatch(twin.desired);
    const diff = applyServicePatch(staged, { ...(tagsPatch === undefined ? {} : { tags: tagsPatch }), ...(desiredPatch === undefined ? {} : { desired: desiredPatch }) }, now);
    if (diff !== undefined) notify = { diff, full: { ...clone(staged.desired), $version: staged.desiredVersion }, version: staged.desiredVersion };
  }
  // One write is one new twin version, however many sections it touched.
  staged.version = twin.version + 1;
  Object.assign(twin, staged);
  return notify;
}

/**
 * Applies a service-side patch (tags and/or desired). Returns the desired patch to notify (with
 * `$version`), or undefined when desired did not change. Nothing changes when it throws.
 */
export function applyServicePatch(twin: TwinState, patch: ServiceTwinPatch, now: string): JsonObject | undefined {
  if (patch.tags !== undefined) validateTwinDocument(patch.tags, 'tags');
  if (patch.desired !== undefined) validateTwinDocument(patch.desired, 'desired');
  const tags = clone(twin.tags);
  if (patch.tags !== undefined) {
    mergeWithMetadata(tags, {}, patch.tags, now, undefined);
    checkSize(tags, 'tags');
  }
  let desired = twin.desired;
  let desiredMeta = twin.desiredMetadata;
  const desiredVersion = twin.desiredVersion + 1;
  if (patch.desired !== undefined) {
    desired = clone(twin.desired);
    desiredMeta = clone(twin.desiredMetadata);
    mergeWithMetadata(desired, desiredMeta, patch.desired, now, desiredVersion);
    checkSize(desired, 'desired');
  }
  twin.tags = tags;
  twin.version += 1;
  if (patch.desired === undefined) return undefined;
  twin.desired = desired;
  twin.desiredMetadata = desiredMeta;
  twin.desiredVersion = desiredVersion;
  return { ...clone(patch.desired), $version: desiredVersion };
}

export interface DesiredReplacement {
  /** The new desired document with `$version`. */
  full: JsonObject;
  /** A patch from the old document to the new, with `null` for removed members, and `$version`. */
  diff: JsonObject;
  version: number;
}

/** Overwrites desired (applyConfigurationContent). Nulls in `desired` are dropped. */
export function replaceDesired(twin: TwinState, desired: unknown, now: string): DesiredReplacement {
  validateTwinDocument(desired, 'desired');
  const next = withoutNulls(clone(desired)) as JsonObject;
  checkSize(next, 'desired');
  const version = twin.desiredVersion + 1;
  const diff = diffDocuments(twin.desired, next);
  twin.desired = next;
  twin.desiredMetadata = freshMetadata(next, now, version);
  twin.desiredVersion = version;
  twin.version += 1;
  return { full: { ...clone(next), $version: version }, diff: { ...diff, $version: version }, version };
}

/** The twin body of an MQTT GET: values and `$version`, no metadata (as the hub's example shows). */
export function mqttTwinBody(twin: TwinState): JsonObject {
  return {
    desired: { ...clone(twin.desired), $version: twin.desiredVersion },
    reported: { ...clone(twin.reported), $version: twin.reportedVersion },
  };
}

/** The `properties` member of a REST twin: values, `$metadata` and `$version` per section. */
export function restTwinProperties(twin: TwinState): JsonObject {
  return {
    desired: { ...clone(twin.desired), $metadata: clone(twin.desiredMetadata), $version: twin.desiredVersion },
    reported: { ...clone(twin.reported), $metadata: clone(twin.reportedMetadata), $version: twin.reportedVersion },
  };
}
