// Authentication scenarios of the SDK's authentication suite: a device client is refused with
// UnauthorizedError (or NotConnectedError) for a wrong key, an expired SAS token, a malformed or unknown
// device id, and an X.509 certificate that does not match the registered thumbprint. The SDK runs them
// over MQTT, MQTT over WebSockets (and AMQP and HTTP, not emulated).
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { issueDeviceCa } from '../../../src/certs/index.ts';
import { closeQuietly, DeviceClient, DeviceConnectionString, deviceSas, errors, Message, startTrustedHub, transports, uniqueId } from '../support.ts';
import type { DeviceClientType, HarnessHub, TransportName } from '../support.ts';

/** Sends one message on a client that was never opened; resolves with the error the SDK reports. */
async function sendError(client: DeviceClientType): Promise<unknown> {
  try {
    await client.sendEvent(new Message('hello'));
  } catch (error) {
    return error;
  } finally {
    await closeQuietly(client);
  }
  return undefined;
}

const refused = (error: unknown) => error instanceof errors.UnauthorizedError || error instanceof errors.NotConnectedError;

export function authenticationScenarios(transportName: TransportName): void {
  const Transport = transports[transportName];
  describe(`authentication over ${transportName}`, () => {
    let h: HarnessHub;
    let deviceId: string;
    let deviceKey: string;

    beforeAll(async () => {
      h = await startTrustedHub();
      deviceId = uniqueId('auth');
      const created = (await h.registry.create({ deviceId } as never)).responseBody;
      deviceKey = created.authentication!.symmetricKey!.primaryKey!;
    });

    afterAll(async () => {
      await h?.hub.stop();
    });

    it('a connection string with a wrong key is refused', async () => {
      const wrongKey = Buffer.from('certainly not the key').toString('base64');
      const error = await sendError(DeviceClient.fromConnectionString(DeviceConnectionString.createWithSharedAccessKey(h.host, deviceId, wrongKey), Transport));
      expect(refused(error)).toBe(true);
    });

    it('an expired SAS token is refused', async () => {
      const dayAgo = Math.ceil(Date.now() / 1000) - 86_400;
      const error = await sendError(DeviceClient.fromSharedAccessSignature(deviceSas(h.host, deviceId, deviceKey, dayAgo), Transport));
      expect(refused(error)).toBe(true);
    });

    for (const [why, id] of [
      ['malformed', () => `${deviceId}#+bad`],
      ['not registered', () => `${deviceId}-absent`],
    ] as const) {
      it(`a device id that is ${why} is refused`, async () => {
        const error = await sendError(DeviceClient.fromConnectionString(DeviceConnectionString.createWithSharedAccessKey(h.host, id(), deviceKey), Transport));
        expect(refused(error) || error instanceof errors.DeviceNotFoundError).toBe(true);
      });
    }

    it('an X.509 certificate that does not match the registered thumbprint is refused', async () => {
      const registered = issueDeviceCa({ commonName: 'registered', lifetimeMs: 86_400_000 });
      const presented = issueDeviceCa({ commonName: 'presented', lifetimeMs: 86_400_000 });
      const x509DeviceId = uniqueId('auth-x509');
      const primaryThumbprint = new X509Certificate(registered.cert).fingerprint.replace(/:/g, '');
      await h.registry.create({ deviceId: x509DeviceId, status: 'enabled', authentication: { x509Thumbprint: { primaryThumbprint } } } as never);
      const client = DeviceClient.fromConnectionString(DeviceConnectionString.createWithX509Certificate(h.host, x509DeviceId), Transport);
      await client.setOptions({ cert: presented.cert, key: presented.key });
      expect(await sendError(client)).toBeInstanceOf(errors.UnauthorizedError);
    });
  });
}
