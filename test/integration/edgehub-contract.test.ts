// The stock edgeHub's runtime contract, checked on what the real API server holds after the operator
// (as its least-privilege ServiceAccount) applied a kubectl-mode EdgeDeployment: the edgeHub pod against
// every rule of the reference, the device identity and trust Secrets, and a TLS test in which the real
// azure-iot-device ModuleClient.fromEnvironment(), given exactly a module pod's env and files, connects
// with verification on to a server presenting the operator's edgeHub certificate.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import dns from 'node:dns';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Deployment, V1Secret, V1Service } from '@kubernetes/client-node';
import { Aedes, type AuthenticateError } from 'aedes';
import device from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import { describeCertificate, issueDeviceCa, issueServerCertificate } from '../../src/certs/index.ts';
import { deriveModuleKey, parseSas, resourceCovers, verifySas } from '../../src/runtime/sas.ts';
import { createTestNamespace, deleteTestNamespace, eventually, testCluster } from '../support/cluster.ts';
import { envValue, fileContent, stockEdgeHubViolations } from '../support/edgehub-contract.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { sampleEdgeDeployment, sampleModule } from '../support/samples.ts';

const cluster = testCluster();
let ns: string;
let operator: RunningOperator;
const routes = {
  sensorToFilter: { route: 'FROM /messages/modules/sensor/outputs/* INTO BrokeredEndpoint("/modules/filter/inputs/input1")' },
  filterToUpstream: { route: 'FROM /messages/modules/filter/outputs/* INTO $upstream', priority: 1 },
};

interface Applied {
  edgeHub: V1Deployment;
  service: V1Service;
  modules: V1Deployment[];
  secrets: Map<string, V1Secret>;
}

async function applied(): Promise<Applied> {
  return eventually('edgeHub, its Service, both modules and their identities applied', async () => {
    const deployments = (await cluster.apps.listNamespacedDeployment({ namespace: ns })).items;
    const secrets = new Map((await cluster.core.listNamespacedSecret({ namespace: ns })).items.map((s) => [s.metadata!.name!, s]));
    const edgeHub = deployments.find((d) => d.metadata?.name === 'edgehub');
    const modules = deployments.filter((d) => d.metadata?.name !== 'edgehub');
    const service = await cluster.core.readNamespacedService({ name: 'edgehub', namespace: ns }).catch(() => undefined);
    const ready = edgeHub && service && modules.length === 2 && ['device-device-identity', 'device-device-ca', 'device-edgehub-server', 'edgehub-iothub', 'sensor-iothub', 'filter-iothub'].every((n) => secrets.has(n));
    return ready ? { edgeHub, service, modules, secrets } : undefined;
  });
}

beforeAll(async () => {
  await ensureCrd(cluster);
  ns = await createTestNamespace(cluster, 'contract');
  operator = await startTestOperator(await operatorKubeConfig(cluster, ns), [ns], { edgeHub: 'stock' });
  await cluster.objects.create(sampleEdgeDeployment(ns, {
    sensor: sampleModule('example.azurecr.io/sensor:1.0', { startupOrder: 1 }),
    filter: sampleModule('example.azurecr.io/filter:1.0', { startupOrder: 1 }),
  }, { routes }) as never);
});

afterAll(async () => {
  await operator?.stop();
  await deleteTestNamespace(cluster, ns);
});

