// The module identities an EdgeDeployment's device got in IoT Hub outlive the resource unless something
// removes them: IoT Edge's runtime deletes the identities it manages when their modules go, so the operator
// does the same when the whole EdgeDeployment goes. A finalizer holds the deletion until then, but never
// for ever: an unreachable hub gets a deadline, a Warning Event, and the finalizer is removed anyway.
import type { EdgeDeployment } from '../api/edge-deployment.ts';
import { edgeDeploymentApiVersion, edgeDeploymentKind } from '../api/edge-deployment.ts';
import type { KubeClient } from '../controller/kube-client.ts';
import { edgeDeploymentResource, objectPath } from '../controller/resources.ts';
import { withDeadline } from '../runtime/deadline.ts';
import type { DeviceApi } from './device-api.ts';
import { edgeManagedBy } from './identities.ts';

export const identitiesFinalizer = 'iotedge-operator.io/module-identities';
/** A field manager of its own: twin sync's spec applies must not drop the finalizer, nor it their fields. */
const finalizerFieldManager = 'iotedge-operator-finalizer';

export function hasIdentitiesFinalizer(ed: EdgeDeployment | undefined): boolean {
  return ed?.metadata?.finalizers?.includes(identitiesFinalizer) === true;
}

async function applyFinalizers(client: KubeClient, ed: EdgeDeployment, finalizers: string[]): Promise<void> {
  const { namespace, name } = ed.metadata as { namespace: string; name: string };
  await client.request('PATCH', objectPath(edgeDeploymentResource, namespace, name), { fieldManager: finalizerFieldManager, force: 'true' }, {
    body: { apiVersion: edgeDeploymentApiVersion, kind: edgeDeploymentKind, metadata: { name, namespace, ...(finalizers.length ? { finalizers } : {}) } },
    contentType: 'application/apply-patch+yaml',
  });
}

/** Holds the resource's deletion until the identities are removed (before any identity is created). */
export async function addIdentitiesFinalizer(client: KubeClient, ed: EdgeDeployment): Promise<void> {
  if (!hasIdentitiesFinalizer(ed)) await applyFinalizers(client, ed, [identitiesFinalizer]);
}

/** Lets the deletion go on: the finalizer field manager's apply without it. */
export async function removeIdentitiesFinalizer(client: KubeClient, ed: EdgeDeployment): Promise<void> {
  await applyFinalizers(client, ed, []);
}

/**
 * Deletes the device's module identities that IoT Edge manages (never $edgeAgent, $edgeHub or identities
 * someone else manages), within `deadlineMs` overall. Returns the ids removed.
 */
export async function removeManagedIdentities(api: DeviceApi, deadlineMs: number): Promise<string[]> {
  return withDeadline((async () => {
    const removed: string[] = [];
    for (const identity of await api.listModules()) {
      if (identity.moduleId.startsWith('$') || identity.managedBy !== edgeManagedBy) continue;
      await api.deleteModule(identity.moduleId);
      removed.push(identity.moduleId);
    }
    return removed.sort();
  })(), deadlineMs, 'removing the module identities from IoT Hub');
}
