import { describe, expect, it } from '@jest/globals';
import type { DeploymentManifest, ManifestIssue, Outcome } from '../../../src/manifest/index.ts';
import {
  defaultStartupOrder,
  moduleTwinsDesired,
  normaliseSchemaVersion,
  parseDeploymentManifest,
  parseDesiredProperties,
  parseManifestText,
} from '../../../src/manifest/index.ts';

type Json = Record<string, unknown>;

const A = '/modulesContent/$edgeAgent/properties.desired';
const H = '/modulesContent/$edgeHub/properties.desired';

function agentDesired(overrides: Json = {}, modules: Json = {}): Json {
  return {
    schemaVersion: '1.1',
    runtime: { type: 'docker', settings: { minDockerVersion: 'v1.25', loggingOptions: '', registryCredentials: {} } },
    systemModules: {
      edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5', createOptions: '{}' } },
      edgeHub: {
        type: 'docker',
        status: 'running',
        restartPolicy: 'always',
        settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5', createOptions: '{"HostConfig":{"PortBindings":{"8883/tcp":[{"HostPort":"8883"}]}}}' },
      },
    },
    modules: {
      filter: { version: '1.0', type: 'docker', status: 'running', restartPolicy: 'always', settings: { image: 'myacr.azurecr.io/filter:1.0', createOptions: '{}' } },
      ...modules,
    },
    ...overrides,
  };
}

function hubDesired(routes: Json = { up: 'FROM /messages/modules/filter/outputs/* INTO $upstream' }, overrides: Json = {}): Json {
  return { schemaVersion: '1.1', routes, storeAndForwardConfiguration: { timeToLiveSecs: 7200 }, ...overrides };
}

function doc(agent: Json | undefined = agentDesired(), hub: Json | undefined = hubDesired(), extra: Json = {}): Json {
  const modulesContent: Json = { ...extra };
  if (agent !== undefined) modulesContent.$edgeAgent = { 'properties.desired': agent };
  if (hub !== undefined) modulesContent.$edgeHub = { 'properties.desired': hub };
  return { modulesContent };
}

function valid(outcome: Outcome<DeploymentManifest>): DeploymentManifest {
  if (!outcome.ok) throw new Error(`expected a manifest, got ${JSON.stringify(outcome.errors, null, 2)}`);
  return outcome.value;
}

function errorsOf(outcome: Outcome<unknown>): ManifestIssue[] {
  if (outcome.ok) throw new Error('expected errors, got a value');
  return outcome.errors;
}

function withModule(id: string, module: Json): Json {
  return doc(agentDesired({}, { [id]: module }));
}

function module(settings: Json = {}, fields: Json = {}): Json {
  return { type: 'docker', settings: { image: 'myacr.azurecr.io/m:1', ...settings }, ...fields };
}

describe('parseManifestText', () => {
  it('reads JSON and YAML', () => {
    expect(parseManifestText('{"a": [1, "b"]}')).toEqual({ ok: true, value: { a: [1, 'b'] }, warnings: [] });
    expect(parseManifestText('\uFEFF  {"a": 1}')).toMatchObject({ ok: true, value: { a: 1 } });
    expect(parseManifestText('modulesContent:\n  $edgeAgent:\n    properties.desired:\n      schemaVersion: "1.1"\n')).toEqual({
      ok: true,
      value: { modulesContent: { $edgeAgent: { 'properties.desired': { schemaVersion: '1.1' } } } },
      warnings: [],
    });
  });
  it('reports a JSON fault with its line and column', () => {
    const [e] = errorsOf(parseManifestText('{\n  "a": 1,\n  "b": 2,\n}'));
    expect(e).toMatchObject({ code: 'IEO_MANIFEST_JSON', path: '' });
    expect(e?.message).toMatch(/^invalid JSON at line 4, column 1: /);
  });
  it('reports a YAML fault with its line and column (1-based)', () => {
    const [e] = errorsOf(parseManifestText('a: 1\nb: [1, 2\nc: 3\n'));
    expect(e?.code).toBe('IEO_MANIFEST_JSON');
    expect(e?.message).toMatch(/^invalid YAML at line \d+, column \d+: /);
    const [, line] = /line (\d+)/.exec(e?.message ?? '') ?? [];
    expect(Number(line)).toBeGreaterThanOrEqual(2);
  });
  it('reports truncated JSON at its end', () => {
    expect(errorsOf(parseManifestText('{\n  "a": [1,'))[0]?.message).toMatch(/^invalid JSON at line 2, column 11: /);
  });
  it('refuses empty text', () => {
    expect(errorsOf(parseManifestText(' \n '))).toEqual([{ code: 'IEO_MANIFEST_JSON', path: '', message: 'the manifest is empty' }]);
  });
});

