// Runs `iotedge-operator edgehub` as a real process for tests and benchmarks, with its files
// (device root key, server certificate from a test CA, routes) in a temporary directory, and opens
// real azure-iot-device ModuleClients (MQTT) against it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import device from 'azure-iot-device';
import type { Message as MessageType, ModuleClient as ModuleClientType } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import { generateCa, issueServerCertificate } from '../../src/emulator/tls.ts';
import type { PemPair } from '../../src/emulator/tls.ts';
import type { HubEmulator } from '../../src/emulator/index.ts';
import { deriveModuleKey } from '../../src/runtime/sas.ts';

export const { ModuleClient, Message } = device;
const cliMain = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/** The compiled CLI (`npm run build`), as the image runs it: no type stripping in the process. */
export const compiledCliMain = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface HubFiles {
  dir: string;
  deviceId: string;
  rootKey: string;
  ca: PemPair;
  caFile: string;
  routesFile: string;
  storeDir: string;
  args: string[];
}

/** $edgeHub desired properties with these routes (schema 1.1) and store-and-forward time to live. */
export function routesDocument(routes: Record<string, string | { route: string; priority?: number; timeToLiveSecs?: number }>, timeToLiveSecs = 7200): string {
  return JSON.stringify({ schemaVersion: '1.1', routes, storeAndForwardConfiguration: { timeToLiveSecs } }, null, 2);
}

export function writeHubFiles(options: { deviceId?: string; routes: string; upstreamConnectionString?: string; storeMaxBytes?: number; port?: number; storeFsync?: 'background' | 'inline' }): HubFiles {
  const dir = mkdtempSync(join(tmpdir(), 'edgehub-test-'));
  const deviceId = options.deviceId ?? 'dev1';
  const rootKey = randomBytes(32).toString('base64');
  const ca = generateCa('edgehub test device CA');
  const server = issueServerCertificate(ca, ['127.0.0.1', 'edgehub', 'localhost']);
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  const caFile = file('ca.crt', ca.cert);
  const routesFile = file('routes.json', options.routes);
  const storeDir = join(dir, 'store');
  mkdirSync(storeDir);
  const args = [
    '--device-id', deviceId,
    '--root-key-file', file('root-key', rootKey),
    '--server-cert-file', file('tls.crt', server.cert),
    '--server-key-file', file('tls.key', server.key),
    '--ca-file', caFile,
    '--routes-file', routesFile,
    '--store-dir', storeDir,
    '--port', String(options.port ?? 0),
    '--metrics-bind-address', '127.0.0.1:0',
    '--health-probe-bind-address', '127.0.0.1:0',
    ...(options.upstreamConnectionString ? ['--upstream-connection-string-file', file('upstream', options.upstreamConnectionString)] : []),
    ...(options.storeMaxBytes !== undefined ? ['--store-max-bytes', String(options.storeMaxBytes)] : []),
    ...(options.storeFsync !== undefined ? ['--store-fsync', options.storeFsync] : []),
  ];
  return { dir, deviceId, rootKey, ca, caFile, routesFile, storeDir, args };
}

