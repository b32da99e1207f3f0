// The identity registry: devices, modules, their keys, etags and twins. Held in memory; the
// emulator persists `snapshot()` to the state file and restores it with `IdentityRegistry.restore`.
import { randomBytes } from 'node:crypto';
import { generateSymmetricKey } from '../runtime/sas.ts';
import { HubError } from './errors.ts';
import { applyServiceWrite, isJsonObject, newTwinState, TwinValidationError } from './twin.ts';
import type { JsonObject, ServiceTwinWrite, TwinState } from './twin.ts';

export interface SymmetricKeys {
  primaryKey: string;
  secondaryKey: string;
}

/**
 * An X.509 identity's authentication, stored and returned as IoT Hub does. Connecting with it is not
 * emulated: MQTT and REST refuse it with a reason that says so (see docs/emulator.md).
 */
export type X509Authentication =
  | { type: 'selfSigned'; primaryThumbprint: string; secondaryThumbprint: string | null }
  | { type: 'certificateAuthority' };

export interface ModuleRecord {
  deviceId: string;
  moduleId: string;
  managedBy: string | undefined;
  generationId: string;
  etag: string;
  /** Empty strings for an X.509 identity (no SAS key matches them: verifySas skips empty keys). */
  keys: SymmetricKeys;
  /** Set for an X.509 identity; absent for SAS (also in state files written before X.509 was stored). */
  x509?: X509Authentication;
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
  /** An edge device's own scope (generated, immutable), or a leaf device's parent's scope. */
  deviceScope: string | undefined;
  /** The parent edge device's scope: at most one; for a leaf device always `[deviceScope]`. */
  parentScopes?: string[];
  /** Empty strings for an X.509 identity (no SAS key matches them: verifySas skips empty keys). */
  keys: SymmetricKeys;
  /** Set for an X.509 identity; absent for SAS (also in state files written before X.509 was stored). */
  x509?: X509Authentication;
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
  authentication?: {
    type?: unknown;
    symmetricKey?: { primaryKey?: unknown; secondaryKey?: unknown } | null;
    x509Thumbprint?: { primaryThumbprint?: unknown; secondaryThumbprint?: unknown } | null;
  } | null;
  deviceScope?: unknown;
  parentScopes?: unknown;
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

const isBlank = (value: unknown): boolean => value === undefined || value === null || value === '';
// A certificate thumbprint: SHA-1 (40 hex digits) or SHA-256 (64), as IoT Hub accepts them.
const thumbprintPattern = /^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/;

function thumbprintFrom(value: unknown, field: string, what: string): string | null {
  if (isBlank(value)) return null;
  if (typeof value !== 'string' || !thumbprintPattern.test(value)) {
    throw new HubError('ArgumentInvalid', `${what}: authentication.x509Thumbprint.${field} must be 40 (SHA-1) or 64 (SHA-256) hex digits`);
  }
  return value;
}

const noKeys: SymmetricKeys = { primaryKey: '', secondaryKey: '' };

/** An identity's authentication from a request body: SAS keys (given or generated), or an X.509 record. */
function authenticationFrom(input: DeviceInput['authentication'], what: string): { keys: SymmetricKeys; x509: X509Authentication | undefined } {
  const type = input?.type ?? 'sas';
  const primary = thumbprintFrom(input?.x509Thumbprint?.primaryThumbprint, 'primaryThumbprint', what);
  const secondary = thumbprintFrom(input?.x509Thumbprint?.secondaryThumbprint, 'secondaryThumbprint', what);
  if (type === 'sas') {
    if (primary !== null || secondary !== null) throw new HubError('ArgumentInvalid', `${what}: authentication.type "sas" takes no x509Thumbprint`);
    return { keys: keysFrom(input, what), x509: undefined };
  }
  if (type !== 'selfSigned' && type !== 'certificateAuthority') {
    throw new HubError('ArgumentInvalid', `${what}: authentication.type must be "sas", "selfSigned" or "certificateAuthority", not ${JSON.stringify(type)}`);
  }
  if (!isBlank(input?.symmetricKey?.primaryKey) || !isBlank(input?.symmetricKey?.secondaryKey)) {
    throw new HubError('ArgumentInvalid', `${what}: authentication.type "${type}" takes no symmetricKey`);
  }
  if (type === 'certificateAuthority') {
    if (primary !== null || secondary !== null) throw new HubError('ArgumentInvalid', `${what}: authentication.type "certificateAuthority" takes no x509Thumbprint`);
    return { keys: { ...noKeys }, x509: { type } };
  }
  if (primary === null) throw new HubError('ArgumentInvalid', `${what}: authentication.type "selfSigned" needs x509Thumbprint.primaryThumbprint`);
  return { keys: { ...noKeys }, x509: { type, primaryThumbprint: primary, secondaryThumbprint: secondary } };
}

/** Why an identity cannot connect with a SAS token, or undefined when it can. */
export function sasRefusal(identity: { x509?: X509Authentication }, what: string): string | undefined {
  if (identity.x509 === undefined) return undefined;
  return `${what} authenticates with X.509 (${identity.x509.type}); the emulator stores X.509 identities but connects SAS identities only`;
}

/** The scope IoT Hub gives an edge device: fixed at creation, `ms-azure-iot-edge://<id>-<generationId>`. */
function edgeScope(deviceId: string, generationId: string): string {
  return `ms-azure-iot-edge://${deviceId}-${generationId}`;
}

function parentScopesFrom(value: unknown, what: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) throw new HubError('ArgumentInvalid', `${what}: parentScopes must be an array of scope strings`);
  return value as string[];
}

