// edgeAgent reads createOptions into Docker's typed create parameters with a JSON reader that converts
// scalars: "true"/"false" (any case, surrounding blanks allowed) become booleans and "536870912" becomes an
// integer wherever the field is typed so. Microsoft's own test deployments rely on it ("Privileged": "true").
// This module does the same conversion before translation, naming each converted path in a warning
// (IEO_W_COERCED_VALUE), so that a later reader sees the types Docker would have seen.
import type { DockerCreateOptions } from '../manifest/model.ts';
import type { Issues } from './issues.ts';
import { pointer } from './names.ts';

type FieldType = 'boolean' | 'integer' | { object: Schema } | { array: Schema };
interface Schema {
  [field: string]: FieldType;
}

const healthcheck: Schema = { Interval: 'integer', Timeout: 'integer', StartPeriod: 'integer', StartInterval: 'integer', Retries: 'integer' };

const mount: Schema = {
  ReadOnly: 'boolean',
  BindOptions: { object: { NonRecursive: 'boolean', CreateMountpoint: 'boolean', ReadOnlyNonRecursive: 'boolean', ReadOnlyForceRecursive: 'boolean' } },
  VolumeOptions: { object: { NoCopy: 'boolean' } },
  TmpfsOptions: { object: { SizeBytes: 'integer', Mode: 'integer' } },
};

/** The boolean and integer fields of Docker's ContainerCreate body (Config and HostConfig), as edgeAgent types them. */
const createOptionsSchema: Schema = {
  AttachStdin: 'boolean',
  AttachStdout: 'boolean',
  AttachStderr: 'boolean',
  Tty: 'boolean',
  OpenStdin: 'boolean',
  StdinOnce: 'boolean',
  ArgsEscaped: 'boolean',
  NetworkDisabled: 'boolean',
  StopTimeout: 'integer',
  Healthcheck: { object: healthcheck },
  HostConfig: {
    object: {
      Privileged: 'boolean',
      PublishAllPorts: 'boolean',
      ReadonlyRootfs: 'boolean',
      AutoRemove: 'boolean',
      OomKillDisable: 'boolean',
      Init: 'boolean',
      Memory: 'integer',
      MemoryReservation: 'integer',
      MemorySwap: 'integer',
      MemorySwappiness: 'integer',
      KernelMemory: 'integer',
      KernelMemoryTCP: 'integer',
      NanoCpus: 'integer',
      CpuShares: 'integer',
      CpuPeriod: 'integer',
      CpuQuota: 'integer',
      CpuRealtimePeriod: 'integer',
      CpuRealtimeRuntime: 'integer',
      CpuCount: 'integer',
      CpuPercent: 'integer',
      BlkioWeight: 'integer',
      PidsLimit: 'integer',
      OomScoreAdj: 'integer',
      ShmSize: 'integer',
      IOMaximumIOps: 'integer',
      IOMaximumBandwidth: 'integer',
      Mounts: { array: mount },
      RestartPolicy: { object: { MaximumRetryCount: 'integer' } },
      DeviceRequests: { array: { Count: 'integer' } },
    },
  },
};

const booleanText = /^\s*(true|false)\s*$/i;
const integerText = /^\s*[-+]?\d+\s*$/;

/** The typed value a string stands for, as edgeAgent's reader converts it; undefined when it stands for none. */
function coerceScalar(value: string, type: 'boolean' | 'integer'): boolean | number | undefined {
  if (type === 'boolean') {
    const m = booleanText.exec(value);
    return m ? (m[1] as string).toLowerCase() === 'true' : undefined;
  }
  if (!integerText.test(value)) return undefined;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Docker matches field names ignoring case, so the schema is looked up the same way. */
function fieldType(schema: Schema, key: string): FieldType | undefined {
  if (key in schema) return schema[key];
  const lower = key.toLowerCase();
  const match = Object.keys(schema).find((k) => k.toLowerCase() === lower);
  return match === undefined ? undefined : schema[match];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function coerceObject(value: Record<string, unknown>, schema: Schema, at: string, onCoerced: (path: string, from: string, to: boolean | number) => void): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [key, member] of Object.entries(value)) {
    const type = fieldType(schema, key);
    if (type === undefined || member === null || member === undefined) continue;
    const path = `${at}${pointer(key)}`;
    let next: unknown = member;
    if (type === 'boolean' || type === 'integer') {
      if (typeof member === 'string') {
        const coerced = coerceScalar(member, type);
        if (coerced !== undefined) {
          onCoerced(path, member, coerced);
          next = coerced;
        }
      }
    } else if ('object' in type && isObject(member)) {
      next = coerceObject(member, type.object, path, onCoerced);
    } else if ('array' in type && Array.isArray(member)) {
      const items = member.map((item: unknown, i) => (isObject(item) ? coerceObject(item, type.array, `${path}/${i}`, onCoerced) : item));
      next = items.some((item, i) => item !== member[i]) ? items : member;
    }
    if (next !== member) {
      out ??= { ...value };
      out[key] = next;
    }
  }
  return out ?? value;
}

/**
 * createOptions with booleans and integers written as JSON strings converted to their types, as edgeAgent's
 * reader converts them; each conversion is a warning naming its path. Strings that do not stand for a
 * value of the field's type are left alone, for translation to report as Docker would. The input is not changed.
 */
export function coerceCreateOptions(createOptions: DockerCreateOptions, base: string, moduleId: string, issues: Issues): DockerCreateOptions {
  return coerceObject(createOptions, createOptionsSchema, base, (path, from, to) => {
    issues.warn('IEO_W_COERCED_VALUE', path,
      `module ${JSON.stringify(moduleId)}: createOptions value ${JSON.stringify(from)} is read as the ${typeof to} ${String(to)}, as edgeAgent reads it; write it without quotes`);
  });
}