describe('parseDeploymentManifest: input forms', () => {
  it('accepts a deployment.json object', () => {
    const m = valid(parseDeploymentManifest(doc()));
    expect(Object.keys(m.agent.modules)).toEqual(['filter']);
    expect(m.hub.routes.up?.route).toBe('FROM /messages/modules/filter/outputs/* INTO $upstream');
  });
  it('accepts just modulesContent, with paths from that root', () => {
    const content = doc(agentDesired({}, { bad: module({}, { restartPolicy: 'sometimes' }) })).modulesContent;
    expect(errorsOf(parseDeploymentManifest(content))).toEqual([
      expect.objectContaining({ path: '/$edgeAgent/properties.desired/modules/bad/restartPolicy' }),
    ]);
    expect(valid(parseDeploymentManifest(doc().modulesContent)).agent.schemaVersion).toBe('1.1');
  });
  it('accepts the {content: {modulesContent}} form of az iot edge deployment show', () => {
    const wrapped = { id: 'prod', content: doc(agentDesired({}, { bad: module({}, { status: 'paused' }) })) };
    expect(errorsOf(parseDeploymentManifest(wrapped))[0]?.path).toBe('/content/modulesContent/$edgeAgent/properties.desired/modules/bad/status');
  });
  it('accepts JSON and YAML text', () => {
    expect(valid(parseDeploymentManifest(JSON.stringify(doc()))).agent.modules.filter?.image).toBe('myacr.azurecr.io/filter:1.0');
    const yaml = [
      'modulesContent:',
      '  $edgeAgent:',
      '    properties.desired:',
      '      schemaVersion: "1.1"',
      '      runtime: {type: docker, settings: {}}',
      '      systemModules:',
      '        edgeAgent: {type: docker, settings: {image: "mcr.microsoft.com/azureiotedge-agent:1.5"}}',
      '      modules:',
      '        sensor:',
      '          type: docker',
      '          env: {MessageCount: {value: 5}}',
      '          settings:',
      '            image: mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5',
      '            createOptions: {HostConfig: {Privileged: true}}',
    ].join('\n');
    const m = valid(parseDeploymentManifest(yaml));
    expect(m.agent.modules.sensor).toMatchObject({ env: { MessageCount: '5' }, createOptions: { HostConfig: { Privileged: true } } });
    expect(m.hub.routes).toEqual({});
  });
  it('passes text faults through', () => {
    expect(errorsOf(parseDeploymentManifest('{"modulesContent": '))[0]?.code).toBe('IEO_MANIFEST_JSON');
  });
  it('refuses a non-object', () => {
    expect(errorsOf(parseDeploymentManifest([1, 2]))[0]).toMatchObject({ code: 'IEO_MANIFEST_SCHEMA', path: '' });
    expect(errorsOf(parseDeploymentManifest(42))[0]?.code).toBe('IEO_MANIFEST_SCHEMA');
  });
  it('reports a missing or empty $edgeAgent as IEO_EMPTY_CONFIG', () => {
    expect(errorsOf(parseDeploymentManifest({ something: 1 }))[0]?.code).toBe('IEO_EMPTY_CONFIG');
    expect(errorsOf(parseDeploymentManifest({ modulesContent: { $edgeHub: { 'properties.desired': hubDesired() } } }))).toEqual([expect.objectContaining({ code: 'IEO_EMPTY_CONFIG', path: A })]);
    expect(errorsOf(parseDeploymentManifest({ modulesContent: { $edgeAgent: {} } }))).toEqual([expect.objectContaining({ code: 'IEO_EMPTY_CONFIG', path: A })]);
    expect(errorsOf(parseDeploymentManifest(doc({}))).map((e) => e.code)).toEqual(['IEO_EMPTY_CONFIG']);
    expect(errorsOf(parseDeploymentManifest(doc({ $version: 4 }))).map((e) => e.code)).toEqual(['IEO_EMPTY_CONFIG']);
  });
  it('refuses an $edgeHub twin without desired properties', () => {
    const d = doc();
    (d.modulesContent as Json).$edgeHub = { 'properties.reported': {} };
    expect(errorsOf(parseDeploymentManifest(d))).toEqual([expect.objectContaining({ code: 'IEO_MANIFEST_SCHEMA', path: '/modulesContent/$edgeHub/properties.desired' })]);
  });
});

