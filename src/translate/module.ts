// One module's createOptions -> the pieces of its pod: the container, pod-level fields, volumes, and the
// ports its Services expose. Every createOptions field is either mapped here or reported as unsupported.
import type {
  V1Capabilities,
  V1Container,
  V1EnvVar,
  V1HostAlias,
  V1PodDNSConfig,
  V1PodSecurityContext,
  V1PodSpec,
  V1Probe,
  V1SecurityContext,
  V1Volume,
} from '@kubernetes/client-node';
import type { ModuleSpec } from '../manifest/model.ts';
import {
  bytesQuantity,
  escapeKubernetesExpansion,
  isDnsSubdomain,
  isIpAddress,
  milliCpuQuantity,
  nanosToSeconds,
  parseBind,
  parseDockerSize,
  parsePortSpec,
  parseUser,
  type PortSpec,
} from './docker.ts';
import { coerceCreateOptions } from './coerce.ts';
import { k8sExtensionKeys, type K8sExtensions } from './extensions.ts';
import { mergeMounts, type MountRequest } from './mounts.ts';
import { moduleExtensions } from './preview.ts';
import type { Issues } from './issues.ts';
import { cleanAnnotationKey, isQualifiedName, pointer, sanitizeDnsLabel, shortHash } from './names.ts';
import {
  checkAddedCapabilities,
  checkDevice,
  checkHostIpc,
  checkHostNetwork,
  checkHostPath,
  checkHostPid,
  checkPrivileged,
  type PolicyDecision,
} from './policy.ts';
import type { OperatorSettings } from './settings.ts';

export interface PortBinding {
  container: PortSpec;
  hostPort: number;
}

export interface NamedVolumeUse {
  /** The Docker volume name, as written. */
  volume: string;
  /** Path of the createOptions entry that mounts it. */
  path: string;
  /** The pod volume that refers to the claim; translate() fills in the claim name. */
  podVolume: V1Volume;
}

export interface ModuleDraft {
  container: V1Container;
  /** Pod-level fields other than containers and volumes. */
  pod: Omit<V1PodSpec, 'containers' | 'volumes'>;
  volumes: V1Volume[];
  podAnnotations: Record<string, string>;
  /** Ports reachable inside the cluster at the module's name: ExposedPorts plus the container side of PortBindings. */
  clusterPorts: PortSpec[];
  portBindings: PortBinding[];
  namedVolumes: NamedVolumeUse[];
  ext: K8sExtensions;
  /** The Docker Healthcheck as an exec probe, before the restart policy decides where it goes. */
  healthProbe?: V1Probe;
  /** Docker's StartPeriod as a startup probe (used where the health probe is a liveness probe). */
  healthStartupProbe?: V1Probe;
}

export interface ModuleContext {
  spec: ModuleSpec;
  /** The sanitised name. */
  name: string;
  /** JSON pointer of the module in the deployment manifest. */
  path: string;
  settings: OperatorSettings;
  issues: Issues;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Allocates pod volume names: one name per distinct source, valid DNS labels, no clashes. */
class VolumeNames {
  private readonly byKey = new Map<string, string>();
  private readonly taken = new Set<string>();
  constructor(reserved: Iterable<string>) {
    for (const name of reserved) this.taken.add(name);
  }
  /** Returns [name, isNew]. */
  name(preferred: string, key: string): [string, boolean] {
    const existing = this.byKey.get(key);
    if (existing) return [existing, false];
    let name = sanitizeDnsLabel(preferred, 63, false);
    if (this.taken.has(name)) name = `${name.slice(0, 55).replace(/-+$/, '')}-${shortHash(key)}`;
    this.byKey.set(key, name);
    this.taken.add(name);
    return [name, true];
  }
}

/** Volume names the translation adds to some pods itself (edgeHub's routes, a module's IoT Hub identity). */
export const reservedVolumeNames = ['iotedge-operator-routes', 'iothub-identity'];

export function draftModule(ctx: ModuleContext): ModuleDraft {
  const { spec, name, issues } = ctx;
  const base = `${ctx.path}/settings/createOptions`;
  const co = coerceCreateOptions(spec.createOptions, base, spec.id, issues);
  const ext = moduleExtensions(co, base, k8sExtensionKeys, issues);
  const draft: ModuleDraft = {
    container: { name, image: spec.image, imagePullPolicy: spec.imagePullPolicy === 'never' ? 'Never' : 'IfNotPresent' },
    pod: {},
    volumes: [],
    podAnnotations: {},
    clusterPorts: [],
    portBindings: [],
    namedVolumes: [],
    ext,
  };
  const volumeNames = new VolumeNames([...reservedVolumeNames, ...(ext.volumes ?? []).map((v) => v.name)]);
  const mounts: MountRequest[] = [];
  const containerSecurity: V1SecurityContext = {};
  const podSecurity: V1PodSecurityContext = {};
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};

  // A privileged container already holds every capability and device, so once the policy grants
  // privileged, CapAdd and Devices ask for nothing more and are not checked separately.
  const hcRaw = isObject(co.HostConfig) ? co.HostConfig : {};
  const privilegedGranted = (ctx.settings.allowPrivileged || ctx.settings.podSecurity === 'privileged') && (hcRaw.Privileged === true || ext.securityContext?.privileged === true);
  const invalid = (at: string, field: string, expected: string) =>
    issues.error('IEO_CREATE_OPTION_VALUE', at, `module ${JSON.stringify(spec.id)}: createOptions ${field} ${expected}`);
  const policy = (decision: PolicyDecision, at: string, field: string): boolean => {
    if (!decision.allowed) {
      issues.error('IEO_POLICY_DENIED', at, `module ${JSON.stringify(spec.id)}: createOptions ${field}: ${decision.message} [${decision.reason}]`);
    }
    return decision.allowed;
  };