describe('the applied stock edgeHub (kubectl mode)', () => {
  it('meets every rule of the contract', async () => {
    const a = await applied();
    expect(stockEdgeHubViolations({
      namespace: ns, edgeHub: a.edgeHub, edgeHubService: a.service, modules: a.modules, secrets: a.secrets,
      configSource: 'local', routes: Object.values(routes).map((r) => r.route), serviceName: 'edgehub',
    })).toEqual([]);
  });

  it('keeps the device identity and trust in Secrets the EdgeDeployment owns, with module keys derived from the root key', async () => {
    const a = await applied();
    const ed = await cluster.objects.read({ apiVersion: 'iotedge-operator.io/v1alpha1', kind: 'EdgeDeployment', metadata: { name: 'device', namespace: ns } });
    for (const name of ['device-device-identity', 'device-device-ca', 'device-edgehub-server']) {
      expect(a.secrets.get(name)?.metadata?.ownerReferences?.map((r) => r.uid)).toEqual([ed.metadata?.uid]);
    }
    expect(a.secrets.get('device-device-ca')?.type).toBe('kubernetes.io/tls');
    expect(a.secrets.get('device-edgehub-server')?.type).toBe('kubernetes.io/tls');
    const decoded = (secret: string, key: string) => Buffer.from(a.secrets.get(secret)!.data![key]!, 'base64').toString('utf8');
    expect(describeCertificate(decoded('device-device-ca', 'tls.crt')).isCa).toBe(true);
    expect(decoded('device-device-ca', 'ca.crt')).toBe(decoded('device-device-ca', 'tls.crt'));
    expect(decoded('device-edgehub-server', 'ca.crt')).toBe(decoded('device-device-ca', 'tls.crt'));
    const rootKey = decoded('device-device-identity', 'rootKey');
    expect(Buffer.from(rootKey, 'base64')).toHaveLength(32);
    for (const [moduleId, secret, key] of [['sensor', 'sensor-iothub', 'EdgeHubConnectionString'], ['$edgeHub', 'edgehub-iothub', 'IotHubConnectionString']] as const) {
      expect(decoded(secret, key)).toContain(`;DeviceId=${ns};ModuleId=${moduleId};SharedAccessKey=${deriveModuleKey(rootKey, ns, moduleId)}`);
      expect(decoded(secret, key)).toMatch(new RegExp(`^HostName=${ns}\\.local;`));
    }
    // No key material reaches the resource's status or its Events.
    const events = await cluster.core.listNamespacedEvent({ namespace: ns });
    const visible = JSON.stringify([(ed as { status?: unknown }).status, events.items.map((e) => e.message)]);
    for (const secret of ['device-device-identity', 'device-edgehub-server']) {
      for (const value of Object.values(a.secrets.get(secret)!.data!)) {
        const text = Buffer.from(value, 'base64').toString('utf8').trim();
        // A PEM's first base64 line, or the whole value (the root key).
        const probe = text.startsWith('-----BEGIN') ? text.split('\n')[1]! : text;
        expect(probe.length).toBeGreaterThan(20);
        expect(visible).not.toContain(probe);
      }
    }
    expect(visible).not.toContain(rootKey);
  });
});

