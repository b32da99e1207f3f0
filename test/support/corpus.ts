// A generated corpus of deployment manifests shaped like real ones, and a check that the API server accepts
// every object their translation produces. The grammar draws from the createOptions that public IoT Edge
// manifests use (sensors, OPC and Modbus gateways, blob storage, cameras, databases): string and chunked
// createOptions, scalars written as strings, host binds, device nodes bound and mapped at one path,
// anonymous volumes, tmpfs, port bindings written every way, logging and restart settings edgeAgent passes
// to Docker, the legacy and az CLI wrappers, and $edgeHub schemas 1.0 to 1.3. Every manifest is one Docker
// would run: no two binds at one path, no sysctls in the host's network namespace.
// Used by test/integration/corpus.test.ts (a few hundred cases) and `npm run bench -- corpus` (thousands).
import fc from 'fast-check';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseDeploymentManifest } from '../../src/manifest/parse.ts';
import { settingsWith, toWire, translate } from '../../src/translate/index.ts';
import { KubeApiError, type KubeClient } from '../../src/controller/kube-client.ts';
import { collectionPath, kindOf, objectPath } from '../../src/controller/resources.ts';

type Json = Record<string, unknown>;

const moduleIds = ['SimulatedTemperatureSensor', 'OPCPublisher', 'opcua-server', 'modbus', 'azureblobstorageoniotedge', 'AzureSQLEdge',
  'camera_capture', 'yolo.v3', 'NodeRed', 'grafana', 'influxdb', 'Filter', 'mqtt-bridge', 'Temp.Sensor_01', 'lvaEdge', 'plc-adapter'];
const images = ['mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5', 'mcr.microsoft.com/iotedge/opc-publisher:2.9',
  'mcr.microsoft.com/azure-blob-storage:latest', 'mcr.microsoft.com/azure-sql-edge:latest', 'example.azurecr.io/camera-capture:1.2-arm32v7',
  'nodered/node-red:3.1', 'grafana/grafana:10.2.0', 'influxdb:1.8', 'registry.local:5000/plc-adapter:0.3.1'];

const bool = fc.constantFrom<unknown>(true, false, 'true', 'false', 'True');
const intOrString = (values: number[]) => fc.constantFrom(...values).chain((n) => fc.constantFrom<unknown>(n, String(n)));

const envEntry = fc.constantFrom('RuntimeLogLevel=debug', 'LOCAL_STORAGE_ACCOUNT_NAME=localaccount', 'LOCAL_STORAGE_ACCOUNT_KEY=c2VjcmV0a2V5Zm9ydGVzdA==',
  'MSSQL_SA_PASSWORD=Str0ng!Passw0rd', 'ACCEPT_EULA=Y', 'PATH=/usr/local/bin:$PATH', 'GREETING=$(whoami) says hi', 'TZ=Europe/Berlin',
  'OPC_ENDPOINT=opc.tcp://plc:4840', 'EMPTY=', 'ModbusSlaveIp=192.168.0.10');

const exposedPort = fc.constantFrom('80/tcp', '1880/tcp', '1883/tcp', '8883/tcp', '502/tcp', '4840/tcp', '11002/tcp', '3000/tcp', '8086', '53/udp', '1433/tcp');
/** A binding written the ways manifests write it; the host port follows the container port, as it does in practice. */
const bindingStyle = fc.constantFrom('string', 'number', 'hostIp', 'empty', 'none', 'offset');
function binding(portKey: string, style: string): unknown {
  const port = Number(portKey.split('/')[0]);
  switch (style) {
    case 'string': return [{ HostPort: String(port) }];
    case 'number': return [{ HostPort: port }];
    case 'hostIp': return [{ HostIp: '0.0.0.0', HostPort: String(port) }];
    case 'empty': return [{ HostPort: '' }];
    case 'none': return [{}];
    default: return [{ HostPort: String(port + 10000) }];
  }
}
const portBindings = fc.dictionary(exposedPort, bindingStyle, { maxKeys: 3 }).map((d) => Object.fromEntries(Object.entries(d).map(([k, style]) => [k, binding(k, style)])));

const bindSpec = fc.constantFrom('/dev/video0:/dev/video0', '/etc/localtime:/etc/localtime:ro', '/var/run/docker.sock:/var/run/docker.sock',
  '/srv/containerdata:/blobroot', 'blobvolume:/blobroot2', 'edgehubdata:/tmp/edgeHub', '/home/pi/config:/config:ro', '/tmp:/tmp',
  '/data/:/data/', 'sqlvolume:/var/opt/mssql', '/dev/ttyUSB0:/dev/ttyUSB0', '/opt/models:/models:ro,z', '/var/lib/plc:/state:rshared');
