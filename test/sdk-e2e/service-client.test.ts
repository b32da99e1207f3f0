// Service client scenarios of the SDK's service suite: azure-iothub's Client opens its AMQP connection
// (over AMQP and AMQP over WebSockets), from a shared access signature and from a connection string.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import iothub from 'azure-iothub';
import { closeQuietly, inAnHour, NoRetry, ServiceClient, ServiceConnectionString, ServiceSas, startTrustedHub } from './support.ts';
import type { HarnessHub, ServiceClientType } from './support.ts';

const serviceTransports = { Amqp: iothub.Amqp, AmqpWs: iothub.AmqpWs } as const;

describe('service client', () => {
  let h: HarnessHub;
  beforeAll(async () => {
    h = await startTrustedHub();
  });
  afterAll(async () => {
    await h?.hub.stop();
  });

  async function opens(client: ServiceClientType): Promise<void> {
    // Without AMQP on the hub the default policy retries for minutes, past the end of the file.
    client.setRetryPolicy(new NoRetry());
    try {
      const opened = await client.open();
      expect(opened.result.constructor.name).toBe('Connected');
    } finally {
      await closeQuietly(client);
    }
  }

  for (const [name, Transport] of Object.entries(serviceTransports)) {
    it(`connects over ${name} with a shared access signature`, async () => {
      const cs = ServiceConnectionString.parse(h.connectionString);
      const sas = ServiceSas.create(cs.HostName ?? '', cs.SharedAccessKeyName ?? '', cs.SharedAccessKey ?? '', inAnHour());
      await opens(ServiceClient.fromSharedAccessSignature(sas.toString(), Transport));
    });

    it(`connects over ${name} with a connection string`, async () => {
      await opens(ServiceClient.fromConnectionString(h.connectionString, Transport));
    });
  }
});