  const addHostPathVolume = (hostPath: string, type: string | undefined): string => {
    // Named as the preview named it ("/home/blah" -> "homeblah"), so k8s-experimental mounts written against
    // those names still find their volume.
    const [volumeName, isNew] = volumeNames.name(hostPath.toLowerCase().replace(/[^a-z0-9-]/g, '') || 'host', `host:${hostPath}`);
    if (isNew) draft.volumes.push({ name: volumeName, hostPath: { path: hostPath, ...(type ? { type } : {}) } });
    return volumeName;
  };
  const addNamedVolume = (volume: string, at: string): string => {
    // The pod volume is named like its claim, as in the preview.
    const [volumeName, isNew] = volumeNames.name(volume, `volume:${volume}`);
    if (isNew) {
      const podVolume: V1Volume = { name: volumeName, persistentVolumeClaim: { claimName: '' } };
      draft.volumes.push(podVolume);
      draft.namedVolumes.push({ volume, path: at, podVolume });
    }
    return volumeName;
  };
  const addMemoryVolume = (target: string, sizeBytes: number | undefined, at: string, implicit = false): void => {
    const [volumeName, isNew] = volumeNames.name(`tmpfs${target}`, `tmpfs:${target}`);
    if (isNew) draft.volumes.push({ name: volumeName, emptyDir: { medium: 'Memory', ...(sizeBytes ? { sizeLimit: bytesQuantity(sizeBytes) } : {}) } });
    mounts.push({ mount: { name: volumeName, mountPath: target }, at, implicit });
  };
  // Docker gives an anonymous volume to a Mounts entry of type volume without a Source and to each
  // Config.Volumes path, and deletes it with the container: an emptyDir has that lifetime.
  const addAnonymousVolume = (target: string, at: string, implicit: boolean): string => {
    const [volumeName, isNew] = volumeNames.name(`anon${target}`, `anonymous:${target}`);
    if (isNew) draft.volumes.push({ name: volumeName, emptyDir: {} });
    issues.warn('IEO_W_ANONYMOUS_VOLUME', at,
      `module ${JSON.stringify(spec.id)}: the anonymous volume at ${target} becomes an emptyDir, deleted with the pod as Docker deletes it with the container; name the volume to keep its data`);
    if (implicit) mounts.push({ mount: { name: volumeName, mountPath: target }, at, implicit: true });
    return volumeName;
  };

