import { describe, expect, it } from '@jest/globals';
import type { V1Deployment, V1PersistentVolumeClaim, V1Pod, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import {
  annotationKeys,
  defaultSettings,
  labelKeys,
  ownerSelector,
  settingsWith,
  toWire,
  translate,
} from '../../../src/translate/index.ts';
import { edgeHubSpec, input, manifest, moduleSpec } from './builders.ts';
import { codes, container, env, errors, find, has, one, podSpec, policy, service, value } from './helpers.ts';

const co = (createOptions: Record<string, unknown>) => ({ createOptions });

describe('names and labels', () => {
  it('sanitises module ids to DNS labels and keeps the original id in an annotation', () => {
    const r = value(one(moduleSpec('My_Module.v2', co({ ExposedPorts: { '80/tcp': {} } }))));
    const deployment = find<V1Deployment>(r, 'Deployment', 'my-module-v2');
    expect(deployment.metadata?.annotations?.[annotationKeys.moduleId]).toBe('My_Module.v2');
    expect(deployment.spec?.template.metadata?.annotations?.[annotationKeys.moduleId]).toBe('My_Module.v2');
    expect(has(r, 'Service', 'my-module-v2')).toBe(true);
    expect(has(r, 'ServiceAccount', 'my-module-v2')).toBe(true);
  });

  it('gives a leading letter to ids that start with a digit and shortens long ids with a hash', () => {
    const r = value(translate(input(manifest([moduleSpec('1sensor'), moduleSpec('x'.repeat(80)), moduleSpec(`${'x'.repeat(79)}y`)]))));
    const names = r.modules.map((m) => m.name);
    expect(names).toContain('m-1sensor');
    const long = names.filter((n) => n.startsWith('xxx'));
    expect(long).toHaveLength(2);
    expect(new Set(long).size).toBe(2);
    for (const n of long) expect(n.length).toBeLessThanOrEqual(57);
  });

  it('rejects two modules that collide after sanitising, naming both', () => {
    const e = errors(translate(input(manifest([moduleSpec('temp_sensor'), moduleSpec('Temp-Sensor')]))));
    expect(e).toHaveLength(1);
    expect(e[0]?.code).toBe('IEO_NAME_COLLISION');
    expect(e[0]?.message).toContain('"temp_sensor"');
    expect(e[0]?.message).toContain('"Temp-Sensor"');
    expect(e[0]?.message).toContain('temp-sensor');
  });

  it('labels module objects with the recommended and operator labels', () => {
    const r = value(translate(input(manifest([moduleSpec('filter')]), defaultSettings, { deviceId: 'Device#1', ownerName: 'plant-a' })));
    const labels = find<V1Deployment>(r, 'Deployment', 'filter').metadata?.labels;
    expect(labels).toEqual({
      [labelKeys.name]: 'filter',
      [labelKeys.instance]: 'plant-a',
      [labelKeys.component]: 'edge-module',
      [labelKeys.managedBy]: 'iotedge-operator',
      [labelKeys.partOf]: 'plant-a',
      [labelKeys.module]: 'filter',
      [labelKeys.device]: expect.stringMatching(/^Device-1-[0-9a-f]{6}$/),
      [labelKeys.edgeDeployment]: 'plant-a',
    });
    expect(ownerSelector('plant-a')).toBe('iotedge-operator.io/edge-deployment=plant-a');
    for (const object of [...r.objects, ...r.volumeClaims]) expect(object.metadata?.labels?.[labelKeys.edgeDeployment]).toBe('plant-a');
  });

  it('rejects a module whose name takes the edgeHub Service name', () => {
    const e = errors(translate(input(manifest([moduleSpec('gateway', co({ ExposedPorts: { '80/tcp': {} } }))]), settingsWith({ edgeHubServiceName: 'gateway' }))));
    expect(codes(e)).toEqual(['IEO_NAME_COLLISION']);
    expect(e[0]?.message).toContain('gateway');
  });
});

describe('restartPolicy, status and imagePullPolicy', () => {
  it('always -> a one-replica Deployment with the Recreate strategy', () => {
    const r = value(one(moduleSpec('m', { restartPolicy: 'always' })));
    const d = find<V1Deployment>(r, 'Deployment', 'm');
    expect(d.spec?.replicas).toBe(1);
    expect(d.spec?.strategy).toEqual({ type: 'Recreate' });
    expect(r.modules.find((m) => m.id === 'm')?.kind).toBe('Deployment');
  });

  it('stopped always-module -> zero replicas', () => {
    const r = value(one(moduleSpec('m', { status: 'stopped' })));
    expect(find<V1Deployment>(r, 'Deployment', 'm').spec?.replicas).toBe(0);
  });

  it('never -> a bare Pod with restartPolicy Never; on-failure -> OnFailure', () => {
    const r = value(translate(input(manifest([moduleSpec('job', { restartPolicy: 'never' }), moduleSpec('retry', { restartPolicy: 'on-failure' })]))));
    expect(find<V1Pod>(r, 'Pod', 'job').spec?.restartPolicy).toBe('Never');
    expect(find<V1Pod>(r, 'Pod', 'retry').spec?.restartPolicy).toBe('OnFailure');
    expect(has(r, 'Deployment', 'job')).toBe(false);
    expect(find<V1Pod>(r, 'Pod', 'job').metadata?.annotations?.[annotationKeys.specHash]).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a stopped bare-pod module has no Pod, but keeps its ServiceAccount', () => {
    const r = value(one(moduleSpec('job', { restartPolicy: 'never', status: 'stopped' })));
    expect(has(r, 'Pod', 'job')).toBe(false);
    expect(has(r, 'ServiceAccount', 'job')).toBe(true);
    const plan = r.modules.find((m) => m.id === 'job');
    expect(plan?.kind).toBe('Pod');
    expect(plan?.objects.map((o) => o.kind)).not.toContain('Pod');
  });

  it('on-unhealthy -> a Deployment whose liveness probe comes from the Healthcheck', () => {
    const r = value(one(moduleSpec('m', { restartPolicy: 'on-unhealthy', ...co({ Healthcheck: { Test: ['CMD', 'curl', '-f', 'http://localhost/'], Interval: 10e9, Timeout: 2500e6, Retries: 5 } }) })));
    expect(find<V1Deployment>(r, 'Deployment', 'm')).toBeDefined();
    expect(container(r, 'm').livenessProbe).toEqual({ exec: { command: ['curl', '-f', 'http://localhost/'] }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 5 });
    expect(container(r, 'm').readinessProbe).toEqual(container(r, 'm').livenessProbe);
  });

  it('on-unhealthy without a Healthcheck is a warning, not an error', () => {
    const outcome = one(moduleSpec('m', { restartPolicy: 'on-unhealthy' }));
    expect(value(outcome)).toBeDefined();
    expect(codes(outcome.warnings)).toEqual(['IEO_W_NO_HEALTHCHECK']);
    expect(outcome.warnings[0]?.path).toBe('/modulesContent/$edgeAgent/properties.desired/modules/m/restartPolicy');
  });

  it('a never-module with a Healthcheck gets only a readiness probe (a failing check does not kill it)', () => {
    const r = value(one(moduleSpec('m', { restartPolicy: 'never', ...co({ Healthcheck: { Test: ['CMD-SHELL', 'test -f /ok'] } }) })));
    expect(container(r, 'm').livenessProbe).toBeUndefined();
    expect(container(r, 'm').readinessProbe?.exec?.command).toEqual(['/bin/sh', '-c', 'test -f /ok']);
    expect(container(r, 'm').readinessProbe?.periodSeconds).toBe(30);
  });

  it('Healthcheck StartPeriod -> a startup probe that tolerates the start period plus the retries', () => {
    const r = value(one(moduleSpec('m', co({ Healthcheck: { Test: ['CMD', 'true'], Interval: 5e9, StartPeriod: 60e9, Retries: 2 } }))));
    expect(container(r, 'm').startupProbe).toMatchObject({ exec: { command: ['true'] }, periodSeconds: 5, failureThreshold: 14 });
  });

  it('Healthcheck NONE disables probes', () => {
    const r = value(one(moduleSpec('m', co({ Healthcheck: { Test: ['NONE'] } }))));
    expect(container(r, 'm').livenessProbe).toBeUndefined();
  });

  it('imagePullPolicy on-create -> IfNotPresent, never -> Never', () => {
    const r = value(translate(input(manifest([moduleSpec('a', { imagePullPolicy: 'on-create' }), moduleSpec('b', { imagePullPolicy: 'never' })]))));
    expect(container(r, 'a').imagePullPolicy).toBe('IfNotPresent');
    expect(container(r, 'b').imagePullPolicy).toBe('Never');
  });

  it('reports startupOrder and orders the plan by it', () => {
    const r = value(translate(input(manifest([moduleSpec('late', { startupOrder: 10 }), moduleSpec('early', { startupOrder: 1 })]))));
    expect(r.modules.map((m) => [m.id, m.startupOrder])).toEqual([['edgeHub', 0], ['early', 1], ['late', 10]]);
  });
});

describe('env', () => {
  it('sets the IOTEDGE_* variables, module env over createOptions.Env, user variables sorted', () => {
    const r = value(one(moduleSpec('m', { env: { B: 'module', Z: 'z' }, ...co({ Env: ['B=create', 'A=1', 'C=x=y'] }) })));
    expect(container(r, 'm').env).toEqual([
      { name: 'IOTEDGE_AUTHSCHEME', value: 'sasToken' },
      { name: 'IOTEDGE_DEVICEID', value: 'dev1' },
      { name: 'IOTEDGE_GATEWAYHOSTNAME', value: 'edgehub' },
      { name: 'IOTEDGE_IOTHUBHOSTNAME', value: 'myhub.azure-devices.net' },
      { name: 'IOTEDGE_MODULEID', value: 'm' },
      { name: 'RuntimeLogLevel', value: 'info' },
      { name: 'A', value: '1' },
      { name: 'B', value: 'module' },
      { name: 'C', value: 'x=y' },
      { name: 'Z', value: 'z' },
      { name: 'EdgeModuleCACertificateFile', value: '/etc/iotedge-operator/device-ca/ca.crt' },
    ]);
  });

  it('lets a module set RuntimeLogLevel but not IOTEDGE_MODULEID (warning)', () => {
    const outcome = one(moduleSpec('m', { env: { RuntimeLogLevel: 'debug', IOTEDGE_MODULEID: 'other' } }));
    expect(env(value(outcome), 'm')).toMatchObject({ RuntimeLogLevel: 'debug', IOTEDGE_MODULEID: 'm' });
    expect(codes(outcome.warnings)).toEqual(['IEO_W_RESERVED_ENV']);
  });

  it('omits IOTEDGE_IOTHUBHOSTNAME in kubectl-only mode and gives edgeHub its host name instead of a gateway', () => {
    const r = value(translate(input(manifest([moduleSpec('m')]), defaultSettings, { hubHostName: '' })));
    expect(env(r, 'm')).not.toHaveProperty('IOTEDGE_IOTHUBHOSTNAME');
    expect(env(r, 'edgehub')).toMatchObject({ IOTEDGE_MODULEID: '$edgeHub', EdgeDeviceHostName: 'edgehub' });
    expect(env(r, 'edgehub')).not.toHaveProperty('IOTEDGE_GATEWAYHOSTNAME');
  });

  it('escapes Kubernetes $(VAR) expansion so the process sees the Docker string', () => {
    const r = value(one(moduleSpec('m', { env: { A: 'pre$(HOME)post' }, ...co({ Cmd: ['echo', '$(x)'] }) })));
    expect(env(r, 'm').A).toBe('pre$$(HOME)post');
    expect(container(r, 'm').args).toEqual(['echo', '$$(x)']);
  });

  it('warns about an Env entry without a value', () => {
    const outcome = one(moduleSpec('m', co({ Env: ['NOVALUE'] })));
    expect(codes(outcome.warnings)).toEqual(['IEO_W_UNSUPPORTED_CREATE_OPTION']);
    expect(outcome.warnings[0]?.path).toMatch(/\/settings\/createOptions\/Env\/0$/);
  });
});

describe('createOptions -> container', () => {
  it('Entrypoint -> command, Cmd -> args (a string is one element), WorkingDir', () => {
    const r = value(one(moduleSpec('m', co({ Entrypoint: ['/bin/app'], Cmd: '--serve', WorkingDir: '/app' }))));
    expect(container(r, 'm')).toMatchObject({ command: ['/bin/app'], args: ['--serve'], workingDir: '/app' });
  });

  it('User uid:gid -> runAsUser/runAsGroup; a user name is a warning', () => {
    expect(container(value(one(moduleSpec('m', co({ User: '1000:2000' })))), 'm').securityContext).toEqual({ runAsUser: 1000, runAsGroup: 2000 });
    expect(container(value(one(moduleSpec('m', co({ User: '1000' })))), 'm').securityContext).toEqual({ runAsUser: 1000 });
    const named = one(moduleSpec('m', co({ User: 'app' })));
    expect(codes(named.warnings)).toEqual(['IEO_W_NON_NUMERIC_USER']);
    expect(container(value(named), 'm').securityContext).toBeUndefined();
  });

  it('Labels -> pod annotations; invalid keys are cleaned into valid ones with a warning', () => {
    const outcome = one(moduleSpec('m', co({ Labels: { 'com.example.team': 'iot', 'bad key!': 'x' } })));
    const d = find<V1Deployment>(value(outcome), 'Deployment', 'm');
    expect(d.spec?.template.metadata?.annotations?.['com.example.team']).toBe('iot');
    expect(d.spec?.template.metadata?.annotations).not.toHaveProperty('bad key!');
    expect(d.spec?.template.metadata?.annotations?.badkey).toBe('x');
    expect(codes(outcome.warnings)).toEqual(['IEO_W_LABEL_KEY_CLEANED']);
  });

  it('StopTimeout -> terminationGracePeriodSeconds; Hostname -> pod hostname; Tty/OpenStdin', () => {
    const r = value(one(moduleSpec('m', co({ StopTimeout: 45, Hostname: 'opc', Tty: true, OpenStdin: true }))));
    expect(podSpec(r, 'm')).toMatchObject({ terminationGracePeriodSeconds: 45, hostname: 'opc' });
    expect(container(r, 'm')).toMatchObject({ tty: true, stdin: true });
  });

  it('ReadonlyRootfs and CapDrop need no permission', () => {
    const r = value(one(moduleSpec('m', co({ HostConfig: { ReadonlyRootfs: true, CapDrop: ['CAP_NET_RAW', 'mknod'] } }))));
    expect(container(r, 'm').securityContext).toEqual({ readOnlyRootFilesystem: true, capabilities: { drop: ['NET_RAW', 'MKNOD'] } });
  });

  it('Memory, MemoryReservation, NanoCpus -> resources', () => {
    const r = value(one(moduleSpec('m', co({ HostConfig: { Memory: 268435456, MemoryReservation: 134217728, NanoCpus: 1500000000 } }))));
    expect(container(r, 'm').resources).toEqual({ limits: { memory: '256Mi', cpu: '1500m' }, requests: { memory: '128Mi' } });
  });

  it('CpuQuota/CpuPeriod -> a CPU limit; both NanoCpus and CpuQuota is an error', () => {
    expect(container(value(one(moduleSpec('m', co({ HostConfig: { CpuQuota: 50000, CpuPeriod: 100000 } })))), 'm').resources?.limits).toEqual({ cpu: '500m' });
    expect(container(value(one(moduleSpec('m', co({ HostConfig: { CpuQuota: 200000 } })))), 'm').resources?.limits).toEqual({ cpu: '2' });
    expect(codes(errors(one(moduleSpec('m', co({ HostConfig: { CpuQuota: 1000, NanoCpus: 1e9 } })))))).toEqual(['IEO_CREATE_OPTION_VALUE']);
  });

  it('DeviceRequests for NVIDIA GPUs -> nvidia.com/gpu limits', () => {
    const r = value(one(moduleSpec('m', co({ HostConfig: { DeviceRequests: [{ Driver: 'nvidia', Count: 2, Capabilities: [['gpu']] }] } }))));
    expect(container(r, 'm').resources?.limits).toEqual({ 'nvidia.com/gpu': '2' });
    const all = one(moduleSpec('m', co({ HostConfig: { DeviceRequests: [{ Count: -1, Capabilities: [['gpu']] }] } })));
    expect(container(value(all), 'm').resources?.limits).toEqual({ 'nvidia.com/gpu': '1' });
    expect(all.warnings[0]?.path).toMatch(/DeviceRequests\/0\/Count$/);
  });

  it('ShmSize -> a memory emptyDir at /dev/shm; Tmpfs and tmpfs Mounts -> memory emptyDirs', () => {
    const r = value(one(moduleSpec('m', co({ HostConfig: { ShmSize: 268435456, Tmpfs: { '/run': 'rw,size=64m' }, Mounts: [{ Type: 'tmpfs', Target: '/cache', TmpfsOptions: { SizeBytes: 1048576 } }] } }))));
    const spec = podSpec(r, 'm');
    const byMount = Object.fromEntries((container(r, 'm').volumeMounts ?? []).map((m) => [m.mountPath, spec.volumes?.find((v) => v.name === m.name)?.emptyDir]));
    expect(byMount).toEqual({
      '/dev/shm': { medium: 'Memory', sizeLimit: '256Mi' },
      '/run': { medium: 'Memory', sizeLimit: '64Mi' },
      '/cache': { medium: 'Memory', sizeLimit: '1Mi' },
    });
  });

  it('ExtraHosts -> hostAliases grouped by IP; Dns* -> dnsConfig; Sysctls -> pod sysctls', () => {
    const r = value(one(moduleSpec('m', co({ HostConfig: {
      ExtraHosts: ['plc:10.0.0.5', 'plc-b:10.0.0.5', 'v6:fe80::1'],
      Dns: ['10.0.0.2'], DnsSearch: ['plant.local'], DnsOptions: ['ndots:2', 'rotate'],
      Sysctls: { 'net.ipv4.tcp_keepalive_time': '60', 'net.core.somaxconn': '1024' },
    } })), settingsWith({ allowUnsafeSysctls: true })));
    const spec = podSpec(r, 'm');
    expect(spec.hostAliases).toEqual([{ ip: '10.0.0.5', hostnames: ['plc', 'plc-b'] }, { ip: 'fe80::1', hostnames: ['v6'] }]);
    expect(spec.dnsConfig).toEqual({ nameservers: ['10.0.0.2'], searches: ['plant.local'], options: [{ name: 'ndots', value: '2' }, { name: 'rotate' }] });
    expect(spec.securityContext?.sysctls).toEqual([{ name: 'net.core.somaxconn', value: '1024' }, { name: 'net.ipv4.tcp_keepalive_time', value: '60' }]);
  });

  it('ExtraHosts names Kubernetes cannot hold are warnings; bad IPs are errors', () => {
    const outcome = one(moduleSpec('m', co({ HostConfig: { ExtraHosts: ['PLC:10.0.0.5', 'bad_name:10.0.0.6'] } })));
    expect(podSpec(value(outcome), 'm').hostAliases).toEqual([{ ip: '10.0.0.5', hostnames: ['plc'] }]);
    expect(outcome.warnings.map((w) => w.path.split('createOptions')[1])).toEqual(['/HostConfig/ExtraHosts/1']);
    expect(codes(errors(one(moduleSpec('m', co({ HostConfig: { ExtraHosts: ['plc:10.0.0.300'], Dns: ['dns.local'] } })))))).toEqual(['IEO_CREATE_OPTION_VALUE', 'IEO_CREATE_OPTION_VALUE']);
  });

  it('warns about every unmapped field with its path, and still translates', () => {
    const outcome = one(moduleSpec('m', co({ StopSignal: 'SIGINT', HostConfig: { LogConfig: { Type: 'json-file' }, Foo: 1, CpuShares: 512 } })));
    expect(value(outcome)).toBeDefined();
    expect(outcome.warnings.map((w) => w.path.replace('/modulesContent/$edgeAgent/properties.desired/modules/m/settings/createOptions', '…'))).toEqual([
      '…/StopSignal', '…/HostConfig/LogConfig', '…/HostConfig/Foo', '…/HostConfig/CpuShares',
    ]);
    expect(new Set(codes(outcome.warnings))).toEqual(new Set(['IEO_W_UNSUPPORTED_CREATE_OPTION']));
    expect(outcome.warnings[2]?.message).toContain('HostConfig.Foo');
  });

  it('reports a wrongly typed field as an error with its path', () => {
    const e = errors(one(moduleSpec('m', co({ Cmd: 42, HostConfig: { Memory: '1g' } }))));
    expect(e.map((x) => [x.code, x.path.split('/createOptions')[1]])).toEqual([
      ['IEO_CREATE_OPTION_VALUE', '/Cmd'],
      ['IEO_CREATE_OPTION_VALUE', '/HostConfig/Memory'],
    ]);
  });
});

describe('security policy', () => {
  const cases: [string, Record<string, unknown>, string, Parameters<typeof settingsWith>[0]][] = [
    ['Privileged', { HostConfig: { Privileged: true } }, '/HostConfig/Privileged', { allowPrivileged: true }],
    ['NetworkMode host', { HostConfig: { NetworkMode: 'host' } }, '/HostConfig/NetworkMode', { allowHostNetwork: true }],
    ['PidMode host', { HostConfig: { PidMode: 'host' } }, '/HostConfig/PidMode', { allowHostPid: true }],
    ['IpcMode host', { HostConfig: { IpcMode: 'host' } }, '/HostConfig/IpcMode', { allowHostIpc: true }],
    ['host path Binds', { HostConfig: { Binds: ['/var/data:/data'] } }, '/HostConfig/Binds/0', { allowHostPath: true }],
    ['bind Mounts', { HostConfig: { Mounts: [{ Type: 'bind', Source: '/etc/plc', Target: '/plc' }] } }, '/HostConfig/Mounts/0', { allowHostPath: true }],
    ['CapAdd', { HostConfig: { CapAdd: ['NET_ADMIN'] } }, '/HostConfig/CapAdd', { allowAddedCapabilities: true }],
    ['Devices', { HostConfig: { Devices: [{ PathOnHost: '/dev/ttyUSB0', PathInContainer: '/dev/ttyUSB0', CgroupPermissions: 'rwm' }] } }, '/HostConfig/Devices/0', { allowDevices: true }],
    ['k8s hostPath volume', { k8s: { volumes: [{ name: 'h', hostPath: { path: '/x' } }] } }, '/k8s/volumes/0', { allowHostPath: true }],
    ['k8s privileged', { k8s: { securityContext: { privileged: true } } }, '/k8s/securityContext/privileged', { allowPrivileged: true }],
  ];
  it.each(cases)('%s is denied by default with IEO_POLICY_DENIED naming module and field, and allowed by its setting', (_what, options, field, allow) => {
    const e = errors(one(moduleSpec('plc', co(options))));
    expect(codes(e)).toEqual(['IEO_POLICY_DENIED']);
    expect(e[0]?.path).toBe(`/modulesContent/$edgeAgent/properties.desired/modules/plc/settings/createOptions${field}`);
    expect(e[0]?.message).toContain('module "plc"');
    expect(value(one(moduleSpec('plc', co(options)), settingsWith(allow)))).toBeDefined();
  });

  it('rejects namespaced sysctls in a host namespace, as Docker does', () => {
    const all = settingsWith({ allowHostNetwork: true, allowHostIpc: true, allowUnsafeSysctls: true });
    const e = errors(one(moduleSpec('m', co({ HostConfig: { IpcMode: 'host', NetworkMode: 'host', Sysctls: { 'kernel.shmmax': '1', 'net.core.somaxconn': '9' } } })), all));
    expect(e.map((x) => x.path.split('createOptions')[1])).toEqual(['/HostConfig/Sysctls/kernel.shmmax', '/HostConfig/Sysctls/net.core.somaxconn']);
  });

  it('maps the allowed fields to the pod', () => {
    const all = settingsWith({ allowPrivileged: true, allowHostNetwork: true, allowHostPid: true, allowHostIpc: true, allowHostPath: true, allowAddedCapabilities: true, allowDevices: true });
    const r = value(one(moduleSpec('plc', co({ HostConfig: {
      Privileged: true, NetworkMode: 'host', PidMode: 'host', IpcMode: 'host', CapAdd: ['CAP_SYS_TIME'],
      Binds: ['/var/data:/data:ro,rslave'], Devices: [{ PathOnHost: '/dev/ttyS0', PathInContainer: '/dev/plc' }],
    } })), all));
    const spec = podSpec(r, 'plc');
    expect(spec).toMatchObject({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet', hostPID: true, hostIPC: true });
    expect(container(r, 'plc').securityContext).toEqual({ privileged: true, capabilities: { add: ['SYS_TIME'] } });
    const mounts = container(r, 'plc').volumeMounts ?? [];
    const volumeOf = (path: string) => spec.volumes?.find((v) => v.name === mounts.find((m) => m.mountPath === path)?.name);
    expect(mounts.find((m) => m.mountPath === '/data')).toMatchObject({ readOnly: true, mountPropagation: 'HostToContainer' });
    expect(volumeOf('/data')?.hostPath).toEqual({ path: '/var/data', type: 'DirectoryOrCreate' });
    expect(volumeOf('/dev/plc')?.hostPath).toEqual({ path: '/dev/ttyS0' });
  });

  it('a granted privileged container needs no separate CapAdd or Devices permission', () => {
    const r = one(moduleSpec('plc', co({ HostConfig: { Privileged: true, CapAdd: ['NET_ADMIN'], Devices: [{ PathOnHost: '/dev/ttyS0' }] } })), settingsWith({ allowPrivileged: true }));
    expect(value(r)).toBeDefined();
  });

  it('warns that a device in a non-privileged container may be unusable', () => {
    const outcome = one(moduleSpec('plc', co({ HostConfig: { Devices: [{ PathOnHost: '/dev/ttyS0' }] } })), settingsWith({ allowDevices: true }));
    expect(codes(outcome.warnings)).toEqual(['IEO_W_DEVICE_ACCESS']);
  });
});

describe('Services', () => {
  it('ExposedPorts -> a ClusterIP Service at the module name with named ports', () => {
    const r = value(one(moduleSpec('opc', co({ ExposedPorts: { '4840/tcp': {}, '53/udp': {}, '9000/sctp': {} } }))));
    expect(service(r, 'opc').spec).toMatchObject({
      type: 'ClusterIP',
      ports: [
        { name: 'tcp-4840', port: 4840, targetPort: 4840, protocol: 'TCP' },
        { name: 'udp-53', port: 53, targetPort: 53, protocol: 'UDP' },
        { name: 'sctp-9000', port: 9000, targetPort: 9000, protocol: 'SCTP' },
      ],
    });
    expect(has(r, 'Service', 'opc-ports')).toBe(false);
  });

  it('PortBindings -> a "<name>-ports" Service of the configured type, host port -> container port', () => {
    const options = co({ HostConfig: { PortBindings: { '8080/tcp': [{ HostPort: '80' }, { HostPort: '30080' }], '5000/udp': [{ HostPort: '5000' }] } } });
    const r = value(one(moduleSpec('web', options)));
    expect(service(r, 'web-ports').spec).toMatchObject({
      type: 'LoadBalancer',
      ports: [
        { name: 'tcp-80', port: 80, targetPort: 8080, protocol: 'TCP' },
        { name: 'tcp-30080', port: 30080, targetPort: 8080, protocol: 'TCP' },
        { name: 'udp-5000', port: 5000, targetPort: 5000, protocol: 'UDP' },
      ],
    });
    // Peers reach the container ports at the module's name, as on the azure-iot-edge network.
    expect(service(r, 'web').spec?.ports?.map((p) => p.name)).toEqual(['tcp-8080', 'udp-5000']);
    const nodePort = value(one(moduleSpec('web', options), settingsWith({ portBindingServiceType: 'NodePort' })));
    expect(service(nodePort, 'web-ports').spec?.ports?.map((p) => p.nodePort)).toEqual([undefined, 30080, undefined]);
  });

  it('k8s.serviceOptions overrides the type and adds loadBalancerIP and annotations', () => {
    const r = value(one(moduleSpec('web', co({
      HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '80' }] } },
      k8s: { serviceOptions: { type: 'LoadBalancer', loadBalancerIP: '10.1.1.1', annotations: { 'metallb.io/address-pool': 'edge' } } },
    })), settingsWith({ portBindingServiceType: 'ClusterIP' })));
    const s = service(r, 'web-ports');
    expect(s.spec).toMatchObject({ type: 'LoadBalancer', loadBalancerIP: '10.1.1.1' });
    expect(s.metadata?.annotations?.['metallb.io/address-pool']).toBe('edge');
  });

  it('edgeHub -> a Service named edgeHubServiceName with amqps, mqtts and https', () => {
    const r = value(translate(input(manifest([]), settingsWith({ edgeHubServiceName: 'gateway' }))));
    expect(service(r, 'gateway').spec?.ports).toEqual([
      { name: 'amqps', port: 5671, targetPort: 5671, protocol: 'TCP' },
      { name: 'mqtts', port: 8883, targetPort: 8883, protocol: 'TCP' },
      // edgeHub listens for HTTPS on 8443 inside its pod (no NET_BIND_SERVICE); the Service keeps 443.
      { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' },
    ]);
    expect(has(r, 'Deployment', 'edgehub')).toBe(true);
  });
});

