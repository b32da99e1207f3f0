// The $edgeAgent reported properties, built from the EdgeDeployment (its spec for what is desired, its
// status for what runs) in edgeAgent's schema, and the patch that moves the twin from one document to
// the next. Both are pure so that what IoT Hub sees is decided in one testable place.
import type { EdgeDeploymentSpec, EdgeDeploymentStatus, LastDesiredStatus, ModuleStatus } from '../api/edge-deployment.ts';
import { boundText } from '../controller/refusals.ts';
import { isJsonObject, type JsonObject } from './desired.ts';

/** edgeAgent's IoTHubReporter schema version. */
export const reportedSchemaVersion = '1.0';
/** edgeAgent reports this for a time it does not know (.NET's DateTime.MinValue). */
export const unknownTime = '0001-01-01T00:00:00Z';

export interface Platform {
  os: string;
  architecture: string;
  version: string;
}

export interface OperatorVersion {
  version: string;
  build: string;
  commit: string;
}

export interface ReportedInput {
  spec: EdgeDeploymentSpec | undefined;
  status: EdgeDeploymentStatus | undefined;
  platform: Platform;
  operator: OperatorVersion;
  /** When the operator itself started: edgeAgent's own lastStartTimeUtc. */
  startedAt: string;
  /**
   * A desired version twin sync could not apply (the conversion or the API server refused it); it wins
   * over the status, which still describes the older desired state that keeps running.
   */
  rejected?: { version: number; status: LastDesiredStatus };
}

interface ModuleSpecLike {
  version?: string;
  type?: string;
  status?: string;
  restartPolicy?: string;
  imagePullPolicy?: string;
  settings?: { image?: string };
}

function observed(status: ModuleStatus | undefined): JsonObject {
  return {
    runtimeStatus: status?.runtimeStatus ?? 'unknown',
    exitCode: status?.exitCode ?? 0,
    statusDescription: status?.statusDescription ?? '',
    lastStartTimeUtc: status?.lastStartTimeUtc ?? unknownTime,
    lastExitTimeUtc: status?.lastExitTimeUtc ?? unknownTime,
    restartCount: status?.restartCount ?? 0,
    lastRestartTimeUtc: status?.lastRestartTimeUtc ?? unknownTime,
  };
}

function moduleReport(spec: ModuleSpecLike | undefined, status: ModuleStatus | undefined): JsonObject {
  return dropUndefined({
    type: spec?.type ?? 'docker',
    ...observed(status),
    status: spec?.status ?? status?.status ?? 'running',
    restartPolicy: spec?.restartPolicy ?? status?.restartPolicy ?? 'always',
    imagePullPolicy: spec?.imagePullPolicy,
    version: spec?.version ?? '',
    settings: { image: spec?.settings?.image ?? status?.image ?? '' },
  });
}

/** The $edgeAgent reported properties for one EdgeDeployment. */
export function buildReported(input: ReportedInput): JsonObject {
  const { spec, status } = input;
  const agent = spec?.agent;
  const modules: JsonObject = {};
  for (const [id, module] of Object.entries(agent?.modules ?? {})) {
    modules[id] = moduleReport(module as ModuleSpecLike, status?.modules?.[id]);
  }
  const edgeAgentSpec = agent?.systemModules?.edgeAgent as ModuleSpecLike | undefined;
  const systemModules: JsonObject = {
    edgeAgent: dropUndefined({
      type: 'docker',
      runtimeStatus: 'running',
      exitCode: 0,
      statusDescription: 'the operator acts as edgeAgent',
      lastStartTimeUtc: input.startedAt,
      lastExitTimeUtc: unknownTime,
      imagePullPolicy: edgeAgentSpec?.imagePullPolicy,
      settings: { image: edgeAgentSpec?.settings?.image ?? '' },
    }),
  };
  if (agent?.systemModules?.edgeHub) {
    systemModules.edgeHub = moduleReport(agent.systemModules.edgeHub as ModuleSpecLike, status?.modules?.edgeHub ?? status?.modules?.$edgeHub);
  }
  const statusVersion = status?.lastDesiredVersion;
  const rejectedWins = input.rejected !== undefined && (statusVersion === undefined || input.rejected.version >= statusVersion);
  const lastDesiredVersion = rejectedWins ? input.rejected!.version : statusVersion;
  const lastDesiredStatus = rejectedWins ? input.rejected!.status : status?.lastDesiredStatus;
  const runtimeSettings = agent?.runtime?.settings;
  return boundStrings(dropUndefined({
    schemaVersion: reportedSchemaVersion,
    lastDesiredVersion,
    lastDesiredStatus: lastDesiredStatus ? { code: lastDesiredStatus.code, description: lastDesiredStatus.description ?? '' } : undefined,
    version: { ...input.operator },
    runtime: {
      type: 'docker',
      platform: { ...input.platform },
      settings: dropUndefined({ minDockerVersion: runtimeSettings?.minDockerVersion ?? '', loggingOptions: runtimeSettings?.loggingOptions ?? '' }),
    },
    systemModules,
    modules,
  }));
}

/** IoT Hub refuses a reported string over 4 KB: every string is bounded, or the whole patch would be refused. */
function boundStrings(value: JsonObject): JsonObject {
  const bound = (v: unknown): unknown => {
    if (typeof v === 'string') return boundText(v);
    if (Array.isArray(v)) return v.map(bound);
    if (isJsonObject(v)) return Object.fromEntries(Object.entries(v).map(([k, member]) => [k, bound(member)]));
    return v;
  };
  return bound(value) as JsonObject;
}

/**
 * The reported-properties patch from `previous` (what the twin holds) to `next`: changed leaves, and
 * `null` for every member that is gone. Undefined when nothing changed. Arrays count as leaves.
 */
export function diffReported(previous: JsonObject | undefined, next: JsonObject): JsonObject | undefined {
  const patch: JsonObject = {};
  const before = previous ?? {};
  for (const key of Object.keys(before)) if (!(key in next)) patch[key] = null;
  for (const [key, value] of Object.entries(next)) {
    const old = before[key];
    if (isJsonObject(value) && isJsonObject(old)) {
      const inner = diffReported(old, value);
      if (inner) patch[key] = inner;
    } else if (!sameJson(old, value)) {
      patch[key] = structuredClone(value);
    }
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function dropUndefined(value: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}
