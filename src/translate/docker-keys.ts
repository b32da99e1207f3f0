// Docker's daemon decodes a ContainerCreate body with Go's encoding/json, which matches object keys to
// struct fields without regard to case ("cmd", "hostconfig" and "HostConfig" are one field). edgeAgent
// and Microsoft's Kubernetes preview read createOptions the same way. This module rewrites every struct
// key of a createOptions body to Docker's spelling, so the rest of the translation reads one spelling.
// Map keys (Labels, ExposedPorts, Sysctls, ...) are data, not fields, and keep their case.
import type { DockerCreateOptions } from '../manifest/model.ts';
import type { Issues } from './issues.ts';
import { pointer } from './names.ts';

/** The shape of a value: a struct with known fields, a map with free keys, or a list. */
type Shape =
  | { kind: 'struct'; fields: Record<string, Shape | undefined> }
  | { kind: 'map'; values?: Shape }
  | { kind: 'list'; items?: Shape };

const struct = (fields: Record<string, Shape | undefined>): Shape => ({ kind: 'struct', fields });
const map = (values?: Shape): Shape => ({ kind: 'map', ...(values ? { values } : {}) });
const list = (items?: Shape): Shape => ({ kind: 'list', ...(items ? { items } : {}) });

/** Field names without a nested shape (scalars and string lists). */
function leaves(...names: string[]): Record<string, undefined> {
  return Object.fromEntries(names.map((n) => [n, undefined]));
}

const throttleDevice = list(struct(leaves('Path', 'Rate')));

const mountShape = struct({
  ...leaves('Type', 'Source', 'Target', 'ReadOnly', 'Consistency'),
  BindOptions: struct(leaves('Propagation', 'NonRecursive', 'CreateMountpoint', 'ReadOnlyNonRecursive', 'ReadOnlyForceRecursive')),
  VolumeOptions: struct({ ...leaves('NoCopy', 'Subpath'), Labels: map(), DriverConfig: struct({ Name: undefined, Options: map() }) }),
  TmpfsOptions: struct(leaves('SizeBytes', 'Mode', 'Options')),
});

const hostConfigShape = struct({
  ...leaves(
    'Binds', 'ContainerIDFile', 'NetworkMode', 'AutoRemove', 'VolumeDriver', 'VolumesFrom', 'ConsoleSize', 'CapAdd', 'CapDrop',
    'CgroupnsMode', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'GroupAdd', 'IpcMode', 'Cgroup', 'Links', 'OomScoreAdj', 'PidMode',
    'Privileged', 'PublishAllPorts', 'ReadonlyRootfs', 'SecurityOpt', 'UTSMode', 'UsernsMode', 'ShmSize', 'Runtime', 'Isolation',
    'CpuShares', 'Memory', 'NanoCpus', 'CgroupParent', 'BlkioWeight', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime',
    'CpusetCpus', 'CpusetMems', 'DeviceCgroupRules', 'KernelMemory', 'KernelMemoryTCP', 'MemoryReservation', 'MemorySwap',
    'MemorySwappiness', 'OomKillDisable', 'PidsLimit', 'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth', 'MaskedPaths',
    'ReadonlyPaths', 'Init',
  ),
  LogConfig: struct({ Type: undefined, Config: map() }),
  PortBindings: map(list(struct(leaves('HostIp', 'HostPort')))),
  RestartPolicy: struct(leaves('Name', 'MaximumRetryCount')),
  Annotations: map(),
  StorageOpt: map(),
  Tmpfs: map(),
  Sysctls: map(),
  BlkioWeightDevice: list(struct(leaves('Path', 'Weight'))),
  BlkioDeviceReadBps: throttleDevice,
  BlkioDeviceWriteBps: throttleDevice,
  BlkioDeviceReadIOps: throttleDevice,
  BlkioDeviceWriteIOps: throttleDevice,
  Devices: list(struct(leaves('PathOnHost', 'PathInContainer', 'CgroupPermissions'))),
  DeviceRequests: list(struct({ ...leaves('Driver', 'Count', 'DeviceIDs', 'Capabilities'), Options: map() })),
  Ulimits: list(struct(leaves('Name', 'Soft', 'Hard'))),
  Mounts: list(mountShape),
});

const endpointShape = struct({
  ...leaves('Links', 'Aliases', 'NetworkID', 'EndpointID', 'Gateway', 'IPAddress', 'IPPrefixLen', 'IPv6Gateway', 'GlobalIPv6Address',
    'GlobalIPv6PrefixLen', 'MacAddress'),
  IPAMConfig: struct(leaves('IPv4Address', 'IPv6Address', 'LinkLocalIPs')),
  DriverOpts: map(),
});

/**
 * A ContainerCreate body: Docker's container Config, plus HostConfig and NetworkingConfig. `k8s` and
 * `k8s-experimental` are this operator's and the preview's own sections; their keys are read by their parsers.
 */