  // Top-level fields of Docker's ContainerCreate body.
  for (const [key, value] of Object.entries(co)) {
    const at = `${base}${pointer(key)}`;
    if (value === null || value === undefined) continue;
    switch (key) {
      case 'k8s':
      case 'k8s-experimental':
      case 'Env':
      case 'HostConfig':
        break; // handled below: k8s and k8s-experimental above, Env by moduleEnv(), HostConfig after this loop
      case 'Cmd':
      case 'Entrypoint': {
        // Docker's StrSlice: a single string is a one-element command, not a shell line.
        const list = isString(value) ? [value] : isStringArray(value) ? value : undefined;
        if (!list) invalid(at, key, 'must be a string or an array of strings');
        else if (key === 'Cmd') draft.container.args = list.map(escapeKubernetesExpansion);
        else draft.container.command = list.map(escapeKubernetesExpansion);
        break;
      }
      case 'WorkingDir':
        if (!isString(value)) invalid(at, key, 'must be a string');
        else if (value !== '') draft.container.workingDir = value;
        break;
      case 'User':
        if (!isString(value)) invalid(at, key, 'must be a string');
        else if (value !== '') {
          const user = parseUser(value);
          if ('nonNumeric' in user) {
            issues.warn('IEO_W_NON_NUMERIC_USER', at,
              `module ${JSON.stringify(spec.id)}: User ${JSON.stringify(value)} is not numeric; Kubernetes cannot resolve user names, so the image's user is kept (use uid[:gid])`);
          } else Object.assign(containerSecurity, user);
        }
        break;
      case 'Labels':
        if (!isObject(value)) invalid(at, key, 'must be an object of strings');
        else mapLabels(value, at, ctx, draft);
        break;
      case 'ExposedPorts':
        if (!isObject(value)) invalid(at, key, 'must be an object keyed by "port/protocol"');
        else {
          for (const portKey of Object.keys(value)) {
            const port = parsePortSpec(portKey);
            if (port) addClusterPort(draft, port);
            else skipPort(`${at}${pointer(portKey)}`, 'ExposedPorts', portKey, ctx);
          }
        }
        break;
      case 'Healthcheck':
        mapHealthcheck(value, at, ctx, draft);
        break;
      case 'StopTimeout':
        if (!isInteger(value) || value < 0) invalid(at, key, 'must be a whole number of seconds');
        else draft.pod.terminationGracePeriodSeconds = value;
        break;
      case 'Hostname':
        if (!isString(value)) invalid(at, key, 'must be a string');
        else if (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value)) draft.pod.hostname = value;
        else if (value !== '') issues.unsupported(at, key, 'a pod hostname must be a lowercase DNS label');
        break;
      case 'Tty':
      case 'OpenStdin':
      case 'StdinOnce':
        if (typeof value !== 'boolean') invalid(at, key, 'must be true or false');
        else if (value) draft.container[key === 'Tty' ? 'tty' : key === 'OpenStdin' ? 'stdin' : 'stdinOnce'] = true;
        break;
      case 'Image':
        if (value !== spec.image) issues.unsupported(at, key, `the module's settings.image (${spec.image}) is what runs, as with edgeAgent`);
        break;
      case 'Volumes':
        if (!isObject(value)) invalid(at, key, 'must be an object keyed by container path');
        else {
          for (const target of Object.keys(value).sort()) {
            if (!target.startsWith('/')) invalid(`${at}${pointer(target)}`, `Volumes key ${JSON.stringify(target)}`, 'must be an absolute path');
            else addAnonymousVolume(target, `${at}${pointer(target)}`, true);
          }
        }
        break;
      case 'NetworkingConfig':
        issues.unsupported(at, key, 'every pod is on the cluster network; modules reach each other by their Service names');
        break;
      default:
        issues.unsupported(at, key);
    }
  }

  const hostConfig = co.HostConfig;
  if (hostConfig !== undefined && hostConfig !== null && !isObject(hostConfig)) invalid(`${base}/HostConfig`, 'HostConfig', 'must be an object');
  const hc = isObject(hostConfig) ? hostConfig : {};
  const hcBase = `${base}/HostConfig`;
  for (const [key, value] of Object.entries(hc)) {
    const at = `${hcBase}${pointer(key)}`;
    const field = `HostConfig.${key}`;
    if (value === null || value === undefined) continue;
    switch (key) {
      case 'PortBindings':
        mapPortBindings(value, at, ctx, draft);
        break;
      case 'Binds':
        if (!isStringArray(value)) {
          invalid(at, field, 'must be an array of "source:target[:options]" strings');
          break;
        }
        value.forEach((bind, i) => {
          const bindAt = `${at}/${i}`;
          const parsed = parseBind(bind);
          if (typeof parsed === 'string') {
            invalid(bindAt, `${field}[${i}] ${JSON.stringify(bind)}`, `is not a valid bind: ${parsed}`);
            return;
          }
          if (parsed.ignoredOptions.length > 0) {
            issues.unsupported(bindAt, `${field}[${i}] options ${parsed.ignoredOptions.join(',')}`, 'Kubernetes volumes have no such mount options');
          }
          let volumeName: string;
          if (parsed.source.kind === 'host') {
            if (!policy(checkHostPath(ctx.settings, parsed.source.path), bindAt, `${field}[${i}]`)) return;
            // Docker creates a missing host directory for -v binds; so does DirectoryOrCreate. A device node
            // (under /dev) exists or is not Docker's to create, and a directory check would refuse it.
            volumeName = addHostPathVolume(parsed.source.path, parsed.source.path.startsWith('/dev/') ? undefined : 'DirectoryOrCreate');
          } else {
            volumeName = addNamedVolume(parsed.source.name, bindAt);
          }
          mounts.push({
            mount: {
              name: volumeName,
              mountPath: parsed.target,
              ...(parsed.readOnly ? { readOnly: true } : {}),
              ...(parsed.propagation ? { mountPropagation: parsed.propagation } : {}),
            },
            at: bindAt,
            implicit: false,
          });
        });
        break;
      case 'Mounts':
        if (!Array.isArray(value)) {
          invalid(at, field, 'must be an array of mounts');
          break;
        }
        value.forEach((mount: unknown, i) => mapMount(mount, `${at}/${i}`, `${field}[${i}]`));
        break;
      case 'Privileged':
        if (typeof value !== 'boolean') invalid(at, field, 'must be true or false');
        else if (value && policy(checkPrivileged(ctx.settings, true), at, field)) containerSecurity.privileged = true;
        break;
      case 'CapAdd':
      case 'CapDrop': {
        if (!isStringArray(value)) {
          invalid(at, field, 'must be an array of capability names');
          break;
        }
        const caps = value.map((c) => c.toUpperCase().replace(/^CAP_/, ''));
        if (caps.length === 0) break;
        if (key === 'CapAdd' && !privilegedGranted && !policy(checkAddedCapabilities(ctx.settings, caps), at, field)) break;
        const capabilities: V1Capabilities = (containerSecurity.capabilities ??= {});
        capabilities[key === 'CapAdd' ? 'add' : 'drop'] = caps;
        break;
      }
      case 'ReadonlyRootfs':
        if (typeof value !== 'boolean') invalid(at, field, 'must be true or false');
        else if (value) containerSecurity.readOnlyRootFilesystem = true;
        break;
      case 'NetworkMode':
      case 'IpcMode':
      case 'PidMode':
        if (!isString(value)) invalid(at, field, 'must be a string');
        else mapNamespaceMode(key, value, at, field);
        break;
      case 'Memory':
      case 'MemoryReservation':
      case 'NanoCpus':
      case 'CpuQuota':
      case 'CpuPeriod':
      case 'ShmSize':
        if (!isInteger(value) || value < (key === 'CpuQuota' ? -1 : 0)) invalid(at, field, 'must be a non-negative integer');
        break; // combined below, since several fields make one quantity
      case 'Devices':
        if (!Array.isArray(value)) invalid(at, field, 'must be an array of devices');
        else value.forEach((device: unknown, i) => mapDevice(device, `${at}/${i}`, `${field}[${i}]`));
        break;
      case 'DeviceRequests':
        if (!Array.isArray(value)) invalid(at, field, 'must be an array of device requests');
        else value.forEach((request: unknown, i) => mapDeviceRequest(request, `${at}/${i}`, `${field}[${i}]`));
        break;
      case 'ExtraHosts':
        if (!isStringArray(value)) invalid(at, field, 'must be an array of "host:ip" strings');
        else mapExtraHosts(value, at, field);
        break;
      case 'Dns':
      case 'DnsSearch':
      case 'DnsOptions': {
        if (!isStringArray(value)) {
          invalid(at, field, 'must be an array of strings');
          break;
        }
        if (value.length === 0) break;
        // Docker's --dns replaces the resolvers; here they are added after the cluster DNS, which modules need to find edgeHub.
        const dns: V1PodDNSConfig = (draft.pod.dnsConfig ??= {});
        if (key === 'Dns') {
          const bad = value.findIndex((ip) => !isIpAddress(ip));
          if (bad >= 0) invalid(`${at}/${bad}`, `${field}[${bad}]`, 'must be an IP address');
          else dns.nameservers = value;
        }
        else if (key === 'DnsSearch') dns.searches = value;
        else dns.options = value.map((o) => {
          const [optionName = '', optionValue] = o.split(':', 2);
          return optionValue === undefined ? { name: optionName } : { name: optionName, value: optionValue };
        });
        break;
      }
      case 'Sysctls':
        if (!isObject(value) || !Object.values(value).every(isString)) invalid(at, field, 'must be an object of string values');
        else if (Object.keys(value).length > 0) {
          podSecurity.sysctls = Object.keys(value).sort().map((n) => ({ name: n, value: value[n] as string }));
        }
        break;
      case 'Tmpfs':
        if (!isObject(value) || !Object.values(value).every(isString)) invalid(at, field, 'must be an object of path to options');
        else {
          for (const target of Object.keys(value).sort()) {
            const sizeOption = (value[target] as string).split(',').find((o) => o.startsWith('size='));
            const size = sizeOption ? parseDockerSize(sizeOption.slice(5)) : undefined;
            if (sizeOption && size === undefined) invalid(`${at}${pointer(target)}`, `${field}[${target}]`, `has an unreadable size ${JSON.stringify(sizeOption)}`);
            addMemoryVolume(target, size, `${at}${pointer(target)}`);
          }
        }
        break;
      case 'RestartPolicy':
        issues.unsupported(at, field, "the module's restartPolicy decides restarts, as with edgeAgent");
        break;
      case 'Runtime':
        issues.unsupported(at, `${field} ${JSON.stringify(value)}`, 'set k8s.runtimeClassName to a RuntimeClass of the cluster; NVIDIA GPUs come from DeviceRequests as nvidia.com/gpu');
        break;
      case 'CpuShares':
        issues.unsupported(at, field, 'Docker CPU shares are a relative weight with no Kubernetes equivalent; set k8s.resources.requests.cpu');
        break;
      default:
        issues.unsupported(at, field);
    }
  }

  mapResources();

  // Namespaced sysctls change the namespace they live in, which a host namespace would make the host's.
  for (const sysctl of podSecurity.sysctls ?? []) {
    const ipc = /^(kernel\.(shm|msg|sem)|fs\.mqueue\.)/.test(sysctl.name);
    if ((ipc && draft.pod.hostIPC) || (sysctl.name.startsWith('net.') && draft.pod.hostNetwork)) {
      invalid(`${hcBase}/Sysctls${pointer(sysctl.name)}`, `HostConfig.Sysctls ${sysctl.name}`,
        `cannot be set in the host's ${ipc ? 'IPC' : 'network'} namespace (IpcMode/NetworkMode host)`);
    }
  }

  // ShmSize sizes Docker's own /dev/shm; a mount the module asks for at /dev/shm replaces it.
  const shm = hc.ShmSize;
  if (isInteger(shm) && shm > 0) addMemoryVolume('/dev/shm', shm, `${hcBase}/ShmSize`, true);

  // Native extensions, applied last so they win over what was derived from Docker fields.
  for (const [i, volume] of (ext.volumes ?? []).entries()) {
    // A hostPath here (k8s or k8s-experimental) is judged with the final pod spec (pod-policy.ts), which finds the block it came from.
    if (reservedVolumeNames.includes(volume.name) || draft.volumes.some((v) => v.name === volume.name)) {
      issues.error('IEO_K8S_EXTENSION', `${base}/k8s/volumes/${i}/name`,
        `module ${JSON.stringify(spec.id)}: k8s.volumes[${i}] name ${JSON.stringify(volume.name)} is ${reservedVolumeNames.includes(volume.name) ? 'used by the operator' : 'given twice'}; a pod's volume names must be unique`);
      continue;
    }
    draft.volumes.push(volume);
  }
  const volumeNameSet = new Set(draft.volumes.map((v) => v.name));
  for (const [i, mount] of (ext.volumeMounts ?? []).entries()) {
    if (!volumeNameSet.has(mount.name)) {
      issues.error('IEO_K8S_EXTENSION', `${base}/k8s/volumeMounts/${i}/name`,
        `module ${JSON.stringify(spec.id)}: k8s.volumeMounts[${i}] mounts volume ${JSON.stringify(mount.name)}, which no k8s.volumes entry defines`);
    } else mounts.push({ mount, at: `${base}/k8s/volumeMounts/${i}`, implicit: false, native: true });
  }
  if (ext.securityContext) {
    const sc = ext.securityContext;
    if (sc.privileged) policy(checkPrivileged(ctx.settings, true), `${base}/k8s/securityContext/privileged`, 'k8s.securityContext.privileged');
    const added = privilegedGranted ? [] : (sc.capabilities?.add ?? []);
    policy(checkAddedCapabilities(ctx.settings, added), `${base}/k8s/securityContext/capabilities/add`, 'k8s.securityContext.capabilities.add');
    Object.assign(containerSecurity, sc);
  }
  if (ext.movedPodSecurityContext) Object.assign(podSecurity, ext.movedPodSecurityContext);
  if (ext.podSecurityContext) Object.assign(podSecurity, ext.podSecurityContext);
  if (ext.resources) {
    Object.assign(limits, ext.resources.limits ?? {});
    Object.assign(requests, ext.resources.requests ?? {});
  }

  if (ctx.settings.runAsNonRoot) applyNonRootDefault(podSecurity, containerSecurity, ctx.settings.runAsUser);
  // Kubernetes allows Bidirectional propagation only in a privileged container; Docker's rshared needs no
  // privilege, so there the mount still sees the host's later mounts (HostToContainer) but does not share back.
  if (containerSecurity.privileged !== true) {
    for (const request of mounts) {
      if (request.mount.mountPropagation !== 'Bidirectional') continue;
      if (request.native) {
        issues.error('IEO_K8S_EXTENSION', request.at, `module ${JSON.stringify(spec.id)}: mountPropagation Bidirectional needs a privileged container`);
        continue;
      }
      request.mount = { ...request.mount, mountPropagation: 'HostToContainer' };
      issues.unsupported(request.at, 'shared mount propagation (rshared)',
        'Kubernetes allows Bidirectional propagation only in privileged containers; HostToContainer (rslave) is used, so mounts made inside the container do not reach the host');
    }
  }
  const merged = mergeMounts(mounts, spec.id, issues);
  if (merged.length > 0) draft.container.volumeMounts = merged;
  // A volume only an implicit mount used (a device node under a bind of its path) goes with that mount.
  const mounted = new Set(merged.map((m) => m.name));
  const implicitOnly = new Set(mounts.filter((m) => m.implicit).map((m) => m.mount.name));
  draft.volumes = draft.volumes.filter((v) => mounted.has(v.name) || !implicitOnly.has(v.name));
  if (Object.keys(containerSecurity).length > 0) draft.container.securityContext = containerSecurity;
  if (Object.keys(podSecurity).length > 0) draft.pod.securityContext = podSecurity;
  if (Object.keys(limits).length > 0 || Object.keys(requests).length > 0) {
    draft.container.resources = {
      ...(Object.keys(limits).length > 0 ? { limits } : {}),
      ...(Object.keys(requests).length > 0 ? { requests } : {}),
    };
  }
  if (ext.nodeSelector) draft.pod.nodeSelector = ext.nodeSelector;
  if (ext.tolerations) draft.pod.tolerations = ext.tolerations;
  if (ext.affinity) draft.pod.affinity = ext.affinity;
  if (ext.priorityClassName) draft.pod.priorityClassName = ext.priorityClassName;
  if (ext.runtimeClassName) draft.pod.runtimeClassName = ext.runtimeClassName;
  const ports = [...draft.clusterPorts];
  if (ports.length > 0) {
    draft.container.ports = ports.map((p) => ({ containerPort: p.port, protocol: p.protocol }));
  }
  return draft;

  function mapNamespaceMode(key: 'NetworkMode' | 'IpcMode' | 'PidMode', value: string, at: string, field: string): void {
    // The preview compared "host" without regard to case; "Host" meant the host's namespace there too.
    if (value.toLowerCase() === 'host') {
      if (key === 'NetworkMode' && policy(checkHostNetwork(ctx.settings, true), at, field)) {
        draft.pod.hostNetwork = true;
        // Keeps cluster DNS (and so the edgeHub Service name) resolvable from the host network.
        draft.pod.dnsPolicy = 'ClusterFirstWithHostNet';
      }
      if (key === 'IpcMode' && policy(checkHostIpc(ctx.settings, true), at, field)) draft.pod.hostIPC = true;
      if (key === 'PidMode' && policy(checkHostPid(ctx.settings, true), at, field)) draft.pod.hostPID = true;
      return;
    }
    const podDefault: Record<typeof key, string[]> = {
      // azure-iot-edge is the bridge network edgeAgent puts modules on; the pod network plays that role.
      NetworkMode: ['', 'default', 'bridge', 'azure-iot-edge'],
      IpcMode: ['', 'private', 'shareable'],
      PidMode: [''],
    };
    if (!podDefault[key].includes(value)) {
      issues.unsupported(at, `${field} ${JSON.stringify(value)}`, 'only "host" or the default have a pod equivalent; the pod default is used');
    }
  }

  function mapMount(mount: unknown, at: string, field: string): void {
    if (!isObject(mount)) {
      invalid(at, field, 'must be an object');
      return;
    }
    const { Source: source, Target: target, ReadOnly: readOnly } = mount;
    // Docker compares mount types exactly, but edgeAgent's and the preview's readers accepted "Bind" and "VOLUME".
    const type = isString(mount.Type) ? mount.Type.toLowerCase() : mount.Type;
    if (!isString(target) || !target.startsWith('/')) {
      invalid(`${at}/Target`, `${field}.Target`, 'must be an absolute path');
      return;
    }
    if (readOnly !== undefined && typeof readOnly !== 'boolean') invalid(`${at}/ReadOnly`, `${field}.ReadOnly`, 'must be true or false');
    const known = new Set(['Type', 'Source', 'Target', 'ReadOnly', 'Consistency']);
    let volumeName: string | undefined;
    let propagation: string | undefined;
    if (type === 'volume') {
      known.add('VolumeOptions');
      if (source === undefined || source === null || source === '') {
        volumeName = addAnonymousVolume(target, at, false);
      } else if (!isString(source) || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(source)) {
        invalid(`${at}/Source`, `${field}.Source`, 'must name a volume, or be left out for an anonymous volume');
        return;
      } else {
        if (mount.VolumeOptions !== undefined) issues.unsupported(`${at}/VolumeOptions`, `${field}.VolumeOptions`, 'volume drivers and labels do not apply to PersistentVolumeClaims; use k8s.volumeClaims');
        volumeName = addNamedVolume(source, at);
      }
    } else if (type === 'bind') {
      known.add('BindOptions');
      if (!isString(source) || !source.startsWith('/')) {
        invalid(`${at}/Source`, `${field}.Source`, 'must be an absolute host path');
        return;
      }
      if (!policy(checkHostPath(ctx.settings, source), at, field)) return;
      const bindOptions = mount.BindOptions;
      if (isObject(bindOptions) && isString(bindOptions.Propagation)) {
        const p = bindOptions.Propagation;
        propagation = p === 'shared' || p === 'rshared' ? 'Bidirectional' : p === 'slave' || p === 'rslave' ? 'HostToContainer' : undefined;
      }
      // Docker's Mounts (unlike -v) fail when the host path is missing, so no type is forced.
      volumeName = addHostPathVolume(source, undefined);
    } else if (type === 'tmpfs') {
      known.add('TmpfsOptions');
      const options = mount.TmpfsOptions;
      const size = isObject(options) && isInteger(options.SizeBytes) && options.SizeBytes > 0 ? options.SizeBytes : undefined;
      if (isObject(options) && options.Mode !== undefined) issues.unsupported(`${at}/TmpfsOptions/Mode`, `${field}.TmpfsOptions.Mode`, 'emptyDir volumes have no mode');
      addMemoryVolume(target, size, at);
    } else {
      invalid(`${at}/Type`, `${field}.Type ${JSON.stringify(mount.Type)}`, 'must be volume, bind or tmpfs');
      return;
    }
    for (const key of Object.keys(mount)) if (!known.has(key)) issues.unsupported(`${at}${pointer(key)}`, `${field}.${key}`);
    if (volumeName) {
      mounts.push({
        mount: {
          name: volumeName,
          mountPath: target,
          ...(readOnly === true ? { readOnly: true } : {}),
          ...(propagation ? { mountPropagation: propagation } : {}),
        },
        at,
        implicit: false,
      });
    }
  }

  function mapDevice(device: unknown, at: string, field: string): void {
    if (!isObject(device) || !isString(device.PathOnHost) || !device.PathOnHost.startsWith('/')) {
      invalid(at, field, 'must have an absolute PathOnHost');
      return;
    }
    const hostPath = device.PathOnHost;
    const containerPath = isString(device.PathInContainer) && device.PathInContainer !== '' ? device.PathInContainer : hostPath;
    if (!privilegedGranted && !policy(checkDevice(ctx.settings, hostPath), at, field)) return;
    if (isString(device.CgroupPermissions) && device.CgroupPermissions !== '' && device.CgroupPermissions !== 'rwm') {
      issues.unsupported(`${at}/CgroupPermissions`, `${field}.CgroupPermissions`, 'Kubernetes cannot narrow a device cgroup rule');
    }
    const [volumeName, isNew] = volumeNames.name(`dev${hostPath}`, `device:${hostPath}`);
    if (isNew) draft.volumes.push({ name: volumeName, hostPath: { path: hostPath } });
    // Docker creates the device node itself; a bind at the same path only shares it (see mounts.ts).
    mounts.push({ mount: { name: volumeName, mountPath: containerPath }, at, implicit: true });
    if (hc.Privileged !== true && !ext.securityContext?.privileged) {
      issues.warn('IEO_W_DEVICE_ACCESS', at,
        `module ${JSON.stringify(spec.id)}: device ${hostPath} is mounted, but a non-privileged container may be denied access by its device cgroup; use a device plugin or Privileged`);
    }
  }

  function mapDeviceRequest(request: unknown, at: string, field: string): void {
    if (!isObject(request)) {
      invalid(at, field, 'must be an object');
      return;
    }
    const capabilities = request.Capabilities;
    const wantsGpu = Array.isArray(capabilities) && capabilities.some((set) => isStringArray(set) && set.includes('gpu'));
    const driver = request.Driver;
    if (!(driver === 'nvidia' || ((driver === undefined || driver === '') && wantsGpu))) {
      issues.unsupported(at, `${field} (driver ${JSON.stringify(driver ?? '')})`, 'only NVIDIA GPU requests map to the nvidia.com/gpu device-plugin resource');
      return;
    }
    let count = request.Count;
    if (isStringArray(request.DeviceIDs) && request.DeviceIDs.length > 0) {
      issues.unsupported(`${at}/DeviceIDs`, `${field}.DeviceIDs`, 'the device plugin picks GPUs; the count of ids is requested instead');
      count = request.DeviceIDs.length;
    }
    if (count === -1) {
      issues.unsupported(`${at}/Count`, `${field}.Count -1 (all GPUs)`, 'Kubernetes needs a number; 1 GPU is requested, set k8s.resources.limits["nvidia.com/gpu"] for more');
      count = 1;
    }
    if (count === undefined || count === 0) count = 1;
    if (!isInteger(count) || count < 1) {
      invalid(`${at}/Count`, `${field}.Count`, 'must be a positive integer or -1');
      return;
    }
    limits['nvidia.com/gpu'] = String(Number(limits['nvidia.com/gpu'] ?? 0) + count);
    for (const key of Object.keys(request)) {
      if (!['Driver', 'Count', 'DeviceIDs', 'Capabilities', 'Options'].includes(key)) issues.unsupported(`${at}${pointer(key)}`, `${field}.${key}`);
    }
    if (isObject(request.Options) && Object.keys(request.Options).length > 0) issues.unsupported(`${at}/Options`, `${field}.Options`, 'device plugins take no per-request options');
  }

  function mapExtraHosts(entries: string[], at: string, field: string): void {
    const byIp = new Map<string, string[]>();
    entries.forEach((entry, i) => {
      // "host:ip" (the IP may itself contain ':' for IPv6); Docker also accepts "host=ip".
      const sep = entry.includes('=') ? entry.indexOf('=') : entry.indexOf(':');
      const host = sep > 0 ? entry.slice(0, sep) : '';
      const ip = sep > 0 ? entry.slice(sep + 1) : '';
      if (host === '' || ip === '' || ip === 'host-gateway') {
        if (ip === 'host-gateway') issues.unsupported(`${at}/${i}`, `${field}[${i}] host-gateway`, 'pods have no Docker host gateway');
        else invalid(`${at}/${i}`, `${field}[${i}] ${JSON.stringify(entry)}`, 'must be "host:ip"');
        return;
      }
      if (!isIpAddress(ip)) {
        invalid(`${at}/${i}`, `${field}[${i}] ${JSON.stringify(entry)}`, 'must map the host to an IP address');
        return;
      }
      // /etc/hosts lookups ignore case, so lowercasing keeps the meaning; other names Kubernetes cannot hold.
      const hostname = host.toLowerCase();
      if (!isDnsSubdomain(hostname)) {
        issues.unsupported(`${at}/${i}`, `${field}[${i}] ${JSON.stringify(host)}`, 'Kubernetes host aliases must be DNS names');
        return;
      }
      const hosts = byIp.get(ip) ?? [];
      if (!hosts.includes(hostname)) hosts.push(hostname);
      byIp.set(ip, hosts);
    });
    if (byIp.size > 0) {
      draft.pod.hostAliases = [...byIp.keys()].sort().map((ip): V1HostAlias => ({ ip, hostnames: byIp.get(ip) ?? [] }));
    }
  }

  function mapResources(): void {
    const num = (key: string) => (isInteger(hc[key]) ? (hc[key] as number) : 0);
    const memory = num('Memory');
    const reservation = num('MemoryReservation');
    if (memory > 0) limits.memory = bytesQuantity(memory);
    if (reservation > 0) {
      if (memory > 0 && reservation > memory) {
        invalid(`${hcBase}/MemoryReservation`, 'HostConfig.MemoryReservation', 'must not exceed HostConfig.Memory');
      } else requests.memory = bytesQuantity(reservation);
    }
    const nanoCpus = num('NanoCpus');
    const quota = num('CpuQuota');
    const period = num('CpuPeriod') || 100_000;
    if (nanoCpus > 0 && quota > 0) {
      invalid(`${hcBase}/NanoCpus`, 'HostConfig.NanoCpus', 'cannot be set together with HostConfig.CpuQuota (Docker rejects both)');
    } else if (nanoCpus > 0) {
      limits.cpu = milliCpuQuantity(nanoCpus / 1e6);
    } else if (quota > 0) {
      limits.cpu = milliCpuQuantity((quota / period) * 1000);
    } else if (num('CpuPeriod') > 0) {
      issues.unsupported(`${hcBase}/CpuPeriod`, 'HostConfig.CpuPeriod', 'without CpuQuota it sets no limit');
    }
  }
}