describe('volumes', () => {
  it('named volumes -> one shared PVC per volume, with retain annotation and storage settings', () => {
    const settings = settingsWith({ storage: { storageClassName: 'local-path', defaultVolumeSize: '5Gi' } });
    const outcome = translate(input(manifest([
      moduleSpec('writer', co({ HostConfig: { Binds: ['shared:/data'] } })),
      moduleSpec('reader', co({ HostConfig: { Mounts: [{ Type: 'volume', Source: 'shared', Target: '/in', ReadOnly: true }] } })),
    ]), settings));
    const r = value(outcome);
    // edgeHub's store is the other claim.
    expect(r.volumeClaims.map((c) => c.metadata?.name)).toEqual(['edgehub-storage', 'shared']);
    const pvc = r.volumeClaims[1] as V1PersistentVolumeClaim;
    expect(pvc.metadata?.name).toBe('shared');
    expect(pvc.metadata?.annotations?.[annotationKeys.retain]).toBe('true');
    expect(pvc.spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } }, storageClassName: 'local-path' });
    expect(r.objects.some((o) => o.kind === 'PersistentVolumeClaim')).toBe(false);
    for (const m of ['writer', 'reader']) {
      expect(podSpec(r, m).volumes?.some((v) => v.persistentVolumeClaim?.claimName === 'shared')).toBe(true);
      expect(r.modules.find((p) => p.id === m)?.volumeClaims).toEqual(['shared']);
    }
    expect(container(r, 'reader').volumeMounts?.[0]).toEqual({ name: 'shared', mountPath: '/in', readOnly: true });
    expect(codes(outcome.warnings)).toEqual(['IEO_W_SHARED_VOLUME']);
  });

  it('k8s.volumeClaims sets a claim size, class and access mode; conflicting modules are an error', () => {
    const claim = (size: string) => co({ HostConfig: { Binds: ['db:/db'] }, k8s: { volumeClaims: { db: { size, accessMode: 'ReadWriteMany', storageClassName: 'nfs' } } } });
    const r = value(one(moduleSpec('a', claim('20Gi'))));
    expect(r.volumeClaims[0]?.spec).toEqual({ accessModes: ['ReadWriteMany'], resources: { requests: { storage: '20Gi' } }, storageClassName: 'nfs' });
    const e = errors(translate(input(manifest([moduleSpec('a', claim('20Gi')), moduleSpec('b', claim('10Gi'))]))));
    expect(codes(e)).toEqual(['IEO_K8S_EXTENSION']);
  });

  it('omits the retain annotation when settings do not retain volumes', () => {
    const r = value(one(moduleSpec('a', co({ HostConfig: { Binds: ['db:/db'] } })), settingsWith({ storage: { retainVolumesOnModuleRemoval: false } })));
    expect(r.volumeClaims[0]?.metadata?.annotations).not.toHaveProperty(annotationKeys.retain);
  });

  it('rejects unparseable binds', () => {
    const e = errors(one(moduleSpec('a', co({ HostConfig: { Binds: ['relative/path:/x', 'C:\\data:/data', 'v:/x:bogus'] } }))));
    expect(e.map((x) => x.path.split('createOptions')[1])).toEqual(['/HostConfig/Binds/0', '/HostConfig/Binds/1', '/HostConfig/Binds/2']);
  });
});

