// The operator's shipped rights against the code's own table of the kinds it manages
// (src/controller/resources.ts): every managed kind is granted what applying, watching and pruning need, and
// the admission policy narrows the writes of exactly those kinds. test/integration/rbac.test.ts proves the
// rights sufficient by running the operator under them; this file catches a kind added to the table alone.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import type { V1PolicyRule } from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import { edgeDeploymentResource, ownedKinds } from '../../src/controller/resources.ts';
import { labelKeys, managedBy } from '../../src/translate/names.ts';

const root = new URL('../..', import.meta.url).pathname;
const parse = (file: string) => loadAll(readFileSync(join(root, 'manifests/base', file), 'utf8')) as { kind: string; rules?: V1PolicyRule[]; spec?: unknown }[];
const clusterRole = parse('rbac.yaml').find((o) => o.kind === 'ClusterRole')!;

interface ResourceRule { apiGroups: string[]; apiVersions: string[]; operations: string[]; resources: string[] }
interface PolicySpec {
  matchConstraints: { resourceRules: ResourceRule[] };
  validations: { expression: string }[];
}
const policy = parse('admission-policy.yaml').find((o) => o.kind === 'ValidatingAdmissionPolicy')!.spec as PolicySpec;

const groupOf = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.split('/')[0]! : '');

/** The verbs the rules grant on a group's resource (resourceNames ignored). */
function verbsFor(rules: V1PolicyRule[], group: string, resource: string): string[] {
  return [...new Set(rules.filter((r) => r.apiGroups?.includes(group) && r.resources?.includes(resource)).flatMap((r) => r.verbs))].sort();
}

describe('manifests/base/rbac.yaml', () => {
  it.each(ownedKinds.map((k) => [k.kind, k] as const))('grants apply, watch and prune of %s, and nothing more', (_, kind) => {
    expect(verbsFor(clusterRole.rules!, groupOf(kind.apiVersion), kind.plural)).toEqual(['create', 'delete', 'get', 'list', 'patch', 'watch']);
  });

  it('grants no wildcard, no escalation, and update only on the owner\'s finalizers', () => {
    const all = clusterRole.rules!;
    for (const r of all) {
      expect([...r.apiGroups ?? [], ...r.resources ?? [], ...r.verbs]).not.toContain('*');
      for (const verb of ['escalate', 'bind', 'impersonate', 'deletecollection']) expect(r.verbs).not.toContain(verb);
      // Everything is written by server-side apply (patch); update only where blockOwnerDeletion needs it.
      if (r.verbs.includes('update')) expect(r.resources).toEqual(['edgedeployments/finalizers']);
    }
    const group = groupOf(edgeDeploymentResource.apiVersion);
    expect(verbsFor(all, group, edgeDeploymentResource.plural)).toEqual(['get', 'list', 'patch', 'watch']);
    expect(verbsFor(all, group, `${edgeDeploymentResource.plural}/status`)).toEqual(['patch']);
    expect(verbsFor(all, '', 'events')).toEqual(['create']);
    expect(verbsFor(all, '', 'namespaces')).toEqual(['get', 'patch']);
    expect(verbsFor(all, '', 'nodes')).toEqual(['list']);
  });
});

describe('manifests/base/admission-policy.yaml', () => {
  it('narrows create, update and delete of exactly the managed kinds, and updates of Namespaces', () => {
    const covered = policy.matchConstraints.resourceRules.flatMap((r) => r.resources.flatMap((res) => r.apiGroups.map((g) => `${g}/${res}:${r.operations.join(',')}`))).sort();
    const expected = [...ownedKinds.map((k) => `${groupOf(k.apiVersion)}/${k.plural}:CREATE,UPDATE,DELETE`), '/namespaces:UPDATE'].sort();
    expect(covered).toEqual(expected);
    expect(policy.matchConstraints.resourceRules.every((r) => r.apiVersions.join() === '*')).toBe(true);
  });

  it('names the label the operator puts on its objects', () => {
    const expressions = policy.validations.map((v) => v.expression).join('\n');
    expect(expressions).toContain(`variables.newLabels[?'${labelKeys.managedBy}'] == optional.of('${managedBy}')`);
    expect(expressions).toContain(`variables.oldLabels[?'${labelKeys.managedBy}'] == optional.of('${managedBy}')`);
  });
});