/**
 * Docker labels become annotations of the module's pod and Services (Kubernetes labels are too narrow for
 * them), as in the preview. A key that is not a valid annotation key is cleaned into one, with a warning; two
 * keys that clean to one key are told apart by a hash of the original, the valid key keeping its spelling.
 */
function mapLabels(labels: Record<string, unknown>, at: string, ctx: ModuleContext, draft: ModuleDraft): void {
  const { issues, spec } = ctx;
  const entries = Object.entries(labels).filter(([label, text]) => {
    if (isString(text)) return true;
    issues.error('IEO_CREATE_OPTION_VALUE', `${at}${pointer(label)}`, `module ${JSON.stringify(spec.id)}: createOptions Labels.${label} must be a string`);
    return false;
  });
  // Valid keys first, then the rest in sorted order, so the outcome does not depend on the order keys were written in.
  entries.sort(([a], [b]) => Number(isQualifiedName(b)) - Number(isQualifiedName(a)) || (a < b ? -1 : a > b ? 1 : 0));
  for (const [label, text] of entries) {
    let annotation = cleanAnnotationKey(label);
    if (annotation in draft.podAnnotations) annotation = uniqueAnnotationKey(annotation, label);
    if (annotation !== label) {
      issues.warn('IEO_W_LABEL_KEY_CLEANED', `${at}${pointer(label)}`,
        `module ${JSON.stringify(spec.id)}: label ${JSON.stringify(label)} is not a valid Kubernetes annotation key; it is written as ${JSON.stringify(annotation)}`);
    }
    draft.podAnnotations[annotation] = text as string;
  }
}

