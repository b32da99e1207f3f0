// The built-in edge hub's data plane: messages per second and latency at 1 KB, QoS 1, for
//   A. module → route with a WHERE → module (stored durably before each PUBACK), and
//   B. module → $upstream → IoT Hub (the project's emulator),
// next to the same traffic through a plain MQTT relay in the same run: aedes over TLS with no
// authentication, routing or persistence (the MQTT stack's own limit on this machine), and Debian's
// mosquitto when it is installed. Then the hub's RSS with 10 modules connected and sending.
// Each broker runs as its own process; the clients are raw MQTT 3.1.1 clients in this process.
// Figures only; no assertions. Ratios are to the ~20 msg/s module-to-module that edgeHub users report.
//   npm run bench -- hub [--messages 20000] [--window 500] [--rate 5000] [--rate-seconds 3]
//                        [--only module-to-module] [--profile-dir <dir>: a CPU profile of the hub process]
// Module → module runs twice: the store syncing in the background (default) and inline (the store before).
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort, repoRoot } from '../scripts/cluster/control-plane.ts';
import { startHubEmulator } from '../src/emulator/index.ts';
import type { HubEmulator, TelemetryMessage } from '../src/emulator/index.ts';
import { deriveModuleKey, signSas } from '../src/runtime/sas.ts';
import { compiledCliMain, routesDocument, startHub, startUpstreamHub, stopHub, writeHubFiles } from '../test/support/edgehub.ts';
import type { HubFiles, HubProcess } from '../test/support/edgehub.ts';
import { builtinHubNodeOptions } from '../src/translate/builtin-hub.ts';
import { RawMqttClient } from './raw-mqtt.ts';
import { option, percentile } from './support.ts';

const edgeHubReportedMsgPerSecond = 20;
const deviceId = 'bench-dev';

interface Options {
  only: string | undefined;
  profileDir: string | undefined;
  messages: number;
  window: number;
  rate: number;
  rateSeconds: number;
}

function parseArgs(args: string[]): Options {
  return {
    only: option(args, '--only'),
    profileDir: option(args, '--profile-dir'),
    messages: Number(option(args, '--messages') ?? 20_000),
    window: Number(option(args, '--window') ?? 500),
    rate: Number(option(args, '--rate') ?? 5_000),
    rateSeconds: Number(option(args, '--rate-seconds') ?? 3),
  };
}

interface Endpoint {
  port: number;
  ca: string;
  /** Credentials for a client id; none for the relays. */
  credentials?: (moduleId: string) => { username: string; password: string };
}

type MqttClient = RawMqttClient;

function connect(endpoint: Endpoint, moduleId: string): Promise<MqttClient> {
  return RawMqttClient.connect({ port: endpoint.port, ca: endpoint.ca, clientId: `${deviceId}/${moduleId}`, clean: false, ...(endpoint.credentials?.(moduleId) ?? {}) });
}

function subscribe(client: MqttClient, topic: string): Promise<void> {
  return client.subscribe(topic);
}

const body1k = (seq: number) => {
  const head = JSON.stringify({ seq, temperature: 30 + (seq % 5), pad: '' });
  return Buffer.from(head.replace('"pad":""', `"pad":"${'x'.repeat(1024 - head.length)}"`));
};

/** The topic a module's output goes to; `t` (send time) rides in the property bag. */
const outputTopic = (moduleId: string, t: number) => `devices/${deviceId}/modules/${moduleId}/messages/events/%24.on=out&%24.ct=application%2Fjson&%24.ce=utf-8&t=${t.toFixed(3)}/`;

function sendTime(topic: string): number {
  const m = /(?:^|[/&])t=([0-9.]+)/.exec(topic);
  return m ? Number(m[1]) : NaN;
}

interface RunResult {
  messagesPerSecond: number;
  p50: number;
  p99: number;
  received: number;
  /** CPU time (user + system) the broker process spent per message delivered, in µs: unlike msg/s, barely moved by other load. */
  brokerCpuUsPerMessage: number;
  /** The same for this process, where the clients run. */
  clientCpuUsPerMessage: number;
}

/** CPU time of a process so far, in µs (utime + stime from /proc, in clock ticks of 10 ms). */
function cpuUs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return NaN;
  }
}

function ownCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * Publishes `count` messages with up to `window` unacknowledged (flood) or at `rate` per second,
 * and waits until `arrivals` reports them all. Latency = arrival − send, in ms.
 */
