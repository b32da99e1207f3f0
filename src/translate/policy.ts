// The security policy: small pure checks, one per risky capability, each saying whether the operator's
// settings allow it and why not. Translation turns a denial into an IEO_POLICY_DENIED error that names
// the module and the field.
import type { OperatorSettings } from './settings.ts';

export interface PolicyDecision {
  allowed: boolean;
  /** A CamelCase reason, stable for tooling (e.g. "PrivilegedDenied"). */
  reason: string;
  /** A sentence for people, naming the setting that would allow it. */
  message: string;
}

const allowed: PolicyDecision = { allowed: true, reason: 'Allowed', message: 'allowed by the security policy' };

function deny(reason: string, what: string, setting: keyof OperatorSettings): PolicyDecision {
  return { allowed: false, reason, message: `${what} is denied by the operator's security policy (set ${setting} to allow it)` };
}

export function checkPrivileged(settings: OperatorSettings, privileged: boolean): PolicyDecision {
  return !privileged || settings.allowPrivileged ? allowed : deny('PrivilegedDenied', 'a privileged container', 'allowPrivileged');
}

export function checkHostNetwork(settings: OperatorSettings, hostNetwork: boolean): PolicyDecision {
  return !hostNetwork || settings.allowHostNetwork ? allowed : deny('HostNetworkDenied', "the host's network namespace", 'allowHostNetwork');
}

export function checkHostPid(settings: OperatorSettings, hostPid: boolean): PolicyDecision {
  return !hostPid || settings.allowHostPid ? allowed : deny('HostPidDenied', "the host's PID namespace", 'allowHostPid');
}

export function checkHostIpc(settings: OperatorSettings, hostIpc: boolean): PolicyDecision {
  return !hostIpc || settings.allowHostIpc ? allowed : deny('HostIpcDenied', "the host's IPC namespace", 'allowHostIpc');
}

export function checkHostPath(settings: OperatorSettings, hostPath: string): PolicyDecision {
  return settings.allowHostPath ? allowed : deny('HostPathDenied', `mounting host path ${hostPath}`, 'allowHostPath');
}

export function checkAddedCapabilities(settings: OperatorSettings, capabilities: readonly string[]): PolicyDecision {
  return capabilities.length === 0 || settings.allowAddedCapabilities
    ? allowed
    : deny('AddedCapabilitiesDenied', `adding capabilities (${capabilities.join(', ')})`, 'allowAddedCapabilities');
}

export function checkDevice(settings: OperatorSettings, devicePath: string): PolicyDecision {
  return settings.allowDevices ? allowed : deny('DevicesDenied', `mounting host device ${devicePath}`, 'allowDevices');
}