function uniqueAnnotationKey(annotation: string, original: string): string {
  const slash = annotation.lastIndexOf('/');
  const name = annotation.slice(slash + 1);
  return `${annotation.slice(0, slash + 1)}${name.slice(0, 56).replace(/[^A-Za-z0-9]+$/, '')}-${shortHash(original)}`;
}

function addClusterPort(draft: ModuleDraft, port: PortSpec): void {
  if (!draft.clusterPorts.some((p) => p.port === port.port && p.protocol === port.protocol)) draft.clusterPorts.push(port);
}

/**
 * The operator-wide non-root default (the preview's RunAsNonRoot): fields the module sets itself, at pod or
 * container level, are kept; the uid is given only when the module names no user.
 */
function applyNonRootDefault(pod: V1PodSecurityContext, container: V1SecurityContext, runAsUser: number): void {
  pod.runAsNonRoot ??= true;
  if (pod.runAsUser === undefined && container.runAsUser === undefined) pod.runAsUser = runAsUser;
}

/** A port key neither Docker nor a Service can use: the preview skipped that port, and so does this operator. */
function skipPort(at: string, field: string, portKey: string, ctx: ModuleContext): void {
  ctx.issues.warn('IEO_W_PORT_SKIPPED', at,
    `module ${JSON.stringify(ctx.spec.id)}: ${field} key ${JSON.stringify(portKey)} is not "port", "port/tcp", "port/udp" or "port/sctp"; this port is skipped`);
}

