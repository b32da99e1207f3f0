// `iotedge-operator edgehub`: the built-in edge hub (see docs/edgehub.md). Every flag also reads an
// IOTEDGE_EDGEHUB_* environment variable, so the operator configures the pod with env and files only.
import { Command, Option } from 'commander';
import { startEdgeHubProcess } from '../edgehub/index.ts';
import type { HubFlags } from '../edgehub/index.ts';
import { createLogger, isLogLevel } from '../runtime/logger.ts';
import { onShutdownSignal } from '../runtime/shutdown.ts';

interface EdgeHubCliFlags {
  deviceId: string;
  rootKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  caFile?: string;
  routesFile: string;
  storeDir: string;
  port: string;
  upstreamConnectionStringFile?: string;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  storeMaxBytes?: string;
  storeFsync: 'background' | 'inline';
  logLevel: string;
}

const flag = (name: string, env: string, description: string) => new Option(name, description).env(`IOTEDGE_EDGEHUB_${env}`);

function toHubFlags(flags: EdgeHubCliFlags): HubFlags {
  const port = Number(flags.port);
  const storeMaxBytes = flags.storeMaxBytes === undefined ? undefined : Number(flags.storeMaxBytes);
  if (storeMaxBytes !== undefined && !(Number.isInteger(storeMaxBytes) && storeMaxBytes > 0)) throw new Error(`--store-max-bytes: "${flags.storeMaxBytes}" is not a positive number of bytes`);
  return {
    deviceId: flags.deviceId,
    rootKeyFile: flags.rootKeyFile,
    serverCertFile: flags.serverCertFile,
    serverKeyFile: flags.serverKeyFile,
    ...(flags.caFile !== undefined ? { caFile: flags.caFile } : {}),
    routesFile: flags.routesFile,
    storeDir: flags.storeDir,
    port,
    ...(flags.upstreamConnectionStringFile !== undefined ? { upstreamConnectionStringFile: flags.upstreamConnectionStringFile } : {}),
    metricsBindAddress: flags.metricsBindAddress,
    healthProbeBindAddress: flags.healthProbeBindAddress,
    ...(storeMaxBytes !== undefined ? { storeMaxBytes } : {}),
    storeFsync: flags.storeFsync,
  };
}

export function edgeHubCommand(): Command {
  return new Command('edgehub')
    .description('run the built-in edge hub: MQTT over TLS for modules, routes, store and forward, IoT Hub upstream')
    .addOption(flag('--device-id <id>', 'DEVICE_ID', 'the IoT Edge device id the modules belong to').makeOptionMandatory())
    .addOption(flag('--root-key-file <path>', 'ROOT_KEY_FILE', 'file holding the device root key (base64); module keys are derived from it').makeOptionMandatory())
    .addOption(flag('--server-cert-file <path>', 'SERVER_CERT_FILE', 'PEM server certificate (leaf, then chain)').makeOptionMandatory())
    .addOption(flag('--server-key-file <path>', 'SERVER_KEY_FILE', 'PEM private key of the server certificate').makeOptionMandatory())
    .addOption(flag('--ca-file <path>', 'CA_FILE', 'PEM device CA, appended to the chain when the certificate file holds only the leaf'))
    .addOption(flag('--routes-file <path>', 'ROUTES_FILE', '$edgeHub desired properties as JSON (the routes ConfigMap); reloaded on change').makeOptionMandatory())
    .addOption(flag('--store-dir <path>', 'STORE_DIR', 'directory of the durable message store (a PersistentVolume)').makeOptionMandatory())
    .addOption(flag('--port <port>', 'PORT', 'MQTT over TLS port').default('8883'))
    .addOption(flag('--upstream-connection-string-file <path>', 'UPSTREAM_CONNECTION_STRING_FILE', 'IoT Hub device connection string; absent = kubectl mode, no IoT Hub'))
    .addOption(flag('--metrics-bind-address <host:port>', 'METRICS_BIND_ADDRESS', 'address of /metrics; "0" disables it').default('0.0.0.0:9600'))
    .addOption(flag('--health-probe-bind-address <host:port>', 'HEALTH_PROBE_BIND_ADDRESS', 'address of /healthz and /readyz; "0" disables it').default('0.0.0.0:8081'))
    .addOption(flag('--store-max-bytes <bytes>', 'STORE_MAX_BYTES', 'disk budget of the store (default: 90% of its file system)'))
    .addOption(flag('--store-fsync <where>', 'STORE_FSYNC', 'where the store syncs each group commit before PUBACK: background (libuv thread pool, off the event loop) or inline (SQLite synchronous=FULL)').choices(['background', 'inline']).default('background'))
    .addOption(flag('--log-level <level>', 'LOG_LEVEL', 'trace, debug, info, warn, error').default('info'))
    .action(async (flags: EdgeHubCliFlags) => {
      if (!isLogLevel(flags.logLevel)) throw new Error(`--log-level: "${flags.logLevel}" is not a log level`);
      const logger = createLogger({ level: flags.logLevel, name: 'edgehub' });
      const running = await startEdgeHubProcess(toHubFlags(flags), logger);
      onShutdownSignal(async () => {
        logger.info('shutting down: closing module connections; stored messages stay for the next start');
        await running.stop();
      }, { logger, name: 'edgehub' });
    });
}