const mount = fc.oneof(
  fc.record({ Type: fc.constant('volume'), Source: fc.constantFrom('influxdata', 'grafana-storage', 'nodered'), Target: fc.constantFrom('/var/lib/influxdb', '/var/lib/grafana', '/data'), ReadOnly: bool }, { requiredKeys: ['Type', 'Source', 'Target'] }),
  fc.record({ Type: fc.constant('volume'), Target: fc.constantFrom('/scratch', '/cache') }),
  fc.record({ Type: fc.constant('bind'), Source: fc.constantFrom('/var/log', '/mnt/usb'), Target: fc.constantFrom('/hostlog', '/media'), ReadOnly: bool }, { requiredKeys: ['Type', 'Source', 'Target'] }),
  fc.record({ Type: fc.constant('tmpfs'), Target: fc.constantFrom('/run', '/var/tmp'), TmpfsOptions: fc.record({ SizeBytes: intOrString([67108864, 16777216]) }) }, { requiredKeys: ['Type', 'Target'] }),
);
const device = fc.constantFrom<Json>(
  { PathOnHost: '/dev/video0', PathInContainer: '/dev/video0', CgroupPermissions: 'rwm' },
  { PathOnHost: '/dev/ttyUSB0', PathInContainer: '/dev/ttyUSB0', CgroupPermissions: 'rwm' },
  { PathOnHost: '/dev/ttyS0', PathInContainer: '/dev/ttyUSB1', CgroupPermissions: 'rw' },
  { PathOnHost: '/dev/i2c-1', PathInContainer: '/dev/i2c-1', CgroupPermissions: 'rwm' },
  { PathOnHost: '/dev/gpiomem' },
);

const hostConfig = fc.record({
  PortBindings: portBindings,
  Binds: fc.uniqueArray(bindSpec, { maxLength: 4, selector: (b) => b.split(':')[1]!.replace(/\/+$/, '') }),
  Mounts: fc.array(mount, { maxLength: 2 }),
  Devices: fc.uniqueArray(device, { maxLength: 2, selector: (d) => String(d.PathInContainer ?? d.PathOnHost) }),
  Privileged: bool,
  Memory: intOrString([268435456, 536870912, 1073741824, 2147483648]),
  MemoryReservation: intOrString([134217728]),
  MemorySwap: fc.constantFrom<unknown>(-1, '-1'),
  NanoCpus: intOrString([500000000, 1000000000, 2000000000]),
  CpuShares: intOrString([512, 1024]),
  ShmSize: intOrString([67108864, 268435456]),
  NetworkMode: fc.constantFrom('host', 'azure-iot-edge', 'bridge', 'default'),
  CapAdd: fc.constantFrom(['NET_ADMIN'], ['SYS_ADMIN', 'SYS_RAWIO'], ['CAP_SYS_TIME']),
  CapDrop: fc.constantFrom(['ALL'], ['NET_RAW']),
  ReadonlyRootfs: bool,
  LogConfig: fc.constant({ Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } }),
  RestartPolicy: fc.constantFrom({ Name: 'always' }, { Name: 'on-failure', MaximumRetryCount: '5' }),
  ExtraHosts: fc.constantFrom(['plc:192.168.1.10'], ['opcserver:10.0.0.5', 'historian:10.0.0.6'], ['localhost.localdomain:127.0.0.1']),
  Dns: fc.constantFrom(['8.8.8.8'], ['10.0.0.2', '10.0.0.3']),
  Tmpfs: fc.constantFrom({ '/run': 'rw,noexec,nosuid,size=65536k' }, { '/tmp/cache': '' }),
  Sysctls: fc.constantFrom({ 'net.ipv4.ip_forward': '1' }, { 'net.core.somaxconn': '1024' }),
  IpcMode: fc.constantFrom('host', 'private', 'shareable'),
}, { requiredKeys: [] });

