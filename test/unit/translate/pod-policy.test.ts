// The policy on the final pod spec: every way out a manifest can ask for, through any createOptions
// block, is refused with IEO_POLICY_DENIED, a reason and the manifest path of the field behind it.
import { describe, expect, it } from '@jest/globals';
import { settingsWith, translate } from '../../../src/translate/index.ts';
import { edgeHubSpec, input, manifest, moduleSpec } from './builders.ts';
import { container, errors, one, podSpec, value } from './helpers.ts';

const co = (createOptions: Record<string, unknown>) => ({ createOptions });
const base = '/modulesContent/$edgeAgent/properties.desired/modules/m/settings/createOptions';

/** [reason, the path below createOptions] of each error. */
function denials(createOptions: Record<string, unknown>, settings = settingsWith({})): [string, string][] {
  return errors(one(moduleSpec('m', co(createOptions)), settings)).map((e) => {
    expect(e.code).toBe('IEO_POLICY_DENIED');
    return [/\[(\w+)\]$/.exec(e.message)?.[1] ?? e.message, e.path.startsWith(base) ? e.path.slice(base.length) : e.path];
  });
}

describe('baseline (the default)', () => {
  it.each([
    ['k8s hostPath volume', { k8s: { volumes: [{ name: 'h', hostPath: { path: '/etc' } }] } }, 'HostPathDenied', '/k8s/volumes/0'],
    ['k8s privileged', { k8s: { securityContext: { privileged: true } } }, 'PrivilegedDenied', '/k8s/securityContext/privileged'],
    ['k8s capability beyond Docker defaults', { k8s: { securityContext: { capabilities: { add: ['SYS_ADMIN'] } } } }, 'AddedCapabilitiesDenied', '/k8s/securityContext/capabilities/add'],
    ['k8s NET_RAW (not in baseline)', { k8s: { securityContext: { capabilities: { add: ['NET_RAW'] } } } }, 'AddedCapabilitiesDenied', '/k8s/securityContext/capabilities/add'],
    ['unconfined seccomp (container)', { k8s: { securityContext: { seccompProfile: { type: 'Unconfined' } } } }, 'UnconfinedSeccompDenied', '/k8s/securityContext/seccompProfile/type'],
    ['unconfined seccomp (pod)', { k8s: { podSecurityContext: { seccompProfile: { type: 'Unconfined' } } } }, 'UnconfinedSeccompDenied', '/k8s/podSecurityContext/seccompProfile/type'],
    ['unconfined AppArmor', { k8s: { securityContext: { appArmorProfile: { type: 'Unconfined' } } } }, 'UnconfinedAppArmorDenied', '/k8s/securityContext/appArmorProfile/type'],
    ['AppArmor annotation', { Labels: { 'container.apparmor.security.beta.kubernetes.io/m': 'unconfined' } }, 'UnconfinedAppArmorDenied', '/Labels'],
    ['unmasked procMount', { k8s: { securityContext: { procMount: 'Unmasked' } } }, 'UnmaskedProcMountDenied', '/k8s/securityContext/procMount'],
    ['SELinux user', { k8s: { securityContext: { seLinuxOptions: { user: 'system_u' } } } }, 'SELinuxOptionsDenied', '/k8s/securityContext/seLinuxOptions'],
    ['unsafe sysctl (Docker)', { HostConfig: { Sysctls: { 'kernel.msgmax': '1' } } }, 'UnsafeSysctlDenied', '/HostConfig/Sysctls/kernel.msgmax'],
    ['unsafe sysctl (k8s pod)', { k8s: { podSecurityContext: { sysctls: [{ name: 'kernel.sem', value: '1' }] } } }, 'UnsafeSysctlDenied', '/k8s/podSecurityContext/sysctls/0'],
    ['unsafe sysctl (moved from k8s securityContext)', { k8s: { securityContext: { sysctls: [{ name: 'net.core.somaxconn', value: '9' }] } } }, 'UnsafeSysctlDenied', '/k8s/securityContext/sysctls/0'],
    ['automount token', { k8s: { automountServiceAccountToken: true } }, 'ServiceAccountTokenDenied', '/k8s/automountServiceAccountToken'],
    ['projected token', { k8s: { volumes: [{ name: 't', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }] } }, 'ServiceAccountTokenDenied', '/k8s/volumes/0'],
    ['undeclared Secret', { k8s: { volumes: [{ name: 's', secret: { secretName: 'db-password' } }] } }, 'UndeclaredSecretDenied', '/k8s/volumes/0'],
    ["another module's identity", { k8s: { volumes: [{ name: 's', secret: { secretName: 'other-iothub' } }] } }, 'OperatorSecretDenied', '/k8s/volumes/0'],
    ["the device's identity", { k8s: { volumes: [{ name: 's', secret: { secretName: 'dev1-deployment-device-identity' } }] } }, 'OperatorSecretDenied', '/k8s/volumes/0'],
    ['a Helm release Secret', { k8s: { volumes: [{ name: 's', secret: { secretName: 'sh.helm.release.v1.dev1.v1' } }] } }, 'OperatorSecretDenied', '/k8s/volumes/0'],
    ['a volume type off the list', { k8s: { volumes: [{ name: 'n', nfs: { server: 'x', path: '/' } }] } }, 'VolumeTypeDenied', '/k8s/volumes/0'],
    ['a device path with .. in it', { k8s: { volumes: [{ name: 'd', hostPath: { path: '/dev/../etc' } }] } }, 'HostPathDenied', '/k8s/volumes/0'],
  ])('refuses %s', (_what, createOptions, reason, path) => {
    expect(denials(createOptions)).toContainEqual([reason, path]);
  });

  it('refuses the device-path escape even where devices are allowed', () => {
    expect(denials({ k8s: { volumes: [{ name: 'd', hostPath: { path: '/dev/../etc' } }] } }, settingsWith({ allowDevices: true }))).toEqual([['HostPathDenied', '/k8s/volumes/0']]);
  });

  it("runs a Docker module as Docker would: RuntimeDefault seccomp, no token, Docker's capabilities allowed", () => {
    const r = value(one(moduleSpec('m', co({ HostConfig: { CapAdd: ['CHOWN', 'CAP_NET_BIND_SERVICE'], Sysctls: { 'net.ipv4.tcp_syncookies': '1' } } }))));
    expect(podSpec(r, 'm')).toMatchObject({ automountServiceAccountToken: false, securityContext: { seccompProfile: { type: 'RuntimeDefault' } } });
    expect(container(r, 'm').securityContext?.capabilities?.add).toEqual(['CHOWN', 'NET_BIND_SERVICE']);
  });

  it("lets the manifest mount its own registry credential's Secret and Secrets the settings list", () => {
    const credentials = { acr: { name: 'acr', address: 'example.azurecr.io', username: 'u', password: 'fictional-pw' } };
    const spec = moduleSpec('m', co({ k8s: { volumes: [{ name: 'a', secret: { secretName: 'registry-acr' } }, { name: 'b', secret: { secretName: 'plc-cert' } }] } }));
    const settings = settingsWith({ mountableSecrets: ['plc-cert'] });
    expect(value(translate(input(manifest([spec], { registryCredentials: credentials }), settings)))).toBeDefined();
    expect(errors(translate(input(manifest([spec], { registryCredentials: credentials }))))).toHaveLength(1);
  });

  it("lets the operator's own Secret mounts through, but not the same Secret asked for by the manifest", () => {
    const identity = { moduleCredentialSecrets: { m: 'm-iothub' } };
    const plain = translate(input(manifest([moduleSpec('m')]), settingsWith({}), identity));
    expect(container(value(plain), 'm').env?.find((v) => v.name === 'EdgeHubConnectionString')?.valueFrom?.secretKeyRef?.name).toBe('m-iothub');
    const asked = translate(input(manifest([moduleSpec('m', co({ k8s: { volumes: [{ name: 'x', secret: { secretName: 'm-iothub' } }] } }))]), settingsWith({}), identity));
    expect(errors(asked).map((e) => /\[(\w+)\]$/.exec(e.message)?.[1])).toEqual(['OperatorSecretDenied']);
  });

  it('each refusal has an explicit allow', () => {
    const allowAll = settingsWith({
      allowPrivileged: true, allowHostPath: true, allowAddedCapabilities: true, allowUnsafeSysctls: true, allowServiceAccountToken: true, allowVolumeTypes: ['nfs'],
    });
    const createOptions = {
      HostConfig: { Sysctls: { 'kernel.msgmax': '1' } },
      k8s: {
        automountServiceAccountToken: true,
        securityContext: { privileged: true, capabilities: { add: ['SYS_ADMIN'] }, seccompProfile: { type: 'Unconfined' } },
        volumes: [{ name: 'h', hostPath: { path: '/etc' } }, { name: 'n', nfs: { server: 'x', path: '/' } }],
      },
    };
    expect(value(one(moduleSpec('m', co(createOptions)), allowAll))).toBeDefined();
  });
});

