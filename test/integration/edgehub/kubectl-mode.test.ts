// The built-in hub with no IoT Hub at all (kubectl mode): real process, real ModuleClients (MQTT).
import { writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Message as MessageType, ModuleClient as ModuleClientType } from 'azure-iot-device';
import { eventually, jsonMessage, metricValue, openModule, routesDocument, startHub, stopHub, writeHubFiles } from '../../support/edgehub.ts';
import type { HubFiles, HubProcess } from '../../support/edgehub.ts';
import type { HubStatusDocument } from '../../../src/edgehub/index.ts';

const readings = 200;
const temperature = (i: number) => 20 + (i % 10);

describe('built-in edge hub, kubectl mode (no IoT Hub)', () => {
  let files: HubFiles;
  let hub: HubProcess;
  const clients: ModuleClientType[] = [];

  beforeAll(async () => {
    files = writeHubFiles({
      routes: routesDocument({
        sensorToFilter: 'FROM /messages/modules/sensor/outputs/temperatureOutput WHERE $body.temperature > 25 INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
        filterToUpstream: { route: 'FROM /messages/modules/filter/outputs/* INTO $upstream', priority: 0, timeToLiveSecs: 2 },
      }),
    });
    hub = await startHub(files);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    if (hub) await stopHub(hub);
  });

  it('routes the hot readings from the sensor to the filter, in order, and expires $upstream by TTL', async () => {
    const filter = await openModule(files, hub, 'filter');
    clients.push(filter);
    const received: Array<{ input: string; body: { i: number; temperature: number }; sender: string | undefined }> = [];
    filter.on('inputMessage', (input: string, msg: MessageType) => {
      received.push({ input, body: JSON.parse(msg.getData().toString()) as { i: number; temperature: number }, sender: msg.properties.getValue('$.cmid') as string | undefined });
      void filter.sendOutputEvent('output1', jsonMessage({ forwarded: true }));
    });
    const sensor = await openModule(files, hub, 'sensor');
    clients.push(sensor);
    for (let i = 0; i < readings; i++) await sensor.sendOutputEvent('temperatureOutput', jsonMessage({ i, temperature: temperature(i) }));

    const expected = Array.from({ length: readings }, (_, i) => i).filter((i) => temperature(i) > 25);
    await eventually(() => received.length >= expected.length, 'the filter to receive the hot readings');
    expect(received.map((r) => r.body.i)).toEqual(expected);
    expect(new Set(received.map((r) => r.input))).toEqual(new Set(['input1']));
    expect(new Set(received.map((r) => r.sender))).toEqual(new Set(['sensor']));
    expect(await metricValue(hub.metricsUrl, 'edgehub_messages_received_total', { id: 'sensor' })).toBe(readings);
    expect(await metricValue(hub.metricsUrl, 'edgehub_messages_sent_total', { to: 'filter' })).toBe(expected.length);
    // No IoT Hub: the filter's output waits in $upstream for its 2 s time to live, then is dropped and counted.
    expect(await metricValue(hub.metricsUrl, 'edgehub_upstream_connected')).toBe(-1);
    await eventually(async () => (await metricValue(hub.metricsUrl, 'edgehub_messages_dropped_total', { endpoint: '$upstream', reason: 'ttl' })) === expected.length, 'the $upstream messages to expire', 30_000);
    await eventually(async () => (await metricValue(hub.metricsUrl, 'edgehub_queue_length', { endpoint: '$upstream' })) === 0, 'an empty $upstream queue', 10_000);
  });

  it('applies a changed routes file without a restart', async () => {
    const filter = clients[0] as ModuleClientType;
    const sensor = clients[1] as ModuleClientType;
    const inputs: string[] = [];
    filter.on('inputMessage', (input: string) => inputs.push(input));
    writeFileSync(files.routesFile, routesDocument({ all: 'FROM /messages/modules/sensor/* INTO BrokeredEndpoint("/modules/filter/inputs/everything")' }));
    await eventually(() => hub.logs.some((l) => l.msg === 'routes reloaded'), 'the hub to reload its routes', 15_000);
    await sensor.sendOutputEvent('temperatureOutput', jsonMessage({ i: -1, temperature: 0 }));
    await eventually(() => inputs.includes('everything'), 'the cold reading on the new route\'s input');
    expect(await metricValue(hub.metricsUrl, 'edgehub_route_reloads_total', { result: 'applied' })).toBe(2);

    // A route that does not compile is refused and the routes in use stay.
    writeFileSync(files.routesFile, routesDocument({ bad: 'FROM /messages/* WHERE temperature > 25 INTO $upstream' }));
    await eventually(async () => (await metricValue(hub.metricsUrl, 'edgehub_route_reloads_total', { result: 'rejected' })) === 1, 'the bad routes to be rejected', 15_000);
    const before = inputs.length;
    await sensor.sendOutputEvent('temperatureOutput', jsonMessage({ i: -2, temperature: 0 }));
    await eventually(() => inputs.length > before, 'the previous route to still deliver');
  });

  it('refuses AMQP and WebSocket clients with a reason, and counts them', async () => {
    const firstBytes = (payload: Buffer) => new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: hub.port, ca: files.ca.cert, servername: 'localhost' }, () => socket.write(payload));
      let answer = '';
      socket.on('data', (d: Buffer) => {
        answer += d.toString('latin1');
      });
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
    });
    expect(await firstBytes(Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'))).toBe('');
    const http = await firstBytes(Buffer.from('GET /$iothub/websocket HTTP/1.1\r\nHost: edgehub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
    expect(http).toMatch(/^HTTP\/1\.1 501 /);
    expect(http).toMatch(/MQTT 3\.1\.1 over TLS on port 8883 only/);
    expect(await metricValue(hub.metricsUrl, 'edgehub_refused_connections_total', { protocol: 'amqp' })).toBe(1);
    expect(await metricValue(hub.metricsUrl, 'edgehub_refused_connections_total', { protocol: 'websocket' })).toBe(1);
    expect(hub.logs.some((l) => l.protocol === 'amqp' && String(l.msg).includes('refused a client speaking amqp'))).toBe(true);
  });

  it('serves its connection table and the expiring $upstream at /status, as edgeHub reports clients', async () => {
    const status = async () => (await (await fetch(`${hub.metricsUrl}/status`)).json()) as HubStatusDocument;
    const before = await status();
    expect(before.clients[`${files.deviceId}/sensor`]).toMatchObject({ status: 'Connected' });
    expect(before.clients[`${files.deviceId}/filter`]).toMatchObject({ status: 'Connected' });
    const expiredHot = Array.from({ length: readings }, (_, i) => i).filter((i) => temperature(i) > 25).length;
    expect(before.upstream).toMatchObject({ connected: false, expiring: true });
    expect(before.upstream.expired).toBeGreaterThanOrEqual(expiredHot);
    const sensor = clients[1] as ModuleClientType;
    await sensor.close();
    await eventually(async () => (await status()).clients[`${files.deviceId}/sensor`]?.status === 'Disconnected', 'the sensor to show Disconnected');
    const after = (await status()).clients[`${files.deviceId}/sensor`]!;
    expect(Date.parse(after.lastDisconnectedTimeUtc!)).toBeGreaterThanOrEqual(Date.parse(after.lastConnectedTimeUtc!));
    expect(after.lastConnectedTimeUtc).toBe(before.clients[`${files.deviceId}/sensor`]!.lastConnectedTimeUtc);
  });
});
