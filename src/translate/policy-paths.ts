// Where in the deployment manifest a pod-spec policy violation came from. The policy judges the final
// pod spec (pod-policy.ts); people fix the manifest, so each violation is reported at the createOptions
// field that produced it when one can be found, and at the module's createOptions otherwise.
import type { V1PodSpec } from '@kubernetes/client-node';
import { pointer } from './names.ts';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The own key of `node` that `key` names: exactly, else case-insensitively (k8s-experimental keys are read so). */
function keyOf(node: Record<string, unknown>, key: string): string | undefined {
  if (key in node) return key;
  const lower = key.toLowerCase();
  return Object.keys(node).find((k) => k.toLowerCase() === lower);
}

/** The pointer below `root` as the manifest spells it, when `path` names a value there. */
function resolve(root: unknown, path: string): string | undefined {
  let node = root;
  let written = '';
  for (const raw of path.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      node = node[Number(key)];
      written += `/${key}`;
    } else if (isObject(node)) {
      const own = keyOf(node, key);
      if (own === undefined) return undefined;
      node = node[own];
      written += pointer(own);
    } else return undefined;
  }
  return node === undefined ? undefined : written;
}

/** The value at a JSON pointer below `root` (keys matched as resolve matches them), or undefined. */
function at(root: unknown, path: string): unknown {
  let node = root;
  for (const raw of path.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) node = node[Number(key)];
    else if (isObject(node)) {
      const own = keyOf(node, key);
      node = own === undefined ? undefined : node[own];
    } else return undefined;
  }
  return node;
}

/** A member of a manifest object read as resolve reads keys. */
function member(item: unknown, key: string): unknown {
  if (!isObject(item)) return undefined;
  const own = keyOf(item, key);
  return own === undefined ? undefined : item[own];
}

function indexWhere(list: unknown, match: (item: unknown) => boolean): number {
  return Array.isArray(list) ? list.findIndex(match) : -1;
}

/**
 * The manifest path of the createOptions field behind pod-spec field `field` (a pointer into `pod`).
 * `base` is the module's createOptions path; `createOptions` its value.
 */
export function manifestPathOf(field: string, pod: V1PodSpec, createOptions: Record<string, unknown>, base: string): string {
  for (const candidate of candidates(field, pod, createOptions)) {
    const written = resolve(createOptions, candidate);
    if (written !== undefined) return `${base}${written}`;
  }
  return base;
}

function candidates(field: string, pod: V1PodSpec, co: Record<string, unknown>): string[] {
  const volume = /^\/volumes\/(\d+)/.exec(field);
  if (volume) return volumeCandidates(pod, Number(volume[1]), co);
  const container = /^\/(?:containers|initContainers|ephemeralContainers)\/\d+(\/.*)?$/.exec(field);
  if (container) return containerCandidates(container[1] ?? '', co);
  const sysctl = /^\/securityContext\/sysctls\/(\d+)/.exec(field);
  if (sysctl) {
    const name = pod.securityContext?.sysctls?.[Number(sysctl[1])]?.name ?? '';
    const byName = (item: unknown) => member(item, 'name') === name;
    return [
      `/k8s/podSecurityContext/sysctls/${indexWhere(at(co, '/k8s/podSecurityContext/sysctls'), byName)}`,
      `/k8s/securityContext/sysctls/${indexWhere(at(co, '/k8s/securityContext/sysctls'), byName)}`,
      `/k8s-experimental/securityContext/sysctls/${indexWhere(at(co, '/k8s-experimental/securityContext/sysctls'), byName)}`,
      `/HostConfig/Sysctls${pointer(name)}`,
    ];
  }
  const podLevel: Record<string, string[]> = {
    '/hostNetwork': ['/HostConfig/NetworkMode'],
    '/hostPID': ['/HostConfig/PidMode'],
    '/hostIPC': ['/HostConfig/IpcMode'],
    '/automountServiceAccountToken': ['/k8s/automountServiceAccountToken'],
  };
  if (podLevel[field]) return podLevel[field];
  if (field.startsWith('/securityContext/')) {
    const rest = field.slice('/securityContext'.length);
    return [`/k8s/podSecurityContext${rest}`, `/k8s/securityContext${rest}`, `/k8s-experimental/securityContext${rest}`,
      '/k8s/podSecurityContext', '/k8s/securityContext', '/k8s-experimental/securityContext'];
  }
  if (field.startsWith('/metadata/annotations/')) return ['/Labels'];
  return [];
}

function volumeCandidates(pod: V1PodSpec, index: number, co: Record<string, unknown>): string[] {
  const volume = pod.volumes?.[index];
  if (!volume) return [];
  const own = indexWhere(at(co, '/k8s/volumes'), (v) => member(v, 'name') === volume.name);
  // The preview's k8s-experimental volumes are {volume, volumeMounts} pairs.
  const preview = indexWhere(at(co, '/k8s-experimental/volumes'), (v) => member(member(v, 'volume'), 'name') === volume.name);
  const hostPath = volume.hostPath?.path;
  const result = [`/k8s/volumes/${own}`, `/k8s-experimental/volumes/${preview}/volume`];
  if (hostPath !== undefined) {
    const bind = indexWhere(at(co, '/HostConfig/Binds'), (b) => typeof b === 'string' && b.split(':')[0] === hostPath);
    const mount = indexWhere(at(co, '/HostConfig/Mounts'), (m) => isObject(m) && m.Source === hostPath);
    const device = indexWhere(at(co, '/HostConfig/Devices'), (d) => isObject(d) && d.PathOnHost === hostPath);
    result.push(`/HostConfig/Binds/${bind}`, `/HostConfig/Mounts/${mount}`, `/HostConfig/Devices/${device}`);
  }
  return result;
}

function containerCandidates(rest: string, co: Record<string, unknown>): string[] {
  const cap = /^\/securityContext\/capabilities\/add\/\d+$/.test(rest);
  if (cap) return ['/k8s/securityContext/capabilities/add', '/HostConfig/CapAdd'];
  const map: Record<string, string[]> = {
    '/securityContext/privileged': ['/k8s/securityContext/privileged', '/HostConfig/Privileged'],
    '/securityContext/runAsUser': ['/k8s/securityContext/runAsUser', '/User'],
  };
  if (map[rest]) return map[rest];
  if (rest.startsWith('/securityContext')) {
    const inner = rest.slice('/securityContext'.length);
    const prefixes = ['/k8s/securityContext', '/k8s/podSecurityContext'];
    return [...prefixes.map((p) => `${p}${inner}`), ...prefixes.filter((p) => at(co, p) !== undefined)];
  }
  if (/^\/ports\/\d+\/hostPort$/.test(rest)) return ['/HostConfig/PortBindings'];
  return [];
}
