// The HTTPS listener keeps idle connections for minutes, as IoT Hub does, so azure-iothub's keep-alive agent
// reuses its connection across idle gaps instead of racing the server's close ("socket hang up").
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Agent, request } from 'node:https';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Registry } from 'azure-iothub';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { startEmulatorWithRegistry } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;
/** Longer than Node's default keepAliveTimeout (5 s), which the emulator used to keep. */
const idleGapMs = 6500;

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
  await registry.create({ deviceId: 'keep-alive' } as never);
});

afterAll(async () => {
  await hub.stop();
});

/**
 * Counts the TCP connections this process opens to the emulator's HTTPS port while `work` runs. Only that
 * port: a client left running by an earlier test file in the same jest worker may open its own.
 */
async function connectionsOpenedDuring(work: () => Promise<unknown>): Promise<number> {
  let opened = 0;
  const onSocket = (message: unknown) => {
    const socket = (message as { socket: Socket }).socket;
    socket.once('connect', () => {
      if (socket.remotePort === hub.httpsPort) opened += 1;
    });
  };
  subscribe('net.client.socket', onSocket);
  try {
    await work();
  } finally {
    unsubscribe('net.client.socket', onSocket);
  }
  return opened;
}

describe('HTTPS keep-alive', () => {
  it("announces a keep-alive of minutes in the server's Keep-Alive hint", async () => {
    const agent = new Agent({ keepAlive: true });
    const hint = await new Promise<string | undefined>((resolve, reject) => {
      const req = request({ host: hub.host, port: hub.httpsPort, path: '/devices?api-version=2021-04-12', ca: hub.caCertPem, agent }, (res) => {
        res.resume();
        resolve(String(res.headers['keep-alive'] ?? ''));
      });
      req.on('error', reject);
      req.end();
    }).finally(() => agent.destroy());
    const seconds = Number(/timeout=(\d+)/.exec(hint ?? '')?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(60);
  });

  it("lets azure-iothub's keep-alive agent reuse its connection after an idle gap", async () => {
    // The agent's connection, open and idle.
    await registry.get('keep-alive');
    const opened = await connectionsOpenedDuring(async () => {
      await sleep(idleGapMs);
      const got = await registry.get('keep-alive');
      expect(got.responseBody.deviceId).toBe('keep-alive');
    });
    expect(opened).toBe(0);
  });
});
