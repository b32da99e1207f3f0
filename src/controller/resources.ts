// The kinds the operator owns and where they live in the API. One table, so watching, applying and
// pruning can never disagree about a kind.
import type { KubernetesObject } from '@kubernetes/client-node';
import { edgeDeploymentGroup, edgeDeploymentPlural, edgeDeploymentVersion } from '../api/edge-deployment.ts';

export interface OwnedKind {
  apiVersion: string;
  kind: string;
  plural: string;
}

/** Deletion order for pruning: workloads before what they use. */
export const ownedKinds: readonly OwnedKind[] = [
  { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' },
  { apiVersion: 'v1', kind: 'Pod', plural: 'pods' },
  { apiVersion: 'v1', kind: 'Service', plural: 'services' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', plural: 'networkpolicies' },
  { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
  { apiVersion: 'v1', kind: 'Secret', plural: 'secrets' },
  { apiVersion: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts' },
  { apiVersion: 'v1', kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims' },
];

export const edgeDeploymentResource: OwnedKind = {
  apiVersion: `${edgeDeploymentGroup}/${edgeDeploymentVersion}`,
  kind: 'EdgeDeployment',
  plural: edgeDeploymentPlural,
};

function apiPrefix(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/** `/apis/apps/v1/deployments` (all namespaces) or `/apis/apps/v1/namespaces/ns/deployments`. */
export function collectionPath(kind: OwnedKind, namespace?: string): string {
  return namespace ? `${apiPrefix(kind.apiVersion)}/namespaces/${namespace}/${kind.plural}` : `${apiPrefix(kind.apiVersion)}/${kind.plural}`;
}

export function objectPath(kind: OwnedKind, namespace: string, name: string): string {
  return `${collectionPath(kind, namespace)}/${encodeURIComponent(name)}`;
}

export function kindOf(obj: KubernetesObject): OwnedKind {
  const found = ownedKinds.find((k) => k.kind === obj.kind && k.apiVersion === obj.apiVersion);
  if (!found) throw new Error(`the operator does not manage ${obj.apiVersion}/${obj.kind}`);
  return found;
}

export function objectId(obj: KubernetesObject): string {
  return `${obj.kind}/${obj.metadata?.name ?? ''}`;
}
