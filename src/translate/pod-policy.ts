// The security policy enforced on the FINAL pod spec of each module: whatever block of createOptions
// (Docker fields, the k8s block, or any block added later) produced a field, it is judged here, after
// translation, so no input path can bypass it. The default is Kubernetes' Pod Security Standards
// "baseline" (what a Docker container gets by default, and no more) plus the operator's own rules: a
// volume-type allow-list, Secrets only where declared, and no ServiceAccount token. Each exception needs
// an explicit allow in OperatorSettings. Pure: no I/O.
import type { V1Container, V1PodSpec, V1SecurityContext, V1Volume } from '@kubernetes/client-node';
import type { OperatorSettings } from './settings.ts';

export type PodSecurityLevel = 'restricted' | 'baseline' | 'privileged';
export const podSecurityLevels: readonly PodSecurityLevel[] = ['restricted', 'baseline', 'privileged'];

export interface PodPolicyViolation {
  /** CamelCase, stable for tooling, e.g. "HostPathDenied". */
  reason: string;
  /** JSON pointer of the offending field in the pod spec, e.g. /volumes/0/hostPath. */
  field: string;
  message: string;
}

export interface PodPolicyContext {
  settings: OperatorSettings;
  /** The volumes that the manifest asked for; every other volume of the pod was added by the operator. */
  manifestVolumes: ReadonlySet<V1Volume>;
  /** The env entries that came from the manifest; others were added by the operator. */
  manifestEnv: ReadonlySet<object>;
  /** Secrets this manifest declares (its own registry credentials) or that the settings make mountable. */
  mountableSecrets: ReadonlySet<string>;
  /** Secrets the operator owns for this device (identities, CA, connection strings): never mountable by a manifest. */
  isOperatorSecret: (name: string) => boolean;
}

/** Capabilities baseline allows to add: Docker's default set without NET_RAW. */
export const baselineCapabilities: readonly string[] = [
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
];

/** Sysctls Kubernetes considers safe (namespaced, no effect outside the pod). */
export const safeSysctls: readonly string[] = [
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes',
];

/** Volume types a manifest may use without an explicit allow (secret only for mountable Secrets). */
export const defaultVolumeTypes: readonly string[] = ['emptyDir', 'configMap', 'persistentVolumeClaim', 'secret'];

const seLinuxTypes = ['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t'];

/** The V1Volume members that name a volume source (everything but name). */
function volumeTypes(volume: V1Volume): string[] {
  return Object.keys(volume).filter((k) => k !== 'name' && (volume as unknown as Record<string, unknown>)[k] !== undefined);
}

/** A path under /dev with no "." or ".." segment that could climb out of it. */
function isDevicePath(path: string): boolean {
  return /^\/dev\/[A-Za-z0-9._/-]+$/.test(path) && !path.split('/').some((segment) => segment === '..' || segment === '.');
}

function normaliseCapability(cap: string): string {
  return cap.toUpperCase().replace(/^CAP_/, '');
}

interface Checker {
  ctx: PodPolicyContext;
  out: PodPolicyViolation[];
  level: PodSecurityLevel;
}

function deny(c: Checker, reason: string, field: string, what: string, allow: string): void {
  c.out.push({ reason, field, message: `${what} is denied by the operator's security policy (${allow})` });
}

const allowHint = {
  privileged: 'allow it with --allow-privileged or --pod-security privileged',
  hostNetwork: 'allow it with --allow-host-network',
  hostPid: 'allow it with --allow-host-pid',
  hostIpc: 'allow it with --allow-host-ipc',
  hostPath: 'allow it with --allow-host-path (or --allow-devices for /dev paths)',
  capabilities: 'allow it with --allow-added-capabilities',
  sysctls: 'allow it with --allow-unsafe-sysctls',
  token: 'allow it with --allow-service-account-token',
  volumeType: 'allow the type with --allow-volume-types',
  secret: 'a module may mount only Secrets its manifest declares (its registry credentials) or those listed in --mountable-secrets',
  operatorSecret: 'it belongs to the operator; no setting allows a module to mount it',
  confinement: 'allow it with --allow-privileged or --pod-security privileged',
  restricted: 'required by --pod-security restricted',
  hostPort: 'publish ports through PortBindings, which become a Service',
};