describe('schema versions', () => {
  it.each([
    ['1.0', '1.0'],
    ['1.1', '1.1'],
    ['1.0.0', '1.0'],
    ['1.1.0', '1.1'],
  ])('normalises %s to %s', (written, normal) => {
    expect(normaliseSchemaVersion(written)).toBe(normal);
    const m = valid(parseDeploymentManifest(doc(agentDesired({ schemaVersion: written }), hubDesired(undefined, { schemaVersion: written }))));
    expect(m.agent.schemaVersion).toBe(normal);
    expect(m.hub.schemaVersion).toBe(normal);
  });
  it.each(['2.0', '1.2', '1.1.1', '0.9', '', 'latest'])('refuses $edgeAgent schemaVersion %j with IEO_SCHEMA_VERSION', (v) => {
    const errors = errorsOf(parseDeploymentManifest(doc(agentDesired({ schemaVersion: v }))));
    expect(errors).toEqual([{ code: 'IEO_SCHEMA_VERSION', path: `${A}/schemaVersion`, message: expect.stringContaining('use "1.0" or "1.1"') }]);
  });
  it('refuses a numeric schemaVersion, with a hint for YAML', () => {
    expect(errorsOf(parseDeploymentManifest(doc(agentDesired({ schemaVersion: 1.1 }))))).toEqual([
      { code: 'IEO_SCHEMA_VERSION', path: `${A}/schemaVersion`, message: '$edgeAgent schemaVersion must be a string such as "1.1", not the number 1.1 (in YAML, quote it)' },
    ]);
  });
  it.each(['1.4', '2.0', '1'])('refuses $edgeHub schemaVersion %j with IEO_SCHEMA_VERSION, as edgeHub does', (v) => {
    expect(errorsOf(parseDeploymentManifest(doc(agentDesired(), hubDesired(undefined, { schemaVersion: v }))))).toEqual([
      expect.objectContaining({ code: 'IEO_SCHEMA_VERSION', path: `${H}/schemaVersion` }),
    ]);
  });
  it('reports a missing schemaVersion as a schema fault', () => {
    const agent = agentDesired();
    delete agent.schemaVersion;
    expect(errorsOf(parseDeploymentManifest(doc(agent)))).toEqual([
      { code: 'IEO_MANIFEST_SCHEMA', path: `${A}/schemaVersion`, message: "$edgeAgent desired properties is missing required property 'schemaVersion'" },
    ]);
  });
  it('refuses startupOrder under schemaVersion 1.0, at its path', () => {
    const agent = agentDesired({ schemaVersion: '1.0' }, { late: module({}, { startupOrder: 3 }) });
    expect(errorsOf(parseDeploymentManifest(doc(agent, hubDesired(undefined, { schemaVersion: '1.0' }))))).toEqual([
      { code: 'IEO_SCHEMA_VERSION', path: `${A}/modules/late/startupOrder`, message: 'startupOrder needs schemaVersion 1.1; $edgeAgent declares 1.0' },
    ]);
  });
  it('refuses route objects under $edgeHub schemaVersion 1.0, at their path', () => {
    const hub = hubDesired({ s: 'FROM /messages/* INTO $upstream', o: { route: 'FROM /messages/* INTO $upstream', priority: 1 } }, { schemaVersion: '1.0' });
    expect(errorsOf(parseDeploymentManifest(doc(agentDesired(), hub)))).toEqual([
      expect.objectContaining({ code: 'IEO_SCHEMA_VERSION', path: `${H}/routes/o` }),
    ]);
  });
  it('gates each twin on its own version', () => {
    const m = valid(parseDeploymentManifest(doc(agentDesired({ schemaVersion: '1.0' }), hubDesired({ o: { route: 'FROM /messages/* INTO $upstream', priority: 2 } }))));
    expect(m.hub.routes.o?.priority).toBe(2);
  });
});

