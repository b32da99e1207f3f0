// The CRD is the resource's only definition, so its schema is checked for what kubectl explain and the
// API server need: a description everywhere, a structural type everywhere, and names the code agrees with.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { load } from 'js-yaml';
import {
  edgeDeploymentCrdName,
  edgeDeploymentGroup,
  edgeDeploymentKind,
  edgeDeploymentPlural,
  edgeDeploymentShortName,
  edgeDeploymentSingular,
  edgeDeploymentVersion,
} from '../../../src/api/edge-deployment.ts';
import { crdFile, crdSchema } from '../../../scripts/gen-types.ts';

type Node = Record<string, unknown>;
const crdText = readFileSync(join(import.meta.dirname, '../../..', crdFile), 'utf8');
const crd = load(crdText) as Node & { metadata: Node; spec: Node & { names: Node; versions: Node[] } };
const schema = crdSchema(crdText);

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every schema node below the root, with its path (`*` for a map's values, `[]` for list items). */
function walk(node: Node, path: string, out: Array<{ path: string; node: Node }> = []): Array<{ path: string; node: Node }> {
  if (isNode(node.properties)) {
    for (const [name, child] of Object.entries(node.properties)) {
      if (!isNode(child)) throw new Error(`${path}.${name} is not a schema`);
      const childPath = path ? `${path}.${name}` : name;
      out.push({ path: childPath, node: child });
      walk(child, childPath, out);
    }
  }
  if (isNode(node.additionalProperties)) {
    out.push({ path: `${path}.*`, node: node.additionalProperties });
    walk(node.additionalProperties, `${path}.*`, out);
  }
  if (isNode(node.items)) {
    out.push({ path: `${path}[]`, node: node.items });
    walk(node.items, `${path}[]`, out);
  }
  return out;
}

const nodes = walk(schema, '');

describe('the EdgeDeployment CRD', () => {
  it('names the resource as src/api/edge-deployment.ts does', () => {
    expect(crd.metadata.name).toBe(edgeDeploymentCrdName);
    expect(crd.spec.group).toBe(edgeDeploymentGroup);
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({
      kind: edgeDeploymentKind,
      plural: edgeDeploymentPlural,
      singular: edgeDeploymentSingular,
      shortNames: [edgeDeploymentShortName],
      categories: ['iotedge'],
    });
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([[edgeDeploymentVersion, true, true]]);
  });

  it('describes every field (metadata aside, which the API server forbids describing)', () => {
    expect(nodes.length).toBeGreaterThan(80);
    const undescribed = nodes
      .filter(({ path }) => path !== 'metadata')
      .filter(({ node }) => typeof node.description !== 'string' || node.description.trim().length < 3)
      .map(({ path }) => path);
    expect(undescribed).toEqual([]);
  });

  it('is structural: every field has a type unless it preserves unknown fields', () => {
    const untyped = nodes.filter(({ node }) => typeof node.type !== 'string' && node['x-kubernetes-preserve-unknown-fields'] !== true);
    expect(untyped.map(({ path }) => path)).toEqual([]);
  });

  it('keeps unknown fields only where Docker createOptions go', () => {
    const open = nodes.filter(({ node }) => node['x-kubernetes-preserve-unknown-fields'] === true).map(({ path }) => path);
    expect(open).toEqual([
      'spec.agent.systemModules.edgeAgent.settings.createOptions',
      'spec.agent.systemModules.edgeHub.settings.createOptions',
      'spec.agent.modules.*.settings.createOptions',
    ]);
    // No type, so that both the manifest's JSON string and an object are accepted.
    for (const path of open) expect(nodes.find((n) => n.path === path)?.node.type).toBeUndefined();
  });

  it('has no field that could hold a registry password, except one a rule rejects', () => {
    const passwordFields = nodes.filter(({ path }) => /password$/i.test(path)).map(({ path }) => path);
    expect(passwordFields).toEqual(['spec.agent.runtime.settings.registryCredentials.*.password']);
    const credential = nodes.find((n) => n.path === 'spec.agent.runtime.settings.registryCredentials.*')?.node;
    expect(credential?.['x-kubernetes-validations']).toEqual([expect.objectContaining({ rule: '!has(self.password)' })]);
  });

  it('declares the same fields for edgeHub and user modules', () => {
    const fieldsOf = (prefix: string) =>
      nodes.filter(({ path }) => path.startsWith(`${prefix}.`)).map(({ path }) => path.slice(prefix.length));
    expect(fieldsOf('spec.agent.systemModules.edgeHub')).toEqual(fieldsOf('spec.agent.modules.*'));
  });

  it('has a status subresource and the printer columns READY, MODULES, UPSTREAM, DESIRED-VERSION and AGE', () => {
    const version = crd.spec.versions[0] as Node & { subresources: Node; additionalPrinterColumns: Node[] };
    expect(version.subresources).toEqual({ status: {} });
    const columns = Object.fromEntries(version.additionalPrinterColumns.map((c) => [String(c.name).toUpperCase(), c.jsonPath]));
    expect(columns).toMatchObject({
      READY: '.status.conditions[?(@.type=="Ready")].status',
      MODULES: '.status.moduleSummary',
      UPSTREAM: '.status.edgeHub.upstream.state',
      'HUB-CLIENTS': '.status.edgeHub.connectedClients',
      'DESIRED-VERSION': '.status.lastDesiredVersion',
      AGE: '.metadata.creationTimestamp',
    });
  });

  it('constrains the enums IoT Edge defines', () => {
    const enumOf = (path: string) => nodes.find((n) => n.path === path)?.node.enum;
    expect(enumOf('spec.agent.modules.*.restartPolicy')).toEqual(['never', 'on-failure', 'on-unhealthy', 'always']);
    expect(enumOf('spec.agent.modules.*.status')).toEqual(['running', 'stopped']);
    expect(enumOf('spec.agent.modules.*.imagePullPolicy')).toEqual(['on-create', 'never']);
    expect(enumOf('spec.agent.schemaVersion')).toEqual(['1.0', '1.1']);
    expect(enumOf('status.modules.*.runtimeStatus')).toEqual(['running', 'backoff', 'failed', 'stopped', 'unknown', 'unhealthy', 'dead']);
  });
});