/** All violations of the final pod spec under the settings' policy; empty when the pod may run. */
export function checkPodSpec(spec: V1PodSpec, annotations: Record<string, string>, ctx: PodPolicyContext): PodPolicyViolation[] {
  const c: Checker = { ctx, out: [], level: ctx.settings.podSecurity };
  checkPodLevel(c, spec);
  checkVolumes(c, spec);
  const containerLists: [string, V1Container[] | undefined][] = [
    ['containers', spec.containers], ['initContainers', spec.initContainers], ['ephemeralContainers', spec.ephemeralContainers as V1Container[] | undefined],
  ];
  for (const [list, containers] of containerLists) {
    (containers ?? []).forEach((container, i) => checkContainer(c, spec, container, `/${list}/${i}`));
  }
  checkAppArmorAnnotations(c, annotations);
  return c.out;
}

function unconfinedAllowed(c: Checker): boolean {
  return c.level === 'privileged' || c.ctx.settings.allowPrivileged;
}

function checkPodLevel(c: Checker, spec: V1PodSpec): void {
  const { settings } = c.ctx;
  const baseline = c.level !== 'privileged';
  if (baseline && spec.hostNetwork && !settings.allowHostNetwork) deny(c, 'HostNetworkDenied', '/hostNetwork', "the host's network namespace", allowHint.hostNetwork);
  if (baseline && spec.hostPID && !settings.allowHostPid) deny(c, 'HostPidDenied', '/hostPID', "the host's PID namespace", allowHint.hostPid);
  if (baseline && spec.hostIPC && !settings.allowHostIpc) deny(c, 'HostIpcDenied', '/hostIPC', "the host's IPC namespace", allowHint.hostIpc);
  if (spec.automountServiceAccountToken !== false && !settings.allowServiceAccountToken) {
    deny(c, 'ServiceAccountTokenDenied', '/automountServiceAccountToken', 'a Kubernetes API token (automountServiceAccountToken)', allowHint.token);
  }
  const sc = spec.securityContext;
  if (!sc) {
    if (c.level === 'restricted') deny(c, 'RunAsNonRootRequired', '/securityContext/runAsNonRoot', 'a pod that may run as root', allowHint.restricted);
    return;
  }
  (sc.sysctls ?? []).forEach((sysctl, i) => {
    if (baseline && !safeSysctls.includes(sysctl.name) && !settings.allowUnsafeSysctls) {
      deny(c, 'UnsafeSysctlDenied', `/securityContext/sysctls/${i}`, `the unsafe sysctl ${sysctl.name}`, allowHint.sysctls);
    }
  });
  checkConfinement(c, sc, '/securityContext');
  if (c.level === 'restricted') {
    if (sc.runAsUser === 0) deny(c, 'RunAsRootDenied', '/securityContext/runAsUser', 'running as user 0', allowHint.restricted);
    if (sc.runAsNonRoot === false) deny(c, 'RunAsNonRootRequired', '/securityContext/runAsNonRoot', 'runAsNonRoot false', allowHint.restricted);
  }
  if ((sc as { windowsOptions?: { hostProcess?: boolean } }).windowsOptions?.hostProcess) {
    deny(c, 'HostProcessDenied', '/securityContext/windowsOptions/hostProcess', 'a Windows host process', allowHint.privileged);
  }
}

/** seccomp, AppArmor, SELinux: the confinement Docker applies by default. */
function checkConfinement(c: Checker, sc: V1SecurityContext, at: string): void {
  if (unconfinedAllowed(c)) return;
  if (sc.seccompProfile?.type === 'Unconfined') deny(c, 'UnconfinedSeccompDenied', `${at}/seccompProfile/type`, 'an unconfined seccomp profile', allowHint.confinement);
  if (c.level === 'restricted' && sc.seccompProfile?.type !== undefined && !['RuntimeDefault', 'Localhost'].includes(sc.seccompProfile.type)) {
    deny(c, 'SeccompProfileRequired', `${at}/seccompProfile/type`, `seccomp profile ${sc.seccompProfile.type}`, allowHint.restricted);
  }
  if (sc.appArmorProfile?.type === 'Unconfined') deny(c, 'UnconfinedAppArmorDenied', `${at}/appArmorProfile/type`, 'an unconfined AppArmor profile', allowHint.confinement);
  const se = sc.seLinuxOptions;
  if (se && (!seLinuxTypes.includes(se.type ?? '') || se.user || se.role)) {
    deny(c, 'SELinuxOptionsDenied', `${at}/seLinuxOptions`, 'custom SELinux user, role or type', allowHint.confinement);
  }
}

/** A granted privileged container already reaches every device, as edgeAgent's Privileged does. */
function grantsPrivileged(c: Checker, spec: V1PodSpec): boolean {
  const privileged = [...spec.containers, ...(spec.initContainers ?? [])].some((container) => container.securityContext?.privileged === true);
  return privileged && (c.ctx.settings.allowPrivileged || c.level === 'privileged');
}