describe('defaults and normalisation', () => {
  it('fills edgeAgent defaults for a bare module', () => {
    const m = valid(parseDeploymentManifest(withModule('bare', module())));
    expect(m.agent.modules.bare).toEqual({
      id: 'bare',
      system: false,
      type: 'docker',
      status: 'running',
      restartPolicy: 'always',
      startupOrder: defaultStartupOrder,
      imagePullPolicy: 'on-create',
      image: 'myacr.azurecr.io/m:1',
      createOptions: {},
      env: {},
    });
  });
  it('keeps what is written', () => {
    const m = valid(
      parseDeploymentManifest(
        withModule('job', module({}, { version: '2.1', status: 'stopped', restartPolicy: 'never', startupOrder: 4, imagePullPolicy: 'never', env: { A: { value: 'x' }, N: { value: 3 }, B: { value: false } } })),
      ),
    );
    expect(m.agent.modules.job).toMatchObject({ version: '2.1', status: 'stopped', restartPolicy: 'never', startupOrder: 4, imagePullPolicy: 'never', env: { A: 'x', N: '3', B: 'false' } });
  });
  it('marks edgeHub as a system module and keeps edgeAgent apart', () => {
    const m = valid(parseDeploymentManifest(doc()));
    expect(m.agent.systemModules.edgeHub).toMatchObject({ id: 'edgeHub', system: true, createOptions: { HostConfig: { PortBindings: { '8883/tcp': [{ HostPort: '8883' }] } } } });
    expect(m.agent.systemModules.edgeAgent).toEqual({ image: 'mcr.microsoft.com/azureiotedge-agent:1.5', createOptions: {}, env: {} });
    expect(m.agent.runtime).toEqual({ type: 'docker', settings: { minDockerVersion: 'v1.25', loggingOptions: '', registryCredentials: {} } });
  });
  it('gives string routes priority 9 and keeps route-object priority and TTL', () => {
    const m = valid(parseDeploymentManifest(doc(agentDesired(), hubDesired({ s: 'FROM /messages/* INTO $upstream', o: { route: 'FROM /* INTO $upstream', timeToLiveSecs: 60 }, p: { route: 'FROM /* INTO $upstream', priority: 0 } }))));
    expect(m.hub.routes).toEqual({
      s: { name: 's', route: 'FROM /messages/* INTO $upstream', priority: 9 },
      o: { name: 'o', route: 'FROM /* INTO $upstream', priority: 9, timeToLiveSecs: 60 },
      p: { name: 'p', route: 'FROM /* INTO $upstream', priority: 0 },
    });
    expect(m.hub.storeAndForwardConfiguration).toEqual({ timeToLiveSecs: 7200 });
  });
});

