// The last known copy of each module's twin, kept on the store's volume so a restarted hub still
// answers twin GETs while IoT Hub is unreachable (edgeHub serves twins from its store the same way).
// Reported patches made offline are merged into the copy and into a pending patch that is sent
// upstream on reconnect. One small JSON file per module, replaced atomically.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type JsonObject = { [key: string]: unknown };

export interface CachedTwin {
  desired: JsonObject;
  reported: JsonObject;
  /** Reported changes not yet accepted by IoT Hub (kubectl mode: never sent). */
  pendingReported: JsonObject | undefined;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Merges a twin patch into `target`: objects recursively, null deletes, anything else replaces. */
export function mergePatch(target: JsonObject, patch: JsonObject): void {
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$version' || key === '$metadata') continue;
    if (value === null) {
      delete target[key];
    } else if (isJsonObject(value)) {
      const existing = target[key];
      const next = isJsonObject(existing) ? existing : {};
      mergePatch(next, value);
      target[key] = next;
    } else {
      target[key] = value;
    }
  }
}

/** Merges patch into a patch: like mergePatch, but a null is kept (it must still delete upstream). */
export function combinePatches(target: JsonObject, patch: JsonObject): void {
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$version' || key === '$metadata') continue;
    const existing = target[key];
    if (isJsonObject(value) && isJsonObject(existing)) combinePatches(existing, value);
    else target[key] = isJsonObject(value) ? structuredClone(value) : value;
  }
}

/** Throws with a reason when a reported patch is not one IoT Hub would take. */
export function checkReportedPatch(patch: unknown): asserts patch is JsonObject {
  if (!isJsonObject(patch)) throw new Error('The reported properties patch must be a JSON object.');
  const walk = (value: JsonObject, depth: number) => {
    if (depth > 10) throw new Error('The reported properties patch is nested deeper than 10 levels.');
    for (const [key, child] of Object.entries(value)) {
      if (key === '$version') continue;
      if (key.length === 0 || /[.$ ]/.test(key) || [...key].some((c) => c.charCodeAt(0) < 0x20)) throw new Error(`The property name "${key}" is not allowed in a twin.`);
      if (isJsonObject(child)) walk(child, depth + 1);
    }
  };
  walk(patch, 1);
}

function version(section: JsonObject): number {
  return typeof section.$version === 'number' ? section.$version : 1;
}

export class TwinCache {
  private readonly dir: string;
  private readonly twins = new Map<string, CachedTwin>();

  constructor(storeDir: string) {
    this.dir = join(storeDir, 'twins');
    mkdirSync(this.dir, { recursive: true });
  }

  private file(moduleId: string): string {
    return join(this.dir, `${encodeURIComponent(moduleId)}.json`);
  }

  get(moduleId: string): CachedTwin {
    let twin = this.twins.get(moduleId);
    if (twin) return twin;
    try {
      twin = JSON.parse(readFileSync(this.file(moduleId), 'utf8')) as CachedTwin;
    } catch {
      twin = { desired: { $version: 1 }, reported: { $version: 1 }, pendingReported: undefined };
    }
    this.twins.set(moduleId, twin);
    return twin;
  }

  private save(moduleId: string, twin: CachedTwin): void {
    const target = this.file(moduleId);
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(twin));
    renameSync(tmp, target);
  }

  /** The body of an MQTT twin GET response. */
  body(moduleId: string): string {
    const twin = this.get(moduleId);
    return JSON.stringify({ desired: twin.desired, reported: twin.reported });
  }

  /** Replaces the copy with IoT Hub's; pending offline changes are kept on top. */
  replaceFromUpstream(moduleId: string, desired: JsonObject, reported: JsonObject): void {
    const twin = this.get(moduleId);
    twin.desired = structuredClone(desired);
    twin.reported = structuredClone(reported);
    if (twin.pendingReported) mergePatch(twin.reported, twin.pendingReported);
    this.save(moduleId, twin);
  }

  /** Applies a desired patch from IoT Hub; false when it is not newer than the copy. */
  applyDesired(moduleId: string, patch: JsonObject): boolean {
    const twin = this.get(moduleId);
    const next = typeof patch.$version === 'number' ? patch.$version : version(twin.desired) + 1;
    if (next <= version(twin.desired) && typeof patch.$version === 'number') return false;
    mergePatch(twin.desired, patch);
    twin.desired.$version = next;
    this.save(moduleId, twin);
    return true;
  }

  /** Applies a module's reported patch to the copy; `pending` also keeps it for IoT Hub. Returns the new version. */
  applyReported(moduleId: string, patch: JsonObject, pending: boolean): number {
    const twin = this.get(moduleId);
    mergePatch(twin.reported, patch);
    twin.reported.$version = version(twin.reported) + 1;
    if (pending) {
      twin.pendingReported ??= {};
      combinePatches(twin.pendingReported, patch);
    }
    this.save(moduleId, twin);
    return twin.reported.$version as number;
  }

  /** The pending reported patch, if any, to send upstream; clearPending once IoT Hub took it. */
  pending(moduleId: string): JsonObject | undefined {
    return this.get(moduleId).pendingReported;
  }

  clearPending(moduleId: string, sent: JsonObject): void {
    const twin = this.get(moduleId);
    if (twin.pendingReported === sent) twin.pendingReported = undefined;
    this.save(moduleId, twin);
  }
}
