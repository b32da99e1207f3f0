// translate() on a 50-module manifest: time per render and objects per second, next to the physical
// floor measured in the same run — copying the same output (structuredClone and a JSON round trip),
// i.e. the cost of merely producing that much data. Figures only; no assertions.
//   npm run bench -- translate [renders=200]
import { performance } from 'node:perf_hooks';
import type { DeploymentManifest, ModuleSpec } from '../src/manifest/model.ts';
import { defaultSettings, settingsWith, translate, type TranslationResult } from '../src/translate/index.ts';

function benchModule(i: number): ModuleSpec {
  const id = `Module_${String(i).padStart(2, '0')}`;
  return {
    id,
    system: false,
    version: '1.0',
    type: 'docker',
    status: i % 10 === 9 ? 'stopped' : 'running',
    restartPolicy: i % 7 === 0 ? 'on-failure' : i % 5 === 0 ? 'on-unhealthy' : 'always',
    startupOrder: i,
    imagePullPolicy: 'on-create',
    image: `benchacr.azurecr.io/${id.toLowerCase()}:1.${i}`,
    env: { LOG_LEVEL: 'info', INDEX: String(i) },
    createOptions: {
      Env: ['A=1', `MODULE_INDEX=${i}`],
      Cmd: ['--serve', `--index=${i}`],
      Labels: { 'com.example.bench': 'true' },
      ExposedPorts: { [`${9000 + i}/tcp`]: {} },
      Healthcheck: { Test: ['CMD', '/bin/health'], Interval: 10e9, Retries: 3 },
      HostConfig: {
        ...(i % 4 === 0 ? { PortBindings: { [`${8000 + i}/tcp`]: [{ HostPort: String(18000 + i) }] } } : {}),
        Binds: [`data-${i % 10}:/data`],
        Memory: 268435456,
        NanoCpus: 500000000,
        ExtraHosts: [`plc-${i}:10.0.${i}.1`],
      },
      k8s: { nodeSelector: { 'kubernetes.io/os': 'linux' } },
    },
  };
}

export function benchManifest(modules = 50): DeploymentManifest {
  return {
    agent: {
      schemaVersion: '1.1',
      runtime: { type: 'docker', settings: { registryCredentials: { bench: { name: 'bench', address: 'benchacr.azurecr.io', username: 'bench', password: 'fictional' } } } },
      systemModules: {
        edgeAgent: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5', createOptions: {}, env: {} },
        edgeHub: {
          id: 'edgeHub', system: true, type: 'docker', status: 'running', restartPolicy: 'always', startupOrder: 0, imagePullPolicy: 'on-create',
          image: 'mcr.microsoft.com/azureiotedge-hub:1.5', env: {}, createOptions: { HostConfig: { PortBindings: { '8883/tcp': [{ HostPort: '8883' }] } } },
        },
      },
      modules: Object.fromEntries(Array.from({ length: modules }, (_, i) => benchModule(i)).map((m) => [m.id, m])),
    },
    hub: {
      schemaVersion: '1.1',
      routes: Object.fromEntries(Array.from({ length: modules }, (_, i) => [`r${i}`, { name: `r${i}`, route: `FROM /messages/modules/Module_${i}/* INTO $upstream`, priority: i % 10 }])),
      storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
    },
  };
}

interface Stats {
  mean: number;
  p50: number;
  p95: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { mean: samples.reduce((s, x) => s + x, 0) / samples.length, p50: at(0.5), p95: at(0.95) };
}

function measure(renders: number, run: () => void): Stats {
  for (let i = 0; i < Math.min(20, renders); i++) run(); // warm-up: JIT and caches
  const samples: number[] = [];
  for (let i = 0; i < renders; i++) {
    const start = performance.now();
    run();
    samples.push(performance.now() - start);
  }
  return stats(samples);
}

export async function main(args: string[]): Promise<void> {
  const renders = Number(args[0] ?? 200);
  if (!Number.isInteger(renders) || renders < 1) throw new Error(`renders must be a positive integer, not ${args[0]}`);
  const manifest = benchManifest(50);
  const input = { manifest, namespace: 'bench', deviceId: 'bench-device', ownerName: 'bench', hubHostName: 'bench.azure-devices.net' };
  const rows: { case: string; objects: number; stats: Stats }[] = [];

  for (const [name, settings] of [
    ['translate, defaultSettings', defaultSettings],
    ['translate, no NetworkPolicies', settingsWith({ networkPolicies: false })],
  ] as const) {
    let result: TranslationResult | undefined;
    const s = measure(renders, () => {
      const outcome = translate({ ...input, settings });
      if (!outcome.ok) throw new Error(`bench manifest failed to translate: ${outcome.errors.map((e) => e.code).join(', ')}`);
      result = outcome.value;
    });
    rows.push({ case: name, objects: (result?.objects.length ?? 0) + (result?.volumeClaims.length ?? 0), stats: s });
  }

  // The floor: making a copy of the same output, without deciding anything.
  const outcome = translate({ ...input, settings: defaultSettings });
  if (!outcome.ok) throw new Error('bench manifest failed to translate');
  const output = [...outcome.value.objects, ...outcome.value.volumeClaims];
  rows.push({ case: 'floor: structuredClone(output)', objects: output.length, stats: measure(renders, () => void structuredClone(output)) });
  rows.push({ case: 'floor: JSON round trip(output)', objects: output.length, stats: measure(renders, () => void JSON.parse(JSON.stringify(output))) });

  const bytes = JSON.stringify(output).length;
  process.stdout.write(`translate: 50 modules + edgeHub, ${renders} renders each, output ${output.length} objects / ${(bytes / 1024).toFixed(0)} KiB JSON (node ${process.version})\n\n`);
  const header = ['case', 'objects', 'mean ms', 'p50 ms', 'p95 ms', 'objects/s'];
  const table = rows.map((r) => [r.case, String(r.objects), r.stats.mean.toFixed(3), r.stats.p50.toFixed(3), r.stats.p95.toFixed(3), Math.round(r.objects / (r.stats.mean / 1000)).toLocaleString('en-US')]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]?.length ?? 0)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  process.stdout.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${table.map(line).join('\n')}\n`);
  const translateMean = rows[0]?.stats.mean ?? NaN;
  const floorMean = rows[2]?.stats.mean ?? NaN;
  process.stdout.write(`\ntranslate costs ${(translateMean / floorMean).toFixed(1)}x a structuredClone of its own output.\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv.slice(2));
}
