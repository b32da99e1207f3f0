// The emulator's listeners send the server certificate and its intermediate CA, never the root, as IoT Hub does:
// a client that trusts the root (its CA file) connects; one that does not sees "unable to get local issuer
// certificate", not SELF_SIGNED_CERT_IN_CHAIN.
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import device from 'azure-iot-device';
import iothub from 'azure-iothub';
import { startHubEmulator } from '../../../src/emulator/index.ts';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { Mqtt } from './sdk.ts';

let hub: HubEmulator;

beforeAll(async () => {
  hub = await startHubEmulator();
  hub.createDevice('tls-leaf', { iotEdge: false });
});

afterAll(async () => {
  await hub.stop();
});

interface Handshake {
  error?: NodeJS.ErrnoException;
  chain: PeerCertificate[];
}

/** A TLS handshake with the given port; `ca` undefined means Node's default trust (which lacks the emulator's root). */
function handshake(port: number, ca: string | undefined): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = connect({ host: hub.host, port, servername: hub.dnsName, ...(ca === undefined ? {} : { ca }) });
    socket.once('secureConnect', () => {
      const chain: PeerCertificate[] = [];
      for (let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true); c && !chain.includes(c); c = c.issuerCertificate) chain.push(c);
      socket.end();
      resolve({ chain });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ error, chain: [] }));
  });
}

describe('the TLS chain the emulator serves', () => {
  it.each([['HTTPS', () => hub.httpsPort], ['MQTT', () => hub.mqttPort]])('%s: leaf signed by an intermediate signed by the root clients trust', async (_name, port) => {
    const trusted = await handshake(port(), hub.caCertPem);
    expect(trusted.error).toBeUndefined();
    const [leaf, intermediate, root] = trusted.chain.map((c) => new X509Certificate(c.raw));
    expect(leaf?.ca).toBe(false);
    expect(intermediate?.ca).toBe(true);
    expect(intermediate?.checkIssued(new X509Certificate(hub.caCertPem))).toBe(true);
    expect(root?.fingerprint256).toBe(new X509Certificate(hub.caCertPem).fingerprint256);

    const untrusted = await handshake(port(), undefined);
    expect(untrusted.error?.code).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  });

  it('azure-iothub without the CA fails on the missing issuer, not on a self-signed certificate in the chain', async () => {
    const registry = iothub.Registry.fromConnectionString(hub.serviceConnectionString);
    const error = await registry.get('tls-leaf').then(() => undefined, (e: unknown) => e as Error);
    expect(String(error?.message ?? error)).toMatch(/unable to get local issuer certificate/);
    expect(String(error?.message ?? error)).not.toMatch(/self[- ]signed/i);
  });

  it('azure-iot-device over MQTT without the CA fails on the missing issuer; with it, it connects', async () => {
    const untrusting = device.Client.fromConnectionString(hub.deviceConnectionString('tls-leaf'), Mqtt);
    const error = await untrusting.open().then(() => undefined, (e: unknown) => e as Error & { transportError?: Error });
    await untrusting.close().catch(() => {});
    expect(String(error?.transportError?.message ?? error?.message)).toMatch(/unable to get local issuer certificate/);

    const trusting = device.Client.fromConnectionString(hub.deviceConnectionString('tls-leaf'), Mqtt);
    await trusting.setOptions({ ca: hub.caCertPem });
    await trusting.open();
    await trusting.close();
  });
});