const createOptionsShape = struct({
  ...leaves(
    'Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin', 'StdinOnce', 'Env', 'Cmd',
    'ArgsEscaped', 'Image', 'WorkingDir', 'Entrypoint', 'NetworkDisabled', 'MacAddress', 'OnBuild', 'StopSignal', 'StopTimeout', 'Shell',
    'k8s', 'k8s-experimental',
  ),
  ExposedPorts: map(),
  Volumes: map(),
  Labels: map(),
  Healthcheck: struct(leaves('Test', 'Interval', 'Timeout', 'Retries', 'StartPeriod', 'StartInterval')),
  HostConfig: hostConfigShape,
  NetworkingConfig: struct({ EndpointsConfig: map(endpointShape) }),
});

/** A key whose spelling was changed: JSON pointers (from the createOptions root) of the new and the original. */
export interface KeyRename {
  canonical: string;
  original: string;
}

export interface CanonicalCreateOptions {
  createOptions: DockerCreateOptions;
  renames: KeyRename[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * createOptions with every struct key in Docker's spelling. When two keys name one field, the later one wins,
 * as with Go's decoder; the earlier one is reported. `base` is the pointer of createOptions in the manifest.
 */
export function canonicalCreateOptions(createOptions: DockerCreateOptions, base: string, issues: Issues): CanonicalCreateOptions {
  // Nearly every manifest spells Docker's keys as Docker does: then there is nothing to copy or rename.
  if (spelledAsDocker(createOptions, createOptionsShape)) return { createOptions, renames: [] };
  const renames: KeyRename[] = [];
  const walk = (value: unknown, shape: Shape | undefined, canonicalAt: string, originalAt: string): unknown => {
    if (shape === undefined) return value;
    if (shape.kind === 'list') {
      return Array.isArray(value) ? value.map((item, i) => walk(item, shape.items, `${canonicalAt}/${i}`, `${originalAt}/${i}`)) : value;
    }
    if (!isObject(value)) return value;
    const out: Record<string, unknown> = {};
    const writtenAs = new Map<string, string>();
    for (const [key, member] of Object.entries(value)) {
      const name = shape.kind === 'struct' ? fieldName(shape.fields, key) : key;
      const child = shape.kind === 'struct' ? ownField(shape.fields, name) : shape.values;
      const canonicalChild = `${canonicalAt}${pointer(name)}`;
      const originalChild = `${originalAt}${pointer(key)}`;
      const earlier = writtenAs.get(name);
      if (earlier !== undefined) {
        issues.unsupported(`${base}${canonicalChild}`, earlier, `the later key ${JSON.stringify(key)} names the same field (${name}) and wins, as in Docker`);
      }
      // Only the winning key's spelling is kept for mapping paths back (with everything below it).
      for (let i = renames.length - 1; i >= 0; i--) {
        const c = renames[i]?.canonical ?? '';
        if (c === canonicalChild || c.startsWith(`${canonicalChild}/`)) renames.splice(i, 1);
      }
      if (name !== key) renames.push({ canonical: canonicalChild, original: originalChild });
      writtenAs.set(name, key);
      out[name] = walk(member, child, canonicalChild, originalChild);
    }
    return out;
  };
  return { createOptions: walk(createOptions, createOptionsShape, '', '') as DockerCreateOptions, renames };
}

/** Whether every struct key below `value` is already the field's own spelling. */
function spelledAsDocker(value: unknown, shape: Shape | undefined): boolean {
  if (shape === undefined) return true;
  if (shape.kind === 'list') return !Array.isArray(value) || value.every((item) => spelledAsDocker(item, shape.items));
  if (!isObject(value)) return true;
  for (const key in value) {
    const child = shape.kind === 'struct' ? ownField(shape.fields, key) : shape.values;
    if (shape.kind === 'struct' && !Object.hasOwn(shape.fields, key) && fieldName(shape.fields, key) !== key) return false;
    if (child !== undefined && !spelledAsDocker(value[key], child)) return false;
  }
  return true;
}

/** A field's shape; keys such as "valueOf" or "constructor" name no field. */
function ownField(fields: Record<string, Shape | undefined>, key: string): Shape | undefined {
  return Object.hasOwn(fields, key) ? fields[key] : undefined;
}

/** The field a key names: the exact field if there is one, else the field equal to it ignoring case, else the key. */
function fieldName(fields: Record<string, Shape | undefined>, key: string): string {
  if (Object.hasOwn(fields, key)) return key;
  const lower = key.toLowerCase();
  return Object.keys(fields).find((f) => f.toLowerCase() === lower) ?? key;
}

/**
 * Points issue paths at the keys as the manifest spells them. `base` is the pointer of createOptions;
 * the longest renamed prefix wins, so nested renames map back in one step.
 */
export function originalPath(path: string, base: string, renames: KeyRename[]): string {
  if (!path.startsWith(base)) return path;
  const rest = path.slice(base.length);
  let best: KeyRename | undefined;
  for (const r of renames) {
    if ((rest === r.canonical || rest.startsWith(`${r.canonical}/`)) && (!best || r.canonical.length > best.canonical.length)) best = r;
  }
  return best ? `${base}${best.original}${rest.slice(best.canonical.length)}` : path;
}