const createOptions = fc.record({
  Env: fc.uniqueArray(envEntry, { maxLength: 5, selector: (e) => e.split('=')[0] }),
  Cmd: fc.oneof(fc.constant('--verbose'), fc.constantFrom(['--pn=50000', '--autoaccept'], ['-c', '/config/settings.json'])),
  Entrypoint: fc.constantFrom(['/bin/sh', '-c'], ['dotnet', 'Module.dll']),
  WorkingDir: fc.constantFrom('/app', ''),
  User: fc.constantFrom('1000:1000', '0', 'root', ''),
  Hostname: fc.constantFrom('publisher', 'OPCPublisher', 'sql-edge', ''),
  Labels: fc.constantFrom<Json>({ 'org.opencontainers.image.version': '1.0' }, { 'com.example.vendor': 'Contoso', $edgeAgent: 'managed' }),
  ExposedPorts: fc.dictionary(exposedPort, fc.constant({}), { maxKeys: 3 }),
  Volumes: fc.constantFrom<Json>({ '/var/lib/data': {} }, { '/logs': {}, '/cache': {} }),
  Healthcheck: fc.record({
    Test: fc.constantFrom(['CMD', 'curl', '-f', 'http://localhost/'], ['CMD-SHELL', 'pgrep dotnet || exit 1'], ['NONE']),
    Interval: intOrString([30000000000, 10000000000]),
    Timeout: intOrString([5000000000]),
    Retries: intOrString([3, 5]),
    StartPeriod: intOrString([0, 60000000000]),
  }, { requiredKeys: ['Test'] }),
  StopTimeout: intOrString([10, 30]),
  NetworkingConfig: fc.constant({ EndpointsConfig: { 'azure-iot-edge': { Aliases: ['gateway'] } } }),
  Tty: bool,
  HostConfig: hostConfig,
}, { requiredKeys: [] });

/** What Docker itself would refuse is left out: a path mounted twice, sysctls or IPC settings in the host's namespaces. */
function dockerRunnable(options: Json): Json {
  const hc = { ...((options.HostConfig as Json | undefined) ?? {}) };
  const clean = (p: string) => p.replace(/\/+$/, '') || '/';
  const taken = new Set((hc.Binds as string[] | undefined ?? []).map((b) => clean(b.split(':')[1]!)));
  const claim = (path: string): boolean => {
    if (taken.has(clean(path))) return false;
    taken.add(clean(path));
    return true;
  };
  if (Array.isArray(hc.Mounts)) hc.Mounts = (hc.Mounts as Json[]).filter((m) => claim(m.Target as string));
  if (hc.Tmpfs && typeof hc.Tmpfs === 'object') hc.Tmpfs = Object.fromEntries(Object.entries(hc.Tmpfs as Json).filter(([t]) => claim(t)));
  if (hc.NetworkMode === 'host') delete hc.Sysctls;
  if (hc.NanoCpus !== undefined) delete hc.CpuQuota;
  return { ...options, ...(options.HostConfig !== undefined ? { HostConfig: hc } : {}) };
}

/** createOptions as IoT Hub stores them: a string, split into createOptions01… beyond 512 characters; sometimes an object. */
function settingsFor(image: string, options: Json, asObject: boolean): Json {
  if (asObject) return { image, createOptions: options };
  const text = JSON.stringify(options);
  const chunks = text.match(/[\s\S]{1,512}/g) ?? [''];
  return Object.fromEntries([['image', image], ...chunks.map((c, i) => [i === 0 ? 'createOptions' : `createOptions${String(i).padStart(2, '0')}`, c])]);
}

const userModule = fc.record({
  id: fc.constantFrom(...moduleIds),
  image: fc.constantFrom(...images),
  options: createOptions.map(dockerRunnable),
  asObject: fc.boolean(),
  restartPolicy: fc.constantFrom('always', 'always', 'on-failure', 'on-unhealthy', 'never'),
  status: fc.constantFrom('running', 'running', 'stopped'),
  startupOrder: fc.option(fc.nat({ max: 20 }), { nil: undefined }),
  imagePullPolicy: fc.option(fc.constantFrom('on-create', 'never'), { nil: undefined }),
  env: fc.option(fc.constantFrom<Json>({ LogLevel: { value: 'info' } }, { Retries: { value: 3 } }), { nil: undefined }),
});

