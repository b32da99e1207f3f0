import { describe, expect, it } from '@jest/globals';
import type { V1Deployment } from '@kubernetes/client-node';
import { moduleCaMountPath, translate } from '../../../src/translate/index.ts';
import { input, manifest, moduleSpec } from './builders.ts';

function deploymentOf(objects: unknown[], name: string): V1Deployment {
  return (objects as V1Deployment[]).find((o) => o.kind === 'Deployment' && o.metadata?.name === name)!;
}

describe('module IoT Hub credentials', () => {
  it('gives a module with an identity Secret its connection string and CA the way ModuleClient.fromEnvironment reads them', () => {
    const result = translate(input(manifest([moduleSpec('sensor'), moduleSpec('other')]), undefined, { moduleCredentialSecrets: { sensor: 'sensor-iothub' } }));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const sensor = deploymentOf(result.value.objects, 'sensor').spec!.template.spec!;
    const container = sensor.containers[0]!;
    expect(container.env).toEqual(expect.arrayContaining([
      { name: 'EdgeHubConnectionString', valueFrom: { secretKeyRef: { name: 'sensor-iothub', key: 'EdgeHubConnectionString' } } },
      { name: 'EdgeModuleCACertificateFile', value: `${moduleCaMountPath}/ca.crt` },
    ]));
    expect(container.volumeMounts).toContainEqual({ name: 'iothub-identity', mountPath: moduleCaMountPath, readOnly: true });
    expect(sensor.volumes).toContainEqual({ name: 'iothub-identity', secret: { secretName: 'sensor-iothub', items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true } });

    const other = deploymentOf(result.value.objects, 'other').spec!.template.spec!;
    expect(other.containers[0]!.env?.some((e) => e.name === 'EdgeHubConnectionString')).toBe(false);
  });
});