describe('createOptions', () => {
  it('parses a JSON string, takes an object as is, and reads "" or absence as no options', () => {
    const parse = (settings: Json) => valid(parseDeploymentManifest(withModule('m', module(settings)))).agent.modules.m?.createOptions;
    expect(parse({ createOptions: '{"Cmd":["--x"]}' })).toEqual({ Cmd: ['--x'] });
    expect(parse({ createOptions: { HostConfig: { Privileged: true } } })).toEqual({ HostConfig: { Privileged: true } });
    expect(parse({ createOptions: '' })).toEqual({});
    expect(parse({})).toEqual({});
  });
  it('joins createOptions, createOptions01, 02 … in numeric order whatever the key order', () => {
    const full = JSON.stringify({ Env: ['A=1', 'B=2'], HostConfig: { Binds: ['/a:/b'] } });
    const settings: Json = { createOptions02: full.slice(20), createOptions: full.slice(0, 10), createOptions01: full.slice(10, 20) };
    expect(valid(parseDeploymentManifest(withModule('m', module(settings)))).agent.modules.m?.createOptions).toEqual(JSON.parse(full));
  });
  it('refuses a gap in the numbering, at the chunk after the gap', () => {
    const settings = { createOptions: '{"Cmd":', createOptions01: '["a"', createOptions03: ']}' };
    expect(errorsOf(parseDeploymentManifest(withModule('m', module(settings))))).toEqual([
      {
        code: 'IEO_CREATE_OPTIONS_CHUNKS',
        path: `${A}/modules/m/settings/createOptions03`,
        message: 'createOptions chunks must be numbered 01, 02, … without gaps: createOptions03 found where createOptions02 was expected',
      },
    ]);
  });
  it('refuses chunks without a string createOptions to continue', () => {
    expect(errorsOf(parseDeploymentManifest(withModule('m', module({ createOptions01: '{}' }))))[0]).toMatchObject({ code: 'IEO_CREATE_OPTIONS_CHUNKS', path: `${A}/modules/m/settings/createOptions01` });
    expect(errorsOf(parseDeploymentManifest(withModule('m', module({ createOptions: {}, createOptions01: '{}' }))))[0]?.code).toBe('IEO_CREATE_OPTIONS_CHUNKS');
  });
  it('refuses chunks numbered from 00', () => {
    expect(errorsOf(parseDeploymentManifest(withModule('m', module({ createOptions: '{', createOptions00: '}' }))))[0]).toMatchObject({ code: 'IEO_CREATE_OPTIONS_CHUNKS', path: `${A}/modules/m/settings/createOptions00` });
  });
  it('refuses invalid JSON at the createOptions path, naming the chunks', () => {
    const [e] = errorsOf(parseDeploymentManifest(withModule('m', module({ createOptions: '{"Cmd": [', createOptions01: '"a",]}' }))));
    expect(e).toMatchObject({ code: 'IEO_CREATE_OPTIONS', path: `${A}/modules/m/settings/createOptions` });
    expect(e?.message).toMatch(/^createOptions \(joined with createOptions01\) is not valid JSON: /);
  });
  it('refuses JSON that is not an object', () => {
    expect(errorsOf(parseDeploymentManifest(withModule('m', module({ createOptions: '["a"]' })))))
      .toEqual([{ code: 'IEO_CREATE_OPTIONS', path: `${A}/modules/m/settings/createOptions`, message: 'createOptions must be a JSON object, not ["a"]' }]);
  });
  it('checks edgeAgent and edgeHub createOptions too', () => {
    const agent = agentDesired();
    const sys = agent.systemModules as Json;
    (sys.edgeAgent as Json).settings = { image: 'a', createOptions: '{' };
    expect(errorsOf(parseDeploymentManifest(doc(agent)))[0]?.path).toBe(`${A}/systemModules/edgeAgent/settings/createOptions`);
  });
  it('refuses an unknown settings key such as a misspelt chunk', () => {
    expect(errorsOf(parseDeploymentManifest(withModule('m', module({ createOptions: '{}', createOptions1: '{}' }))))).toEqual([
      { code: 'IEO_MANIFEST_SCHEMA', path: `${A}/modules/m/settings/createOptions1`, message: "unknown property 'createOptions1' in settings" },
    ]);
  });
});