describe('a module pod connecting to edgeHub', () => {
  const dir = mkdtempSync(join(tmpdir(), 'module-pod-'));
  let server: TlsServer | undefined;
  let gatewayBroker: Aedes | undefined;
  let address = '';
  const originalLookup = dns.lookup;
  afterAll(async () => {
    (dns as { lookup: typeof dns.lookup }).lookup = originalLookup;
    await stopGateway();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A loopback address whose port 8883 is free: GatewayHostName=edgehub has no port, so the SDK dials 8883. */
  async function freeLoopback(): Promise<string> {
    for (let last = 150; last < 200; last++) {
      const host = `127.0.0.${last}`;
      const free = await new Promise<boolean>((resolve) => {
        const probe = createNetServer();
        probe.once('error', () => resolve(false));
        probe.listen({ host, port: 8883, exclusive: true }, () => probe.close(() => resolve(true)));
      });
      if (free) return host;
    }
    throw new Error('no loopback address with port 8883 free');
  }

  async function stopGateway(): Promise<void> {
    const old = server;
    server = undefined;
    if (old) await new Promise<void>((resolve) => old.close(() => resolve()));
    await new Promise<void>((resolve) => (gatewayBroker ? gatewayBroker.close(() => resolve()) : resolve()));
    gatewayBroker = undefined;
  }

  /** An MQTT server over TLS with `pair`, accepting a module whose SAS is signed with `moduleKey`. */
  async function startGateway(pair: { cert: string; key: string }, moduleKey: string, moduleResource: string): Promise<void> {
    const broker = new Aedes({
      authenticate: (_client: unknown, _username: string | undefined, password: Buffer | undefined, done: (error: AuthenticateError | null, ok: boolean | null) => void) => {
        try {
          const sas = parseSas(password?.toString('utf8') ?? '');
          verifySas(sas, [moduleKey]);
          if (!resourceCovers(sas.resource, moduleResource)) throw new Error(`token for ${sas.resource}`);
          done(null, true);
        } catch (error) {
          done(Object.assign(new Error((error as Error).message), { returnCode: 5 }) as AuthenticateError, false);
        }
      },
    });
    await broker.listen();
    await stopGateway();
    gatewayBroker = broker;
    server = createTlsServer({ cert: pair.cert, key: pair.key }, (socket) => broker.handle(socket));
    await new Promise<void>((resolve) => server!.listen({ host: address, port: 8883 }, resolve));
  }

  /** The module pod's env, with each mounted file written under `dir` (same content, same file name). */
  function podEnvironment(a: Applied, moduleName: string): Record<string, string> {
    const module = a.modules.find((m) => m.metadata?.name === moduleName)!;
    const container = module.spec!.template.spec!.containers[0]!;
    const env: Record<string, string> = {};
    for (const v of container.env ?? []) env[v.name] = envValue(container, v.name, a.secrets) ?? '';
    const caPath = env.EdgeModuleCACertificateFile!;
    const file = fileContent(module.spec!.template.spec!, container, caPath, a.secrets)!;
    const local = join(dir, moduleName, caPath);
    mkdirSync(dirname(local), { recursive: true });
    writeFileSync(local, file.text);
    env.EdgeModuleCACertificateFile = local;
    return env;
  }

  async function openFromEnvironment(env: Record<string, string>): Promise<void> {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    let client: InstanceType<typeof device.ModuleClient> | undefined;
    try {
      client = await new Promise<InstanceType<typeof device.ModuleClient>>((resolve, reject) => {
        device.ModuleClient.fromEnvironment(mqtt.Mqtt, (error, c) => (error || !c ? reject(error ?? new Error('no client')) : resolve(c)));
      });
      await client.open();
    } finally {
      process.env = saved;
      await client?.close().catch(() => undefined);
    }
  }

  it('completes a TLS handshake with verification on, using exactly its env and files, and authenticates with its derived key', async () => {
    const a = await applied();
    address = await freeLoopback();
    // The pod resolves edgehub through cluster DNS; here it resolves to the test gateway's address.
    (dns as { lookup: unknown }).lookup = ((hostname: string, options: unknown, callback: unknown) => {
      const cb = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void;
      const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
      if (hostname === 'edgehub') return all ? cb(null, [{ address, family: 4 }]) : cb(null, address, 4);
      return (originalLookup as (...args: unknown[]) => void)(hostname, options, callback);
    }) as typeof dns.lookup;
    const decoded = (secret: string, key: string) => Buffer.from(a.secrets.get(secret)!.data![key]!, 'base64').toString('utf8');
    const serverPair = { cert: decoded('device-edgehub-server', 'tls.crt'), key: decoded('device-edgehub-server', 'tls.key') };
    const rootKey = decoded('device-device-identity', 'rootKey');
    const env = podEnvironment(a, 'sensor');
    expect(env.EdgeHubConnectionString).toContain(';GatewayHostName=edgehub');
    await startGateway(serverPair, deriveModuleKey(rootKey, ns, 'sensor'), `${ns}.local/devices/${ns}/modules/sensor`);
    await openFromEnvironment(env);

    // Verification is really on: the same module refuses a server whose certificate another CA issued.
    const stranger = issueDeviceCa({ commonName: 'not the device CA', lifetimeMs: 86400_000 });
    await startGateway(issueServerCertificate({ ca: stranger, dnsNames: ['edgehub'], lifetimeMs: 86400_000 }), deriveModuleKey(rootKey, ns, 'sensor'), `${ns}.local/devices/${ns}/modules/sensor`);
    await expect(openFromEnvironment(env)).rejects.toThrow(/certificate/);
  });
});
