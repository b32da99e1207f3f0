// One container path, one volumeMount: the API server refuses a container with two mounts at the same path,
// while Docker merges some of them. Docker makes a device node, its /dev/shm and anonymous volumes only where
// nothing else is mounted, so a bind at a device's path simply shares the node; two binds, mounts or tmpfs
// at one path it refuses ("Duplicate mount point"), and so does this.
import type { V1VolumeMount } from '@kubernetes/client-node';
import type { Issues } from './issues.ts';

export interface MountRequest {
  mount: V1VolumeMount;
  /** Path of the createOptions entry that asked for it. */
  at: string;
  /** Made by Docker where nothing else is mounted: a device node, /dev/shm, a Config.Volumes path. */
  implicit: boolean;
  /** From k8s.volumeMounts: native settings win over what Docker fields gave. */
  native?: boolean;
}

/** Docker cleans mount targets: repeated and trailing slashes and "." segments do not make a new path. */
export function cleanMountPath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

function sameMount(a: V1VolumeMount, b: V1VolumeMount): boolean {
  return a.name === b.name && (a.readOnly ?? false) === (b.readOnly ?? false) && a.mountPropagation === b.mountPropagation && a.subPath === b.subPath;
}

/** The mounts of one container, at most one per cleaned path, in the order they were asked for. */
export function mergeMounts(requests: readonly MountRequest[], moduleId: string, issues: Issues): V1VolumeMount[] {
  const byPath = new Map<string, MountRequest[]>();
  for (const request of requests) {
    const path = cleanMountPath(request.mount.mountPath);
    byPath.set(path, [...(byPath.get(path) ?? []), { ...request, mount: { ...request.mount, mountPath: path } }]);
  }
  const merged: V1VolumeMount[] = [];
  for (const [path, group] of byPath) {
    const chosen = chooseMount(path, group, moduleId, issues);
    if (chosen) merged.push(chosen.mount);
  }
  return merged;
}

function chooseMount(path: string, group: MountRequest[], moduleId: string, issues: Issues): MountRequest | undefined {
  const module = JSON.stringify(moduleId);
  const native = group.filter((r) => r.native);
  const explicit = group.filter((r) => !r.native && !r.implicit);
  const implicit = group.filter((r) => !r.native && r.implicit);
  if (native.length > 1) {
    issues.error('IEO_K8S_EXTENSION', native[1]!.at, `module ${module}: k8s.volumeMounts mounts ${path} twice`);
    return undefined;
  }
  const distinctExplicit = explicit.filter((r, i) => explicit.findIndex((q) => sameMount(q.mount, r.mount)) === i);
  if (native.length === 0 && distinctExplicit.length > 1) {
    issues.error('IEO_CREATE_OPTION_VALUE', distinctExplicit[1]!.at,
      `module ${module}: createOptions mounts ${path} twice (also at ${distinctExplicit[0]!.at}); Docker refuses a duplicate mount point`);
    return undefined;
  }
  const winner = native[0] ?? distinctExplicit[0] ?? implicit[0];
  if (!winner) return undefined;
  for (const other of [...explicit, ...implicit]) {
    if (other === winner || sameMount(other.mount, winner.mount)) continue;
    issues.warn('IEO_W_MOUNT_MERGED', other.at, winner.native
      ? `module ${module}: ${path} is mounted from k8s.volumeMounts, which overrides this Docker mount`
      : `module ${module}: ${path} is mounted once, from ${winner.at}: Docker makes a device node, /dev/shm or an anonymous volume only where nothing else is mounted`);
  }
  return winner;
}
