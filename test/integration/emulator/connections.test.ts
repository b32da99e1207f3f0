// MQTT connection rules against the real device SDK: CA trust, SAS checks (CONNACK 5), token expiry,
// duplicate connections and injected refusals. This file never adds the emulator CA to Node's
// default trust, so the first test shows that client.setOptions({ ca }) alone is what the device needs.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ModuleClient as ModuleClientType } from 'azure-iot-device';
import { signSas } from '../../../src/runtime/sas.ts';
import { startHubEmulator } from '../../../src/emulator/index.ts';
import type { ConnectionInfo, HubEmulator } from '../../../src/emulator/index.ts';
import { Message, ModuleClient, Mqtt, nextEvent, openModuleClient } from './sdk.ts';

let hub: HubEmulator;
const open: ModuleClientType[] = [];

function track(client: ModuleClientType): ModuleClientType {
  open.push(client);
  return client;
}

function keyOf(connectionString: string): string {
  return connectionString.match(/SharedAccessKey=([^;]+)/)?.[1] ?? '';
}

beforeAll(async () => {
  hub = await startHubEmulator();
  hub.createEdgeDevice('edge-conn');
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.close().catch(() => undefined)));
  await hub.stop();
});

describe('hub emulator MQTT connections', () => {
  it('is trusted by the device SDK through setOptions({ ca }), and not without it', async () => {
    const untrusting = track(ModuleClient.fromConnectionString(hub.moduleConnectionString('edge-conn', '$edgeAgent'), Mqtt));
    await expect(untrusting.open()).rejects.toThrow(/certificate/);
    const trusting = track(await openModuleClient(hub, 'edge-conn', '$edgeAgent'));
    await trusting.sendEvent(new Message('trusted'));
    expect(hub.admin.messages({ deviceId: 'edge-conn' }).map((m) => m.body.toString())).toContain('trusted');
    await trusting.close();
  });

  it('refuses a bad SAS key with CONNACK 5, which the SDK reports as UnauthorizedError', async () => {
    const wrong = hub.moduleConnectionString('edge-conn', '$edgeAgent').replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 3).toString('base64')}`);
    const client = track(ModuleClient.fromConnectionString(wrong, Mqtt));
    await client.setOptions({ ca: hub.caCertPem });
    const refused = nextEvent<{ reason: string }>(hub, 'connectRefused');
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
    expect((await refused).reason).toMatch(/signature does not match/);
  });

  it('refuses a token whose sr names another module', async () => {
    const agentKey = keyOf(hub.moduleConnectionString('edge-conn', '$edgeAgent'));
    const token = signSas({ resourceUri: `${hub.host}/devices/edge-conn/modules/$edgeAgent`, key: agentKey, expiry: Math.floor(Date.now() / 1000) + 600 });
    const client = track(ModuleClient.fromSharedAccessSignature(token.replace('%24edgeAgent', '%24edgeHub'), Mqtt));
    await client.setOptions({ ca: hub.caCertPem });
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });

  it('disconnects a client when its SAS token expires', async () => {
    const key = keyOf(hub.moduleConnectionString('edge-conn', '$edgeHub'));
    // A token the SDK cannot renew (no key), valid for a few seconds.
    const token = signSas({ resourceUri: `${hub.host}/devices/edge-conn/modules/$edgeHub`, key, expiry: Math.floor(Date.now() / 1000) + 3 });
    const client = track(ModuleClient.fromSharedAccessSignature(token, Mqtt));
    await client.setOptions({ ca: hub.caCertPem });
    const expired = nextEvent<ConnectionInfo>(hub, 'tokenExpired', (c) => c.moduleId === '$edgeHub');
    const gone = nextEvent<ConnectionInfo>(hub, 'disconnected', (c) => c.moduleId === '$edgeHub');
    await client.open();
    const expiredConnection = await expired;
    expect((await gone).connectionId).toBe(expiredConnection.connectionId);
    expect(hub.admin.connections().some((c) => c.moduleId === '$edgeHub')).toBe(false);
  });

  it('kicks the older connection when the same identity connects again', async () => {
    const identity = (c: ConnectionInfo) => c.moduleId === '$edgeAgent';
    const firstUp = nextEvent<ConnectionInfo>(hub, 'connected', identity);
    const first = track(await openModuleClient(hub, 'edge-conn', '$edgeAgent'));
    const firstId = (await firstUp).connectionId;
    const firstGone = nextEvent<ConnectionInfo>(hub, 'disconnected', (c) => c.connectionId === firstId);
    const secondUp = nextEvent<ConnectionInfo>(hub, 'connected', identity);
    const second = track(await openModuleClient(hub, 'edge-conn', '$edgeAgent'));
    const secondId = (await secondUp).connectionId;
    await firstGone;
    expect(hub.admin.connections().filter(identity).map((c) => c.connectionId)).toEqual([secondId]);
    await second.sendEvent(new Message('from-second'));
    expect(hub.admin.messages({ moduleId: '$edgeAgent' }).map((m) => m.body.toString())).toContain('from-second');
    await first.close();
    await second.close();
  });

  it('refuses a connection with CONNACK 3 while told to; the SDK retries (server unavailable is retryable) and gets in', async () => {
    hub.admin.refuseConnections('connack', { count: 1 });
    const refusal = nextEvent<{ reason: string }>(hub, 'connectRefused');
    const client = track(await openModuleClient(hub, 'edge-conn', '$edgeAgent'));
    expect((await refusal).reason).toMatch(/server unavailable/);
    await client.sendEvent(new Message('after-connack-3'));
    expect(hub.admin.messages().map((m) => m.body.toString())).toContain('after-connack-3');
    await client.close();
  });

  it('closes the TCP connection after TLS while told to; the SDK does not retry a first connection', async () => {
    hub.admin.refuseConnections('tcp-close', { count: 1 });
    const closed = nextEvent<unknown>(hub, 'connectionClosedByFault');
    const client = track(ModuleClient.fromConnectionString(hub.moduleConnectionString('edge-conn', '$edgeAgent'), Mqtt));
    await client.setOptions({ ca: hub.caCertPem });
    const outcome = await client.open().then(() => 'opened', (e: Error) => e.name);
    await closed;
    // mqtt_translate_error turns any first-connection failure into UnauthorizedError.
    expect(outcome).toBe('UnauthorizedError');
    await client.close();
    const next = track(await openModuleClient(hub, 'edge-conn', '$edgeAgent'));
    await next.sendEvent(new Message('after-tcp-close'));
    expect(hub.admin.messages().map((m) => m.body.toString())).toContain('after-tcp-close');
    await next.close();
  });

  it('drops connections on request, keeping the session', async () => {
    const up = nextEvent<ConnectionInfo>(hub, 'connected', (c) => c.moduleId === '$edgeAgent');
    const client = track(await openModuleClient(hub, 'edge-conn', '$edgeAgent'));
    await up;
    const gone = nextEvent<ConnectionInfo>(hub, 'disconnected', (c) => c.moduleId === '$edgeAgent');
    expect(hub.admin.dropConnections({ deviceId: 'edge-conn' })).toBe(1);
    await gone;
    // The SDK reconnects lazily on the next operation.
    await client.sendEvent(new Message('after-drop'));
    expect(hub.admin.messages().map((m) => m.body.toString())).toContain('after-drop');
    await client.close();
  });
});
