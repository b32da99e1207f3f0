// Server validation scenarios of the SDK's server-validation suite: against a hub whose certificate the
// client does not trust, a device client over MQTT and MQTT over WebSockets fails to connect, and the
// registry fails to create a device with the error a real hub's chain gives an untrusting client
// (UNABLE_TO_GET_ISSUER_CERT_LOCALLY: a hub serves its leaf and intermediate but no root, so nothing in the
// chain is self-signed). The SDK's suite, run against a test hub serving a lone leaf, expects
// UNABLE_TO_VERIFY_LEAF_SIGNATURE instead.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startHubEmulator } from '../../src/emulator/index.ts';
import type { HubEmulator } from '../../src/emulator/index.ts';
import { closeQuietly, DeviceClient, errors, Message, NoRetry, Registry, transports, uniqueId } from './support.ts';

describe('server validation against a hub whose CA is not trusted', () => {
  let untrusted: HubEmulator;

  beforeAll(async () => {
    // Not passed to trustForServiceSdk: no client in this process trusts this emulator's CA.
    untrusted = await startHubEmulator({ log: () => undefined });
    untrusted.createDevice('validation-device');
  });

  afterAll(async () => {
    await untrusted?.stop();
  });

  for (const name of ['Mqtt', 'MqttWs'] as const) {
    it(`a device client over ${name} fails to open`, async () => {
      const client = DeviceClient.fromConnectionString(untrusted.deviceConnectionString('validation-device'), transports[name]);
      client.setRetryPolicy(new NoRetry());
      let failure: unknown;
      try {
        await client.sendEvent(new Message(uniqueId('never-sent')));
      } catch (error) {
        failure = error;
      } finally {
        await closeQuietly(client);
      }
      // azure-iot-device-mqtt reports every failed first connection as UnauthorizedError, so the SDK's own
      // criterion (NotConnectedError or the code) cannot hold over MQTT; the TLS reason is in the message.
      expect(failure).toBeInstanceOf(errors.UnauthorizedError);
      expect((failure as Error).message).toMatch(/unable to get local issuer certificate/);
    });
  }

  it('the registry fails to create a device with UNABLE_TO_GET_ISSUER_CERT_LOCALLY', async () => {
    const registry = Registry.fromConnectionString(untrusted.serviceConnectionString);
    await expect(registry.create({ deviceId: uniqueId('never-created') } as never)).rejects.toMatchObject({ code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
  });
});