describe('registry credentials', () => {
  const creds = {
    acr: { name: 'acr', address: 'myacr.azurecr.io', username: 'myacr', password: 'fictional-pw-1' },
    hub: { name: 'hub', address: 'https://index.docker.io/v1/', username: 'me', passwordSecretRef: { name: 'hub-secret', key: 'password' } },
    local: { name: 'local', address: 'registry.local:5000', username: 'u', password: 'fictional-pw-3' },
  };

  it('-> dockerconfigjson Secrets, attached to modules whose image registry matches', () => {
    const m = manifest([
      moduleSpec('a', { image: 'myacr.azurecr.io/a:1' }),
      moduleSpec('b', { image: 'busybox:1.36' }),
      moduleSpec('c', { image: 'registry.local:5000/c:2' }),
    ], { registryCredentials: creds });
    const r = value(translate(input(m, defaultSettings, { registryPasswords: { hub: 'fictional-pw-2' } })));
    const secret = find<V1Secret>(r, 'Secret', 'registry-acr');
    expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
    const config = JSON.parse(Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8'));
    expect(config).toEqual({ auths: { 'myacr.azurecr.io': { username: 'myacr', password: 'fictional-pw-1', auth: Buffer.from('myacr:fictional-pw-1').toString('base64') } } });
    const hub = JSON.parse(Buffer.from(find<V1Secret>(r, 'Secret', 'registry-hub').data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8'));
    expect(Object.keys(hub.auths)).toEqual(['https://index.docker.io/v1/']);
    expect(podSpec(r, 'a').imagePullSecrets).toEqual([{ name: 'registry-acr' }]);
    expect(podSpec(r, 'b').imagePullSecrets).toEqual([{ name: 'registry-hub' }]);
    expect(podSpec(r, 'c').imagePullSecrets).toEqual([{ name: 'registry-local' }]);
    expect(podSpec(r, 'edgehub').imagePullSecrets).toBeUndefined();
  });

  it('an unresolved password is an error naming the credential, never the password', () => {
    const outcome = translate(input(manifest([], { registryCredentials: creds })));
    const e = errors(outcome);
    expect(codes(e)).toEqual(['IEO_REGISTRY_CREDENTIAL']);
    expect(e[0]?.path).toBe('/modulesContent/$edgeAgent/properties.desired/runtime/settings/registryCredentials/hub/password');
    expect(e[0]?.message).toContain('"hub"');
    expect(e[0]?.message).toContain('hub-secret');
    const text = JSON.stringify([outcome]);
    for (const pw of ['fictional-pw-1', 'fictional-pw-3']) expect(text).not.toContain(pw);
  });
});

describe('ServiceAccounts', () => {
  it('one per module, token not mounted unless k8s.automountServiceAccountToken', () => {
    const r = value(translate({ ...input(manifest([moduleSpec('a'), moduleSpec('b', co({ k8s: { automountServiceAccountToken: true } }))])), settings: settingsWith({ allowServiceAccountToken: true }) }));
    expect(find<V1ServiceAccount>(r, 'ServiceAccount', 'a').automountServiceAccountToken).toBe(false);
    expect(podSpec(r, 'a')).toMatchObject({ serviceAccountName: 'a', automountServiceAccountToken: false });
    expect(find<V1ServiceAccount>(r, 'ServiceAccount', 'b').automountServiceAccountToken).toBe(true);
    expect(podSpec(r, 'b').automountServiceAccountToken).toBe(true);
  });
});

describe('edgeHub and edgeAgent', () => {
  it('routes go into the edgehub-config ConfigMap; a route change changes the pod template hash', () => {
    const routes = { up: { name: 'up', route: 'FROM /messages/* INTO $upstream', priority: 0, timeToLiveSecs: 60 } };
    const r1 = value(translate(input(manifest([], { routes }))));
    const data = find(r1, 'ConfigMap', 'edgehub-config') as { data?: Record<string, string> };
    expect(JSON.parse(data.data?.['routes.json'] ?? '')).toEqual({
      schemaVersion: '1.1',
      routes: { up: { route: 'FROM /messages/* INTO $upstream', priority: 0, timeToLiveSecs: 60 } },
      storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
    });
    const hash = (r: typeof r1) => find<V1Deployment>(r, 'Deployment', 'edgehub').spec?.template.metadata?.annotations?.[annotationKeys.configHash];
    const r2 = value(translate(input(manifest([], { routes: { up: { ...routes.up, priority: 1 } } }))));
    expect(hash(r1)).toMatch(/^[0-9a-f]{64}$/);
    expect(hash(r2)).not.toBe(hash(r1));
    expect(container(r1, 'edgehub').volumeMounts).toContainEqual({ name: 'iotedge-operator-routes', mountPath: '/etc/iotedge-operator/edgehub', readOnly: true });
  });

  it('edgeAgent is reported, never deployed', () => {
    const r = value(translate(input(manifest([]))));
    expect(r.edgeAgent.image).toBe('mcr.microsoft.com/azureiotedge-agent:1.5');
    expect(r.objects.some((o) => o.metadata?.name?.includes('agent'))).toBe(false);
    expect(r.modules.map((m) => m.id)).toEqual(['edgeHub']);
  });

  it('edgeHub keeps its own createOptions (PortBindings publish the hub)', () => {
    const hub = edgeHubSpec(co({ HostConfig: { PortBindings: { '8883/tcp': [{ HostPort: '8883' }] } } }));
    const r = value(translate(input(manifest([], { edgeHub: hub }))));
    expect(service(r, 'edgehub-ports').spec?.ports).toEqual([{ name: 'tcp-8883', port: 8883, targetPort: 8883, protocol: 'TCP' }]);
  });
});

describe('NetworkPolicies', () => {
  it('default-deny for the deployment, peers on exposed ports, anyone on bound ports', () => {
    const r = value(translate(input(manifest([
      moduleSpec('api', co({ ExposedPorts: { '9000/tcp': {} }, HostConfig: { PortBindings: { '8080/tcp': [{ HostPort: '80' }] } } })),
      moduleSpec('worker'),
    ]))));
    expect(policy(r, 'dev1-deployment-default-deny').spec).toEqual({
      podSelector: { matchLabels: { [labelKeys.edgeDeployment]: 'dev1-deployment' } },
      policyTypes: ['Ingress'],
    });
    const peers = [{ podSelector: { matchLabels: { [labelKeys.edgeDeployment]: 'dev1-deployment' } } }];
    expect(policy(r, 'api').spec?.ingress).toEqual([
      { _from: peers, ports: [{ port: 9000, protocol: 'TCP' }, { port: 8080, protocol: 'TCP' }] },
      { ports: [{ port: 8080, protocol: 'TCP' }] },
    ]);
    expect(policy(r, 'edgehub').spec?.ingress?.[0]?.ports?.map((p) => p.port)).toEqual([5671, 8883, 443]);
    // A module that exposes nothing accepts nothing.
    expect(has(r, 'NetworkPolicy', 'worker')).toBe(false);
    // The wire form names the peers `from`.
    expect(JSON.stringify(toWire(policy(r, 'api')))).toContain('"from":');
  });

  it('are not emitted when disabled', () => {
    const r = value(translate(input(manifest([moduleSpec('api', co({ ExposedPorts: { '80/tcp': {} } }))]), settingsWith({ networkPolicies: false }))));
    expect(r.objects.some((o) => o.kind === 'NetworkPolicy')).toBe(false);
  });
});

describe('k8s extensions', () => {
  it('maps scheduling, resources, security contexts, volumes, strategy, probes and classes', () => {
    const toleration = { key: 'edge', operator: 'Exists', effect: 'NoSchedule' };
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } };
    const r = value(one(moduleSpec('m', co({
      HostConfig: { Memory: 1073741824 },
      k8s: {
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        tolerations: [toleration],
        affinity,
        resources: { limits: { memory: '512Mi', 'example.com/fpga': '1' }, requests: { cpu: '250m' } },
        securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false },
        podSecurityContext: { fsGroup: 2000 },
        volumes: [{ name: 'cfg', configMap: { name: 'settings' } }],
        volumeMounts: [{ name: 'cfg', mountPath: '/etc/app' }],
        strategy: { type: 'RollingUpdate' },
        probes: { readiness: { httpGet: { path: '/ready', port: 8080 } } },
        priorityClassName: 'edge-critical',
        runtimeClassName: 'kata',
      },
    }))));
    const spec = podSpec(r, 'm');
    expect(spec).toMatchObject({ nodeSelector: { 'kubernetes.io/os': 'linux' }, tolerations: [toleration], affinity, priorityClassName: 'edge-critical', runtimeClassName: 'kata', securityContext: { fsGroup: 2000 } });
    expect(spec.volumes?.[0]).toEqual({ name: 'cfg', configMap: { name: 'settings' } });
    const c = container(r, 'm');
    expect(c.resources).toEqual({ limits: { memory: '512Mi', 'example.com/fpga': '1' }, requests: { cpu: '250m' } });
    expect(c.securityContext).toEqual({ runAsNonRoot: true, allowPrivilegeEscalation: false });
    expect(c.volumeMounts?.[0]).toEqual({ name: 'cfg', mountPath: '/etc/app' });
    expect(c.readinessProbe).toEqual({ httpGet: { path: '/ready', port: 8080 } });
    expect(find<V1Deployment>(r, 'Deployment', 'm').spec?.strategy).toEqual({ type: 'RollingUpdate' });
  });

  it('reports malformed k8s blocks with IEO_K8S_EXTENSION and unknown keys as warnings', () => {
    const e = errors(one(moduleSpec('m', co({ k8s: { nodeSelector: ['x'], serviceOptions: { type: 'Ingress' }, probes: { liveness: { periodSeconds: 3 } }, volumeMounts: [{ name: 'nope', mountPath: '/x' }] } }))));
    expect(e.map((x) => [x.code, x.path.split('/k8s')[1]])).toEqual([
      ['IEO_K8S_EXTENSION', '/nodeSelector'],
      ['IEO_K8S_EXTENSION', '/serviceOptions/type'],
      ['IEO_K8S_EXTENSION', '/probes/liveness'],
      ['IEO_K8S_EXTENSION', '/volumeMounts/0/name'],
    ]);
    const inner = errors(one(moduleSpec('m', co({ k8s: { securityContext: { capabilities: { add: 'NET_ADMIN' } }, resources: { limits: 'lots' }, volumes: [{ name: 'h', hostPath: {} }] } }))));
    expect(inner.map((x) => x.path.split('/k8s')[1])).toEqual(['/securityContext', '/resources', '/volumes']);
    expect(container(value(one(moduleSpec('m', co({ k8s: { resources: { limits: { cpu: 2 } } } })))), 'm').resources).toEqual({ limits: { cpu: '2' } });
    const moved = one(moduleSpec('m', co({ k8s: { securityContext: { runAsUser: 1000, fsGroup: 2000, bogus: 1 }, podSecurityContext: { runAsGroup: 3 } } })));
    expect(codes(moved.warnings)).toEqual(['IEO_W_K8S_FIELD_MOVED', 'IEO_W_UNSUPPORTED_CREATE_OPTION']);
    expect(container(value(moved), 'm').securityContext).toEqual({ runAsUser: 1000 });
    expect(podSpec(value(moved), 'm').securityContext).toEqual({ fsGroup: 2000, runAsGroup: 3, seccompProfile: { type: 'RuntimeDefault' } });
    const outcome = one(moduleSpec('m', co({ k8s: { hostAliases: [] } })));
    expect(codes(outcome.warnings)).toEqual(['IEO_W_UNSUPPORTED_CREATE_OPTION']);
  });
});

describe('determinism', () => {
  it('gives byte-identical output for the same input, with sorted keys', () => {
    const build = () => translate(input(manifest([
      moduleSpec('b', co({ HostConfig: { Binds: ['v:/v'] }, ExposedPorts: { '1/tcp': {} } })),
      moduleSpec('a', { env: { Y: '1', X: '2' } }),
    ])));
    const first = JSON.stringify(build());
    expect(JSON.stringify(build())).toBe(first);
    const r = value(build());
    expect(r.objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual([
      'ServiceAccount/a', 'ServiceAccount/b', 'ServiceAccount/edgehub', 'ConfigMap/edgehub-config', 'Service/b', 'Service/edgehub',
      'NetworkPolicy/b', 'NetworkPolicy/dev1-deployment-default-deny', 'NetworkPolicy/edgehub', 'Deployment/a', 'Deployment/b', 'Deployment/edgehub',
    ]);
    for (const o of r.objects) expect(Object.keys(o)).toEqual([...Object.keys(o)].sort());
  });
});