describe('schema validation', () => {
  it('says which values restartPolicy may take', () => {
    expect(errorsOf(parseDeploymentManifest(withModule('filter', module({}, { restartPolicy: 'unless-stopped' }))))).toEqual([
      { code: 'IEO_MANIFEST_SCHEMA', path: `${A}/modules/filter/restartPolicy`, message: 'restartPolicy must be one of always, on-failure, on-unhealthy, never (got "unless-stopped")' },
    ]);
  });
  it('points at a missing image', () => {
    expect(errorsOf(parseDeploymentManifest(withModule('filter', { type: 'docker', settings: { createOptions: '{}' } })))).toEqual([
      { code: 'IEO_MANIFEST_SCHEMA', path: `${A}/modules/filter/settings/image`, message: "settings is missing required property 'image'" },
    ]);
  });
  it('reports every fault at once, each at its own path', () => {
    const errors = errorsOf(
      parseDeploymentManifest(
        doc(
          agentDesired({}, {
            a: module({ image: '' }, { status: 'paused', type: 'podman' }),
            b: module({}, { startupOrder: -1, env: { X: { value: { nested: true } } }, restartpolicy: 'never' }),
          }),
          hubDesired({ r: { route: 'FROM /* INTO $upstream', priority: 12 }, n: 5 }),
        ),
      ),
    );
    expect(errors.map((e) => [e.path, e.message])).toEqual(
      expect.arrayContaining([
        [`${A}/modules/a/type`, 'type must be docker, not "podman"'],
        [`${A}/modules/a/status`, 'status must be one of running, stopped (got "paused")'],
        [`${A}/modules/a/settings/image`, 'image must not be empty'],
        [`${A}/modules/b/startupOrder`, 'startupOrder must be from 0 to 4294967295 (got -1)'],
        [`${A}/modules/b/env/X/value`, 'value must be a string or a number or a boolean, not {"nested":true}'],
        [`${A}/modules/b/restartpolicy`, "unknown property 'restartpolicy' in b"],
        [`${H}/routes/r/priority`, 'priority must be from 0 to 9 (got 12)'],
        [`${H}/routes/n`, 'n must be a string or an object, not 5'],
      ]),
    );
    expect(errors).toHaveLength(8);
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(['IEO_MANIFEST_SCHEMA']));
  });
  it('escapes JSON pointer tokens in paths', () => {
    const hub = hubDesired({ 'a/b~c': { route: 'FROM /* INTO $upstream', extra: 1 } });
    expect(errorsOf(parseDeploymentManifest(doc(agentDesired(), hub)))[0]?.path).toBe(`${H}/routes/a~1b~0c/extra`);
  });
  it('requires the runtime and the edgeAgent system module', () => {
    const agent = agentDesired();
    delete agent.runtime;
    (agent.systemModules as Json).edgeAgent = undefined;
    delete (agent.systemModules as Json).edgeAgent;
    expect(errorsOf(parseDeploymentManifest(doc(agent))).map((e) => e.path)).toEqual([`${A}/runtime`, `${A}/systemModules/edgeAgent`]);
  });
  it('accepts twin metadata keys in desired properties', () => {
    valid(parseDeploymentManifest(doc(agentDesired({ $version: 7, $metadata: { $lastUpdated: '2024-01-01T00:00:00Z' } }), hubDesired(undefined, { $version: 3 }))));
  });
});

describe('module names', () => {
  it("accepts every character IoT Hub allows: letters, digits and - . + % _ # * ? ! ( ) , : = @ $ '", () => {
    const id = "a.b-c+d%e_f#g*h?i!j(k)l,m:n=o@p$q'r";
    expect(valid(parseDeploymentManifest(withModule(id, module()))).agent.modules[id]?.id).toBe(id);
    const longest = 'm'.repeat(128);
    expect(valid(parseDeploymentManifest(withModule(longest, module()))).agent.modules[longest]).toBeDefined();
  });
  it.each([
    ['temp sensor', /contains ' '/],
    ['sensor/1', /contains '\/'/],
    ['thermomètre', /contains 'è'/],
    ['m'.repeat(129), /is 129 characters; IoT Hub allows at most 128/],
    ['$custom', /starts with '\$'/],
    ['edgeHub', /reserved: edgeHub may appear only under systemModules/],
    ['edgeAgent', /reserved: edgeAgent/],
    ['EdgeHub', /reserved: edgeHub/],
  ])('refuses %j', (id, message) => {
    const errors = errorsOf(parseDeploymentManifest(withModule(id, module())));
    expect(errors).toEqual([{ code: 'IEO_MODULE_NAME', path: `${A}/modules/${id.replace(/~/g, '~0').replace(/\//g, '~1')}`, message: expect.stringMatching(message) }]);
  });
});

