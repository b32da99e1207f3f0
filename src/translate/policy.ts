// Early policy checks on Docker createOptions fields: small pure checks, one per risky capability, each
// saying whether the operator's settings allow it and why not. They name the exact createOptions field;
// the authoritative gate is pod-policy.ts on the final pod spec, which catches whatever these do not.
// Translation turns a denial into an IEO_POLICY_DENIED error that names the module and the field.
import { baselineCapabilities } from './pod-policy.ts';
import type { OperatorSettings } from './settings.ts';

export interface PolicyDecision {
  allowed: boolean;
  /** A CamelCase reason, stable for tooling (e.g. "PrivilegedDenied"). */
  reason: string;
  /** A sentence for people, naming the setting that would allow it. */
  message: string;
}

const allowed: PolicyDecision = { allowed: true, reason: 'Allowed', message: 'allowed by the security policy' };

/** --pod-security privileged lifts the Pod Security Standards profile, and with it these checks. */
const lifted = (settings: OperatorSettings) => settings.podSecurity === 'privileged';

function deny(reason: string, what: string, setting: keyof OperatorSettings): PolicyDecision {
  return { allowed: false, reason, message: `${what} is denied by the operator's security policy (set ${setting} to allow it)` };
}

export function checkPrivileged(settings: OperatorSettings, privileged: boolean): PolicyDecision {
  return !privileged || settings.allowPrivileged || lifted(settings) ? allowed : deny('PrivilegedDenied', 'a privileged container', 'allowPrivileged');
}

export function checkHostNetwork(settings: OperatorSettings, hostNetwork: boolean): PolicyDecision {
  return !hostNetwork || settings.allowHostNetwork || lifted(settings) ? allowed : deny('HostNetworkDenied', "the host's network namespace", 'allowHostNetwork');
}

export function checkHostPid(settings: OperatorSettings, hostPid: boolean): PolicyDecision {
  return !hostPid || settings.allowHostPid || lifted(settings) ? allowed : deny('HostPidDenied', "the host's PID namespace", 'allowHostPid');
}

export function checkHostIpc(settings: OperatorSettings, hostIpc: boolean): PolicyDecision {
  return !hostIpc || settings.allowHostIpc || lifted(settings) ? allowed : deny('HostIpcDenied', "the host's IPC namespace", 'allowHostIpc');
}

export function checkHostPath(settings: OperatorSettings, hostPath: string): PolicyDecision {
  return settings.allowHostPath || lifted(settings) ? allowed : deny('HostPathDenied', `mounting host path ${hostPath}`, 'allowHostPath');
}

/** Capabilities in Docker's default set (baseline's list) need no allow, except under --pod-security restricted. */
export function checkAddedCapabilities(settings: OperatorSettings, capabilities: readonly string[]): PolicyDecision {
  const beyond = capabilities.map((c) => c.toUpperCase().replace(/^CAP_/, '')).filter((c) => settings.podSecurity === 'restricted' ? c !== 'NET_BIND_SERVICE' : !baselineCapabilities.includes(c));
  return beyond.length === 0 || settings.allowAddedCapabilities || lifted(settings)
    ? allowed
    : deny('AddedCapabilitiesDenied', `adding capabilities (${beyond.join(', ')})`, 'allowAddedCapabilities');
}

export function checkDevice(settings: OperatorSettings, devicePath: string): PolicyDecision {
  return settings.allowDevices || lifted(settings) ? allowed : deny('DevicesDenied', `mounting host device ${devicePath}`, 'allowDevices');
}