async function drive(sender: MqttClient, moduleId: string, count: number, pace: { window: number } | { rate: number }, arrivals: (onArrival: (sentAt: number) => void) => () => void, brokerPid?: number): Promise<RunResult> {
  const latencies: number[] = [];
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const stop = arrivals((sentAt) => {
    latencies.push(performance.now() - sentAt);
    if (latencies.length >= count) done();
  });
  const started = performance.now();
  const brokerCpuBefore = cpuUs(brokerPid);
  const clientCpuBefore = ownCpuUs();
  let inFlight = 0;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const publishOne = () => {
      const seq = sent++;
      inFlight++;
      sender.publish(outputTopic(moduleId, performance.now()), body1k(seq), () => {
        inFlight--;
        if ('window' in pace) pump();
      });
    };
    const pump = () => {
      if ('window' in pace) {
        while (sent < count && inFlight < pace.window) publishOne();
        if (sent >= count) resolve();
        return;
      }
      const due = Math.min(count, Math.floor(((performance.now() - started) / 1000) * pace.rate));
      while (sent < due) publishOne();
      if (sent >= count) resolve();
      else setTimeout(pump, 1);
    };
    pump();
  });
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, 120_000).unref());
  await Promise.race([all, timeout]);
  const elapsed = (performance.now() - started) / 1000;
  stop();
  const n = Math.max(1, latencies.length);
  return {
    messagesPerSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    received: latencies.length,
    brokerCpuUsPerMessage: (cpuUs(brokerPid) - brokerCpuBefore) / n,
    clientCpuUsPerMessage: (ownCpuUs() - clientCpuBefore) / n,
  };
}

function inputArrivals(receiver: MqttClient): (onArrival: (sentAt: number) => void) => () => void {
  return (onArrival) => {
    const listener = (topic: string) => onArrival(sendTime(topic));
    receiver.on('message', listener);
    return () => receiver.off('message', listener);
  };
}

// ---- the relays (baselines)

const relaySource = `
import { createServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { Aedes } from 'aedes';
const [certFile, keyFile, port] = process.argv.slice(1);
const broker = await Aedes.createBroker();
const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (socket) => broker.handle(socket));
server.listen(Number(port), '127.0.0.1', () => console.log('ready'));
`;

async function startRelay(files: HubFiles): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--input-type=module', '-e', relaySource, join(files.dir, 'tls.crt'), join(files.dir, 'tls.key'), String(port)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the aedes relay exited with ${code}`)));
  });
  return { child, port };
}

async function startMosquitto(files: HubFiles): Promise<{ child: ChildProcess; port: number } | undefined> {
  const found = spawnSync('sh', ['-c', 'command -v mosquitto || ls /usr/sbin/mosquitto'], { encoding: 'utf8' });
  const binary = found.stdout.trim().split('\n')[0];
  if (found.status !== 0 || !binary) return undefined;
  const port = await freePort();
  const conf = join(files.dir, 'mosquitto.conf');
  // `user root`: run as root, mosquitto drops to its own user and then cannot read the key in the bench's directory.
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nuser root\ncertfile ${join(files.dir, 'tls.crt')}\nkeyfile ${join(files.dir, 'tls.key')}\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 100000\n`);
  const child = spawn(binary, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  // Ready once it accepts a TCP connection; its own log says why when it does not.
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) break;
    if (await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    })) return { child, port };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  console.log(`Debian mosquitto did not start: ${log.trim().split('\n').slice(-3).join(' | ')}`);
  return undefined;
}

async function relayRun(endpoint: Endpoint, options: Options, pid: number | undefined): Promise<{ flood: RunResult; paced: RunResult }> {
  const receiver = await connect(endpoint, 'receiver');
  await subscribe(receiver, `devices/${deviceId}/modules/sensor/messages/events/#`);
  const sender = await connect(endpoint, 'sensor');
  const arrivals = inputArrivals(receiver);
  const flood = await drive(sender, 'sensor', options.messages, { window: options.window }, arrivals, pid);
  const paced = await drive(sender, 'sensor', options.rate * options.rateSeconds, { rate: options.rate }, arrivals, pid);
  sender.end();
  receiver.end();
  return { flood, paced };
}

// ---- the hub

function hubCredentials(files: HubFiles, hostName: string): Endpoint['credentials'] {
  return (moduleId) => {
    const key = deriveModuleKey(files.rootKey, deviceId, moduleId);
    return {
      username: `${hostName}/${deviceId}/${moduleId}/?api-version=2021-04-12`,
      password: signSas({ resourceUri: `${hostName}/devices/${deviceId}/modules/${moduleId}`, key, expiry: Math.floor(Date.now() / 1000) + 3600 }),
    };
  };
}