function checkVolumes(c: Checker, spec: V1PodSpec): void {
  const volumes = spec.volumes ?? [];
  const { ctx } = c;
  const { settings } = ctx;
  const devicesAllowed = settings.allowDevices || grantsPrivileged(c, spec);
  const allowedTypes = new Set([...defaultVolumeTypes, ...settings.allowVolumeTypes]);
  volumes.forEach((volume, i) => {
    const at = `/volumes/${i}`;
    const fromManifest = ctx.manifestVolumes.has(volume);
    for (const type of volumeTypes(volume)) {
      if (type === 'hostPath') {
        const path = volume.hostPath?.path ?? '';
        const device = devicesAllowed && isDevicePath(path);
        if (c.level !== 'privileged' && !settings.allowHostPath && !device) deny(c, 'HostPathDenied', `${at}/hostPath`, `mounting host path ${path}`, allowHint.hostPath);
        continue;
      }
      if (type === 'projected' && (volume.projected?.sources ?? []).some((s) => s.serviceAccountToken !== undefined)) {
        if (!settings.allowServiceAccountToken) deny(c, 'ServiceAccountTokenDenied', `${at}/projected`, 'a projected ServiceAccount token', allowHint.token);
      }
      if (!fromManifest) continue; // the operator's own volumes (routes, identities, certificates)
      if (type === 'secret') {
        const name = volume.secret?.secretName ?? '';
        if (ctx.isOperatorSecret(name)) deny(c, 'OperatorSecretDenied', `${at}/secret/secretName`, `mounting the operator's Secret ${name}`, allowHint.operatorSecret);
        else if (!ctx.mountableSecrets.has(name)) deny(c, 'UndeclaredSecretDenied', `${at}/secret/secretName`, `mounting Secret ${name}`, allowHint.secret);
      } else if (!allowedTypes.has(type)) {
        deny(c, 'VolumeTypeDenied', `${at}/${type}`, `a ${type} volume`, allowHint.volumeType);
      }
    }
  });
}

function checkContainer(c: Checker, spec: V1PodSpec, container: V1Container, at: string): void {
  const { settings } = c.ctx;
  const baseline = c.level !== 'privileged';
  (container.ports ?? []).forEach((port, i) => {
    if (port.hostPort) deny(c, 'HostPortDenied', `${at}/ports/${i}/hostPort`, `host port ${port.hostPort}`, allowHint.hostPort);
  });
  (container.env ?? []).forEach((variable, i) => {
    const secret = variable.valueFrom?.secretKeyRef?.name;
    if (secret !== undefined && c.ctx.manifestEnv.has(variable)) checkSecretReference(c, secret, `${at}/env/${i}/valueFrom/secretKeyRef/name`);
  });
  (container.envFrom ?? []).forEach((source, i) => {
    if (source.secretRef?.name !== undefined) checkSecretReference(c, source.secretRef.name, `${at}/envFrom/${i}/secretRef/name`);
  });
  const sc = container.securityContext ?? {};
  const privileged = sc.privileged === true;
  if (baseline && privileged && !settings.allowPrivileged) deny(c, 'PrivilegedDenied', `${at}/securityContext/privileged`, 'a privileged container', allowHint.privileged);
  const grantedPrivileged = privileged && (settings.allowPrivileged || !baseline);
  (sc.capabilities?.add ?? []).forEach((raw, i) => {
    const cap = normaliseCapability(raw);
    const beyondBaseline = !baselineCapabilities.includes(cap);
    if (baseline && beyondBaseline && !settings.allowAddedCapabilities && !grantedPrivileged) {
      deny(c, 'AddedCapabilitiesDenied', `${at}/securityContext/capabilities/add/${i}`, `adding capability ${cap}`, allowHint.capabilities);
    } else if (c.level === 'restricted' && cap !== 'NET_BIND_SERVICE' && !settings.allowAddedCapabilities) {
      deny(c, 'AddedCapabilitiesDenied', `${at}/securityContext/capabilities/add/${i}`, `adding capability ${cap}`, allowHint.restricted);
    }
  });
  if (baseline && sc.procMount !== undefined && sc.procMount !== 'Default' && !grantedPrivileged) {
    deny(c, 'UnmaskedProcMountDenied', `${at}/securityContext/procMount`, `procMount ${sc.procMount}`, allowHint.confinement);
  }
  if (sc.windowsOptions?.hostProcess) deny(c, 'HostProcessDenied', `${at}/securityContext/windowsOptions/hostProcess`, 'a Windows host process', allowHint.privileged);
  if (!grantedPrivileged) checkConfinement(c, sc, `${at}/securityContext`);
  if (c.level === 'restricted') checkRestrictedContainer(c, spec, sc, at);
}