export const realShapedManifest: fc.Arbitrary<Json> = fc.record({
  modules: fc.uniqueArray(userModule, { minLength: 1, maxLength: 4, selector: (m) => m.id.toLowerCase().replace(/[^a-z0-9]+/g, '-') }),
  hubSchema: fc.constantFrom('1.0', '1.1', '1.1', '1.2', '1.3'),
  wrapper: fc.constantFrom('modulesContent', 'modulesContent', 'moduleContent', 'content'),
  hubOptions: fc.constantFrom<Json>({}, { HostConfig: { PortBindings: { '5671/tcp': [{ HostPort: '5671' }], '8883/tcp': [{ HostPort: '8883' }], '443/tcp': [{ HostPort: '443' }] } } }),
}).map(({ modules, hubSchema, wrapper, hubOptions }) => {
  const routes = Object.fromEntries(modules.map((m, i) => {
    const text = `FROM /messages/modules/${m.id}/outputs/* INTO $upstream`;
    return [`route${i}`, hubSchema === '1.0' ? text : { route: text, priority: i % 10 }];
  }));
  const hub: Json = { schemaVersion: hubSchema, routes, storeAndForwardConfiguration: { timeToLiveSecs: 7200 } };
  if (hubSchema >= '1.2') hub.mqttBroker = { authorizations: [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] }] };
  const agent = {
    schemaVersion: hubSchema === '1.0' ? '1.0' : '1.1',
    runtime: { type: 'docker', settings: { minDockerVersion: 'v1.25', loggingOptions: '', registryCredentials: {} } },
    systemModules: {
      edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5', createOptions: '{}' } },
      edgeHub: { type: 'docker', status: 'running', restartPolicy: 'always', ...(hubSchema === '1.0' ? {} : { startupOrder: 0 }), settings: settingsFor('mcr.microsoft.com/azureiotedge-hub:1.5', hubOptions, false) },
    },
    modules: Object.fromEntries(modules.map((m) => [m.id, {
      version: '1.0', type: 'docker', status: m.status, restartPolicy: m.restartPolicy,
      ...(m.startupOrder !== undefined && hubSchema !== '1.0' ? { startupOrder: m.startupOrder } : {}),
      ...(m.imagePullPolicy ? { imagePullPolicy: m.imagePullPolicy } : {}),
      ...(m.env ? { env: m.env } : {}),
      settings: settingsFor(m.image, m.options, m.asObject),
    }])),
  };
  const content = { $edgeAgent: { 'properties.desired': agent }, $edgeHub: { 'properties.desired': hub } };
  return wrapper === 'content' ? { content: { modulesContent: content } } : { [wrapper]: content };
});

/** Every security policy allowed: the corpus measures translation, not policy. */
export const corpusSettings = settingsWith({
  allowPrivileged: true, allowHostNetwork: true, allowHostPid: true, allowHostIpc: true,
  allowHostPath: true, allowAddedCapabilities: true, allowDevices: true, allowUnsafeSysctls: true, podSecurity: 'privileged',
});

export interface CorpusFigures {
  manifests: number;
  /** Manifests that parsed and translated. */
  translated: number;
  /** Refusals at parse or translate time, by code. */
  notTranslated: Record<string, number>;
  objects: number;
  /** Objects the API server's dry-run refused, and why (the first few). */
  refused: number;
  refusals: string[];
}

/** The wire-form objects the operator would apply for one manifest in `namespace`, or the codes that stopped it. */
export function corpusObjects(document: Json, namespace: string): { objects: KubernetesObject[] } | { codes: string[] } {
  const parsed = parseDeploymentManifest(document);
  if (!parsed.ok) return { codes: parsed.errors.map((e) => e.code) };
  const translated = translate({ manifest: parsed.value, namespace, deviceId: namespace, ownerName: 'device', hubHostName: '', settings: corpusSettings });
  if (!translated.ok) return { codes: translated.errors.map((e) => e.code) };
  return { objects: [...translated.value.volumeClaims, ...translated.value.objects].map((o) => toWire(o) as KubernetesObject) };
}

/**
 * Sends every object of every manifest to the API server as the operator would (server-side apply), with
 * dryRun=All. ServiceAccounts are applied for real first: a bare Pod's admission looks its account up.
 */
export async function dryRunCorpus(client: KubeClient, namespace: string, documents: readonly Json[], concurrency = 6): Promise<CorpusFigures> {
  const figures: CorpusFigures = { manifests: documents.length, translated: 0, notTranslated: {}, objects: 0, refused: 0, refusals: [] };
  const accounts = new Set<string>();
  const work: KubernetesObject[] = [];
  for (const document of documents) {
    const out = corpusObjects(document, namespace);
    if ('codes' in out) {
      for (const code of new Set(out.codes)) figures.notTranslated[code] = (figures.notTranslated[code] ?? 0) + 1;
      continue;
    }
    figures.translated += 1;
    for (const object of out.objects) {
      if (object.kind === 'ServiceAccount') accounts.add(object.metadata!.name!);
      else work.push(object);
    }
  }
  for (const name of accounts) {
    await client.request('PATCH', objectPath(kindOf({ apiVersion: 'v1', kind: 'ServiceAccount' }), namespace, name), { fieldManager: 'corpus', force: 'true' }, {
      body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace }, automountServiceAccountToken: false },
      contentType: 'application/apply-patch+yaml',
    });
  }
  figures.objects = work.length + accounts.size;
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const object = work[next++]!;
      try {
        await client.request('PATCH', objectPath(kindOf(object), namespace, object.metadata!.name!), { dryRun: 'All', fieldManager: 'corpus', force: 'true' }, {
          body: object,
          contentType: 'application/apply-patch+yaml',
        });
      } catch (error) {
        if (!(error instanceof KubeApiError)) throw error;
        figures.refused += 1;
        if (figures.refusals.length < 10) figures.refusals.push(`${object.kind}/${object.metadata?.name}: ${error.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return figures;
}

export { collectionPath };