async function moduleToModule(options: Options, storeFsync: 'background' | 'inline' = 'background'): Promise<{ flood: RunResult; paced: RunResult; files: HubFiles }> {
  const files = writeHubFiles({ deviceId, routes: routesDocument({ hot: 'FROM /messages/modules/sensor/outputs/out WHERE $body.temperature > 25 INTO BrokeredEndpoint("/modules/filter/inputs/in")' }), storeFsync });
  const hub = await startHub(files, { NODE_OPTIONS: `${hubNodeOptions}${options.profileDir ? ` --cpu-prof --cpu-prof-dir=${options.profileDir}` : ''}` }, compiledCliMain);
  try {
    const endpoint: Endpoint = { port: hub.port, ca: files.ca.cert, credentials: hubCredentials(files, `${deviceId}.local`) };
    const receiver = await connect(endpoint, 'filter');
    await subscribe(receiver, `devices/${deviceId}/modules/filter/inputs/#`);
    const sender = await connect(endpoint, 'sensor');
    const arrivals = inputArrivals(receiver);
    const flood = await drive(sender, 'sensor', options.messages, { window: options.window }, arrivals, hub.child.pid);
    const paced = await drive(sender, 'sensor', options.rate * options.rateSeconds, { rate: options.rate }, arrivals, hub.child.pid);
    sender.end();
    receiver.end();
    return { flood, paced, files };
  } finally {
    await stopHub(hub);
  }
}

async function moduleToUpstream(options: Options): Promise<RunResult> {
  const emulator: HubEmulator = await startHubEmulator();
  try {
    const { files, hub } = await startUpstreamHub(emulator, deviceId, compiledCliMain, { NODE_OPTIONS: hubNodeOptions });
    try {
      const endpoint: Endpoint = { port: hub.port, ca: files.ca.cert, credentials: hubCredentials(files, emulator.host) };
      const sender = await connect(endpoint, 'sensor');
      const count = Math.min(options.messages, 10_000);
      const result = await drive(sender, 'sensor', count, { window: options.window }, (onArrival) => {
        const listener = (m: TelemetryMessage) => onArrival(Number(m.properties.t));
        emulator.on('telemetry', listener);
        return () => emulator.off('telemetry', listener);
      }, hub.child.pid);
      sender.end();
      return result;
    } finally {
      await stopHub(hub);
    }
  } finally {
    await emulator.stop();
  }
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function rssWithTenModules(options: Options): Promise<{ idle: number; peak: number; messagesPerSecond: number }> {
  const pairs = 5;
  const routes: Record<string, string> = {};
  for (let i = 0; i < pairs; i++) routes[`r${i}`] = `FROM /messages/modules/s${i}/* WHERE $body.temperature > 25 INTO BrokeredEndpoint("/modules/f${i}/inputs/in")`;
  const files = writeHubFiles({ deviceId, routes: routesDocument(routes) });
  const hub: HubProcess = await startHub(files, { NODE_OPTIONS: hubNodeOptions }, compiledCliMain);
  try {
    const endpoint: Endpoint = { port: hub.port, ca: files.ca.cert, credentials: hubCredentials(files, `${deviceId}.local`) };
    const clients: MqttClient[] = [];
    const runs: Array<() => Promise<RunResult>> = [];
    for (let i = 0; i < pairs; i++) {
      const receiver = await connect(endpoint, `f${i}`);
      await subscribe(receiver, `devices/${deviceId}/modules/f${i}/inputs/#`);
      const sender = await connect(endpoint, `s${i}`);
      clients.push(receiver, sender);
      runs.push(() => drive(sender, `s${i}`, Math.ceil(options.messages / pairs), { window: Math.ceil(options.window / pairs) }, inputArrivals(receiver)));
    }
    await new Promise((r) => setTimeout(r, 500));
    const pid = hub.child.pid as number;
    const idle = rssMb(pid);
    let peak = idle;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(pid));
    }, 100);
    const started = performance.now();
    const results = await Promise.all(runs.map((run) => run()));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    peak = Math.max(peak, rssMb(pid));
    for (const c of clients) c.end();
    return { idle, peak, messagesPerSecond: results.reduce((n, r) => n + r.received, 0) / seconds };
  } finally {
    await stopHub(hub);
  }
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** The hub's V8 heap settings as its pod runs it; HUB_NODE_OPTIONS replaces them (e.g. '' for V8's defaults). */
const hubNodeOptions = process.env.HUB_NODE_OPTIONS ?? builtinHubNodeOptions;

