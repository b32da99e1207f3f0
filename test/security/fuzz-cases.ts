// Fuzz cases for validate and translate: the repository's real manifests (test/fixtures/manifests and the
// examples), each mutated by fast-check: a few nodes replaced with hostile values (huge or deep JSON,
// prototype keys, `$(` expansions, ReDoS-shaped routes, wrong types), keys deleted or added, createOptions
// strings re-encoded or chunked. `runPipeline` runs what `iotedge-operator validate` runs. Shared by the
// `npm run bench -- fuzz` campaign and the unit test that runs a few hundred cases in `npm test`.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { desiredStateSource, manifestOf, targetFor, translateOffline } from '../../src/cli/desired-state.ts';
import { defaultSettings, settingsWith, type OperatorSettings } from '../../src/translate/index.ts';

const root = join(import.meta.dirname, '../..');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The real manifests the mutations start from, as parsed JSON. */
export function seedManifests(): Json[] {
  const dir = join(root, 'test/fixtures/manifests');
  const files = [
    ...readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => join(dir, f)),
    ...readdirSync(join(dir, 'invalid')).filter((f) => f.endsWith('.json')).map((f) => join(dir, 'invalid', f)),
    join(root, 'manifests/examples/demo-deployment.json'),
  ];
  return files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Json);
}

/**
 * Deep JSON arrives as text, so it is spliced into the text after serialising: the fuzzer itself must not
 * recurse through it (structuredClone and JSON.stringify would overflow before the code under test does).
 */
const deepMarker = (depth: number) => `@@deep:${depth}@@`;

function deepText(depth: number): string {
  const open = Array.from({ length: depth }, (_, i) => (i % 2 === 0 ? '[' : '{"d":')).join('');
  const close = Array.from({ length: depth }, (_, i) => (i % 2 === 0 ? ']' : '}')).reverse().join('');
  return `${open}"bottom"${close}`;
}

function spliceDeep(text: string): string {
  return text.replace(/"@@deep:(\d+)@@"/g, (_, depth: string) => deepText(Number(depth)));
}

const redosRoute = (n: number) => `FROM /messages/* WHERE ${'('.repeat(n)}a = 'x'${' OR a = \'x\''.repeat(n)}${')'.repeat(n)} INTO $upstream`;

/** Values chosen to break parsers and translators, beside fast-check's arbitrary JSON. */
const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue() as fc.Arbitrary<Json>,
  fc.constantFrom<Json>(
    '', ' ', '$(HOME)', '$$(x)', '${PATH}', '\u0000', '\ud800', '../../etc/passwd', '/', '/dev/../etc', 'host', 'true', '1e309',
    '__proto__', 'constructor', -1, 0, -0, 1e308, 2 ** 53 + 1, 65536, 4294967296, true, false, null, [], {},
    { __proto__: { polluted: true } } as unknown as Json, { constructor: { prototype: { polluted: true } } },
    redosRoute(30), 'FROM /messages/* WHERE ' + 'a = 1 AND '.repeat(2000) + 'a = 1 INTO $upstream',
    { Type: 'bind', Source: '/', Target: '/host' }, { name: 'x', hostPath: { path: '/' } }, { name: 's', secret: { secretName: 'x-iothub' } },
  ),
  fc.integer({ min: 1, max: 200_000 }).map((n): Json => 'x'.repeat(n)),
  fc.integer({ min: 1, max: 20_000 }).map((n): Json => deepMarker(n)),
  fc.integer({ min: 1, max: 2_000 }).map((n): Json => Array.from({ length: n }, (_, i) => `m${i}`)),
  fc.integer({ min: 1, max: 500 }).map((n): Json => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
);

export type Mutation =
  | { op: 'replace'; at: number; value: Json }
  | { op: 'delete'; at: number }
  | { op: 'insert'; at: number; key: string; value: Json }
  | { op: 'chunk'; at: number; size: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('replace' as const), at: fc.nat(), value: hostileValue }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'k8s', 'HostConfig', 'createOptions01', 'env', 'status')), value: hostileValue }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('chunk' as const), at: fc.nat(), size: fc.integer({ min: 1, max: 600 }) }), weight: 1 },
);

export interface FuzzCase {
  seed: number;
  mutations: Mutation[];
  /** Handed over as an EdgeDeployment rather than a deployment manifest. */
  asResource: boolean;
  settings: 'default' | 'permissive' | 'restricted';
}

export function fuzzCaseArbitrary(seedCount: number): fc.Arbitrary<FuzzCase> {
  return fc.record({
    seed: fc.nat({ max: seedCount - 1 }),
    mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }),
    asResource: fc.boolean(),
    settings: fc.constantFrom('default' as const, 'permissive' as const, 'restricted' as const),
  });
}

interface Slot {
  parent: Json[] | { [key: string]: Json };
  key: string | number;
}

/** Every value slot in the tree, descending into createOptions strings that hold JSON objects. */
function slots(node: Json, out: Slot[] = [], depth = 0): Slot[] {
  if (depth > 40 || node === null || typeof node !== 'object') return out;
  const entries: [string | number, Json][] = Array.isArray(node) ? node.map((v, i) => [i, v]) : Object.entries(node);
  for (const [key, value] of entries) {
    out.push({ parent: node, key });
    slots(value, out, depth + 1);
  }
  return out;
}

