import { describe, expect, it } from '@jest/globals';
import { ConnectionStringError, moduleConnectionString, parseConnectionString } from '../../../src/iothub/connection-string.ts';
import { planIdentities } from '../../../src/iothub/identities.ts';
import { scrubSecrets } from '../../../src/iothub/twin-sync.ts';

const key = Buffer.alloc(32, 7).toString('base64');

describe('parseConnectionString', () => {
  it('reads device and $edgeAgent module strings, with a gateway', () => {
    expect(parseConnectionString(`HostName=h.example;DeviceId=d1;SharedAccessKey=${key};GatewayHostName=127.0.0.9:18883`))
      .toEqual({ hostName: 'h.example', deviceId: 'd1', sharedAccessKey: key, gatewayHostName: '127.0.0.9:18883' });
    expect(parseConnectionString(`HostName=h;DeviceId=d1;ModuleId=$edgeAgent;SharedAccessKey=${key}`).moduleId).toBe('$edgeAgent');
  });

  it('refuses service strings, other modules and missing fields without echoing the key', () => {
    const refused = [
      `HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=${key}`,
      `HostName=h;DeviceId=d;ModuleId=sensor;SharedAccessKey=${key}`,
      `HostName=h;SharedAccessKey=${key}`,
      'HostName=h;DeviceId=d;SharedAccessKey=not base64!',
    ];
    for (const text of refused) {
      let error: unknown;
      try {
        parseConnectionString(text);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConnectionStringError);
      expect((error as Error).message).not.toContain(key);
    }
  });

  it('round-trips a module connection string', () => {
    const text = moduleConnectionString({ hostName: 'h', deviceId: 'd', moduleId: 'm', sharedAccessKey: key, gatewayHostName: 'edgehub' });
    expect(text).toBe(`HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=${key};GatewayHostName=edgehub`);
  });
});

describe('planIdentities', () => {
  it('creates missing identities and deletes only IotEdge-managed, non-system ones no longer desired', () => {
    const plan = planIdentities(['a', 'b'], [
      { moduleId: '$edgeAgent', managedBy: 'IotEdge' }, { moduleId: 'a', managedBy: 'IotEdge' },
      { moduleId: 'old', managedBy: 'IotEdge' }, { moduleId: 'someoneElses' },
    ]);
    expect(plan).toEqual({ create: ['b'], remove: ['old'] });
  });
});

describe('scrubSecrets', () => {
  it('removes keys and signatures from messages', () => {
    const text = scrubSecrets(`failed HostName=h;SharedAccessKey=${key}; token SharedAccessSignature sr=h&sig=abc%3D&se=1`);
    expect(text).not.toContain(key);
    expect(text).not.toContain('abc%3D');
  });
});
