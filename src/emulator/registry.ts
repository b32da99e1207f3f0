// The identity registry: devices, modules, their keys, etags and twins. Held in memory; the
// emulator persists `snapshot()` to the state file and restores it with `IdentityRegistry.restore`.
import { randomBytes } from 'node:crypto';
import { generateSymmetricKey } from '../runtime/sas.ts';
import { HubError } from './errors.ts';
import { newTwinState } from './twin.ts';
import type { TwinState } from './twin.ts';

export interface SymmetricKeys {
  primaryKey: string;
  secondaryKey: string;
}

export interface ModuleRecord {
  deviceId: string;
  moduleId: string;
  managedBy: string | undefined;
  generationId: string;
  etag: string;
  keys: SymmetricKeys;
  twin: TwinState;
  twinEtag: string;
}

export interface DeviceRecord {
  deviceId: string;
  generationId: string;
  etag: string;
  status: 'enabled' | 'disabled';
  statusReason: string | undefined;
  iotEdge: boolean;
  deviceScope: string | undefined;
  keys: SymmetricKeys;
  twin: TwinState;
  twinEtag: string;
  modules: Record<string, ModuleRecord>;
}

export interface RegistrySnapshot {
  counter: number;
  devices: Record<string, DeviceRecord>;
}

/** Names of the modules an edge device gets with its identity. */
export const edgeSystemModules = ['$edgeAgent', '$edgeHub'] as const;

export function isSystemModule(moduleId: string): boolean {
  return (edgeSystemModules as readonly string[]).includes(moduleId);
}

export interface DeviceInput {
  deviceId?: unknown;
  status?: unknown;
  statusReason?: unknown;
  capabilities?: { iotEdge?: unknown } | null;
  authentication?: { type?: unknown; symmetricKey?: { primaryKey?: unknown; secondaryKey?: unknown } | null } | null;
}

export interface ModuleInput {
  deviceId?: unknown;
  moduleId?: unknown;
  managedBy?: unknown;
  authentication?: DeviceInput['authentication'];
}

// Ids: up to 128 characters, ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ ' (IoT Hub's rule).
const idPattern = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;

function checkId(kind: 'device' | 'module', id: unknown): string {
  if (typeof id !== 'string' || !idPattern.test(id)) {
    throw new HubError('ArgumentInvalid', `the ${kind} id ${JSON.stringify(id)} is not valid: 1–128 characters of A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ '`);
  }
  return id;
}

function keysFrom(input: DeviceInput['authentication'], what: string): SymmetricKeys {
  if (input?.type !== undefined && input.type !== 'sas') {
    throw new HubError('ArgumentInvalid', `${what}: only authentication.type "sas" is emulated, not ${JSON.stringify(input.type)}`);
  }
  const pick = (value: unknown, field: string): string => {
    if (value === undefined || value === null || value === '') return generateSymmetricKey();
    const bytes = typeof value === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(value) ? Buffer.from(value, 'base64').length : 0;
    if (bytes < 16 || bytes > 64) throw new HubError('ArgumentInvalid', `${what}: authentication.symmetricKey.${field} must be base64 of 16 to 64 bytes`);
    return value as string;
  };
  return {
    primaryKey: pick(input?.symmetricKey?.primaryKey, 'primaryKey'),
    secondaryKey: pick(input?.symmetricKey?.secondaryKey, 'secondaryKey'),
  };
}