function get(slot: Slot): Json {
  return (slot.parent as Record<string | number, Json>)[slot.key] as Json;
}

function set(slot: Slot, value: Json): void {
  (slot.parent as Record<string | number, Json>)[slot.key] = value;
}

/** createOptions strings are opened to objects so mutations reach inside them, and closed again after. */
function openCreateOptions(tree: Json): Slot[] {
  const opened = slots(tree).filter((s) => s.key === 'createOptions' && typeof get(s) === 'string');
  for (const slot of opened) {
    try {
      set(slot, JSON.parse(get(slot) as string) as Json);
    } catch {
      // left as the string it was
    }
  }
  return opened;
}

function apply(tree: Json, m: Mutation): void {
  const all = slots(tree);
  if (all.length === 0) return;
  const slot = all[m.at % all.length]!;
  switch (m.op) {
    case 'replace':
      set(slot, structuredClone(m.value));
      break;
    case 'delete':
      if (Array.isArray(slot.parent)) slot.parent.splice(Number(slot.key), 1);
      else delete slot.parent[slot.key as string];
      break;
    case 'insert': {
      const target = get(slot);
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
        // defineProperty, so a "__proto__" key becomes an own key as JSON.parse would make it.
        Object.defineProperty(target, m.key, { value: structuredClone(m.value), enumerable: true, writable: true, configurable: true });
      }
      break;
    }
    case 'chunk': {
      const value = get(slot);
      if (typeof value === 'string' && !Array.isArray(slot.parent) && slot.key === 'createOptions') {
        delete slot.parent.createOptions;
        for (let i = 0, n = 0; i < value.length; i += m.size, n++) slot.parent[n === 0 ? 'createOptions' : `createOptions${String(n).padStart(2, '0')}`] = value.slice(i, i + m.size);
      }
      break;
    }
  }
}

/** The text a case hands to the pipeline: a deployment manifest, or an EdgeDeployment made of its twins. */
export function caseText(seeds: readonly Json[], c: FuzzCase): string {
  const tree = structuredClone(seeds[c.seed % seeds.length]!) as Json;
  const opened = openCreateOptions(tree);
  for (const m of c.mutations.filter((x) => x.op !== 'chunk')) apply(tree, m);
  if (c.asResource) {
    // An EdgeDeployment holds createOptions as objects, so the opened ones stay open.
    const content = field(field(tree, 'modulesContent'), '$edgeAgent');
    const spec = { agent: field(content, 'properties.desired'), hub: field(field(field(tree, 'modulesContent'), '$edgeHub'), 'properties.desired') };
    return spliceDeep(JSON.stringify({ apiVersion: 'iotedge-operator.io/v1alpha1', kind: 'EdgeDeployment', metadata: { name: 'fuzz', namespace: 'fuzz' }, spec }));
  }
  for (const slot of opened) {
    const value = get(slot);
    if (value !== null && typeof value === 'object') set(slot, JSON.stringify(value));
  }
  for (const m of c.mutations.filter((x) => x.op === 'chunk')) apply(tree, m);
  // A deep value inside a createOptions string stays a string (escaped quotes), as hostile text would be.
  return spliceDeep(JSON.stringify(tree));
}

function field(node: Json | undefined, key: string): Json | undefined {
  return node !== null && typeof node === 'object' && !Array.isArray(node) ? node[key] : undefined;
}

const settingsByName: Record<FuzzCase['settings'], OperatorSettings> = {
  default: defaultSettings,
  permissive: settingsWith({ podSecurity: 'privileged', allowPrivileged: true, allowHostPath: true, allowDevices: true, allowAddedCapabilities: true, allowServiceAccountToken: true, allowUnsafeSysctls: true }),
  restricted: settingsWith({ podSecurity: 'restricted' }),
};

export type PipelineResult = 'valid' | 'invalid';

/** What `iotedge-operator validate` runs: read, check the manifest, translate under the policy. Throws only on a bug. */
export function runPipeline(text: string, settingsName: FuzzCase['settings']): PipelineResult {
  const source = desiredStateSource(text);
  if (!source.ok) return checked('invalid', source.errors);
  const manifest = manifestOf(source.value);
  if (!manifest.ok) return checked('invalid', manifest.errors);
  const settings = settingsByName[settingsName];
  const translated = translateOffline(manifest.value, targetFor(source.value, {}, settings), source.value);
  if (!translated.ok) return checked('invalid', translated.errors);
  // A translation must be JSON-serialisable: what the controller sends to the API server.
  JSON.stringify(translated.value);
  return 'valid';
}

/** Every refusal carries a catalogue code and a JSON pointer; anything else is a bug. */
function checked(result: PipelineResult, errors: { code: string; path: string }[]): PipelineResult {
  if (errors.length === 0) throw new Error('refused without an error');
  for (const e of errors) {
    if (!/^IEO_[A-Z0-9_]+$/.test(e.code)) throw new Error(`error without a catalogue code: ${JSON.stringify(e).slice(0, 200)}`);
    if (e.path !== '' && !e.path.startsWith('/')) throw new Error(`error path is not a JSON pointer: ${e.path.slice(0, 200)}`);
  }
  return result;
}
