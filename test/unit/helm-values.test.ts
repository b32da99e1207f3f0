// The chart and the kustomize base against the repository's sources of truth: the CRD, package.json,
// the operator's settings and its command line. Rendering needs helm, so that part lives in
// test/integration/helm.test.ts; this file reads the files only.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Ajv } from 'ajv';
import { load, loadAll } from 'js-yaml';
import { runCommand } from '../../src/cli/run.ts';
import { defaultSettings } from '../../src/translate/settings.ts';

const root = new URL('../..', import.meta.url).pathname;
const chart = join(root, 'helm/iotedge-operator');
const read = (...path: string[]) => readFileSync(join(...path), 'utf8');
const packageJson = JSON.parse(read(root, 'package.json')) as { version: string };
const values = load(read(chart, 'values.yaml')) as Record<string, unknown> & {
  storage: Record<string, unknown>; securityPolicy: Record<string, boolean>; leaderElection: Record<string, unknown>;
};
const schema = JSON.parse(read(chart, 'values.schema.json')) as Record<string, unknown>;
const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);
const runOptions = runCommand().options;
const runDefault = (flag: string) => runOptions.find((o) => o.long === flag)?.defaultValue as unknown;

describe('CRD copies', () => {
  const crds = readdirSync(join(root, 'crds')).sort();
  it.each([['the chart', join(chart, 'crds')], ['the kustomize base', join(root, 'manifests/base/crds')]])(
    '%s carries crds/ byte for byte (cp crds/* into it after changing the CRD)',
    (_, copy) => {
      expect(readdirSync(copy).sort()).toEqual(crds);
      for (const file of crds) expect({ file, text: read(copy, file) }).toEqual({ file, text: read(root, 'crds', file) });
    },
  );
});

describe('versions', () => {
  it('the chart version and appVersion follow package.json', () => {
    const chartYaml = load(read(chart, 'Chart.yaml')) as { version: string; appVersion: string };
    expect(chartYaml).toMatchObject({ version: packageJson.version, appVersion: packageJson.version });
  });
  it('the kustomize base deploys the image of package.json\'s version', () => {
    const kustomization = load(read(root, 'manifests/base/kustomization.yaml')) as { images: { name: string; newTag: string }[] };
    expect(kustomization.images).toEqual([{ name: 'iotedge-operator', newTag: packageJson.version }]);
  });
});

