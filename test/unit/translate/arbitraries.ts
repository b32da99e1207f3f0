// fast-check generators of deployment manifests: `wellFormed` ones with createOptions Docker would accept
// (the dry-run integration test sends their translation to the API server), and `chaotic` ones whose
// createOptions hold arbitrary JSON in known and unknown fields.
import fc from 'fast-check';
import type { DeploymentManifest, ModuleSpec, RegistryCredential } from '../../../src/manifest/model.ts';
import { settingsWith, type OperatorSettings } from '../../../src/translate/index.ts';

// IoT Hub module ids: letters, digits and -:.+%_#*?!(),=@;$' up to 128 characters.
const moduleId = fc.stringMatching(/^[A-Za-z0-9][-A-Za-z0-9:.+%_#*?!(),=@;$']{0,40}$/).filter((id) => !id.startsWith('$'));
const port = fc.integer({ min: 1, max: 65535 });
const protocol = fc.constantFrom('tcp', 'udp', 'sctp');
const portKey = fc.tuple(port, protocol).map(([p, proto]) => `${p}/${proto}`);
const volumeName = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/);
const absPath = fc.array(fc.stringMatching(/^[a-z0-9_]{1,8}$/), { minLength: 1, maxLength: 3 }).map((parts) => `/${parts.join('/')}`);
const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/);
const labelKey = fc.stringMatching(/^[a-z]([a-z0-9.-]{0,20}[a-z0-9])?$/);
const nanos = fc.integer({ min: 1, max: 120 }).map((s) => s * 1e9);

const wellFormedHostConfig = fc.record(
  {
    PortBindings: fc.dictionary(portKey, fc.array(fc.record({ HostPort: port.map(String) }), { minLength: 1, maxLength: 2 }), { maxKeys: 3 }),
    Binds: fc.array(fc.tuple(fc.oneof(volumeName, absPath), absPath, fc.constantFrom('', ':ro', ':rw')).map(([s, t, o]) => `${s}:${t}${o}`), { maxLength: 3 }),
    Mounts: fc.array(
      fc.oneof(
        fc.record({ Type: fc.constant('volume'), Source: volumeName, Target: absPath, ReadOnly: fc.boolean() }),
        fc.record({ Type: fc.constant('tmpfs'), Target: absPath, TmpfsOptions: fc.record({ SizeBytes: fc.integer({ min: 1, max: 1 << 30 }) }) }),
      ),
      { maxLength: 2 },
    ),
    Privileged: fc.boolean(),
    CapAdd: fc.array(fc.constantFrom('NET_ADMIN', 'CAP_SYS_TIME', 'SYS_RAWIO'), { maxLength: 2 }),
    CapDrop: fc.array(fc.constantFrom('NET_RAW', 'MKNOD', 'ALL'), { maxLength: 2 }),
    ReadonlyRootfs: fc.boolean(),
    NetworkMode: fc.constantFrom('host', 'bridge', 'azure-iot-edge', 'default'),
    IpcMode: fc.constantFrom('host', 'private', ''),
    PidMode: fc.constantFrom('host', ''),
    Memory: fc.integer({ min: 4, max: 4096 }).map((mi) => mi * 1024 * 1024),
    NanoCpus: fc.integer({ min: 1, max: 8000 }).map((m) => m * 1e6),
    Devices: fc.array(fc.record({ PathOnHost: absPath.map((p) => `/dev${p}`), PathInContainer: absPath.map((p) => `/dev${p}`), CgroupPermissions: fc.constant('rwm') }), { maxLength: 2 }),
    DeviceRequests: fc.array(fc.record({ Driver: fc.constant('nvidia'), Count: fc.integer({ min: 1, max: 4 }), Capabilities: fc.constant([['gpu']]) }), { maxLength: 1 }),
    ShmSize: fc.integer({ min: 1, max: 1024 }).map((mi) => mi * 1024 * 1024),
    ExtraHosts: fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), fc.ipV4()).map(([h, ip]) => `${h}:${ip}`), { maxLength: 3 }),
    Dns: fc.array(fc.ipV4(), { maxLength: 2 }),
    DnsSearch: fc.array(fc.constantFrom('plant.local', 'example.org'), { maxLength: 2 }),
    Sysctls: fc.dictionary(fc.constantFrom('net.ipv4.ip_local_port_range', 'net.ipv4.tcp_syncookies', 'kernel.shm_rmid_forced'), fc.constantFrom('1', '0')),
    Tmpfs: fc.dictionary(absPath, fc.constantFrom('', 'rw,size=64m', 'size=1g'), { maxKeys: 2 }),
  },
  { requiredKeys: [] },
);