describe("names of the operator's own objects", () => {
  it("refuses a volume named like one the operator adds to the pod", () => {
    const edgeHub = edgeHubSpec({ createOptions: { k8s: { volumes: [{ name: 'iotedge-operator-routes', emptyDir: {} }] } } });
    const e = errors(translate(input(manifest([], { edgeHub }))));
    // The k8s block's parser now refuses the operator's volume names first; the pod check stays as the backstop.
    expect(e.map((x) => [x.code, x.path])).toEqual([['IEO_K8S_EXTENSION', '/modulesContent/$edgeAgent/properties.desired/systemModules/edgeHub/settings/createOptions/k8s/volumes/0/name']]);
  });

  it("refuses a module named like the deployment's default-deny NetworkPolicy", () => {
    const e = errors(translate(input(manifest([moduleSpec('dev1-deployment-default-deny')]))));
    expect(e.map((x) => [x.code, x.path])).toEqual([['IEO_NAME_COLLISION', '/modulesContent/$edgeAgent/properties.desired/modules/dev1-deployment-default-deny']]);
    expect(value(translate(input(manifest([moduleSpec('dev1-deployment-default-deny')]), settingsWith({ networkPolicies: false }))))).toBeDefined();
  });
});

describe('--pod-security', () => {
  it('restricted hardens a plain module and refuses root, escalation and extra capabilities', () => {
    const restricted = settingsWith({ podSecurity: 'restricted' });
    const r = value(one(moduleSpec('m'), restricted));
    expect(podSpec(r, 'm').securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container(r, 'm').securityContext).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(denials({ User: '0' }, restricted)).toEqual([['RunAsRootDenied', '/User']]);
    expect(denials({ k8s: { securityContext: { allowPrivilegeEscalation: true } } }, restricted)).toEqual([['PrivilegeEscalationDenied', '/k8s/securityContext/allowPrivilegeEscalation']]);
    expect(denials({ HostConfig: { CapAdd: ['CHOWN'] } }, restricted).map(([reason]) => reason)).toContain('AddedCapabilitiesDenied');
    expect(denials({ k8s: { podSecurityContext: { runAsNonRoot: false } } }, restricted)).toContainEqual(['RunAsNonRootRequired', '/k8s/podSecurityContext/runAsNonRoot']);
  });

  it('privileged lifts the profile but keeps the Secret and token rules', () => {
    const privileged = settingsWith({ podSecurity: 'privileged' });
    const hostile = { HostConfig: { Privileged: true, NetworkMode: 'host', Binds: ['/:/host'] }, k8s: { securityContext: { seccompProfile: { type: 'Unconfined' } } } };
    expect(value(one(moduleSpec('m', co(hostile)), privileged))).toBeDefined();
    expect(denials({ k8s: { automountServiceAccountToken: true } }, privileged)).toEqual([['ServiceAccountTokenDenied', '/k8s/automountServiceAccountToken']]);
    expect(denials({ k8s: { volumes: [{ name: 's', secret: { secretName: 'db' } }] } }, privileged)).toEqual([['UndeclaredSecretDenied', '/k8s/volumes/0']]);
  });
});

