// The built-in hub's IoT Hub outage at the counts: IoT Hub (the project's emulator) refuses every
// connection for `--outage-seconds` (default 600, ten minutes) while a real ModuleClient sends `--messages`
// (default 5,000) to $upstream, paced evenly over the outage; then IoT Hub comes back and the hub drains.
// test/integration/edgehub/faults.test.ts runs the same path scaled down (500 messages, a few seconds) in
// `npm test`; this prints the full-count figures: PUBACKs during the outage, what /status said, drain time,
// order of first arrivals, duplicates. The baseline in the same run: the same messages sent to the hub with
// IoT Hub up the whole time (send → arrival). Figures only; no assertions.
//   npm run bench -- hub-faults [--messages 5000] [--outage-seconds 600]
import { performance } from 'node:perf_hooks';
import type { ModuleClient as ModuleClientType } from 'azure-iot-device';
import { startHubEmulator } from '../src/emulator/index.ts';
import type { HubEmulator } from '../src/emulator/index.ts';
import { eventually, jsonMessage, metricValue, openModule, startUpstreamHub, stopHub } from '../test/support/edgehub.ts';
import type { HubProcess } from '../test/support/edgehub.ts';
import { option } from './support.ts';

const deviceId = 'bench-faults';

interface Setup {
  emulator: HubEmulator;
  hub: HubProcess;
  sensor: ModuleClientType;
}

async function setUp(): Promise<Setup> {
  const emulator = await startHubEmulator();
  const { files, hub } = await startUpstreamHub(emulator, deviceId);
  const sensor = await openModule(files, hub, 'sensor', emulator.host);
  await sensor.sendOutputEvent('out', jsonMessage({ i: -1 }));
  await eventually(() => emulator.admin.messages({ deviceId }).length === 1, 'the first message upstream');
  return { emulator, hub, sensor };
}

async function tearDown(s: Setup): Promise<void> {
  await s.sensor.close().catch(() => undefined);
  await stopHub(s.hub);
  await s.emulator.stop();
}

const arrivals = (emulator: HubEmulator) => emulator.admin.messages({ deviceId }).map((m) => (JSON.parse(m.body.toString()) as { i: number }).i);

/** Sends `count` messages paced evenly over `seconds`; resolves with how many were PUBACKed. */
async function sendPaced(sensor: ModuleClientType, count: number, seconds: number): Promise<number> {
  const started = performance.now();
  let acked = 0;
  for (let i = 0; i < count; i++) {
    const due = started + (i * seconds * 1000) / count;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await sensor.sendOutputEvent('out', jsonMessage({ i }));
    acked++;
  }
  return acked;
}

function orderReport(seen: number[], count: number): { inOrder: boolean; missing: number; duplicates: number } {
  const firstArrivals = seen.filter((i, index) => seen.indexOf(i) === index);
  const expected = [-1, ...Array.from({ length: count }, (_, i) => i)];
  const got = new Set(seen);
  return {
    inOrder: firstArrivals.length === expected.length && firstArrivals.every((v, k) => v === expected[k]),
    missing: expected.filter((i) => !got.has(i)).length,
    duplicates: seen.length - firstArrivals.length,
  };
}

export async function main(args: string[]): Promise<void> {
  const count = Number(option(args, '--messages') ?? 5_000);
  const outageSeconds = Number(option(args, '--outage-seconds') ?? 600);
  console.log(`hub-faults bench: ${count} messages to $upstream over a ${outageSeconds} s IoT Hub outage, then the drain`);

  // Baseline: the same traffic with IoT Hub up, sent as fast as PUBACKs come.
  const base = await setUp();
  try {
    const t0 = performance.now();
    await sendPaced(base.sensor, count, 0);
    await eventually(() => base.emulator.admin.messages({ deviceId }).length >= count + 1, 'the baseline delivered', 600_000);
    const baseSeconds = (performance.now() - t0) / 1000;
    const report = orderReport(arrivals(base.emulator), count);
    console.log(`\nbaseline, IoT Hub up: ${count} sent and delivered in ${baseSeconds.toFixed(1)} s (${Math.round(count / baseSeconds)} msg/s); in order: ${report.inOrder}; duplicates ${report.duplicates}`);
  } finally {
    await tearDown(base);
  }

  const s = await setUp();
  try {
    s.emulator.admin.refuseConnections('tcp-close', {});
    s.emulator.admin.dropConnections({ deviceId });
    const outageStart = performance.now();
    const acked = await sendPaced(s.sensor, count, outageSeconds);
    const sendSeconds = (performance.now() - outageStart) / 1000;
    const remaining = outageSeconds * 1000 - (performance.now() - outageStart);
    if (remaining > 0) await new Promise((r) => setTimeout(r, remaining));
    const during = s.emulator.admin.messages({ deviceId }).length - 1;
    const status = (await (await fetch(`${s.hub.metricsUrl}/status`)).json()) as { upstream: Record<string, unknown> };
    const queued = await metricValue(s.hub.metricsUrl, 'edgehub_queue_length', { endpoint: '$upstream' });
    console.log(`\noutage: ${acked}/${count} PUBACKed by the hub in ${sendSeconds.toFixed(0)} s while IoT Hub refused connections; ${during} reached IoT Hub during it`);
    console.log(`  hub /status at the end of the outage: upstream ${JSON.stringify(status.upstream)}; edgehub_queue_length{$upstream} ${queued}`);

    s.emulator.admin.clearFaults();
    const drainStart = performance.now();
    await eventually(() => s.emulator.admin.messages({ deviceId }).length >= count + 1, 'every queued message upstream', 1_800_000);
    const drainSeconds = (performance.now() - drainStart) / 1000;
    const report = orderReport(arrivals(s.emulator), count);
    const redelivered = await metricValue(s.hub.metricsUrl, 'edgehub_messages_redelivered_total', { endpoint: '$upstream' });
    console.log(`  after IoT Hub returned: all ${count} delivered in ${drainSeconds.toFixed(1)} s (incl. the hub's reconnect backoff, up to 30 s); ` +
      `missing ${report.missing}; first arrivals in order: ${report.inOrder}; duplicates ${report.duplicates}; upstream send retries during the outage ${redelivered}`);
  } finally {
    await tearDown(s);
  }
}