function checkSecretReference(c: Checker, name: string, field: string): void {
  if (c.ctx.isOperatorSecret(name)) deny(c, 'OperatorSecretDenied', field, `reading the operator's Secret ${name}`, allowHint.operatorSecret);
  else if (!c.ctx.mountableSecrets.has(name)) deny(c, 'UndeclaredSecretDenied', field, `reading Secret ${name}`, allowHint.secret);
}

function checkRestrictedContainer(c: Checker, spec: V1PodSpec, sc: V1SecurityContext, at: string): void {
  const pod = spec.securityContext ?? {};
  if (sc.allowPrivilegeEscalation !== false) deny(c, 'PrivilegeEscalationDenied', `${at}/securityContext/allowPrivilegeEscalation`, 'privilege escalation', allowHint.restricted);
  const runAsNonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot;
  if (runAsNonRoot !== true) deny(c, 'RunAsNonRootRequired', `${at}/securityContext/runAsNonRoot`, 'a container that may run as root', allowHint.restricted);
  if (sc.runAsUser === 0) deny(c, 'RunAsRootDenied', `${at}/securityContext/runAsUser`, 'running as user 0', allowHint.restricted);
  const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
  if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') deny(c, 'SeccompProfileRequired', `${at}/securityContext/seccompProfile`, 'a container without a RuntimeDefault or Localhost seccomp profile', allowHint.restricted);
  if (!(sc.capabilities?.drop ?? []).map(normaliseCapability).includes('ALL')) {
    deny(c, 'DropAllCapabilitiesRequired', `${at}/securityContext/capabilities/drop`, 'a container that keeps its default capabilities', allowHint.restricted);
  }
}

function checkAppArmorAnnotations(c: Checker, annotations: Record<string, string>): void {
  if (unconfinedAllowed(c)) return;
  for (const [key, value] of Object.entries(annotations)) {
    if (key.startsWith('container.apparmor.security.beta.kubernetes.io/') && value !== 'runtime/default' && !value.startsWith('localhost/')) {
      c.out.push({ reason: 'UnconfinedAppArmorDenied', field: `/metadata/annotations/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, message: `AppArmor profile ${value} is denied by the operator's security policy (${allowHint.confinement})` });
    }
  }
}

/**
 * Fills in the confinement the level asks for where the manifest said nothing, so a Docker manifest
 * runs as Docker would run it: RuntimeDefault seccomp (Docker's default profile) at every level but
 * privileged; restricted also drops every capability, forbids privilege escalation and requires non-root.
 * Explicit values are kept (checkPodSpec then judges them).
 */
export function hardenPodSpec(spec: V1PodSpec, level: PodSecurityLevel): void {
  if (level === 'privileged') return;
  const pod = (spec.securityContext ??= {});
  pod.seccompProfile ??= { type: 'RuntimeDefault' };
  if (level !== 'restricted') return;
  pod.runAsNonRoot ??= true;
  for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
    const sc = (container.securityContext ??= {});
    sc.allowPrivilegeEscalation ??= false;
    const capabilities = (sc.capabilities ??= {});
    if (!(capabilities.drop ?? []).map(normaliseCapability).includes('ALL')) capabilities.drop = [...(capabilities.drop ?? []), 'ALL'];
  }
}

/**
 * The Pod Security Admission level that admits every pod these settings let through: the configured
 * level, raised to privileged (or, for extra volume types under restricted, baseline) when an explicit
 * allow goes beyond it. The operator labels device namespaces with it.
 */
export function admissionLevel(settings: OperatorSettings): PodSecurityLevel {
  const beyondBaseline = settings.allowPrivileged || settings.allowHostNetwork || settings.allowHostPid || settings.allowHostIpc
    || settings.allowHostPath || settings.allowDevices || settings.allowAddedCapabilities || settings.allowUnsafeSysctls;
  if (settings.podSecurity === 'privileged' || beyondBaseline) return 'privileged';
  const restrictedVolumeTypes = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
  if (settings.podSecurity === 'restricted' && settings.allowVolumeTypes.every((t) => restrictedVolumeTypes.includes(t))) return 'restricted';
  return 'baseline';
}