describe("main's newer inputs go through the same policy", () => {
  it('reports a k8s-experimental (preview) field at the path as the manifest spells it', () => {
    expect(denials({ 'k8s-experimental': { securityContext: { Sysctls: [{ Name: 'kernel.sem', Value: '1' }] } } })).toEqual([['UnsafeSysctlDenied', '/k8s-experimental/securityContext/Sysctls/0']]);
    expect(denials({ 'k8s-experimental': { volumes: [{ volume: { Name: 'h', HostPath: { Path: '/etc' } }, volumeMounts: [{ name: 'h', mountPath: '/h' }] }] } }))
      .toEqual([['HostPathDenied', '/k8s-experimental/volumes/0/volume']]);
    expect(denials({ 'k8s-experimental': { volumes: [{ volume: { name: 's', secret: { secretName: 'dev1-deployment-edgehub-server' } }, volumeMounts: [{ name: 's', mountPath: '/s' }] }] } }))
      .toEqual([['OperatorSecretDenied', '/k8s-experimental/volumes/0/volume']]);
  });

  it("lets the built-in hub's identity, certificate, routes and store through at every level but asks the same of its pod", () => {
    const hub = { ownerName: 'device', builtinEdgeHub: { image: 'localhost/iotedge-operator:dev', upstream: { secretName: 'binding', key: 'cs' } } };
    for (const podSecurity of ['baseline', 'restricted'] as const) {
      const r = value(translate(input(manifest([moduleSpec('sensor')], { routes: { r: { name: 'r', route: 'FROM /messages/* INTO $upstream', priority: 0 } } }), settingsWith({ podSecurity }), hub)));
      const pod = podSpec(r, 'edgehub');
      expect(pod.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
      expect(pod.automountServiceAccountToken).toBe(false);
      expect((pod.volumes ?? []).some((v) => v.secret?.secretName === 'device-device-identity')).toBe(true);
    }
    const asked = edgeHubSpec({ createOptions: { k8s: { automountServiceAccountToken: true } } });
    const e = errors(translate(input(manifest([], { edgeHub: asked }), settingsWith({}), hub)));
    expect(e.map((x) => /\[(\w+)\]$/.exec(x.message)?.[1])).toEqual(['ServiceAccountTokenDenied']);
  });

  it("refuses the device CA and edgeHub certificate Secrets, the binding's and a user CA's, to a manifest", () => {
    const reserved = { reservedSecrets: ['my-ca', 'hub-binding'] };
    for (const secretName of ['dev1-deployment-device-ca', 'dev1-deployment-edgehub-server', 'my-ca', 'hub-binding']) {
      const spec = moduleSpec('m', co({ k8s: { volumes: [{ name: 's', secret: { secretName } }] } }));
      expect(errors(translate(input(manifest([spec]), settingsWith({ mountableSecrets: [secretName] }), reserved))).map((e) => /\[(\w+)\]$/.exec(e.message)?.[1])).toEqual(['OperatorSecretDenied']);
    }
  });

  it("passes every module's device CA mount and connection-string variable, which the operator adds", () => {
    const r = value(translate(input(manifest([moduleSpec('m')]), settingsWith({ podSecurity: 'restricted' }), { localIdentities: { hostName: 'dev1.local', keys: { m: 'a2V5' } } })));
    expect(podSpec(r, 'm').volumes?.map((v) => v.secret?.secretName)).toContain('dev1-deployment-edgehub-server');
    expect(container(r, 'm').env?.find((v) => v.name === 'EdgeHubConnectionString')?.valueFrom?.secretKeyRef?.name).toBe('m-iothub');
  });

  it('--run-as-non-root and --run-as-user meet restricted; a uid 0 default does not', () => {
    const r = value(one(moduleSpec('m'), settingsWith({ podSecurity: 'restricted', runAsNonRoot: true, runAsUser: 1000 })));
    expect(podSpec(r, 'm').securityContext).toEqual({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(denials({}, settingsWith({ podSecurity: 'restricted', runAsNonRoot: true, runAsUser: 0 }))).toContainEqual(['RunAsRootDenied', '']);
  });
});
