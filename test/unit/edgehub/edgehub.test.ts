import { describe, expect, it } from '@jest/globals';
import { acceptedHostNames, moduleKeys, serverChain, upstreamFromConnectionString } from '../../../src/edgehub/config.ts';
import { ConnectionTable } from '../../../src/edgehub/connections.ts';
import { Deliverer } from '../../../src/edgehub/delivery.ts';
import type { DeliveryTarget } from '../../../src/edgehub/delivery.ts';
import { sniffProtocol } from '../../../src/edgehub/listener.ts';
import { decodeStored, encodeStored, inputPropertyBag, routedFromTelemetry, storedForInput } from '../../../src/edgehub/messages.ts';
import { formatPropertyBag } from '../../../src/iothub-mqtt/index.ts';
import type { HubQueues, StoredEntry } from '../../../src/edgehub/queues.ts';
import { mergePatch, TwinCache } from '../../../src/edgehub/twins.ts';
import { deriveModuleKey } from '../../../src/runtime/sas.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const rootKey = Buffer.alloc(32, 3).toString('base64');

describe('edge hub configuration', () => {
  it('accepts a module token signed with its derived key or the root key, for this device only', () => {
    const config = { deviceId: 'dev1', rootKey };
    expect(moduleKeys(config, { deviceId: 'dev1', moduleId: 'sensor' }, undefined)).toEqual([deriveModuleKey(rootKey, 'dev1', 'sensor'), rootKey]);
    expect(() => moduleKeys(config, { deviceId: 'dev2', moduleId: 'sensor' }, undefined)).toThrow(/not this hub's device/);
    expect(() => moduleKeys(config, { deviceId: 'dev1', moduleId: undefined }, undefined)).toThrow(/leaf devices/);
    expect(() => moduleKeys(config, { deviceId: 'dev1', moduleId: 'sensor' }, 'iothubowner')).toThrow(/policy tokens/);
  });

  it('answers to IoT Hub\'s host name and to <device>.local', () => {
    expect(acceptedHostNames({ deviceId: 'dev1', upstream: { hostName: 'hub.azure-devices.net', gatewayHostName: undefined } })).toEqual(['hub.azure-devices.net', 'dev1.local']);
    expect(acceptedHostNames({ deviceId: 'dev1', upstream: undefined })).toEqual(['dev1.local']);
  });

  it('reads the upstream connection string and refuses another device\'s', () => {
    expect(upstreamFromConnectionString('HostName=h.net;DeviceId=dev1;SharedAccessKey=a==;GatewayHostName=127.0.0.2:18883', 'dev1')).toEqual({ hostName: 'h.net', gatewayHostName: '127.0.0.2:18883' });
    expect(() => upstreamFromConnectionString('HostName=h.net;DeviceId=other;SharedAccessKey=a==', 'dev1')).toThrow(/for device other/);
  });

  it('appends the device CA to a server certificate file holding only the leaf', () => {
    const leaf = '-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n';
    const ca = '-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n';
    expect(serverChain(leaf, ca)).toContain('BBB');
    expect(serverChain(`${leaf}${ca}`, ca).match(/BEGIN/g)).toHaveLength(2);
    expect(() => serverChain('not a pem', ca)).toThrow(/no PEM certificate/);
  });
});

describe('edge hub listener', () => {
  it('tells MQTT from AMQP and WebSockets by the first bytes', () => {
    expect(sniffProtocol(Buffer.from([0x10, 0x20]))).toBe('mqtt');
    expect(sniffProtocol(Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'))).toBe('amqp');
    expect(sniffProtocol(Buffer.from('GET /$iothub/websocket HTTP/1.1'))).toBe('websocket');
    expect(sniffProtocol(Buffer.from([0x30]))).toBe('unknown');
  });
});

describe('edge hub messages', () => {
  const routed = routedFromTelemetry({
    deviceId: 'dev1', moduleId: 'sensor', topic: 't', body: Buffer.from('{"t":1}'),
    properties: { unit: 'C' }, systemProperties: { '$.mid': 'm1', '$.ct': 'application/json', '$.ce': 'utf-8', '$.on': 'out' }, outputName: 'out', receivedAt: '2026-01-01T00:00:00.000Z',
  }, 'sensor');

  it('gives the router IoT Hub\'s system property names and the module as the sender', () => {
    expect(routed.systemProperties).toMatchObject({ messageId: 'm1', contentType: 'application/json', contentEncoding: 'utf-8', outputName: 'out', connectionDeviceId: 'dev1', connectionModuleId: 'sensor' });
    expect(routed.source).toEqual({ kind: 'module', deviceId: 'dev1', moduleId: 'sensor', outputName: 'out' });
  });

  it('stores a message as bytes that decode to the same message', () => {
    const back = decodeStored(encodeStored(routed));
    expect({ ...back, body: back.body.toString() }).toEqual({ ...routed, body: routed.body.toString() });
  });

  it('reads what a module input needs from the stored bytes: the sender, the bag as sent, the body', () => {
    const view = storedForInput(encodeStored(routed));
    expect(view.sender).toBe('sensor');
    expect(view.bag).toBe(formatPropertyBag(inputPropertyBag(routed)));
    expect(view.body.toString()).toBe('{"t":1}');
  });

  it('still reads format 1 (a u32 header length, the JSON header, the body), as hubs before stored it', () => {
    const header = Buffer.from(JSON.stringify({ p: routed.properties, s: routed.systemProperties, src: routed.source }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(header.length);
    const format1 = Buffer.concat([length, header, routed.body]);
    const back = decodeStored(format1);
    expect({ ...back, body: back.body.toString() }).toEqual({ ...routed, body: routed.body.toString() });
    expect(storedForInput(format1)).toEqual({ sender: 'sensor', bag: formatPropertyBag(inputPropertyBag(routed)), body: routed.body });
  });

  it('writes the receiving module\'s property bag with the sender, as edgeHub does', () => {
    expect(inputPropertyBag(routed).systemProperties).toMatchObject({ '$.mid': 'm1', '$.ct': 'application/json', '$.cdid': 'dev1', '$.cmid': 'sensor' });
  });
});

/** An in-memory queue for the deliverer: entries 1..n of one endpoint. */
function memoryQueues(n: number): HubQueues & { acked: number[] } {
  const entries: StoredEntry[] = Array.from({ length: n }, (_, i) => ({ id: i + 1, endpoint: 'e', payload: Buffer.alloc(0), enqueuedAt: 0, priority: 0 }));
  let next = 0;
  const acked: number[] = [];
  return {
    acked,
    enqueue: async () => undefined,
    checkout: (_e, max) => entries.slice(next, (next = Math.min(entries.length, next + max))),
    release: () => undefined,
    ack: async (_e, ids) => {
      acked.push(...ids);
    },
    expire: () => [],
    stats: () => ({ lengths: new Map(), bytes: 0 }),
    expiredSinceStart: () => 0,
    endpoints: () => ['e'],
    close: async () => undefined,
  };
}

describe('deliverer', () => {
  it('sends in order within its window, acks only what was delivered, and retries failures first, in order', async () => {
    const queues = memoryQueues(6);
    const sent: number[] = [];
    let failNext = new Set([2, 3]);
    const target: DeliveryTarget = {
      ready: () => true,
      send: async (entry) => {
        sent.push(entry.id);
        if (failNext.has(entry.id)) {
          failNext.delete(entry.id);
          throw new Error('gone');
        }
      },
      failed: () => undefined,
      delivered: () => undefined,
    };
    const d = new Deliverer('e', queues, target, 2);
    d.kick();
    await new Promise((r) => setTimeout(r, 20));
    d.kick();
    await new Promise((r) => setTimeout(r, 20));
    failNext = new Set();
    d.kick();
    await new Promise((r) => setTimeout(r, 20));
    expect([...new Set(queues.acked)].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(sent.filter((id) => id === 2 || id === 3)).toEqual([2, 3, 2, 3]);
    expect(d.redelivered).toBe(2);
  });
});

describe('twin cache', () => {
  it('merges patches with null deleting, keeps offline reported changes pending, and survives a restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'twins-'));
    const cache = new TwinCache(dir);
    expect(cache.applyReported('m', { a: 1, nested: { b: 2 } }, true)).toBe(2);
    cache.applyReported('m', { nested: { b: null }, c: null }, true);
    expect(JSON.parse(cache.body('m'))).toEqual({ desired: { $version: 1 }, reported: { a: 1, nested: {}, $version: 3 } });
    expect(cache.pending('m')).toEqual({ a: 1, nested: { b: null }, c: null });
    expect(cache.applyDesired('m', { x: 1, $version: 2 })).toBe(true);
    expect(cache.applyDesired('m', { x: 0, $version: 2 })).toBe(false);
    expect(JSON.parse(new TwinCache(dir).body('m')).desired).toEqual({ x: 1, $version: 2 });
    const target = { keep: 1, drop: 2 };
    mergePatch(target, { drop: null, add: { deep: true } });
    expect(target).toEqual({ keep: 1, add: { deep: true } });
  });
});

describe('input property bag', () => {
  it('does not pass the sender\'s output name on to the receiving module', () => {
    const routed = routedFromTelemetry({ deviceId: 'd', moduleId: 's', topic: 't', body: Buffer.alloc(0), properties: {}, systemProperties: { '$.on': 'out' }, outputName: 'out', receivedAt: '2026-01-01T00:00:00.000Z' }, 's');
    expect(inputPropertyBag(routed).systemProperties['$.on']).toBeUndefined();
  });
});

describe('connection table', () => {
  const t = (s: number) => new Date(Date.UTC(2026, 11, 3, 12, 0, s));

  it('keeps each module\'s last connect and disconnect times as edgeHub reports them in clients', () => {
    const table = new ConnectionTable();
    table.connected('d/sensor', t(1));
    table.connected('d/filter', t(2));
    table.disconnected('d/sensor', t(3));
    expect(table.snapshot()).toEqual({
      'd/filter': { status: 'Connected', lastConnectedTimeUtc: t(2).toISOString() },
      'd/sensor': { status: 'Disconnected', lastConnectedTimeUtc: t(1).toISOString(), lastDisconnectedTimeUtc: t(3).toISOString() },
    });
    table.connected('d/sensor', t(4));
    expect(table.snapshot()['d/sensor']).toEqual({ status: 'Connected', lastConnectedTimeUtc: t(4).toISOString(), lastDisconnectedTimeUtc: t(3).toISOString() });
    expect(table.connectedCount).toBe(2);
  });

  it('keeps a module Connected when its old connection closes after a new one took over', () => {
    const table = new ConnectionTable();
    table.connected('d/m', t(1));
    table.connected('d/m', t(2));
    table.disconnected('d/m', t(3), true);
    expect(table.snapshot()['d/m']).toEqual({ status: 'Connected', lastConnectedTimeUtc: t(2).toISOString() });
  });
});
