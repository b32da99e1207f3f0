// The router: 1 KB JSON messages from a sensor routed through the sample deployment's routes plus
// a few more (10 routes, 4 with a WHERE), against the same decisions written by hand in plain JS
// (parse the body once, compare), measured in the same run. Figures only; no assertions.
//   npm run bench -- routing [--messages 100000]
import { performance } from 'node:perf_hooks';
import { compileRoutes } from '../src/routing/index.ts';
import type { RoutedMessage } from '../src/routing/index.ts';
import type { HubDesired } from '../src/manifest/model.ts';
import { option } from './support.ts';

const routes: Record<string, string> = {
  sensorToFilter: 'FROM /messages/modules/sensor/outputs/temperatureOutput WHERE $body.machine.temperature > 25 INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
  byProperty: 'FROM /messages/modules/sensor/* WHERE AS_NUMBER(temperature) > 28 AND $contentType = \'application/json\' INTO BrokeredEndpoint("/modules/alerts/inputs/hot")',
  filterUp: 'FROM /messages/modules/filter/outputs/* INTO $upstream',
  allUp: 'FROM /messages/* WHERE batchId <> \'ignore\' INTO $upstream',
  labelled: 'FROM /messages/modules/sensor/* WHERE STARTS_WITH(LOWER($body.label), \'press\') INTO BrokeredEndpoint("/modules/archive/inputs/in")',
  other1: 'FROM /messages/modules/camera/* INTO BrokeredEndpoint("/modules/vision/inputs/frames")',
  other2: 'FROM /messages/modules/plc/outputs/alarms INTO $upstream',
  other3: 'FROM /messages/modules/gateway/* INTO BrokeredEndpoint("/modules/translator/inputs/in")',
  other4: 'FROM /twinChangeNotifications INTO $upstream',
  other5: 'FROM /messages/modules/vision/outputs/* INTO BrokeredEndpoint("/modules/archive/inputs/in")',
};

function hub(): HubDesired {
  return {
    schemaVersion: '1.1',
    storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
    routes: Object.fromEntries(Object.entries(routes).map(([name, route]) => [name, { name, route, priority: 9 }])),
  };
}

function messages(n: number): RoutedMessage[] {
  const out: RoutedMessage[] = [];
  for (let i = 0; i < n; i++) {
    const temperature = 20 + (i % 12);
    const payload = { machine: { temperature, pressure: 1.5 }, ambient: { temperature: 21, humidity: 25 }, label: i % 3 === 0 ? 'Press-7' : 'lathe', pad: 'x'.repeat(850) };
    out.push({
      body: Buffer.from(JSON.stringify(payload)),
      properties: { temperature: String(temperature), batchId: 'b1', sequenceNumber: String(i) },
      systemProperties: { contentType: 'application/json', contentEncoding: 'utf-8', connectionDeviceId: 'dev', connectionModuleId: 'sensor' },
      source: { kind: 'module', deviceId: 'dev', moduleId: 'sensor', outputName: 'temperatureOutput' },
    });
  }
  return out;
}

/** The same decisions, hand-written: what any router must at least do (read the body once, compare). */
function byHand(m: RoutedMessage): string[] {
  const out: string[] = [];
  const body = JSON.parse(m.body.toString('utf8')) as { machine: { temperature: number }; label: string };
  if (m.source.kind === 'module' && m.source.moduleId === 'sensor') {
    if (m.source.outputName === 'temperatureOutput' && body.machine.temperature > 25) out.push('/modules/filter/inputs/input1');
    if (Number(m.properties.temperature) > 28 && m.systemProperties.contentType === 'application/json') out.push('/modules/alerts/inputs/hot');
    if (body.label.toLowerCase().startsWith('press')) out.push('/modules/archive/inputs/in');
  }
  if (m.properties.batchId !== 'ignore') out.push('$upstream');
  return out;
}

export async function main(args: string[]): Promise<void> {
  const n = Number(option(args, '--messages') ?? 100_000);
  const input = messages(n);
  const { router, errors } = compileRoutes(hub());
  if (errors.length > 0) throw new Error(errors.map((e) => e.message).join('\n'));

  // Alternate the two, three rounds each, and keep each one's best: allocation and GC from
  // building the input would otherwise land on whichever runs first.
  let matched = 0;
  let handMatched = 0;
  let routerSeconds = Number.POSITIVE_INFINITY;
  let handSeconds = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    let t = performance.now();
    handMatched = 0;
    for (const m of input) handMatched += byHand(m).length;
    handSeconds = Math.min(handSeconds, (performance.now() - t) / 1000);
    t = performance.now();
    matched = 0;
    for (const m of input) matched += router.route(m).length;
    routerSeconds = Math.min(routerSeconds, (performance.now() - t) / 1000);
  }

  const rate = (s: number) => `${Math.round(n / s).toLocaleString('en-US')} msg/s (${((s / n) * 1e6).toFixed(2)} µs/msg)`;
  console.log(`routing bench: ${n} messages of ~1 KB JSON, ${Object.keys(routes).length} routes (4 with WHERE)`);
  console.log(`  compiled router:           ${rate(routerSeconds)}, ${matched} endpoint matches`);
  console.log(`  baseline, written by hand: ${rate(handSeconds)}, ${handMatched} endpoint matches`);
  console.log(`  router / hand-written:     ${(handSeconds / routerSeconds).toFixed(2)}`);
}
