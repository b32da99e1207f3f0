// The iotedge-operator command run as users run it: a child process over the manifest fixtures,
// checked for exit codes, the paths in its errors, stdin, help, and that no password leaks.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { dump, load, loadAll } from 'js-yaml';
import type { EdgeDeployment } from '../../../src/api/edge-deployment.ts';

const repoRoot = join(import.meta.dirname, '../../..');
const fixtures = join(repoRoot, 'test/fixtures/manifests');
const example = join(repoRoot, 'manifests/examples/simulated-temperature-sensor.yaml');
const scratch = mkdtempSync(join(tmpdir(), 'iotedge-cli-test-'));
const passwords = ['fictional-password-1', 'fictional-password-2', 'fictional-password-3'];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], input?: string, entry = 'src/cli/main.ts'): Run {
  const result = spawnSync(process.execPath, [entry, ...args], { cwd: repoRoot, input: input ?? '', encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function fixture(name: string): string {
  return join(fixtures, name);
}

function scratchFile(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

function expectNoStackTrace(run: Run): void {
  expect(run.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
}

describe('iotedge-operator --help', () => {
  it('lists the subcommands and exits 0', () => {
    const run = cli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Usage: iotedge-operator/);
    for (const sub of ['validate', 'convert', 'render']) expect(run.stdout).toMatch(new RegExp(`^\\s+${sub} .*<file>`, 'm'));
    expect(run.stdout).toContain('Exit codes: 0 success, 1 invalid input, 2 usage error.');
  });

  it.each(['validate', 'convert', 'render'])('explains %s', (sub) => {
    const run = cli([sub, '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Usage: iotedge-operator ${sub} [options] <file>`);
    expect(run.stdout).toContain('- for stdin');
  });

  it('runs through the package bin as well', () => {
    const run = cli(['--help'], undefined, 'bin/iotedge-operator.js');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Usage: iotedge-operator/);
  });
});

describe('usage errors exit 2 with a message, not a stack trace', () => {
  it.each([
    [['validate'], "error: missing required argument 'file'"],
    [['frobnicate'], "error: unknown command 'frobnicate'"],
    [['validate', '--colour', fixture('stopped-module.json')], "error: unknown option '--colour'"],
    [['validate', join(scratch, 'missing.json')], 'cannot read'],
    [['convert', fixture('stopped-module.json')], "error: required option '--namespace <namespace>' not specified"],
    [['convert', fixture('stopped-module.json'), '--namespace', 'Not_A_Name'], '--namespace "Not_A_Name" is not a valid Kubernetes name'],
    [[], 'Usage: iotedge-operator'],
  ])('%j', (args, message) => {
    const run = cli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expectNoStackTrace(run);
  });
});

describe('validate', () => {
  it('says valid and exits 0 for a good manifest, with its warnings', () => {
    const run = cli(['validate', fixture('sensor-filter-routes.json')]);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout.trim().split('\n').pop()).toBe('valid');
  });

  it.each([
    ['invalid/bad-route.json', 'IEO_ROUTE_SYNTAX', '/modulesContent/$edgeHub/properties.desired/routes/broken'],
    ['invalid/unknown-schema-version.json', 'IEO_SCHEMA_VERSION', '/modulesContent/$edgeAgent/properties.desired/schemaVersion'],
    ['invalid/bad-create-options-json.json', 'IEO_CREATE_OPTIONS', '/modulesContent/$edgeAgent/properties.desired/modules/webapp/settings/createOptions'],
    ['invalid/bad-restart-policy.json', 'IEO_MANIFEST_SCHEMA', '/modulesContent/$edgeAgent/properties.desired/modules/'],
  ])('reports %s as %s at its path and exits 1', (file, code, path) => {
    const run = cli(['validate', fixture(file)]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`^error ${code} ${path.replace(/[$.*]/g, '\\$&')}\\S*: \\S`, 'm'));
    expect(run.stdout).toMatch(/^invalid: \d+ errors?$/m);
    expectNoStackTrace(run);
  });

  it("checks the translation under the operator's policy, which --settings changes", () => {
    const denied = cli(['validate', fixture('privileged-module.json')]);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toMatch(/^error IEO_POLICY_DENIED \/modulesContent\/\$edgeAgent\/properties\.desired\/modules\/modbus\/settings\/createOptions\/HostConfig\/Privileged: /m);
    const settings = scratchFile('permissive.yaml', 'allowPrivileged: true\nallowAddedCapabilities: true\nallowDevices: true\n');
    expect(cli(['validate', fixture('privileged-module.json'), '--settings', settings]).code).toBe(0);
    expect(cli(['validate', fixture('privileged-module.json'), '--manifest-only']).code).toBe(0);
  });

  it('reads an EdgeDeployment from stdin and reports faults at /spec paths', () => {
    expect(cli(['validate', '-'], readFileSync(example, 'utf8'))).toMatchObject({ code: 0, stdout: expect.stringMatching(/valid\n$/) });
    const resource = load(readFileSync(example, 'utf8')) as EdgeDeployment;
    const sensor = resource.spec.agent?.modules?.SimulatedTemperatureSensor;
    if (!sensor) throw new Error('example without sensor');
    sensor.settings.image = '';
    sensor.settings.createOptions = '{"Env": [}';
    const run = cli(['validate', '-'], dump(resource));
    expect(run.code).toBe(1);
    const errors = run.stdout.split('\n').filter((l) => l.startsWith('error '));
    expect(errors).toEqual([
      expect.stringMatching(/^error IEO_\w+ \/spec\/agent\/modules\/SimulatedTemperatureSensor\/settings\/(image|createOptions): /),
      expect.stringMatching(/^error IEO_\w+ \/spec\/agent\/modules\/SimulatedTemperatureSensor\/settings\/(image|createOptions): /),
    ]);
  });

  it('reports unreadable input as invalid (exit 1)', () => {
    const run = cli(['validate', '-'], 'spec: [unclosed\n');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^error IEO_MANIFEST_JSON \/: invalid YAML at line \d+, column \d+/m);
  });

  it('never prints an inline password it refuses', () => {
    const resource = load(readFileSync(example, 'utf8')) as EdgeDeployment;
    if (resource.spec.agent) {
      resource.spec.agent.runtime = { settings: { registryCredentials: { acr: { address: 'acr.example.io', username: 'u', password: passwords[0], passwordSecretRef: { name: 's', key: 'k' } } as never } } };
    }
    const run = cli(['validate', '-'], dump(resource));
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('error IEO_MANIFEST_SCHEMA /spec/agent/runtime/settings/registryCredentials/acr/password: ');
    expect(run.stdout + run.stderr).not.toContain(passwords[0]);
  });
});

describe('convert', () => {
  it('prints the password Secret, then the EdgeDeployment that refers to it', () => {
    const run = cli(['convert', fixture('registry-credentials.json'), '--namespace', 'edge-1', '--name', 'line-3', '--device-id', 'Line3']);
    expect(run.code).toBe(0);
    const [secret, resource, ...rest] = loadAll(run.stdout) as [Record<string, unknown>, EdgeDeployment];
    expect(rest).toEqual([]);
    expect(secret).toMatchObject({ kind: 'Secret', metadata: { name: 'line-3-registry-credentials', namespace: 'edge-1' } });
    expect(Object.values(secret.stringData as Record<string, string>).sort()).toEqual(passwords);
    expect(resource).toMatchObject({ kind: 'EdgeDeployment', metadata: { name: 'line-3', namespace: 'edge-1' }, spec: { deviceId: 'Line3' } });
    const resourceText = JSON.stringify(resource);
    for (const p of passwords) expect(resourceText + run.stderr).not.toContain(p);
  });

  it('reads stdin, and its output validates and renders', () => {
    const converted = cli(['convert', '-', '--namespace', 'edge-1'], readFileSync(fixture('sensor-filter-routes.json'), 'utf8'));
    expect(converted.code).toBe(0);
    expect(converted.stderr).toMatch(/^warning IEO_W_MODULE_TWIN_NOT_CONVERTED \/modulesContent\/\w+\/properties\.desired: /m);
    expect(cli(['validate', '-'], converted.stdout)).toMatchObject({ code: 0 });
    const rendered = cli(['render', '-'], converted.stdout);
    expect(rendered.code).toBe(0);
    expect((loadAll(rendered.stdout) as Array<{ kind: string }>).some((o) => o.kind === 'Deployment')).toBe(true);
  });

  it('refuses an invalid manifest with the faults at their paths (exit 1)', () => {
    const run = cli(['convert', fixture('invalid/bad-route.json'), '--namespace', 'edge-1']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^error IEO_ROUTE_SYNTAX \/modulesContent\/\$edgeHub\/properties\.desired\/routes\/broken: /m);
  });

  it('refuses an EdgeDeployment (exit 1)', () => {
    const run = cli(['convert', example, '--namespace', 'edge-1']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('is already an EdgeDeployment');
  });
});

describe('render', () => {
  it('prints the Kubernetes objects for an EdgeDeployment, in its namespace', () => {
    const run = cli(['render', example, '--namespace', 'edge-7']);
    expect(run.code).toBe(0);
    const objects = loadAll(run.stdout) as Array<{ kind: string; metadata: { name: string; namespace: string } }>;
    expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['Deployment', 'Service', 'ServiceAccount']));
    expect(new Set(objects.map((o) => o.metadata.namespace))).toEqual(new Set(['edge-7']));
    expect(objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name).sort()).toEqual(['edgehub', 'simulatedtemperaturesensor']);
  });

  it('leaves Secrets out and prints no password anywhere', () => {
    const run = cli(['render', fixture('registry-credentials.json')]);
    expect(run.code).toBe(0);
    const objects = loadAll(run.stdout) as Array<{ kind: string }>;
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    expect(run.stderr).toMatch(/^note: \d+ Secret\(s\) not printed .*--include-secrets/m);
    const everything = run.stdout + run.stderr;
    for (const p of passwords) {
      expect(everything).not.toContain(p);
      expect(everything).not.toContain(Buffer.from(p).toString('base64').slice(0, 16));
    }
  });

  it('prints the pull Secrets with --include-secrets', () => {
    const run = cli(['render', '--include-secrets', fixture('registry-credentials.json')]);
    expect(run.code).toBe(0);
    const secrets = (loadAll(run.stdout) as Array<{ kind: string; type?: string; data?: Record<string, string> }>).filter((o) => o.kind === 'Secret');
    expect(secrets.length).toBeGreaterThan(0);
    const configs = secrets.map((s) => Buffer.from(s.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8')).join('\n');
    for (const p of passwords) expect(configs).toContain(p);
  });

  it('redacts a password reused in another value with a quoted placeholder, so the YAML still parses', () => {
    const manifest = JSON.parse(readFileSync(fixture('registry-credentials.json'), 'utf8')) as { modulesContent: { $edgeAgent: { 'properties.desired': { modules: Record<string, { env?: Record<string, { value: string }> }> } } } };
    const modules = manifest.modulesContent.$edgeAgent['properties.desired'].modules;
    const first = Object.keys(modules)[0]!;
    modules[first]!.env = { REGISTRY_PASSWORD: { value: passwords[0]! }, LOGIN: { value: `user:${passwords[0]!}` } };
    const run = cli(['render', scratchFile('reused-password.json', JSON.stringify(manifest))]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain(passwords[0]);
    expect(run.stdout).toMatch(/value: '\*\*\*'/);
    const env = (loadAll(run.stdout) as Array<{ kind: string; spec?: { template?: { spec?: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } } } }>)
      .filter((o) => o.kind === 'Deployment').flatMap((d) => d.spec?.template?.spec?.containers[0]?.env ?? []);
    expect(env.filter((e) => e.name === 'REGISTRY_PASSWORD' || e.name === 'LOGIN').map((e) => e.value).sort()).toEqual(['***', 'user:***']);
  });

  it('prints warnings on stderr and errors with exit 1', () => {
    const denied = cli(['render', fixture('privileged-module.json')]);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toBe('');
    expect(denied.stderr).toMatch(/^error IEO_POLICY_DENIED \/modulesContent\/.+\/HostConfig\/Privileged: /m);
  });

  it('takes operator settings from a file and refuses unknown ones', () => {
    const settings = scratchFile('no-netpol.yaml', 'networkPolicies: false\nstorage:\n  storageClassName: fast\n');
    const run = cli(['render', example, '--settings', settings]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('kind: NetworkPolicy');
    expect(cli(['render', example]).stdout).toContain('kind: NetworkPolicy');
    const bad = cli(['render', example, '--settings', scratchFile('bad.yaml', 'allowPrivileged: yes please\nreplicas: 3\n')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('allowPrivileged: must be a boolean');
    expect(bad.stderr).toContain('replicas: unknown setting');
    expectNoStackTrace(bad);
  });
});
