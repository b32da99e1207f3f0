// `iotedge-operator hub-emulator`: runs the IoT Hub emulator until SIGINT/SIGTERM and prints what a
// developer needs to use it: the CA file to trust, and the connection strings.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { startHubEmulator } from '../emulator/index.ts';
import type { HubEmulator, HubEmulatorOptions } from '../emulator/index.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is an integer from 0 to 65535');
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface HubEmulatorCliOptions {
  host?: string;
  mqttPort: number;
  httpsPort: number;
  hubName?: string;
  stateFile?: string;
  caCert?: string;
  caKey?: string;
  caOut?: string;
  device: string[];
  adminToken?: string;
  quiet?: boolean;
}

/** What the command prints once the emulator listens: trust, endpoints, connection strings. */
export function describeEmulator(hub: HubEmulator, caFile: string | undefined): string {
  const lines = [
    `IoT Hub emulator "${hub.hubName}" listening on ${hub.host}: MQTT/TLS :${hub.mqttPort}, HTTPS :${hub.httpsPort}`,
    caFile ? `CA certificate: ${caFile}  (device SDK: client.setOptions({ ca }); service SDK: NODE_EXTRA_CA_CERTS=${caFile})` : 'CA certificate: pass --ca-out <file> to write it',
    `Admin API: https://${hub.host}:${hub.httpsPort}/_admin/  (Authorization: Bearer ${hub.adminToken})`,
    '',
    `service (iothubowner): ${hub.serviceConnectionString}`,
  ];
  for (const device of hub.registry.listDevices()) {
    lines.push(`device ${device.deviceId}${device.iotEdge ? ' (IoT Edge)' : ''}: ${hub.deviceConnectionString(device.deviceId)}`);
    for (const moduleId of Object.keys(device.modules)) {
      lines.push(`  module ${moduleId}: ${hub.moduleConnectionString(device.deviceId, moduleId)}`);
    }
  }
  return lines.join('\n');
}

export function hubEmulatorCommand(): Command {
  return new Command('hub-emulator')
    .description('Run an IoT Hub emulator (MQTT device protocol and service REST, over TLS on a loopback address) for offline development and tests')
    .option('--host <address>', 'address to bind: loopback, or one of this machine\'s interfaces such as the real worker\'s bridge (default: first free of 127.0.0.2…127.0.0.254)')
    .option('--mqtt-port <port>', 'MQTT over TLS port', port, 8883)
    .option('--https-port <port>', 'HTTPS port; azure-iothub only ever dials 443', port, 443)
    .option('--hub-name <name>', 'hub name; the certificate also names <name>.iotedge.local', 'emulated-hub')
    .option('--state-file <file>', 'keep identities, twins, keys and the generated CA in this JSON file')
    .option('--ca-cert <file>', 'PEM CA certificate to issue the server certificate with (needs --ca-key)')
    .option('--ca-key <file>', 'PEM private key of --ca-cert')
    .option('--ca-out <file>', 'write the CA certificate (PEM) here, for NODE_EXTRA_CA_CERTS or setOptions({ ca })')
    .option('--device <id>', 'register an IoT Edge device with this id at start (repeatable)', collect, [])
    .option('--admin-token <token>', 'bearer token for /_admin/ (default: random, printed)')
    .option('--quiet', 'do not log connections and requests')
    .action(async (opts: HubEmulatorCliOptions) => {
      if ((opts.caCert === undefined) !== (opts.caKey === undefined)) {
        throw new InvalidArgumentError('--ca-cert and --ca-key go together');
      }
      const options: HubEmulatorOptions = {
        mqttPort: opts.mqttPort,
        httpsPort: opts.httpsPort,
        ...(opts.host ? { host: opts.host } : {}),
        ...(opts.hubName ? { hubName: opts.hubName } : {}),
        ...(opts.stateFile ? { stateFile: resolve(opts.stateFile) } : {}),
        ...(opts.adminToken ? { adminToken: opts.adminToken } : {}),
        ...(opts.caCert && opts.caKey ? { ca: { cert: readFileSync(opts.caCert, 'utf8'), key: readFileSync(opts.caKey, 'utf8') } } : {}),
        ...(opts.quiet ? {} : { log: (message: string, fields?: Record<string, unknown>) => process.stderr.write(`${new Date().toISOString()} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`) }),
      };
      const hub = await startHubEmulator(options);
      for (const id of opts.device) hub.createEdgeDevice(id);
      const caFile = opts.caOut ? resolve(opts.caOut) : undefined;
      if (caFile) writeFileSync(caFile, hub.caCertPem);
      process.stdout.write(`${describeEmulator(hub, caFile)}\n`);
      await new Promise<void>((done) => {
        const stop = (signal: NodeJS.Signals) => {
          process.stderr.write(`${signal}: stopping the hub emulator\n`);
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          done();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await hub.stop();
    });
}
