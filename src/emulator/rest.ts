// The REST side of the emulator: the registry, twin, configuration and method calls azure-iothub
// makes, with IoT Hub's SAS authorisation and error format. Admin calls for tests live under
// /_admin/ (see admin-http.ts).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseSas, resourceCovers, verifySas } from '../runtime/sas.ts';
import { deviceScopeRoute, isDeviceScopeOperation } from './device-scope.ts';
import { HubError } from './errors.ts';
import { serveJobRequest } from './jobs.ts';
import { serveQuery } from './queries.ts';
import { sasRefusal } from './registry.ts';
import type { DeviceRecord, ModuleRecord } from './registry.ts';
import { isJsonObject, restTwinProperties, TwinValidationError } from './twin.ts';
import type { JsonObject } from './twin.ts';
import type { HubEmulator } from './emulator.ts';

const maxBody = 1024 * 1024;

/**
 * Who a request acts as: the service (a policy), one device (its own SAS, as the edge runtime uses), or
 * one module (its own SAS; only edgeHub's device-scope calls accept it).
 */
export type Principal = { kind: 'service'; policy: string } | { kind: 'device'; deviceId: string } | { kind: 'module'; deviceId: string; moduleId: string };

export class HttpResult {
  readonly status: number;
  readonly body: unknown;
  readonly etag: string | undefined;
  readonly headers: Record<string, string>;
  constructor(status: number, body?: unknown, etag?: string, headers: Record<string, string> = {}) {
    this.status = status;
    this.body = body;
    this.etag = etag;
    this.headers = headers;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** IoT Hub's REST error body; azure-iothub splits `Message` on `;` and `:`, so the text may hold neither `;`. */
export function sendHubError(res: ServerResponse, error: HubError): void {
  const trackingId = randomUUID().replace(/-/g, '');
  sendJson(
    res,
    error.status,
    {
      Message: `ErrorCode:${error.code};${error.message.replace(/;/g, ',')}`,
      ExceptionMessage: `Tracking ID:${trackingId}-G:0-TimeStamp:${new Date().toISOString()}`,
    },
    { 'iothub-errorcode': error.code },
  );
}

export async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBody) throw new HubError('RequestEntityTooLarge', `request body larger than ${maxBody} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new HubError('ArgumentInvalid', 'the request body is not valid JSON');
  }
}

export function deviceJson(hub: HubEmulator, d: DeviceRecord): JsonObject {
  const connected = hub.isConnected({ deviceId: d.deviceId, moduleId: undefined });
  return {
    deviceId: d.deviceId,
    generationId: d.generationId,
    etag: d.etag,
    connectionState: connected ? 'Connected' : 'Disconnected',
    status: d.status,
    statusReason: d.statusReason ?? null,
    connectionStateUpdatedTime: '0001-01-01T00:00:00Z',
    statusUpdatedTime: '0001-01-01T00:00:00Z',
    lastActivityTime: '0001-01-01T00:00:00Z',
    cloudToDeviceMessageCount: 0,
    authentication: authenticationJson(d),
    capabilities: { iotEdge: d.iotEdge },
    ...(d.deviceScope === undefined ? {} : { deviceScope: d.deviceScope }),
    parentScopes: [...(d.parentScopes ?? [])],
  };
}

/** The x509Thumbprint member IoT Hub returns: the thumbprints of a selfSigned identity, else nulls. */
function thumbprintJson(identity: DeviceRecord | ModuleRecord): JsonObject {
  const x509 = identity.x509;
  return x509?.type === 'selfSigned'
    ? { primaryThumbprint: x509.primaryThumbprint, secondaryThumbprint: x509.secondaryThumbprint }
    : { primaryThumbprint: null, secondaryThumbprint: null };
}

/** The authentication member IoT Hub returns for a device or module: SAS keys, or X.509 with null keys. */
function authenticationJson(identity: DeviceRecord | ModuleRecord): JsonObject {
  const sas = identity.x509 === undefined;
  return {
    symmetricKey: sas ? { primaryKey: identity.keys.primaryKey, secondaryKey: identity.keys.secondaryKey } : { primaryKey: null, secondaryKey: null },
    x509Thumbprint: thumbprintJson(identity),
    type: identity.x509?.type ?? 'sas',
  };
}

export function moduleJson(hub: HubEmulator, m: ModuleRecord): JsonObject {
  const connected = hub.isConnected({ deviceId: m.deviceId, moduleId: m.moduleId });
  return {
    moduleId: m.moduleId,
    deviceId: m.deviceId,
    ...(m.managedBy === undefined ? {} : { managedBy: m.managedBy }),
    generationId: m.generationId,
    etag: m.etag,
    connectionState: connected ? 'Connected' : 'Disconnected',
    connectionStateUpdatedTime: '0001-01-01T00:00:00Z',
    lastActivityTime: '0001-01-01T00:00:00Z',
    cloudToDeviceMessageCount: 0,
    authentication: authenticationJson(m),
  };
}

export function twinJson(hub: HubEmulator, deviceId: string, moduleId: string | undefined): JsonObject {
  const device = hub.registry.device(deviceId);
  const holder = hub.registry.twinHolder(deviceId, moduleId);
  const connected = hub.isConnected({ deviceId, moduleId });
  return {
    deviceId,
    ...(moduleId === undefined ? {} : { moduleId }),
    etag: holder.twinEtag,
    deviceEtag: device.etag,
    status: device.status,
    statusUpdateTime: '0001-01-01T00:00:00Z',
    connectionState: connected ? 'Connected' : 'Disconnected',
    lastActivityTime: '0001-01-01T00:00:00Z',
    cloudToDeviceMessageCount: 0,
    authenticationType: holder.x509?.type ?? 'sas',
    x509Thumbprint: thumbprintJson(holder),
    modelId: '',
    ...(moduleId === undefined && device.deviceScope !== undefined ? { deviceScope: device.deviceScope } : {}),
    ...(moduleId === undefined ? { parentScopes: [...(device.parentScopes ?? [])] } : {}),
    version: holder.twin.version,
    tags: structuredClone(holder.twin.tags),
    properties: restTwinProperties(holder.twin),
    ...(moduleId === undefined ? { capabilities: { iotEdge: device.iotEdge } } : {}),
    ...hub.configurations.twinMember(deviceId, moduleId),
  };
}

/** Checks the Authorization header; throws 401 IotHubUnauthorizedAccess with the reason. */
export function authorize(hub: HubEmulator, header: string | undefined): Principal {
  const unauthorized = (why: string) => new HubError('IotHubUnauthorizedAccess', `Unauthorized. ${why}`);
  if (!header) throw unauthorized('No Authorization header.');
  let sas;
  try {
    sas = parseSas(header);
  } catch (error) {
    throw unauthorized((error as Error).message);
  }
  const segments = sas.resource.replace(/^https?:\/\//i, '').replace(/\/+$/, '').split('/');
  const host = segments[0] ?? '';
  if (!hub.hostNames.some((h) => h.toLowerCase() === host.toLowerCase())) throw unauthorized(`Token sr host ${host} is not this hub.`);
  try {
    if (sas.keyName !== undefined) {
      const keys = hub.policyKeys(sas.keyName);
      if (keys.length === 0) throw unauthorized(`No shared access policy named ${sas.keyName}.`);
      if (!resourceCovers(sas.resource, host)) throw unauthorized('A policy token must be scoped to the hub.');
      verifySas(sas, keys);
      return { kind: 'service', policy: sas.keyName };
    }
    // A module token (sr = host/devices/{id}/modules/{mid}, module key): what edgeHub signs its device-scope calls with.
    if (segments.length === 5 && segments[1] === 'devices' && segments[3] === 'modules' && segments[2] && segments[4]) {
      const module = hub.registry.findModule(segments[2], segments[4]);
      if (!module) throw unauthorized(`Module ${segments[2]}/${segments[4]} is not registered.`);
      const refusal = sasRefusal(module, `Module ${segments[2]}/${segments[4]}`);
      if (refusal) throw unauthorized(`${refusal}.`);
      verifySas(sas, [module.keys.primaryKey, module.keys.secondaryKey]);
      return { kind: 'module', deviceId: segments[2], moduleId: segments[4] };
    }
    // A device token (sr = host/devices/{id}, device key): what the edge security daemon uses to
    // manage its own modules' identities.
    if (segments.length !== 3 || segments[1] !== 'devices' || !segments[2]) throw unauthorized('A token without skn must be scoped to one device or module.');
    const deviceId = segments[2];
    const device = hub.registry.findDevice(deviceId);
    if (!device) throw unauthorized(`Device ${deviceId} is not registered.`);
    if (device.status !== 'enabled') throw unauthorized(`Device ${deviceId} is disabled.`);
    const refusal = sasRefusal(device, `Device ${deviceId}`);
    if (refusal) throw unauthorized(`${refusal}.`);
    verifySas(sas, [device.keys.primaryKey, device.keys.secondaryKey]);
    return { kind: 'device', deviceId };
  } catch (error) {
    if (error instanceof HubError) throw error;
    throw unauthorized((error as Error).message);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function numberIn(value: unknown, fallback: number, name: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 300) {
    throw new HubError('ArgumentInvalid', `${name} must be a number of seconds between 0 and 300`);
  }
  return value;
}

/** Routes one REST request; returns what to send. Throws HubError for hub-format errors. */
export async function route(hub: HubEmulator, req: IncomingMessage, principal: Principal): Promise<HttpResult> {
  const url = new URL(req.url ?? '/', 'https://hub.invalid');
  const method = req.method ?? 'GET';
  let segments: string[];
  try {
    segments = url.pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    throw new HubError('ArgumentInvalid', 'the request path has an invalid percent-encoding');
  }
  const ifMatch = header(req, 'if-match');
  const [root, id, sub, mid, tail] = segments;
  const notFound = () => new HubError('NotFound', `No ${method} ${url.pathname} on IoT Hub.`);
  if (root === 'devices' && id !== undefined && sub === 'modules' && mid === '$edgeHub' && isDeviceScopeOperation(tail) && segments.length === 5) {
    return deviceScopeRoute(hub, req, url, principal, id, tail);
  }
  if (principal.kind === 'module') throw new HubError('IotHubUnauthorizedAccess', `Unauthorized. A module token may not call ${url.pathname}.`);
  const deviceOnly = (deviceId: string | undefined) => {
    if (principal.kind === 'device' && principal.deviceId !== deviceId) {
      throw new HubError('IotHubUnauthorizedAccess', `Unauthorized. A token for device ${principal.deviceId} may not act on ${url.pathname}.`);
    }
  };
  const serviceOnly = () => {
    if (principal.kind !== 'service') throw new HubError('IotHubUnauthorizedAccess', `Unauthorized. ${url.pathname} needs a service policy token.`);
  };

  if (root === 'devices' && id === 'query' && sub === undefined && method === 'POST') {
    serviceOnly();
    const page = serveQuery(hub, await readBody(req), header(req, 'x-ms-max-item-count'), header(req, 'x-ms-continuation'));
    return new HttpResult(200, page.items, undefined, page.headers);
  }
  if (root === 'devices') {
    if (id === undefined) {
      serviceOnly();
      if (method === 'POST') {
        const { result, deleted } = hub.registry.bulk(await readBody(req));
        for (const deviceId of deleted) hub.dropConnections({ deviceId });
        return new HttpResult(result.isSuccessful ? 200 : 400, result);
      }
      if (method !== 'GET') throw notFound();
      return new HttpResult(200, hub.registry.listDevices().map((d) => deviceJson(hub, d)));
    }
    if (sub === undefined) {
      deviceOnly(id);
      if (method === 'GET') {
        const d = hub.registry.device(id);
        return new HttpResult(200, deviceJson(hub, d), d.etag);
      }
      serviceOnly();
      if (method === 'PUT') {
        const body = await readBody(req);
        if (!isJsonObject(body)) throw new HubError('ArgumentInvalid', 'the device body must be a JSON object');
        const d = hub.registry.putDevice(id, body, ifMatch);
        return new HttpResult(200, deviceJson(hub, d), d.etag);
      }
      if (method === 'DELETE') {
        hub.registry.deleteDevice(id, ifMatch);
        hub.dropConnections({ deviceId: id });
        return new HttpResult(204);
      }
      throw notFound();
    }
    if (sub === 'modules') {
      deviceOnly(id);
      if (mid === undefined) {
        if (method !== 'GET') throw notFound();
        return new HttpResult(200, Object.values(hub.registry.device(id).modules).map((m) => moduleJson(hub, m)));
      }
      if (tail !== undefined) throw notFound();
      if (method === 'GET') {
        const m = hub.registry.module(id, mid);
        return new HttpResult(200, moduleJson(hub, m), m.etag);
      }
      if (method === 'PUT') {
        const body = await readBody(req);
        if (!isJsonObject(body)) throw new HubError('ArgumentInvalid', 'the module body must be a JSON object');
        const existed = hub.registry.findModule(id, mid) !== undefined;
        const m = hub.registry.putModule(id, mid, body, ifMatch);
        return new HttpResult(existed ? 200 : 201, moduleJson(hub, m), m.etag);
      }
      if (method === 'DELETE') {
        hub.registry.deleteModule(id, mid, ifMatch);
        hub.dropConnections({ deviceId: id, moduleId: mid });
        return new HttpResult(204);
      }
      throw notFound();
    }
    if (sub === 'applyConfigurationContent' && mid === undefined && method === 'POST') {
      serviceOnly();
      const body = await readBody(req);
      hub.applyConfigurationContent(id, body);
      return new HttpResult(204);
    }
    throw notFound();
  }

  if (root === 'configurations' && sub === undefined) {
    serviceOnly();
    return configurationRoute(hub, req, method, id, ifMatch, url);
  }

  if (root === 'jobs' && id === 'v2') {
    serviceOnly();
    const paging = { maxItemCount: header(req, 'x-ms-max-item-count'), continuation: header(req, 'x-ms-continuation') };
    const answer = await serveJobRequest(hub.jobs, method, segments.slice(2), url.searchParams, paging, () => readBody(req));
    return new HttpResult(answer.status, answer.body, undefined, answer.headers);
  }
  if (root === 'twins' && id !== undefined) {
    serviceOnly();
    // /twins/{id}[/modules/{mid}][/methods]
    let moduleId: string | undefined;
    let rest: string[];
    if (sub === 'modules') {
      if (mid === undefined) throw notFound();
      moduleId = mid;
      rest = segments.slice(4);
    } else {
      rest = segments.slice(2);
    }
    if (rest.length === 0) {
      if (method === 'GET') {
        const twin = twinJson(hub, id, moduleId);
        return new HttpResult(200, twin, twin.etag as string);
      }
      if (method === 'PATCH' || method === 'PUT') {
        const body = await readBody(req);
        hub.updateTwin(id, moduleId, body, ifMatch, method === 'PUT' ? 'replace' : 'merge');
        const twin = twinJson(hub, id, moduleId);
        return new HttpResult(200, twin, twin.etag as string);
      }
      throw notFound();
    }
    if (rest.length === 1 && rest[0] === 'methods' && method === 'POST') {
      const body = await readBody(req);
      if (!isJsonObject(body) || typeof body.methodName !== 'string' || !/^[^/?#\s]{1,128}$/.test(body.methodName)) {
        throw new HubError('ArgumentInvalid', 'the body needs a methodName (1–128 characters, no / ? # or spaces)');
      }
      hub.registry.twinHolder(id, moduleId);
      const result = await hub.invokeMethod(
        { deviceId: id, moduleId },
        body.methodName,
        body.payload,
        numberIn(body.responseTimeoutInSeconds, 30, 'responseTimeoutInSeconds'),
        numberIn(body.connectTimeoutInSeconds, 0, 'connectTimeoutInSeconds'),
      );
      return new HttpResult(200, result);
    }
    throw notFound();
  }
  throw notFound();
}

/** GET /configurations[?top=n], and GET, PUT, DELETE /configurations/{id}. */
async function configurationRoute(hub: HubEmulator, req: IncomingMessage, method: string, id: string | undefined, ifMatch: string | undefined, url: URL): Promise<HttpResult> {
  if (id === undefined && method === 'GET') {
    const top = url.searchParams.get('top');
    return new HttpResult(200, hub.configurations.list(top === null ? undefined : Math.max(0, Number.parseInt(top, 10) || 0)));
  }
  if (id !== undefined && (method === 'GET' || method === 'PUT')) {
    const configuration = method === 'GET' ? hub.configurations.get(id) : hub.configurations.put(id, await readBody(req), ifMatch);
    return new HttpResult(200, configuration, configuration.etag as string);
  }
  if (id !== undefined && method === 'DELETE') {
    hub.configurations.delete(id, ifMatch);
    return new HttpResult(204);
  }
  throw new HubError('NotFound', `No ${method} ${url.pathname} on IoT Hub.`);
}

/** The request listener for the hub's HTTPS server. */
export function restHandler(hub: HubEmulator, admin: (req: IncomingMessage, res: ServerResponse) => Promise<void>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      try {
        if ((req.url ?? '').startsWith('/_admin/')) {
          await admin(req, res);
          return;
        }
        const url = new URL(req.url ?? '/', 'https://hub.invalid');
        if (!url.searchParams.get('api-version')) throw new HubError('InvalidProtocolVersion', 'The api-version query parameter is required.');
        const principal = authorize(hub, header(req, 'authorization'));
        const result = await route(hub, req, principal);
        sendJson(res, result.status, result.body, { ...result.headers, ...(result.etag === undefined ? {} : { etag: `"${result.etag}"` }) });
      } catch (error) {
        if (error instanceof HubError) sendHubError(res, error);
        else if (error instanceof TwinValidationError) sendHubError(res, new HubError('ArgumentInvalid', error.message));
        else {
          hub.log('REST request failed', { method: req.method, path: (req.url ?? '').split('?')[0], error: error instanceof Error ? error.message : String(error) });
          sendHubError(res, new HubError('ServerError', 'Internal error in the emulator.'));
        }
      }
    })();
  };
}