function mapPortBindings(value: unknown, at: string, ctx: ModuleContext, draft: ModuleDraft): void {
  const { issues, spec } = ctx;
  if (!isObject(value)) {
    issues.error('IEO_CREATE_OPTION_VALUE', at, `module ${JSON.stringify(spec.id)}: createOptions HostConfig.PortBindings must be an object keyed by "port/protocol"`);
    return;
  }
  for (const [portKey, bindings] of Object.entries(value)) {
    const keyAt = `${at}${pointer(portKey)}`;
    const container = parsePortSpec(portKey);
    if (!container) {
      skipPort(keyAt, 'HostConfig.PortBindings', portKey, ctx);
      continue;
    }
    addClusterPort(draft, container);
    if (bindings === null) continue;
    if (!Array.isArray(bindings)) {
      issues.error('IEO_CREATE_OPTION_VALUE', keyAt, `module ${JSON.stringify(spec.id)}: PortBindings ${portKey} must be an array of {HostPort}`);
      continue;
    }
    bindings.forEach((binding: unknown, i) => {
      const bAt = `${keyAt}/${i}`;
      if (!isObject(binding)) {
        issues.error('IEO_CREATE_OPTION_VALUE', bAt, `module ${JSON.stringify(spec.id)}: PortBindings ${portKey}[${i}] must be an object`);
        return;
      }
      const hostPortText = binding.HostPort;
      let hostPort = container.port;
      if (hostPortText !== undefined && hostPortText !== '') {
        const parsed = typeof hostPortText === 'number' ? hostPortText : isString(hostPortText) && /^\d+$/.test(hostPortText) ? Number(hostPortText) : NaN;
        if (!(parsed >= 1 && parsed <= 65535)) {
          // The preview skipped a binding whose host port is not a number; a range cannot be one Service port either.
          const why = isString(hostPortText) && hostPortText.includes('-') ? 'port ranges cannot be published by a Service' : 'it is not a port number';
          issues.warn('IEO_W_PORT_SKIPPED', `${bAt}/HostPort`,
            `module ${JSON.stringify(spec.id)}: PortBindings ${portKey}[${i}].HostPort ${JSON.stringify(hostPortText)} is skipped: ${why}`);
          return;
        }
        hostPort = parsed;
      } else {
        issues.unsupported(`${bAt}/HostPort`, `HostConfig.PortBindings ${portKey}[${i}] without HostPort`, 'a Service cannot pick a random port; the container port is published');
      }
      if (isString(binding.HostIp) && binding.HostIp !== '' && binding.HostIp !== '0.0.0.0' && binding.HostIp !== '::') {
        issues.unsupported(`${bAt}/HostIp`, `HostConfig.PortBindings ${portKey}[${i}].HostIp`, 'a Service listens on every address; use k8s.serviceOptions.loadBalancerIP');
      }
      const clash = draft.portBindings.find((b) => b.hostPort === hostPort && b.container.protocol === container.protocol);
      if (clash) {
        if (clash.container.port !== container.port) {
          issues.error('IEO_CREATE_OPTION_VALUE', `${bAt}/HostPort`,
            `module ${JSON.stringify(spec.id)}: host port ${hostPort}/${container.protocol.toLowerCase()} is bound to container ports ${clash.container.port} and ${container.port}`);
        }
        return;
      }
      draft.portBindings.push({ container, hostPort });
    });
  }
}

