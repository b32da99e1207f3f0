// The device-scope API edgeHub calls to learn the identities (and SAS keys) it may authenticate:
// the nested form edgeHub 1.2+ uses (POST …/devicesAndModulesInTargetDeviceScope and
// …/getDeviceAndModuleOnBehalfOf, api-version 2020-06-30-preview) and the 1.1 GET forms
// (…/devicesAndModulesInDeviceScope, …/deviceAndModuleInDeviceScope). Only the edge device's own
// $edgeHub may call them, with its module SAS. Answers are ScopeResult {devices, modules, continuationLink}
// with keys included, as IoT Hub returns them.
import type { IncomingMessage } from 'node:http';
import { HubError } from './errors.ts';
import type { DeviceRecord } from './registry.ts';
import { deviceJson, HttpResult, moduleJson, readBody, type Principal } from './rest.ts';
import { isJsonObject, type JsonObject } from './twin.ts';
import type { HubEmulator } from './emulator.ts';

export const deviceScopeOperations = ['devicesAndModulesInTargetDeviceScope', 'getDeviceAndModuleOnBehalfOf', 'devicesAndModulesInDeviceScope', 'deviceAndModuleInDeviceScope'] as const;
export type DeviceScopeOperation = (typeof deviceScopeOperations)[number];

export function isDeviceScopeOperation(name: string | undefined): name is DeviceScopeOperation {
  return (deviceScopeOperations as readonly string[]).includes(name ?? '');
}

const defaultPageSize = 100;

/**
 * Devices in an edge device's scope: itself and its children, the leaf devices whose deviceScope is its scope
 * and the edge devices whose parentScopes name it.
 */
function scopeDevices(hub: HubEmulator, edge: DeviceRecord): DeviceRecord[] {
  const scope = edge.deviceScope;
  return hub.registry.listDevices()
    .filter((d) => d.deviceId === edge.deviceId || (scope !== undefined && (d.deviceScope === scope || (d.parentScopes ?? []).includes(scope))))
    .sort((a, b) => (a.deviceId === edge.deviceId ? -1 : b.deviceId === edge.deviceId ? 1 : a.deviceId.localeCompare(b.deviceId)));
}

/** Every identity of the scope as one list, so pages cut anywhere: a device, then its modules. */
function scopeItems(hub: HubEmulator, edge: DeviceRecord): { device?: DeviceRecord; module?: { deviceId: string; moduleId: string } }[] {
  return scopeDevices(hub, edge).flatMap((d) => [{ device: d }, ...Object.keys(d.modules).sort().map((moduleId) => ({ module: { deviceId: d.deviceId, moduleId } }))]);
}

function page(hub: HubEmulator, edge: DeviceRecord, offset: number, size: number, nextLink: (offset: number) => string): JsonObject {
  const items = scopeItems(hub, edge);
  const slice = items.slice(offset, offset + size);
  const devices = slice.filter((i) => i.device).map((i) => deviceJson(hub, i.device!));
  const modules = slice.filter((i) => i.module).map((i) => moduleJson(hub, hub.registry.module(i.module!.deviceId, i.module!.moduleId)));
  return { devices, modules, continuationLink: offset + size < items.length ? nextLink(offset + size) : null };
}

function single(hub: HubEmulator, edge: DeviceRecord, targetDeviceId: unknown, targetModuleId: unknown): JsonObject {
  if (typeof targetDeviceId !== 'string' || targetDeviceId === '') throw new HubError('ArgumentInvalid', 'targetDeviceId is required');
  const device = scopeDevices(hub, edge).find((d) => d.deviceId === targetDeviceId);
  // Out of scope and unknown look the same to the caller: an empty result, as the hub answers.
  if (!device) return { devices: [], modules: [], continuationLink: null };
  if (typeof targetModuleId === 'string' && targetModuleId !== '') {
    const module = hub.registry.findModule(device.deviceId, targetModuleId);
    return { devices: [], modules: module ? [moduleJson(hub, module)] : [], continuationLink: null };
  }
  return { devices: [deviceJson(hub, device)], modules: [], continuationLink: null };
}

function offsetOf(token: unknown): number {
  if (token === undefined || token === null || token === '') return 0;
  const text = String(token);
  const match = /(?:^|[?&]continuationToken=)(\d+)$/.exec(text);
  if (!match) throw new HubError('ArgumentInvalid', 'the continuation link is not one this hub gave');
  return Number(match[1]);
}

function pageSizeOf(value: unknown): number {
  if (value === undefined || value === null || value === '') return defaultPageSize;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new HubError('ArgumentInvalid', 'the page size must be an integer from 1 to 1000');
  return n;
}

/** Serves one device-scope call for edge device `deviceId`, made by `principal`. */
export async function deviceScopeRoute(hub: HubEmulator, req: IncomingMessage, url: URL, principal: Principal, deviceId: string, operation: DeviceScopeOperation): Promise<HttpResult> {
  if (principal.kind !== 'module' || principal.deviceId !== deviceId || principal.moduleId !== '$edgeHub') {
    throw new HubError('IotHubUnauthorizedAccess', `Unauthorized. The device scope of ${deviceId} is served to its $edgeHub only, with the $edgeHub module's SAS.`);
  }
  const edge = hub.registry.device(deviceId);
  if (!edge.iotEdge) throw new HubError('ArgumentInvalid', `Device ${deviceId} is not an IoT Edge device.`);
  hub.recordDeviceScopeCall({ deviceId, operation });
  const base = `/devices/${encodeURIComponent(deviceId)}/modules/%24edgeHub/${operation}`;
  const method = req.method ?? 'GET';
  if (operation === 'devicesAndModulesInTargetDeviceScope' || operation === 'getDeviceAndModuleOnBehalfOf') {
    if (method !== 'POST') throw new HubError('NotFound', `${operation} takes POST.`);
    const body = await readBody(req);
    if (!isJsonObject(body)) throw new HubError('ArgumentInvalid', 'the body must be a JSON object');
    if (typeof body.authChain !== 'string' || !body.authChain.split(';').includes(deviceId)) {
      throw new HubError('IotHubUnauthorizedAccess', `Unauthorized. authChain must name ${deviceId}.`);
    }
    if (operation === 'getDeviceAndModuleOnBehalfOf') return new HttpResult(200, single(hub, edge, body.targetDeviceId, body.targetModuleId));
    return new HttpResult(200, page(hub, edge, offsetOf(body.continuationLink), pageSizeOf(body.pageSize),
      (next) => `${base}?api-version=2020-06-30-preview&continuationToken=${next}`));
  }
  if (method !== 'GET') throw new HubError('NotFound', `${operation} takes GET.`);
  if (operation === 'deviceAndModuleInDeviceScope') return new HttpResult(200, single(hub, edge, url.searchParams.get('targetDeviceId'), url.searchParams.get('targetModuleId')));
  return new HttpResult(200, page(hub, edge, offsetOf(url.searchParams.get('continuationToken')), pageSizeOf(url.searchParams.get('deviceCount')),
    (next) => `${base}?deviceCount=${pageSizeOf(url.searchParams.get('deviceCount'))}&continuationToken=${next}&api-version=2018-08-30-preview`));
}