export interface BulkRegistryError {
  deviceId: string;
  errorCode: string;
  errorStatus: string;
  operation: string;
}

/** IoT Hub's BulkRegistryOperationResult. */
export interface BulkRegistryResult {
  isSuccessful: boolean;
  errors: BulkRegistryError[];
  warnings: never[];
}

/** The import modes of POST /devices, by their lower-case names (IoT Hub reads them case-insensitively). */
const importModes = ['create', 'update', 'updateifmatchetag', 'delete', 'deleteifmatchetag'] as const;
type ImportMode = (typeof importModes)[number];
export const bulkLimit = 100;

/** Strips surrounding quotes (and a weak-validator prefix) from an If-Match value. */
export function unquoteEtag(value: string): string {
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

function setX509(record: { x509?: X509Authentication }, x509: X509Authentication | undefined): void {
  if (x509 === undefined) delete record.x509;
  else record.x509 = x509;
}

interface BulkOperation {
  id: string;
  mode: ImportMode;
  /** importMode as the request spelled it, for error entries. */
  modeName: string;
  etag: string | undefined;
  device: DeviceInput;
  twin: ServiceTwinWrite | undefined;
}

/** Checks a bulk request's shape: 1–100 objects, each with an id (once) and a known importMode. */
function bulkOperations(body: unknown): BulkOperation[] {
  if (!Array.isArray(body) || body.length === 0) throw new HubError('ArgumentInvalid', 'the bulk registry body must be a non-empty array of devices');
  if (body.length > bulkLimit) throw new HubError('ArgumentInvalid', `a bulk registry request takes at most ${bulkLimit} devices, not ${body.length}`);
  const seen = new Set<string>();
  return body.map((item: unknown, index) => {
    if (!isJsonObject(item)) throw new HubError('ArgumentInvalid', `devices[${index}] must be an object`);
    const id = checkId('device', item.id);
    if (seen.has(id)) throw new HubError('ArgumentInvalid', `device ${id} appears more than once; a bulk request names each device once`);
    seen.add(id);
    const modeName = typeof item.importMode === 'string' ? item.importMode : '';
    const mode = importModes.find((m) => m === modeName.toLowerCase());
    if (!mode) throw new HubError('ArgumentInvalid', `devices[${index}].importMode ${JSON.stringify(item.importMode)} is not one of create, update, updateIfMatchETag, delete, deleteIfMatchETag`);
    // IoT Hub reads JSON members case-insensitively: azure-iothub sends the etag it read as `etag`.
    const etagValue = item.eTag ?? item.etag;
    const { tags, properties } = item;
    const device: JsonObject = { ...item };
    for (const member of ['id', 'importMode', 'eTag', 'etag', 'tags', 'properties']) delete device[member];
    const desired = isJsonObject(properties) ? properties.desired : undefined;
    if (properties !== undefined && properties !== null && (!isJsonObject(properties) || properties.reported !== undefined)) {
      throw new HubError('ArgumentInvalid', `devices[${index}].properties may hold desired properties only`);
    }
    const twin = tags === undefined && desired === undefined ? undefined : { ...(tags === undefined ? {} : { tags }), ...(desired === undefined ? {} : { desired }) } as ServiceTwinWrite;
    return { id, mode, modeName, etag: typeof etagValue === 'string' && etagValue !== '' ? etagValue : undefined, device: { ...device, deviceId: id } as DeviceInput, twin };
  });
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
      const auth = authenticationFrom(input.authentication, `device ${deviceId}`);
      const scopes = this.scopesFor(deviceId, iotEdge, input, existing.generationId, existing);
      existing.keys = auth.keys;
      setX509(existing, auth.x509);
      existing.status = status;
      existing.statusReason = typeof input.statusReason === 'string' ? input.statusReason : undefined;
      existing.iotEdge = iotEdge;
      existing.deviceScope = scopes.deviceScope;
      existing.parentScopes = scopes.parentScopes;
      if (iotEdge) this.ensureSystemModules(existing);
      existing.etag = this.nextIdentityEtag();
      this.changed();
      return existing;
    }
    if (ifMatch !== undefined) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    const now = new Date().toISOString();
    const generationId = `63${randomBytes(7).readUIntBE(0, 6).toString().padStart(15, '0')}`;
    const auth = authenticationFrom(input.authentication, `device ${deviceId}`);
    const scopes = this.scopesFor(deviceId, iotEdge, input, generationId, undefined);
    const device: DeviceRecord = {
      deviceId,
      generationId,
      etag: this.nextIdentityEtag(),
      status,
      statusReason: typeof input.statusReason === 'string' ? input.statusReason : undefined,
      iotEdge,
      deviceScope: scopes.deviceScope,
      parentScopes: scopes.parentScopes,
      keys: auth.keys,
      twin: newTwinState(now),
      twinEtag: this.nextTwinEtag(),
      modules: {},
    };
    setX509(device, auth.x509);
    if (iotEdge) this.ensureSystemModules(device);
    this.devices.set(deviceId, device);
    this.changed();
    return device;
  }

  /** The edge device whose own scope is `scope`. */
  private edgeDeviceOfScope(scope: string): DeviceRecord | undefined {
    return [...this.devices.values()].find((d) => d.iotEdge && d.deviceScope === scope);
  }

  /**
   * deviceScope and parentScopes with IoT Hub's rules. An edge device's deviceScope is its own, generated at
   * creation and immutable; its parentScopes name at most one other edge device, never one below it. A leaf
   * device's deviceScope is its parent edge device's scope, and its parentScopes is `[deviceScope]`.
   */
  private scopesFor(deviceId: string, iotEdge: boolean, input: DeviceInput, generationId: string, existing: DeviceRecord | undefined): { deviceScope: string | undefined; parentScopes: string[] } {
    const what = `device ${deviceId}`;
    const given = isBlank(input.deviceScope) ? undefined : input.deviceScope;
    if (given !== undefined && typeof given !== 'string') throw new HubError('ArgumentInvalid', `${what}: deviceScope must be a string`);
    const parents = parentScopesFrom(input.parentScopes, what);
    if (iotEdge) {
      const own = existing?.iotEdge && existing.deviceScope !== undefined ? existing.deviceScope : edgeScope(deviceId, generationId);
      // An update may echo the scope it read; a leaf turning into an edge device may echo its old parent's.
      if (given !== undefined && given !== own && given !== existing?.deviceScope) {
        throw new HubError('ArgumentInvalid', `${what}: the deviceScope of an IoT Edge device is generated by the hub and cannot be set (it is ${own})`);
      }
      if (parents !== undefined && parents.length > 1) throw new HubError('ArgumentInvalid', `${what}: an IoT Edge device has at most one parent, not ${parents.length} parentScopes`);
      const parent = parents?.[0];
      if (parent !== undefined) this.checkEdgeParent(deviceId, own, parent);
      return { deviceScope: own, parentScopes: parent === undefined ? [] : [parent] };
    }
    if (given !== undefined && !this.edgeDeviceOfScope(given)) {
      throw new HubError('ArgumentInvalid', `${what}: deviceScope ${given} is not the scope of an IoT Edge device in this hub`);
    }
    if (parents !== undefined && parents.length > 0 && (parents.length > 1 || parents[0] !== given)) {
      throw new HubError('ArgumentInvalid', `${what}: a leaf device's parent is set by deviceScope; its parentScopes must be empty or [deviceScope]`);
    }
    return { deviceScope: given, parentScopes: given === undefined ? [] : [given] };
  }

  /** A parent scope for edge device `deviceId` (own scope `own`): another edge device, not one of its descendants. */
  private checkEdgeParent(deviceId: string, own: string, parentScope: string): void {
    const what = `device ${deviceId}`;
    if (parentScope === own) throw new HubError('ArgumentInvalid', `${what}: an IoT Edge device cannot be its own parent`);
    const seen = new Set<string>();
    for (let ancestor = this.edgeDeviceOfScope(parentScope); ancestor !== undefined; ancestor = this.edgeDeviceOfScope(ancestor.parentScopes?.[0] ?? '')) {
      if (ancestor.deviceId === deviceId) throw new HubError('ArgumentInvalid', `${what}: parent scope ${parentScope} is below this device; a hierarchy has no cycles`);
      if (seen.has(ancestor.deviceId)) break;
      seen.add(ancestor.deviceId);
    }
    if (!this.edgeDeviceOfScope(parentScope)) throw new HubError('ArgumentInvalid', `${what}: parent scope ${parentScope} is not the scope of an IoT Edge device in this hub`);
  }

  /**
   * POST /devices: up to 100 creates, updates and deletes, each applied on its own (one failing leaves the others
   * applied), answered with IoT Hub's BulkRegistryOperationResult. Returns the ids deleted too, so the caller can
   * close their connections. Throws ArgumentInvalid for a malformed request, before changing anything.
   */
  bulk(body: unknown): { result: BulkRegistryResult; deleted: string[] } {
    const operations = bulkOperations(body);
    const errors: BulkRegistryError[] = [];
    const deleted: string[] = [];
    for (const op of operations) {
      try {
        if (this.applyImport(op)) deleted.push(op.id);
      } catch (error) {
        const refusal = error instanceof TwinValidationError ? new HubError('ArgumentInvalid', error.message) : error;
        if (!(refusal instanceof HubError)) throw error;
        errors.push({ deviceId: op.id, errorCode: refusal.code, errorStatus: refusal.message, operation: op.modeName });
      }
    }
    return { result: { isSuccessful: errors.length === 0, errors, warnings: [] }, deleted };
  }

  /** Applies one bulk operation; true when it deleted the device. */
  private applyImport(op: BulkOperation): boolean {
    const existing = this.devices.get(op.id);
    const etag = op.etag;
    const needEtag = () => {
      if (etag === undefined) throw new HubError('ArgumentInvalid', `importMode ${op.modeName} needs the device's eTag`);
      return etag;
    };
    switch (op.mode) {
      case 'create':
        if (existing) throw new HubError('DeviceAlreadyExists', `A device with ID '${op.id}' is already registered.`);
        this.createWithTwin(op);
        return false;
      case 'update':
      case 'updateifmatchetag':
        if (op.twin !== undefined) throw new HubError('ArgumentInvalid', `tags and properties in importMode ${op.modeName} are not emulated (only with create); use the twin API`);
        if (!existing) this.putDevice(op.id, op.device, undefined);
        else this.putDevice(op.id, op.device, op.mode === 'update' ? '*' : needEtag());
        return false;
      case 'delete':
        this.deleteDevice(op.id, undefined);
        return true;
      case 'deleteifmatchetag':
        this.device(op.id);
        this.deleteDevice(op.id, needEtag());
        return true;
    }
  }

  private createWithTwin(op: BulkOperation): void {
    if (op.twin === undefined) {
      this.putDevice(op.id, op.device, undefined);
      return;
    }
    // Check the twin content on a scratch twin first, so a bad twin creates no device.
    const now = new Date().toISOString();
    applyServiceWrite(newTwinState(now), op.twin, 'replace', now);
    const device = this.putDevice(op.id, op.device, undefined);
    applyServiceWrite(device.twin, op.twin, 'replace', now);
    this.twinChanged(device);
  }

  private ensureSystemModules(device: DeviceRecord): void {
    for (const moduleId of edgeSystemModules) {
      if (!device.modules[moduleId]) device.modules[moduleId] = this.newModule(device.deviceId, moduleId, {}, 'IotEdge');
    }
  }

  private newModule(deviceId: string, moduleId: string, input: ModuleInput, managedBy: string | undefined): ModuleRecord {
    const auth = authenticationFrom(input.authentication, `module ${deviceId}/${moduleId}`);
    const module: ModuleRecord = {
      deviceId,
      moduleId,
      managedBy,
      generationId: `63${randomBytes(7).readUIntBE(0, 6).toString().padStart(15, '0')}`,
      etag: this.nextIdentityEtag(),
      keys: auth.keys,
      twin: newTwinState(new Date().toISOString()),
      twinEtag: this.nextTwinEtag(),
    };
    setX509(module, auth.x509);
    return module;
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
      const auth = authenticationFrom(input.authentication, `module ${deviceId}/${moduleId}`);
      existing.keys = auth.keys;
      setX509(existing, auth.x509);
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
