import { describe, expect, it } from '@jest/globals';
import { certificateLifetimesFromFlags, normaliseSwitchVariables, parseDuration, parseNamespaces, runCommand, settingsFromFlags, type RunFlags } from '../../../src/cli/run.ts';

describe('run flags', () => {
  it('treats a false-like switch variable as off and rejects nonsense', () => {
    const env: NodeJS.ProcessEnv = { IOTEDGE_OPERATOR_LEADER_ELECT: 'false', IOTEDGE_OPERATOR_ALLOW_PRIVILEGED: 'true', IOTEDGE_OPERATOR_ALLOW_DEVICES: '0' };
    normaliseSwitchVariables(env);
    expect(env).toEqual({ IOTEDGE_OPERATOR_ALLOW_PRIVILEGED: 'true' });
    expect(() => normaliseSwitchVariables({ IOTEDGE_OPERATOR_LEADER_ELECT: 'maybe' })).toThrow('IOTEDGE_OPERATOR_LEADER_ELECT="maybe": expected true or false');
  });

  it('reads every setting from real command-line flags, defaults included (commander names the properties)', () => {
    const command = runCommand();
    command.parseOptions(['--edgehub-cert-lifetime', '30d', '--run-as-user', '1500']);
    const flags = command.opts() as RunFlags;
    const settings = settingsFromFlags(flags);
    expect(certificateLifetimesFromFlags(flags)).toEqual({ caMs: 1825 * 86_400_000, serverMs: 30 * 86_400_000 });
    expect(settings.runAsUser).toBe(1500);
  });

  it('reads namespaces as all or a list', () => {
    expect(parseNamespaces('all')).toBe('all');
    expect(parseNamespaces('')).toBe('all');
    expect(parseNamespaces('dev1, dev2')).toEqual(['dev1', 'dev2']);
  });

  it('maps flags onto translation settings', () => {
    const flags = {
      namespaces: 'all', allowPrivileged: true, allowHostNetwork: false, allowHostPid: false, allowHostIpc: false, allowHostPath: true,
      allowAddedCapabilities: false, allowDevices: false, storageClass: 'local-path', volumeSize: '5Gi', volumeAccessMode: 'ReadWriteMany',
      deleteVolumesWithModules: true, portBindingServiceType: 'NodePort', networkPolicies: false, leaderElect: false, leaderElectionId: 'x',
      healthProbeBindAddress: '0', metricsBindAddress: '0', concurrency: '2', logLevel: 'info', deviceCaLifetime: '1825d', edgehubCertLifetime: '90d',
      useMountSourceForVolumeName: true, runAsNonRoot: true, runAsUser: '2000',
    } satisfies RunFlags;
    expect(settingsFromFlags(flags)).toMatchObject({
      allowPrivileged: true, allowHostPath: true, portBindingServiceType: 'NodePort', networkPolicies: false, runAsNonRoot: true, runAsUser: 2000,
      storage: { storageClassName: 'local-path', defaultVolumeSize: '5Gi', accessMode: 'ReadWriteMany', retainVolumesOnModuleRemoval: false, useMountSourceForVolumeName: true },
    });
    expect(() => settingsFromFlags({ ...flags, runAsUser: 'app' })).toThrow('--run-as-user "app": expected a numeric uid');
  });

  it('reads certificate lifetimes as durations and names the flag of a bad one', () => {
    expect(parseDuration('--edgehub-cert-lifetime', '90d')).toBe(90 * 86_400_000);
    expect(parseDuration('--edgehub-cert-lifetime', '600s')).toBe(600_000);
    expect(parseDuration('--edgehub-cert-lifetime', '12h')).toBe(12 * 3_600_000);
    expect(() => parseDuration('--edgehub-cert-lifetime', '90')).toThrow('--edgehub-cert-lifetime: "90" is not a duration');
    expect(() => parseDuration('--device-ca-lifetime', '0d')).toThrow('--device-ca-lifetime');
  });
});