/** The hub runs compiled, as in its image (type stripping alone costs the process ~20 MB and start-up time). */
function buildCompiledHub(): void {
  const built = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repoRoot, 'tsconfig.build.json')], { cwd: repoRoot, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('npm run build failed: the hub bench runs the compiled hub');
}

export async function main(args: string[]): Promise<void> {
  const options = parseArgs(args);
  buildCompiledHub();
  console.log(`load average before the run: ${loadavg().map((l) => l.toFixed(1)).join(' ')} (2 cores shared: compare rows of one run, not runs)`);
  console.log(`hub bench: 1 KB JSON, QoS 1, flood ${options.messages} messages with ${options.window} in flight; paced ${options.rate} msg/s for ${options.rateSeconds} s`);

  if (options.only === 'rss') {
    const rss = await rssWithTenModules(options);
    console.log(`hub RSS with 10 modules: ${fmt(rss.idle)} MB connected and idle, ${fmt(rss.peak)} MB peak while moving ${fmt(rss.messagesPerSecond)} msg/s`);
    return;
  }
  const a = await moduleToModule(options);
  // The same with the store's fsync inline on the event loop (SQLite synchronous=FULL): the store before the background sync.
  const inline = await moduleToModule(options, 'inline');
  if (options.only === 'module-to-module') {
    for (const [name, r] of [['fsync background', a], ['fsync inline', inline]] as const) {
      console.log(`hub module → route WHERE → module (${name}): flood ${fmt(r.flood.messagesPerSecond)} msg/s (p50 ${fmt(r.flood.p50, 1)} ms, p99 ${fmt(r.flood.p99, 1)} ms, hub CPU ${fmt(r.flood.brokerCpuUsPerMessage, 1)} µs/msg, clients ${fmt(r.flood.clientCpuUsPerMessage, 1)} µs/msg); paced p50 ${fmt(r.paced.p50, 1)} ms, p99 ${fmt(r.paced.p99, 1)} ms`);
    }
    return;
  }
  const relay = await startRelay(a.files);
  const aedes = await relayRun({ port: relay.port, ca: a.files.ca.cert }, options, relay.child.pid);
  relay.child.kill();
  const mosquittoProcess = await startMosquitto(a.files);
  const mosquitto = mosquittoProcess ? await relayRun({ port: mosquittoProcess.port, ca: a.files.ca.cert }, options, mosquittoProcess.child.pid) : undefined;
  mosquittoProcess?.child.kill();
  const b = await moduleToUpstream(options);
  const rss = await rssWithTenModules(options);

  const rows: Array<[string, RunResult | undefined, RunResult | undefined]> = [
    ['plain aedes relay (TLS, no auth/routing/persistence)', aedes.flood, aedes.paced],
    [mosquittoProcess ? 'Debian mosquitto (TLS, no persistence)' : 'Debian mosquitto: not installed', mosquitto?.flood, mosquitto?.paced],
    ['hub: module → route WHERE → module (durable, fsync background)', a.flood, a.paced],
    ['hub: module → route WHERE → module (durable, fsync inline: before)', inline.flood, inline.paced],
    ['hub: module → $upstream → emulator', b, undefined],
  ];
  console.log('\n| path | flood msg/s | flood p50 ms | flood p99 ms | paced p50 ms | paced p99 ms | broker CPU µs/msg | clients CPU µs/msg | × edgeHub (~20 msg/s) |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const [name, flood, paced] of rows) {
    console.log(`| ${name} | ${fmt(flood?.messagesPerSecond ?? NaN)} | ${fmt(flood?.p50 ?? NaN, 1)} | ${fmt(flood?.p99 ?? NaN, 1)} | ${fmt(paced?.p50 ?? NaN, 1)} | ${fmt(paced?.p99 ?? NaN, 1)} | ${fmt(flood?.brokerCpuUsPerMessage ?? NaN, 1)} | ${fmt(flood?.clientCpuUsPerMessage ?? NaN, 1)} | ${fmt((flood?.messagesPerSecond ?? NaN) / edgeHubReportedMsgPerSecond)} |`);
  }
  console.log('(broker CPU: the broker process\'s user+system time over the flood ÷ messages delivered; the upstream row\'s clients include the emulator, which runs in this process)');
  console.log(`\nhub module→module ÷ aedes relay: ${fmt(a.flood.messagesPerSecond / aedes.flood.messagesPerSecond, 2)}`);
  console.log(`hub RSS with 10 modules (5 senders → 5 receivers, routes with WHERE): ${fmt(rss.idle)} MB connected and idle, ${fmt(rss.peak)} MB peak while moving ${fmt(rss.messagesPerSecond)} msg/s`);
}