function mapHealthcheck(value: unknown, at: string, ctx: ModuleContext, draft: ModuleDraft): void {
  const { issues, spec } = ctx;
  const invalid = (field: string, expected: string) =>
    issues.error('IEO_CREATE_OPTION_VALUE', `${at}${field ? pointer(field) : ''}`, `module ${JSON.stringify(spec.id)}: createOptions Healthcheck${field ? `.${field}` : ''} ${expected}`);
  if (!isObject(value)) {
    invalid('', 'must be an object');
    return;
  }
  for (const key of Object.keys(value)) {
    if (!['Test', 'Interval', 'Timeout', 'Retries', 'StartPeriod', 'StartInterval'].includes(key)) issues.unsupported(`${at}${pointer(key)}`, `Healthcheck.${key}`);
  }
  const test = value.Test;
  if (test === undefined || (Array.isArray(test) && test.length === 0)) {
    issues.unsupported(`${at}/Test`, 'Healthcheck without Test', "it inherits the image's HEALTHCHECK, which Kubernetes does not run; give the Test explicitly");
    return;
  }
  if (!isStringArray(test) || !['CMD', 'CMD-SHELL', 'NONE'].includes(test[0] ?? '')) {
    invalid('Test', 'must be ["CMD", ...], ["CMD-SHELL", "command"] or ["NONE"]');
    return;
  }
  if (test[0] === 'NONE') return;
  const command = test[0] === 'CMD' ? test.slice(1) : ['/bin/sh', '-c', test.slice(1).join(' ')];
  if (command.length === 0 || command[0] === '') {
    invalid('Test', 'has no command');
    return;
  }
  const durations: Record<string, number> = {};
  for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval']) {
    const d = value[key];
    if (d === undefined || d === 0) continue;
    if (!isInteger(d) || d < 0) invalid(key, 'must be a duration in nanoseconds');
    else durations[key] = d;
  }
  const retries = value.Retries;
  if (retries !== undefined && (!isInteger(retries) || retries < 0)) invalid('Retries', 'must be a non-negative integer');
  // Docker's defaults: every 30s, 30s timeout, 3 retries.
  const period = nanosToSeconds(durations.Interval ?? 30e9);
  const failureThreshold = isInteger(retries) && retries > 0 ? retries : 3;
  draft.healthProbe = {
    exec: { command: command.map(escapeKubernetesExpansion) },
    periodSeconds: period,
    timeoutSeconds: nanosToSeconds(durations.Timeout ?? 30e9),
    failureThreshold,
  };
  if (durations.StartPeriod) {
    // Failures during Docker's start period do not count, and the retries still apply after it.
    const startPeriodSeconds = nanosToSeconds(durations.StartInterval ?? durations.Interval ?? 30e9);
    draft.healthStartupProbe = {
      ...draft.healthProbe,
      periodSeconds: startPeriodSeconds,
      failureThreshold: Math.ceil(nanosToSeconds(durations.StartPeriod) / startPeriodSeconds) + failureThreshold,
    };
  }
}