/** Strips surrounding quotes (and a weak-validator prefix) from an If-Match value. */
export function unquoteEtag(value: string): string {
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

export class IdentityRegistry {
  private counter: number;
  private readonly devices: Map<string, DeviceRecord>;
  /** Called after every change, so the owner can persist. */
  onChange: () => void = () => {};

  constructor(snapshot?: RegistrySnapshot) {
    this.counter = snapshot?.counter ?? 1;
    this.devices = new Map(Object.entries(snapshot?.devices ?? {}));
  }

  snapshot(): RegistrySnapshot {
    return structuredClone({ counter: this.counter, devices: Object.fromEntries(this.devices) });
  }

  /** Identity etags look like the hub's: base64 of a decimal number. */
  private nextIdentityEtag(): string {
    return Buffer.from(String(++this.counter)).toString('base64');
  }

  /** Twin etags look like the hub's: base64 of an 8-byte big-endian number, e.g. "AAAAAAAAAAc=". */
  nextTwinEtag(): string {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(++this.counter));
    return b.toString('base64');
  }

  changed(): void {
    this.onChange();
  }

  listDevices(): DeviceRecord[] {
    return [...this.devices.values()];
  }

  findDevice(deviceId: string): DeviceRecord | undefined {
    return this.devices.get(deviceId);
  }

  device(deviceId: string): DeviceRecord {
    const d = this.devices.get(deviceId);
    if (!d) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    return d;
  }

  findModule(deviceId: string, moduleId: string): ModuleRecord | undefined {
    return this.devices.get(deviceId)?.modules[moduleId];
  }

  module(deviceId: string, moduleId: string): ModuleRecord {
    const m = this.device(deviceId).modules[moduleId];
    if (!m) throw new HubError('ModuleNotFound', `Module ${moduleId} on device ${deviceId} not found`);
    return m;
  }

  private checkEtag(current: string, ifMatch: string | undefined, what: string): void {
    if (ifMatch === undefined) return;
    const wanted = unquoteEtag(ifMatch);
    if (wanted !== '*' && wanted !== current) throw new HubError('PreconditionFailed', `${what}: If-Match "${wanted}" does not match the current etag "${current}"`);
  }

  /** PUT /devices/{id}: creates without If-Match (409 if it exists), updates with it. */
  putDevice(deviceId: string, input: DeviceInput, ifMatch: string | undefined): DeviceRecord {
    checkId('device', deviceId);
    if (input.deviceId !== undefined && input.deviceId !== deviceId) {
      throw new HubError('ArgumentInvalid', `body deviceId ${JSON.stringify(input.deviceId)} differs from the URL's ${deviceId}`);
    }
    const status = input.status === undefined ? 'enabled' : input.status;
    if (status !== 'enabled' && status !== 'disabled') throw new HubError('ArgumentInvalid', `status must be "enabled" or "disabled"`);
    const iotEdge = input.capabilities?.iotEdge === true;
    const existing = this.devices.get(deviceId);
    if (existing) {
      if (ifMatch === undefined) throw new HubError('DeviceAlreadyExists', `A device with ID '${deviceId}' is already registered.`);
      this.checkEtag(existing.etag, ifMatch, `device ${deviceId}`);
      existing.keys = keysFrom(input.authentication, `device ${deviceId}`);
      existing.status = status;
      existing.statusReason = typeof input.statusReason === 'string' ? input.statusReason : undefined;
      existing.iotEdge = iotEdge;
      if (iotEdge) this.ensureSystemModules(existing);
      existing.etag = this.nextIdentityEtag();
      this.changed();
      return existing;
    }
    if (ifMatch !== undefined) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    const now = new Date().toISOString();
    const generationId = `63${randomBytes(7).readUIntBE(0, 6).toString().padStart(15, '0')}`;
    const device: DeviceRecord = {
      deviceId,
      generationId,
      etag: this.nextIdentityEtag(),
      status,
      statusReason: typeof input.statusReason === 'string' ? input.statusReason : undefined,
      iotEdge,
      deviceScope: iotEdge ? `ms-azure-iot-edge://${deviceId}-${generationId}` : undefined,
      keys: keysFrom(input.authentication, `device ${deviceId}`),
      twin: newTwinState(now),
      twinEtag: this.nextTwinEtag(),
      modules: {},
    };
    if (iotEdge) this.ensureSystemModules(device);
    this.devices.set(deviceId, device);
    this.changed();
    return device;
  }

  private ensureSystemModules(device: DeviceRecord): void {
    for (const moduleId of edgeSystemModules) {
      if (!device.modules[moduleId]) device.modules[moduleId] = this.newModule(device.deviceId, moduleId, {}, 'IotEdge');
    }
  }

  private newModule(deviceId: string, moduleId: string, input: ModuleInput, managedBy: string | undefined): ModuleRecord {
    return {
      deviceId,
      moduleId,
      managedBy,
      generationId: `63${randomBytes(7).readUIntBE(0, 6).toString().padStart(15, '0')}`,
      etag: this.nextIdentityEtag(),
      keys: keysFrom(input.authentication, `module ${deviceId}/${moduleId}`),
      twin: newTwinState(new Date().toISOString()),
      twinEtag: this.nextTwinEtag(),
    };
  }

  deleteDevice(deviceId: string, ifMatch: string | undefined): void {
    const device = this.device(deviceId);
    this.checkEtag(device.etag, ifMatch, `device ${deviceId}`);
    this.devices.delete(deviceId);
    this.changed();
  }

  /** PUT /devices/{id}/modules/{mid}: creates without If-Match (409 if it exists), updates with it. */
  putModule(deviceId: string, moduleId: string, input: ModuleInput, ifMatch: string | undefined): ModuleRecord {
    checkId('module', moduleId);
    const device = this.device(deviceId);
    if (input.moduleId !== undefined && input.moduleId !== moduleId) {
      throw new HubError('ArgumentInvalid', `body moduleId ${JSON.stringify(input.moduleId)} differs from the URL's ${moduleId}`);
    }
    if (input.deviceId !== undefined && input.deviceId !== deviceId) {
      throw new HubError('ArgumentInvalid', `body deviceId ${JSON.stringify(input.deviceId)} differs from the URL's ${deviceId}`);
    }
    const managedBy = typeof input.managedBy === 'string' ? input.managedBy : undefined;
    const existing = device.modules[moduleId];
    if (existing) {
      if (ifMatch === undefined) throw new HubError('ModuleAlreadyExistsOnDevice', `A module with ID '${moduleId}' is already registered on device '${deviceId}'.`);
      this.checkEtag(existing.etag, ifMatch, `module ${deviceId}/${moduleId}`);
      existing.keys = keysFrom(input.authentication, `module ${deviceId}/${moduleId}`);
      existing.managedBy = managedBy ?? existing.managedBy;
      existing.etag = this.nextIdentityEtag();
      this.changed();
      return existing;
    }
    if (ifMatch !== undefined && unquoteEtag(ifMatch) !== '*') throw new HubError('ModuleNotFound', `Module ${moduleId} on device ${deviceId} not found`);
    const created = this.newModule(deviceId, moduleId, input, managedBy);
    device.modules[moduleId] = created;
    this.changed();
    return created;
  }

  deleteModule(deviceId: string, moduleId: string, ifMatch: string | undefined): void {
    const module = this.module(deviceId, moduleId);
    const device = this.device(deviceId);
    if (device.iotEdge && isSystemModule(moduleId)) {
      throw new HubError('SystemModuleModifyUnauthorizedAccess', `Unauthorized to delete reserved module ${moduleId}.`);
    }
    this.checkEtag(module.etag, ifMatch, `module ${deviceId}/${moduleId}`);
    delete device.modules[moduleId];
    this.changed();
  }

  /** The twin holder for a device (moduleId undefined) or a module; throws 404 codes. */
  twinHolder(deviceId: string, moduleId: string | undefined): DeviceRecord | ModuleRecord {
    return moduleId === undefined ? this.device(deviceId) : this.module(deviceId, moduleId);
  }

  checkTwinEtag(holder: DeviceRecord | ModuleRecord, ifMatch: string | undefined): void {
    this.checkEtag(holder.twinEtag, ifMatch, 'twin');
  }

  /** Call after changing a holder's twin: new etag, persisted. */
  twinChanged(holder: DeviceRecord | ModuleRecord): void {
    holder.twinEtag = this.nextTwinEtag();
    this.changed();
  }
}