describe('twin limits', () => {
  function nest(levels: number): Json {
    let v: Json = { leaf: 'x' };
    for (let i = levels; i >= 1; i--) v = { [`l${i}`]: v };
    return v;
  }
  it('allows ten nested objects and refuses eleven, naming the depth and the path', () => {
    valid(parseDeploymentManifest(doc(agentDesired(), hubDesired(), { filter: { 'properties.desired': nest(10) } })));
    const errors = errorsOf(parseDeploymentManifest(doc(agentDesired(), hubDesired(), { filter: { 'properties.desired': nest(11) } })));
    expect(errors).toEqual([
      {
        code: 'IEO_TWIN_LIMIT',
        path: '/modulesContent/filter/properties.desired/l1/l2/l3/l4/l5/l6/l7/l8/l9/l10/l11',
        message: 'the desired properties of filter nest 11 levels deep here; IoT Hub allows at most 10',
      },
    ]);
  });
  it('counts arrays as a level', () => {
    const errors = errorsOf(parseDeploymentManifest(doc(agentDesired(), hubDesired(), { filter: { 'properties.desired': { a: nest(9).l1, list: [[[[[[[[[[[1]]]]]]]]]]] } } })));
    expect(errors[0]?.path).toBe('/modulesContent/filter/properties.desired/list/0/0/0/0/0/0/0/0/0/0');
  });
  it('allows 32768 bytes of desired properties and refuses one more, counting UTF-8 bytes', () => {
    const sized = (bytes: number, unit = 'a') => {
      const overhead = JSON.stringify({ blob: '' }).length;
      const unitBytes = new TextEncoder().encode(unit).length;
      return { blob: unit.repeat(Math.floor((bytes - overhead) / unitBytes)) + 'a'.repeat((bytes - overhead) % unitBytes) };
    };
    valid(parseDeploymentManifest(doc(agentDesired(), hubDesired(), { filter: { 'properties.desired': sized(32768) } })));
    valid(parseDeploymentManifest(doc(agentDesired(), hubDesired(), { filter: { 'properties.desired': { ...sized(32768), $version: 12 } } })));
    expect(errorsOf(parseDeploymentManifest(doc(agentDesired(), hubDesired(), { filter: { 'properties.desired': sized(32769) } })))).toEqual([
      { code: 'IEO_TWIN_LIMIT', path: '/modulesContent/filter/properties.desired', message: 'the desired properties of filter are 32769 bytes of JSON; IoT Hub allows at most 32768 (32 KB)' },
    ]);
    expect(errorsOf(parseDeploymentManifest(doc(agentDesired(), hubDesired(), { filter: { 'properties.desired': sized(32769, 'é') } })))[0]?.message).toMatch(/32769 bytes/);
  });
  it('applies the size limit to $edgeAgent itself', () => {
    const env = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`SETTING_${i}`, { value: 'v'.repeat(80) }]));
    const errors = errorsOf(parseDeploymentManifest(withModule('big', module({}, { env }))));
    expect(errors).toEqual([expect.objectContaining({ code: 'IEO_TWIN_LIMIT', path: A, message: expect.stringMatching(/^the desired properties of \$edgeAgent are \d+ bytes/) })]);
  });
  it('refuses a module twin without desired properties', () => {
    expect(errorsOf(parseDeploymentManifest(doc(agentDesired(), hubDesired(), { filter: { tags: {} } })))).toEqual([
      expect.objectContaining({ code: 'IEO_MANIFEST_SCHEMA', path: '/modulesContent/filter/properties.desired' }),
    ]);
  });
});

describe('registry credentials', () => {
  const withCredentials = (registryCredentials: Json) =>
    doc(agentDesired({ runtime: { type: 'docker', settings: { registryCredentials } } }));
  it('keeps inline passwords and secret references', () => {
    const m = valid(
      parseDeploymentManifest(
        withCredentials({
          acr: { address: 'myacr.azurecr.io', username: 'myacr', password: 'fictional' },
          ref: { address: 'registry.example.com:5000', username: 'bot', passwordSecretRef: { name: 'pull-secret', key: 'password' } },
        }),
      ),
    );
    expect(m.agent.runtime.settings.registryCredentials).toEqual({
      acr: { name: 'acr', address: 'myacr.azurecr.io', username: 'myacr', password: 'fictional' },
      ref: { name: 'ref', address: 'registry.example.com:5000', username: 'bot', passwordSecretRef: { name: 'pull-secret', key: 'password' } },
    });
  });
  it('requires address and username', () => {
    expect(errorsOf(parseDeploymentManifest(withCredentials({ acr: { password: 'p' } }))).map((e) => e.path)).toEqual([
      `${A}/runtime/settings/registryCredentials/acr/address`,
      `${A}/runtime/settings/registryCredentials/acr/username`,
    ]);
  });
  it('requires a password or a passwordSecretRef', () => {
    expect(errorsOf(parseDeploymentManifest(withCredentials({ acr: { address: 'a', username: 'u' } })))).toEqual([
      { code: 'IEO_MANIFEST_SCHEMA', path: `${A}/runtime/settings/registryCredentials/acr`, message: "registry credential 'acr' needs a password or a passwordSecretRef {name, key}" },
    ]);
    expect(errorsOf(parseDeploymentManifest(withCredentials({ acr: { address: 'a', username: 'u', passwordSecretRef: { name: 's' } } })))[0]?.path).toBe(
      `${A}/runtime/settings/registryCredentials/acr/passwordSecretRef/key`,
    );
  });
});