/** The env of a module, in a fixed order: runtime variables first, then the module's own, sorted by name. */
export function moduleEnv(
  spec: ModuleSpec,
  path: string,
  runtime: { name: string; value: string; overridable: boolean }[],
  issues: Issues,
): V1EnvVar[] {
  const user = new Map<string, string>();
  const coEnv = spec.createOptions.Env;
  const envAt = `${path}/settings/createOptions/Env`;
  if (coEnv !== undefined && coEnv !== null) {
    if (!isStringArray(coEnv)) {
      issues.error('IEO_CREATE_OPTION_VALUE', envAt, `module ${JSON.stringify(spec.id)}: createOptions Env must be an array of "NAME=value" strings`);
    } else {
      coEnv.forEach((entry, i) => {
        const eq = entry.indexOf('=');
        if (eq <= 0) {
          issues.unsupported(`${envAt}/${i}`, `Env[${i}] ${JSON.stringify(entry.slice(0, Math.max(eq, 0)) || entry)}`, 'a variable without "=value" would be taken from the client, which has none here');
          return;
        }
        user.set(entry.slice(0, eq), entry.slice(eq + 1));
      });
    }
  }
  // The module's env (env.<NAME>.value) wins over createOptions.Env, as edgeAgent merges them.
  for (const [name, value] of Object.entries(spec.env)) user.set(name, value);
  const result: V1EnvVar[] = [];
  for (const variable of runtime) {
    const own = user.get(variable.name);
    if (own !== undefined && !variable.overridable) {
      if (own !== variable.value) {
        issues.warn('IEO_W_RESERVED_ENV', `${path}/env${pointer(variable.name)}`,
          `module ${JSON.stringify(spec.id)}: ${variable.name} is set by the runtime; the module's value is ignored`);
      }
    }
    result.push({ name: variable.name, value: own !== undefined && variable.overridable ? escapeKubernetesExpansion(own) : variable.value });
    user.delete(variable.name);
  }
  for (const name of [...user.keys()].sort()) result.push({ name, value: escapeKubernetesExpansion(user.get(name) ?? '') });
  return result;
}
