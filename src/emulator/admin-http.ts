// /_admin/ over HTTPS: the admin hooks for tests that run in another process. Loopback peers only,
// with the emulator's admin token as a bearer token (not a SAS: a hub credential grants nothing here).
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HubError } from './errors.ts';
import type { HubEmulator } from './emulator.ts';
import type { FaultWindow, IdentityFilter } from './faults.ts';
import { readBody, sendHubError } from './rest.ts';
import { isJsonObject } from './twin.ts';
import type { JsonObject } from './twin.ts';

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length));
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

function optionalString(body: JsonObject, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new HubError('ArgumentInvalid', `${name} must be a string`);
  return v;
}

function optionalNumber(body: JsonObject, name: string): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new HubError('ArgumentInvalid', `${name} must be a number`);
  return v;
}

function windowOf(body: JsonObject): FaultWindow {
  const count = optionalNumber(body, 'count');
  const forMs = optionalNumber(body, 'forMs');
  return { ...(count === undefined ? {} : { count }), ...(forMs === undefined ? {} : { forMs }) };
}

function filterOf(body: JsonObject | URLSearchParams): IdentityFilter {
  const deviceId = body instanceof URLSearchParams ? (body.get('deviceId') ?? undefined) : optionalString(body, 'deviceId');
  const moduleId = body instanceof URLSearchParams ? (body.get('moduleId') ?? undefined) : optionalString(body, 'moduleId');
  return { ...(deviceId === undefined ? {} : { deviceId }), ...(moduleId === undefined ? {} : { moduleId }) };
}

export function adminHandler(hub: HubEmulator) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!isLoopback(req.socket.remoteAddress) || !tokenMatches(req.headers.authorization, hub.adminToken)) {
      sendHubError(res, new HubError('IotHubUnauthorizedAccess', 'Unauthorized. The admin API needs a loopback peer and the emulator admin token.'));
      return;
    }
    const url = new URL(req.url ?? '/', 'https://hub.invalid');
    const path = url.pathname.split('/').filter((s) => s !== '').slice(1).map((s) => decodeURIComponent(s));
    const method = req.method ?? 'GET';
    const key = `${method} ${path[0] ?? ''}`;
    try {
      const rawBody = method === 'POST' ? await readBody(req) : undefined;
      const body: JsonObject = isJsonObject(rawBody) ? rawBody : {};
      switch (key) {
        case 'GET twins': {
          const [, deviceId, modules, moduleId] = path;
          if (!deviceId || (modules !== undefined && (modules !== 'modules' || !moduleId))) throw new HubError('NotFound', 'use /_admin/twins/{deviceId}[/modules/{moduleId}]');
          return send(res, 200, hub.admin.twin(deviceId, moduleId));
        }
        case 'GET messages':
          return send(res, 200, hub.admin.messages(filterOf(url.searchParams)).map((m) => ({ ...m, body: m.body.toString('base64') })));
        case 'DELETE messages':
          hub.admin.clearMessages();
          return send(res, 200, {});
        case 'GET c2d-messages':
          return send(res, 200, hub.c2d.messages(url.searchParams.get('deviceId') ?? undefined).map((m) => ({ ...m, body: m.body.toString('base64') })));
        case 'GET c2d-feedback':
          return send(res, 200, hub.c2d.feedback());
        case 'GET connections':
          return send(res, 200, hub.admin.connections());
        case 'GET connection-log':
          return send(res, 200, hub.admin.connectionLog(filterOf(url.searchParams)));
        case 'GET device-scope-calls':
          return send(res, 200, hub.admin.deviceScopeCalls());
        case 'POST connections':
          if (path[1] !== 'drop') break;
          return send(res, 200, { dropped: hub.admin.dropConnections(filterOf(body)) });
        case 'POST desired-notifications': {
          const mode = optionalString(body, 'fault');
          if (mode === 'drop') hub.admin.dropDesiredNotifications(windowOf(body), filterOf(body));
          else if (mode === 'delay') hub.admin.delayDesiredNotifications(optionalNumber(body, 'delayMs') ?? Number.NaN, windowOf(body), filterOf(body));
          else throw new HubError('ArgumentInvalid', 'fault must be "drop" or "delay"');
          return send(res, 200, {});
        }
        case 'GET desired-notifications':
          return send(res, 200, hub.admin.desiredNotifications());
        case 'POST refuse-connections': {
          const mode = optionalString(body, 'mode') ?? 'connack';
          hub.admin.refuseConnections(mode as 'connack', windowOf(body));
          return send(res, 200, {});
        }
        case 'POST faults':
          if (path[1] !== 'clear') break;
          hub.admin.clearFaults();
          return send(res, 200, {});
        case 'GET connection-strings': {
          const deviceId = url.searchParams.get('deviceId');
          const moduleId = url.searchParams.get('moduleId');
          return send(res, 200, {
            service: hub.serviceConnectionString,
            ...(deviceId ? { device: moduleId ? hub.moduleConnectionString(deviceId, moduleId) : hub.deviceConnectionString(deviceId) } : {}),
          });
        }
        default:
          break;
      }
      throw new HubError('NotFound', `No admin operation ${method} /_admin/${path.join('/')}`);
    } catch (error) {
      if (error instanceof HubError) return sendHubError(res, error);
      if (error instanceof RangeError) return sendHubError(res, new HubError('ArgumentInvalid', error.message));
      throw error;
    }
  };
}