describe('values.schema.json', () => {
  it('accepts the chart\'s own values.yaml', () => {
    expect(validate(values) ? [] : validate.errors).toEqual([]);
  });

  it('describes exactly the keys values.yaml documents, at every level', () => {
    const keys = (node: unknown, prefix = ''): string[] =>
      node && typeof node === 'object' && !Array.isArray(node)
        ? Object.entries(node).flatMap(([k, v]) => [`${prefix}${k}`, ...keys(v, `${prefix}${k}.`)])
        : [];
    type SchemaNode = { properties?: Record<string, SchemaNode>; additionalProperties?: unknown };
    const schemaKeys = (node: SchemaNode, prefix = ''): string[] =>
      Object.entries(node.properties ?? {}).flatMap(([k, v]) => [`${prefix}${k}`, ...schemaKeys(v, `${prefix}${k}.`)]);
    // Free-form maps (nodeSelector, resources.requests, …) have no properties of their own in the schema, and
    // affinity's parts are optional.
    const documented = keys(values).filter((k) => !/^(nodeSelector|resources\.(requests|limits))\./.test(k));
    const described = schemaKeys(schema as SchemaNode).filter((k) => !k.startsWith('affinity.'));
    expect(described.sort()).toEqual(documented.sort());
  });

  it.each([
    [{ mode: 'bogus' }, '/mode'],
    [{ replicas: -1 }, '/replicas'],
    [{ concurrency: 0 }, '/concurrency'],
    [{ logLevel: 'loud' }, '/logLevel'],
    [{ storage: { accessMode: 'ReadWriteSometimes' } }, '/storage/accessMode'],
    [{ storage: { volumeSize: 'big' } }, '/storage/volumeSize'],
    [{ portBindingServiceType: 'ExternalName' }, '/portBindingServiceType'],
    [{ securityPolicy: { allowPrivileged: 'yes' } }, '/securityPolicy/allowPrivileged'],
    [{ image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy'],
    [{ serviceMonitor: { interval: 'often' } }, '/serviceMonitor/interval'],
    [{ watchNamespaces: ['Not_A_Namespace'] }, '/watchNamespaces/0'],
    [{ mode: 'namespace', watchNamespaces: ['other'] }, '/watchNamespaces'],
    [{ iotHub: { connectionStrin: 'x' } }, '/iotHub'],
  ])('rejects %j at %s', (override, path) => {
    const merged = { ...values, ...override } as Record<string, unknown>;
    for (const [k, v] of Object.entries(override)) {
      const base = values[k];
      if (v && typeof v === 'object' && !Array.isArray(v) && base && typeof base === 'object') merged[k] = { ...base, ...v };
    }
    expect(validate(merged)).toBe(false);
    expect(validate.errors?.map((e) => e.instancePath)).toContain(path);
  });

  it('accepts cluster mode with a list of namespaces', () => {
    expect(validate({ ...values, mode: 'cluster', watchNamespaces: ['dev1', 'dev2'] })).toBe(true);
  });
});

describe('defaults', () => {
  it('match the operator\'s own defaults, so that installing by chart or by hand behaves the same', () => {
    expect(values.storage).toMatchObject({
      volumeSize: defaultSettings.storage.defaultVolumeSize,
      accessMode: defaultSettings.storage.accessMode,
      retainVolumes: defaultSettings.storage.retainVolumesOnModuleRemoval,
      useMountSourceForVolumeName: defaultSettings.storage.useMountSourceForVolumeName,
    });
    expect((values as Record<string, unknown>).moduleSecurity).toEqual({ runAsNonRoot: defaultSettings.runAsNonRoot, runAsUser: defaultSettings.runAsUser });
    expect(values.portBindingServiceType).toBe(defaultSettings.portBindingServiceType);
    expect(values.networkPolicies).toBe(defaultSettings.networkPolicies);
    expect(values.securityPolicy).toEqual({
      podSecurity: defaultSettings.podSecurity,
      allowUnsafeSysctls: defaultSettings.allowUnsafeSysctls,
      allowServiceAccountToken: defaultSettings.allowServiceAccountToken,
      allowVolumeTypes: defaultSettings.allowVolumeTypes,
      mountableSecrets: defaultSettings.mountableSecrets,
      labelNamespaces: true,
      allowPrivileged: defaultSettings.allowPrivileged,
      allowHostNetwork: defaultSettings.allowHostNetwork,
      allowHostPid: defaultSettings.allowHostPid,
      allowHostIpc: defaultSettings.allowHostIpc,
      allowHostPath: defaultSettings.allowHostPath,
      allowAddedCapabilities: defaultSettings.allowAddedCapabilities,
      allowDevices: defaultSettings.allowDevices,
    });
    expect(values.logLevel).toBe(runDefault('--log-level'));
    expect(String(values.concurrency)).toBe(runDefault('--concurrency'));
    expect(values.leaderElection.enabled).toBe(runDefault('--leader-elect'));
  });

  it('list every access mode and Service type the operator accepts, and no other', () => {
    const properties = schema.properties as Record<string, { enum?: string[]; properties?: Record<string, { enum?: string[] }> }>;
    const choices = (flag: string) => runOptions.find((o) => o.long === flag)?.argChoices;
    expect(properties.storage?.properties?.accessMode?.enum?.slice().sort()).toEqual(choices('--volume-access-mode')?.slice().sort());
    expect(properties.portBindingServiceType?.enum?.slice().sort()).toEqual(choices('--port-binding-service-type')?.slice().sort());
  });
});

describe('the kustomize base Deployment', () => {
  const docs = loadAll(read(root, 'manifests/base/deployment.yaml')) as {
    spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
  }[];
  const env = docs[0]!.spec.template.spec.containers[0]!.env;

  it('sets only variables `iotedge-operator run` reads (or POD_NAMESPACE, which it reads for "own")', () => {
    const known = new Set([...runOptions.map((o) => o.envVar), 'POD_NAMESPACE']);
    expect(env.map((e) => e.name).filter((n) => !known.has(n))).toEqual([]);
  });

  it('binds probes and metrics to every interface of the pod', () => {
    expect(env).toEqual(expect.arrayContaining([
      { name: 'IOTEDGE_OPERATOR_HEALTH_PROBE_BIND_ADDRESS', value: '0.0.0.0:8081' },
      { name: 'IOTEDGE_OPERATOR_METRICS_BIND_ADDRESS', value: '0.0.0.0:8080' },
    ]));
  });
});