export const wellFormedCreateOptions = fc.record(
  {
    Env: fc.array(fc.tuple(envName, fc.string({ maxLength: 12 })).map(([k, v]) => `${k}=${v}`), { maxLength: 4 }),
    Cmd: fc.array(fc.string({ minLength: 1, maxLength: 10 }), { maxLength: 3 }),
    Entrypoint: fc.array(fc.string({ minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 2 }),
    WorkingDir: absPath,
    User: fc.oneof(fc.nat({ max: 65535 }).map(String), fc.tuple(fc.nat({ max: 65535 }), fc.nat({ max: 65535 })).map(([u, g]) => `${u}:${g}`), fc.constant('app')),
    Labels: fc.dictionary(labelKey, fc.string({ maxLength: 10 }), { maxKeys: 3 }),
    ExposedPorts: fc.dictionary(portKey, fc.constant({}), { maxKeys: 3 }),
    Healthcheck: fc.record({ Test: fc.constantFrom(['CMD', 'true'], ['CMD-SHELL', 'test -f /ok'], ['NONE']), Interval: nanos, Timeout: nanos, Retries: fc.integer({ min: 0, max: 5 }), StartPeriod: fc.constantFrom(0, 30e9) }),
    StopTimeout: fc.integer({ min: 0, max: 300 }),
    HostConfig: wellFormedHostConfig,
    StopSignal: fc.constant('SIGTERM'),
  },
  { requiredKeys: [] },
);

const chaoticCreateOptions = fc.oneof(
  wellFormedCreateOptions.map((o) => o as Record<string, unknown>),
  fc.dictionary(
    fc.constantFrom('Env', 'Cmd', 'Entrypoint', 'User', 'Labels', 'ExposedPorts', 'Healthcheck', 'HostConfig', 'k8s', 'StopTimeout', 'Hostname', 'Image', 'Weird'),
    fc.anything({ maxDepth: 3 }),
  ),
  fc.record({
    HostConfig: fc.dictionary(
      fc.constantFrom('PortBindings', 'Binds', 'Mounts', 'Devices', 'DeviceRequests', 'Memory', 'NanoCpus', 'CpuQuota', 'CpuPeriod', 'ExtraHosts', 'Sysctls', 'Tmpfs', 'Dns', 'DnsOptions', 'ShmSize', 'NetworkMode', 'CapAdd', 'Foo'),
      fc.anything({ maxDepth: 3 }),
    ),
    k8s: fc.oneof(
      fc.record({
        securityContext: fc.record({ privileged: fc.anything({ maxDepth: 1 }), capabilities: fc.record({ add: fc.anything({ maxDepth: 1 }) }) }, { requiredKeys: [] }),
        resources: fc.record({ limits: fc.anything({ maxDepth: 2 }), requests: fc.dictionary(fc.string(), fc.anything({ maxDepth: 1 })) }, { requiredKeys: [] }),
        volumes: fc.array(fc.record({ name: fc.string(), hostPath: fc.anything({ maxDepth: 2 }) }, { requiredKeys: ['name'] }), { maxLength: 2 }),
        probes: fc.dictionary(fc.constantFrom('liveness', 'readiness', 'startup', 'other'), fc.anything({ maxDepth: 2 })),
        volumeClaims: fc.dictionary(fc.string(), fc.anything({ maxDepth: 2 })),
        serviceOptions: fc.anything({ maxDepth: 2 }),
      }, { requiredKeys: [] }),
      fc.dictionary(
      fc.constantFrom('nodeSelector', 'tolerations', 'volumes', 'volumeMounts', 'serviceOptions', 'probes', 'volumeClaims', 'strategy', 'securityContext', 'resources', 'automountServiceAccountToken', 'other'),
      fc.anything({ maxDepth: 3 }),
    )),
  }),
);

function moduleArbitrary(createOptions: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<ModuleSpec> {
  return fc.record({
    id: moduleId,
    system: fc.constant(false),
    version: fc.constant('1.0'),
    type: fc.constant('docker' as const),
    status: fc.constantFrom('running' as const, 'stopped' as const),
    restartPolicy: fc.constantFrom('never' as const, 'on-failure' as const, 'on-unhealthy' as const, 'always' as const),
    startupOrder: fc.oneof(fc.nat({ max: 100 }), fc.constant(4294967295)),
    imagePullPolicy: fc.constantFrom('on-create' as const, 'never' as const),
    image: fc.constantFrom('example.azurecr.io/app:1.0', 'busybox:1.36', 'registry.local:5000/tool:2', 'mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5'),
    createOptions,
    env: fc.dictionary(envName, fc.string({ maxLength: 12 }), { maxKeys: 3 }),
  });
}

function manifestArbitrary(createOptions: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<DeploymentManifest> {
  return fc
    .record({
      modules: fc.uniqueArray(moduleArbitrary(createOptions), { maxLength: 5, selector: (m) => m.id }),
      withHub: fc.boolean(),
      hubOptions: createOptions,
      credentials: fc.boolean(),
    })
    .map(({ modules, withHub, hubOptions, credentials }) => ({
      agent: {
        schemaVersion: '1.1' as const,
        runtime: {
          type: 'docker' as const,
          settings: {
            registryCredentials: (credentials
              ? { acr: { name: 'acr', address: 'example.azurecr.io', username: 'example', password: 'fictional-password' } }
              : {}) as Record<string, RegistryCredential>,
          },
        },
        systemModules: {
          edgeAgent: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5', createOptions: {}, env: {} },
          ...(withHub
            ? {
                edgeHub: {
                  id: 'edgeHub', system: true, type: 'docker' as const, status: 'running' as const, restartPolicy: 'always' as const, startupOrder: 0,
                  imagePullPolicy: 'on-create' as const, image: 'mcr.microsoft.com/azureiotedge-hub:1.5', createOptions: hubOptions, env: {},
                },
              }
            : {}),
        },
        modules: Object.fromEntries(modules.map((m) => [m.id, m])),
      },
      hub: {
        schemaVersion: '1.1' as const,
        routes: { up: { name: 'up', route: 'FROM /messages/* INTO $upstream', priority: 9 } },
        storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
      },
    }));
}

export const wellFormedManifest = manifestArbitrary(wellFormedCreateOptions.map((o) => o as Record<string, unknown>));
export const chaoticManifest = manifestArbitrary(chaoticCreateOptions);

export const settingsArbitrary: fc.Arbitrary<OperatorSettings> = fc
  .record({
    allowAll: fc.boolean(),
    portBindingServiceType: fc.constantFrom('LoadBalancer' as const, 'NodePort' as const, 'ClusterIP' as const),
    networkPolicies: fc.boolean(),
    retain: fc.boolean(),
  })
  .map(({ allowAll, portBindingServiceType, networkPolicies, retain }) =>
    settingsWith({
      allowPrivileged: allowAll, allowHostNetwork: allowAll, allowHostPid: allowAll, allowHostIpc: allowAll,
      allowHostPath: allowAll, allowAddedCapabilities: allowAll, allowDevices: allowAll,
      portBindingServiceType, networkPolicies, storage: { retainVolumesOnModuleRemoval: retain },
    }),
  );
