// What the hub process is told (flags or IOTEDGE_EDGEHUB_* variables; see src/cli/edgehub.ts) and
// the files it reads at start. Secrets (the root key, the server key, the upstream connection string)
// are read from files, never taken on the command line, and never logged.
import { readFileSync, statfsSync } from 'node:fs';
import { deriveModuleKey } from '../runtime/sas.ts';
import type { Identity } from '../iothub-mqtt/index.ts';

export interface HubFlags {
  deviceId: string;
  rootKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  caFile?: string;
  routesFile: string;
  storeDir: string;
  port: number;
  upstreamConnectionStringFile?: string;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  /** Disk budget of the store in bytes; default 90% of the store's file system. */
  storeMaxBytes?: number;
  /** Where the store's fsync runs: on libuv's thread pool (default) or inside SQLite's COMMIT on the event loop. */
  storeFsync?: 'background' | 'inline';
}

export interface UpstreamSettings {
  /** IoT Hub's host name (the connection string's HostName). */
  hostName: string;
  /** Where to dial, `host[:port]`, when not HostName on 8883 (the connection string's GatewayHostName). */
  gatewayHostName: string | undefined;
}

export interface HubConfig {
  deviceId: string;
  rootKey: string;
  /** Leaf, then chain, PEM; the device CA is appended when the file holds the leaf alone. */
  serverCertChain: string;
  serverKey: string;
  routesFile: string;
  storeDir: string;
  port: number;
  upstream: UpstreamSettings | undefined;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  storeMaxBytes: number;
  storeFsync: 'background' | 'inline';
}

export class HubConfigError extends Error {
  override name = 'HubConfigError';
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new HubConfigError(`cannot read the ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** `HostName=…;DeviceId=…;…` into its fields; values may contain `=` (base64 keys). */
export function parseConnectionString(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of text.trim().split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return fields;
}

export function upstreamFromConnectionString(text: string, deviceId: string): UpstreamSettings {
  const fields = parseConnectionString(text);
  const hostName = fields.HostName;
  if (!hostName) throw new HubConfigError('the upstream connection string has no HostName');
  if (fields.DeviceId !== undefined && fields.DeviceId !== deviceId) {
    throw new HubConfigError(`the upstream connection string is for device ${fields.DeviceId}, but --device-id is ${deviceId}`);
  }
  return { hostName, gatewayHostName: fields.GatewayHostName || undefined };
}

const pemCertificates = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The chain the hub presents: the certificate file, plus the CA when the file holds only the leaf. */
export function serverChain(certPem: string, caPem: string | undefined): string {
  const count = certPem.match(pemCertificates)?.length ?? 0;
  if (count === 0) throw new HubConfigError('the server certificate file holds no PEM certificate');
  return count === 1 && caPem !== undefined ? `${certPem.trim()}\n${caPem.trim()}\n` : certPem;
}

function defaultStoreBudget(storeDir: string): number {
  const fs = statfsSync(storeDir);
  return Math.floor(fs.blocks * fs.bsize * 0.9);
}

export function loadHubConfig(flags: HubFlags): HubConfig {
  if (!/^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/.test(flags.deviceId)) throw new HubConfigError(`--device-id "${flags.deviceId}" is not a valid IoT Hub device id`);
  const rootKey = readText(flags.rootKeyFile, 'root key file').trim();
  if (Buffer.from(rootKey, 'base64').length < 16) throw new HubConfigError(`the root key file ${flags.rootKeyFile} does not hold a base64 key of at least 16 bytes`);
  const caPem = flags.caFile === undefined ? undefined : readText(flags.caFile, 'CA file');
  const upstream = flags.upstreamConnectionStringFile === undefined
    ? undefined
    : upstreamFromConnectionString(readText(flags.upstreamConnectionStringFile, 'upstream connection string file'), flags.deviceId);
  if (!Number.isInteger(flags.port) || flags.port < 0 || flags.port > 65535) throw new HubConfigError(`--port ${flags.port} is not a TCP port`);
  return {
    deviceId: flags.deviceId,
    rootKey,
    serverCertChain: serverChain(readText(flags.serverCertFile, 'server certificate file'), caPem),
    serverKey: readText(flags.serverKeyFile, 'server key file'),
    routesFile: flags.routesFile,
    storeDir: flags.storeDir,
    port: flags.port,
    upstream,
    metricsBindAddress: flags.metricsBindAddress,
    healthProbeBindAddress: flags.healthProbeBindAddress,
    storeMaxBytes: flags.storeMaxBytes ?? defaultStoreBudget(flags.storeDir),
    storeFsync: flags.storeFsync ?? 'background',
  };
}

/** Names a module may put in its username and token `sr`: IoT Hub's host, else `<deviceId>.local` (kubectl mode). */
export function acceptedHostNames(config: Pick<HubConfig, 'deviceId' | 'upstream'>): string[] {
  return [...(config.upstream ? [config.upstream.hostName] : []), `${config.deviceId}.local`];
}

/**
 * The keys a module's token may be signed with: its derived key, or the device root key itself
 * (edgeHub accepts a module token signed with the device key). Only this device's modules connect.
 */
export function moduleKeys(config: Pick<HubConfig, 'deviceId' | 'rootKey'>, identity: Identity, keyName: string | undefined): string[] {
  if (keyName !== undefined) throw new Error(`policy tokens (skn=${keyName}) are not accepted by the edge hub`);
  if (identity.deviceId !== config.deviceId) throw new Error(`device ${identity.deviceId} is not this hub's device (${config.deviceId})`);
  if (identity.moduleId === undefined) throw new Error('only modules connect to the built-in edge hub; leaf devices are not supported');
  return [deriveModuleKey(config.rootKey, identity.deviceId, identity.moduleId), config.rootKey];
}