describe('routes inside a manifest', () => {
  it('returns warnings for routes naming absent modules', () => {
    const outcome = parseDeploymentManifest(doc(agentDesired(), hubDesired({ r: 'FROM /messages/modules/ghost/* INTO $upstream' })));
    expect(outcome).toMatchObject({ ok: true, warnings: [{ code: 'IEO_W_UNKNOWN_ROUTE_MODULE', path: `${H}/routes/r` }] });
  });
  it('fails on route syntax errors', () => {
    const errors = errorsOf(parseDeploymentManifest(doc(agentDesired(), hubDesired({ r: { route: 'FROM /messages/* WHERE a = INTO $upstream', priority: 1 } }))));
    expect(errors).toEqual([expect.objectContaining({ code: 'IEO_ROUTE_SYNTAX', path: `${H}/routes/r` })]);
  });
});

describe('parseDesiredProperties', () => {
  it('builds a manifest from the two twins, paths from the given prefix', () => {
    const m = valid(parseDesiredProperties(agentDesired(), hubDesired()));
    expect(m.hub.routes.up).toBeDefined();
    const errors = errorsOf(parseDesiredProperties(agentDesired({}, { x: module({}, { status: 'off' }) }), hubDesired(), '/twins'));
    expect(errors[0]?.path).toBe('/twins/$edgeAgent/properties.desired/modules/x/status');
    expect(errorsOf(parseDesiredProperties(agentDesired({}, { x: module({}, { status: 'off' }) }), undefined))[0]?.path).toBe('/$edgeAgent/properties.desired/modules/x/status');
  });
  it('treats an absent $edgeHub as no routes, at the agent schema version', () => {
    const m = valid(parseDesiredProperties(agentDesired({ schemaVersion: '1.0' }), undefined));
    expect(m.hub).toEqual({ schemaVersion: '1.0', routes: {}, storeAndForwardConfiguration: {} });
  });
  it('reports an absent $edgeAgent as IEO_EMPTY_CONFIG', () => {
    expect(errorsOf(parseDesiredProperties(undefined, hubDesired()))).toEqual([
      { code: 'IEO_EMPTY_CONFIG', path: '/$edgeAgent/properties.desired', message: 'the deployment has no $edgeAgent configuration' },
    ]);
    expect(errorsOf(parseDesiredProperties(null, null))[0]?.code).toBe('IEO_EMPTY_CONFIG');
  });
  it('refuses desired properties that are not objects', () => {
    expect(errorsOf(parseDesiredProperties('x', hubDesired()))).toEqual([expect.objectContaining({ code: 'IEO_MANIFEST_SCHEMA', path: '/$edgeAgent/properties.desired' })]);
    expect(errorsOf(parseDesiredProperties(agentDesired(), []))).toEqual([expect.objectContaining({ code: 'IEO_MANIFEST_SCHEMA', path: '/$edgeHub/properties.desired' })]);
  });
  it('does not alias the input: editing the result leaves the input intact', () => {
    const agent = agentDesired({}, { m: module({ createOptions: { HostConfig: { Privileged: true } } }) });
    const m = valid(parseDesiredProperties(agent, undefined));
    (m.agent.modules.m?.createOptions.HostConfig as Json).Privileged = false;
    expect((((agent.modules as Json).m as Json).settings as Json).createOptions).toEqual({ HostConfig: { Privileged: true } });
  });
});

describe('moduleTwinsDesired', () => {
  it('returns each module twin’s desired properties, without the system twins', () => {
    const d = doc(agentDesired(), hubDesired(), { filter: { 'properties.desired': { threshold: 25 } }, other: { 'properties.desired': { a: 1 } } });
    expect(moduleTwinsDesired(d)).toEqual({ filter: { threshold: 25 }, other: { a: 1 } });
    expect(moduleTwinsDesired(d.modulesContent)).toEqual({ filter: { threshold: 25 }, other: { a: 1 } });
    expect(moduleTwinsDesired('nonsense')).toEqual({});
  });
});