export interface HubProcess {
  child: ChildProcess;
  port: number;
  /** Base URL of /metrics, /healthz and /readyz (one server when the addresses are equal; here: the metrics one). */
  metricsUrl: string;
  probeUrl: string;
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Starts the hub; resolves once it listens. `env` adds variables (NODE_EXTRA_CA_CERTS for the emulator's CA). */
export async function startHub(files: HubFiles, env: Record<string, string> = {}, entry: string = cliMain): Promise<HubProcess> {
  const child = spawn(process.execPath, [entry, 'edgehub', ...files.args], {
    env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const addresses: string[] = [];
  let port = 0;
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the hub did not start within 30 s; stderr: ${stderr}`)), 30_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the hub exited with ${code} before listening; stderr: ${stderr}; log: ${JSON.stringify(logs.slice(-5))}`));
    });
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logs.push(entry);
        if (entry.msg === 'serving operator HTTP endpoints') addresses.push(String(entry.address));
        if (entry.msg === 'edge hub listening (MQTT over TLS)') {
          port = Number(entry.port);
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
  const [probe, metrics] = addresses;
  return { child, port, probeUrl: `http://${probe}`, metricsUrl: `http://${metrics ?? probe}`, logs, exited };
}

export async function stopHub(hub: HubProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (hub.child.exitCode === null && hub.child.signalCode === null) hub.child.kill(signal);
  return hub.exited;
}

/** The connection string a module pod gets, dialling the hub on loopback. */
export function moduleConnectionString(files: HubFiles, hub: { port: number }, moduleId: string, hostName = `${files.deviceId}.local`): string {
  const key = deriveModuleKey(files.rootKey, files.deviceId, moduleId);
  return `HostName=${hostName};DeviceId=${files.deviceId};ModuleId=${moduleId};SharedAccessKey=${key};GatewayHostName=127.0.0.1:${hub.port}`;
}

export async function openModule(files: HubFiles, hub: { port: number }, moduleId: string, hostName?: string): Promise<ModuleClientType> {
  const client = ModuleClient.fromConnectionString(moduleConnectionString(files, hub, moduleId, hostName), mqtt.Mqtt);
  await client.setOptions({ ca: files.ca.cert });
  await client.open();
  return client;
}

/** One Prometheus sample's value (summed over label sets matching `labels`), 0 when absent. */
export async function metricValue(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export function jsonMessage(body: unknown): MessageType {
  const m = new Message(JSON.stringify(body));
  m.contentType = 'application/json';
  m.contentEncoding = 'utf-8';
  return m;
}

/** Resolves when `check` is true, polling; rejects after `timeoutMs` with `what`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * As the operator does in IoT Hub mode: the modules' identities, and `$edgeHub`'s (the hub reports its connection
 * table there), exist in `emulator` with the keys derived from the device root key.
 */
export function registerDerivedIdentities(emulator: HubEmulator, files: HubFiles, moduleIds: readonly string[]): void {
  for (const moduleId of ['$edgeHub', ...moduleIds]) {
    const key = deriveModuleKey(files.rootKey, files.deviceId, moduleId);
    const exists = emulator.registry.findModule(files.deviceId, moduleId) !== undefined;
    emulator.registry.putModule(files.deviceId, moduleId, { authentication: { type: 'sas', symmetricKey: { primaryKey: key, secondaryKey: key } } }, exists ? '*' : undefined);
  }
}

/**
 * A hub whose module `sensor` routes everything to $upstream in `emulator` (as IoT Hub): the device and the
 * sensor's and $edgeHub's identities (their derived keys) registered there, the hub trusting the emulator's CA.
 */
export async function startUpstreamHub(emulator: HubEmulator, deviceId: string, entry: string = cliMain, env: Record<string, string> = {}): Promise<{ files: HubFiles; hub: HubProcess }> {
  emulator.createEdgeDevice(deviceId);
  const files = writeHubFiles({ deviceId, routes: routesDocument({ up: 'FROM /messages/modules/sensor/* INTO $upstream' }), upstreamConnectionString: emulator.deviceConnectionString(deviceId) });
  registerDerivedIdentities(emulator, files, ['sensor']);
  const hub = await startHubTrustingEmulator(files, emulator, env, entry);
  return { files, hub };
}

/** Starts the hub with the emulator's CA in its trust (NODE_EXTRA_CA_CERTS), as IoT Hub's would be. */
export function startHubTrustingEmulator(files: HubFiles, emulator: HubEmulator, env: Record<string, string> = {}, entry: string = cliMain): Promise<HubProcess> {
  const emulatorCa = join(files.dir, 'emulator-ca.crt');
  writeFileSync(emulatorCa, emulator.caCertPem);
  return startHub(files, { ...env, NODE_EXTRA_CA_CERTS: emulatorCa }, entry);
}
