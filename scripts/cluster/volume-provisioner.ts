// The local cluster's storage: there is no CSI driver, so nothing would ever bind a PersistentVolumeClaim
// and pods using one would stay unschedulable. This provisioner plays the part of a dynamic provisioner
// for the default StorageClass: each pending claim of that class gets a PersistentVolume bound to it, a
// hostPath directory under the cluster's own directory (argv[3]) that the real worker's kubelet creates
// and mounts (the worker shares this machine's filesystem; KWOK mounts nothing), and released volumes
// are removed.
// Usage: volume-provisioner.ts <kubeconfig> <volume root directory>
import { chmodSync, mkdirSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { Informer } from '../../src/controller/informer.ts';
import { KubeApiError, KubeClient } from '../../src/controller/kube-client.ts';
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';

export const provisionerName = 'kwok.iotedge-operator.io/local';
export const storageClassName = 'standard';

const volumeRoot = process.argv[3] ?? '/var/lib/kwok-volumes';
const kc = new KubeConfig();
kc.loadFromFile(process.argv[2] ?? process.env.KUBECONFIG ?? '');
const client = new KubeClient({ kubeConfig: kc });
const claims = new Informer<V1PersistentVolumeClaim>({ client, path: '/api/v1/persistentvolumeclaims' });
const volumes = new Informer<V1PersistentVolume>({ client, path: '/api/v1/persistentvolumes' });

const ignoreConflict = (error: unknown) => {
  if (error instanceof KubeApiError && (error.status === 409 || error.status === 404)) return;
  console.error(error instanceof Error ? error.message : error);
};

function provision(claim: V1PersistentVolumeClaim): void {
  if (claim.status?.phase !== 'Pending' || claim.spec?.volumeName || claim.metadata?.deletionTimestamp) return;
  if ((claim.spec?.storageClassName ?? storageClassName) !== storageClassName) return;
  const uid = claim.metadata!.uid!;
  // hostPath ignores fsGroup, so a pod running as a non-root user (the built-in hub runs as 65532) could not
  // write a directory kubelet creates as root 0755; like local-path provisioners, make it world-writable first.
  const dir = `${volumeRoot}/${uid}`;
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  const volume: V1PersistentVolume = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `pvc-${uid}`, annotations: { 'pv.kubernetes.io/provisioned-by': provisionerName } },
    spec: {
      capacity: { storage: claim.spec?.resources?.requests?.storage ?? '1Gi' },
      accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
      storageClassName,
      persistentVolumeReclaimPolicy: 'Retain',
      volumeMode: claim.spec?.volumeMode ?? 'Filesystem',
      hostPath: { path: dir, type: 'DirectoryOrCreate' },
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: claim.metadata!.namespace!, name: claim.metadata!.name!, uid },
    },
  };
  client.request('POST', '/api/v1/persistentvolumes', {}, { body: volume }).catch(ignoreConflict);
}

function reclaim(volume: V1PersistentVolume): void {
  if (volume.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] !== provisionerName) return;
  if (volume.status?.phase !== 'Released' || volume.metadata.deletionTimestamp) return;
  client.request('DELETE', `/api/v1/persistentvolumes/${volume.metadata.name}`).catch(ignoreConflict);
}

claims.on('add', provision);
claims.on('update', provision);
volumes.on('add', reclaim);
volumes.on('update', reclaim);
await Promise.all([claims.start(), volumes.start()]);
console.log('volume provisioner ready');
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    void Promise.all([claims.stop(), volumes.stop()]).then(() => process.exit(0));
  });
}
