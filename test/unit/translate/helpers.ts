// Accessors over a translation result for assertions.
import { expect } from '@jest/globals';
import type { KubernetesObject, V1Container, V1Deployment, V1NetworkPolicy, V1Pod, V1PodSpec, V1Service } from '@kubernetes/client-node';
import type { ManifestIssue, ModuleSpec, Outcome } from '../../../src/manifest/model.ts';
import { defaultSettings, translate, type OperatorSettings, type TranslationResult } from '../../../src/translate/index.ts';
import { input, manifest } from './builders.ts';

export function value(outcome: Outcome<TranslationResult>): TranslationResult {
  if (!outcome.ok) throw new Error(`translation failed: ${JSON.stringify(outcome.errors, null, 2)}`);
  return outcome.value;
}

export function errors(outcome: Outcome<TranslationResult>): ManifestIssue[] {
  if (outcome.ok) throw new Error('translation succeeded where it should have failed');
  return outcome.errors;
}

/** Translates one user module (plus the default edgeHub). */
export function one(spec: ModuleSpec, settings: OperatorSettings = defaultSettings): Outcome<TranslationResult> {
  return translate(input(manifest([spec]), settings));
}

export function find<T extends KubernetesObject>(result: TranslationResult, kind: string, name: string): T {
  const object = result.objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!object) throw new Error(`no ${kind} ${name} among ${result.objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  return object as T;
}

export function has(result: TranslationResult, kind: string, name: string): boolean {
  return result.objects.some((o) => o.kind === kind && o.metadata?.name === name);
}

export function podSpec(result: TranslationResult, name: string): V1PodSpec {
  const deployment = result.objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === name) as V1Deployment | undefined;
  const spec = deployment?.spec?.template.spec ?? (find<V1Pod>(result, 'Pod', name).spec);
  expect(spec).toBeDefined();
  return spec as V1PodSpec;
}

export function container(result: TranslationResult, name: string): V1Container {
  const c = podSpec(result, name).containers[0];
  expect(c).toBeDefined();
  return c as V1Container;
}

export function env(result: TranslationResult, name: string): Record<string, string | undefined> {
  return Object.fromEntries((container(result, name).env ?? []).map((e) => [e.name, e.value]));
}

export function service(result: TranslationResult, name: string): V1Service {
  return find<V1Service>(result, 'Service', name);
}

export function policy(result: TranslationResult, name: string): V1NetworkPolicy {
  return find<V1NetworkPolicy>(result, 'NetworkPolicy', name);
}

export function codes(issues: ManifestIssue[]): string[] {
  return issues.map((i) => i.code);
}
