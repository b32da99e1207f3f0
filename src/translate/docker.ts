// Parsers for Docker's value formats (port specs, binds, durations, sizes, users) into plain data.
// They return undefined (or an error string) rather than throwing, so callers report the path.

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface PortSpec {
  port: number;
  protocol: Protocol;
}

/** "8883/tcp", "53/udp", "8080" (tcp). */
export function parsePortSpec(spec: string): PortSpec | undefined {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(spec.trim());
  if (!m) return undefined;
  const port = Number(m[1]);
  if (port < 1 || port > 65535) return undefined;
  return { port, protocol: ((m[2] ?? 'tcp').toUpperCase()) as Protocol };
}

export function portName(spec: PortSpec): string {
  return `${spec.protocol.toLowerCase()}-${spec.port}`;
}

export type BindSource = { kind: 'volume'; name: string } | { kind: 'host'; path: string };

export interface ParsedBind {
  source: BindSource;
  target: string;
  readOnly: boolean;
  propagation?: 'HostToContainer' | 'Bidirectional';
  /** Options Docker knows that have no Kubernetes counterpart (z, Z, nocopy, ...). */
  ignoredOptions: string[];
}

const volumeNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Docker's -v syntax: "name:/ctr[:opts]" (named volume) or "/host:/ctr[:opts]" (host path). */
export function parseBind(bind: string): ParsedBind | string {
  const parts = bind.split(':');
  if (/^[A-Za-z]:\\/.test(bind)) return 'Windows host paths cannot be mounted on Linux nodes';
  if (parts.length < 2 || parts.length > 3) return 'expected source:target[:options]';
  const [source = '', target = '', options = ''] = parts;
  if (!target.startsWith('/')) return `the target ${JSON.stringify(target)} is not an absolute path`;
  let parsedSource: BindSource;
  if (source.startsWith('/')) parsedSource = { kind: 'host', path: source };
  else if (volumeNamePattern.test(source)) parsedSource = { kind: 'volume', name: source };
  else return `the source ${JSON.stringify(source)} is neither an absolute host path nor a volume name`;
  const result: ParsedBind = { source: parsedSource, target, readOnly: false, ignoredOptions: [] };
  for (const option of options.split(',').filter((o) => o !== '')) {
    const applied = applyMountOption(result, option);
    if (applied !== true) return applied;
  }
  return result;
}

function applyMountOption(bind: ParsedBind, option: string): true | string {
  switch (option) {
    case 'ro':
      bind.readOnly = true;
      return true;
    case 'rw':
    case 'private':
    case 'rprivate':
      return true;
    case 'shared':
    case 'rshared':
      bind.propagation = 'Bidirectional';
      return true;
    case 'slave':
    case 'rslave':
      bind.propagation = 'HostToContainer';
      return true;
    case 'z':
    case 'Z':
    case 'nocopy':
    case 'consistent':
    case 'cached':
    case 'delegated':
      bind.ignoredOptions.push(option);
      return true;
    default:
      return `unknown mount option ${JSON.stringify(option)}`;
  }
}

/** Docker durations are integer nanoseconds; probes take whole seconds (at least 1). */
export function nanosToSeconds(nanos: number): number {
  return Math.max(1, Math.ceil(nanos / 1e9));
}

const binaryUnits: [number, string][] = [
  [2 ** 40, 'Ti'],
  [2 ** 30, 'Gi'],
  [2 ** 20, 'Mi'],
  [2 ** 10, 'Ki'],
];

/** Bytes as a Kubernetes quantity, in the largest binary unit that divides it exactly. */
export function bytesQuantity(bytes: number): string {
  for (const [size, suffix] of binaryUnits) if (bytes % size === 0) return `${bytes / size}${suffix}`;
  return String(bytes);
}

/** Millicores as a Kubernetes CPU quantity ("2", "500m"), at least 1m. */
export function milliCpuQuantity(milli: number): string {
  const rounded = Math.max(1, Math.round(milli));
  return rounded % 1000 === 0 ? String(rounded / 1000) : `${rounded}m`;
}

/** Docker's size strings in tmpfs options ("64m", "1g", "1024", "512k"); Docker units are binary. */
export function parseDockerSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(text.trim());
  if (!m) return undefined;
  const factor = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.round(Number(m[1]) * factor);
}

export type ParsedUser = { runAsUser?: number; runAsGroup?: number } | { nonNumeric: string };

/** "uid", "uid:gid", "name", "name:group". */
export function parseUser(user: string): ParsedUser {
  const [u = '', g] = user.split(':', 2);
  const numeric = (s: string) => /^\d+$/.test(s);
  if ((u !== '' && !numeric(u)) || (g !== undefined && g !== '' && !numeric(g))) return { nonNumeric: user };
  return {
    ...(u !== '' ? { runAsUser: Number(u) } : {}),
    ...(g !== undefined && g !== '' ? { runAsGroup: Number(g) } : {}),
  };
}

/**
 * Kubernetes expands $(VAR) in env values, command and args, and turns "$$" into "$"; Docker does neither.
 * Doubling every '$' makes Kubernetes hand the process exactly the Docker string.
 */
export function escapeKubernetesExpansion(text: string): string {
  return text.includes('$(') || text.includes('$$') ? text.replace(/\$/g, '$$$$') : text;
}

/** The registry host of an image reference, as Docker resolves it ("docker.io" for Docker Hub images). */
export function imageRegistryHost(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') return normalizeRegistryHost(first);
  return 'docker.io';
}

/** "https://Foo.azurecr.io/", "index.docker.io/v1/" -> "foo.azurecr.io", "docker.io". */
export function normalizeRegistryHost(address: string): string {
  const host = address.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

/** An IPv4 or IPv6 address, as Kubernetes validates hostAliases and nameservers. */
export function isIpAddress(text: string): boolean {
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
  if (v4.test(text)) return true;
  if (!text.includes(':') || !/^[0-9a-fA-F:.]+$/.test(text)) return false;
  const groups = text.split('::');
  if (groups.length > 2) return false;
  const count = groups.flatMap((g) => (g === '' ? [] : g.split(':'))).length;
  return groups.length === 2 ? count < 8 : count === 8;
}

/** A lowercase RFC 1123 subdomain (what a hostAliases hostname must be). */
export function isDnsSubdomain(text: string): boolean {
  return text.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(text);
}
