// The IoT Hub emulator's public API (see docs/emulator.md).
export { HubEmulator, startHubEmulator } from './emulator.ts';
export type {
  ConnectionInfo,
  ConnectionLogEntry,
  DeviceScopeCallRecord,
  DesiredNotificationMode,
  DesiredNotificationRecord,
  HubAdmin,
  HubEmulatorOptions,
  Identity,
  JsonObject,
  MethodResult,
  PemPair,
  RefusalMode,
  TelemetryMessage,
} from './emulator.ts';
export type { FaultWindow, IdentityFilter } from './faults.ts';
export { generateCa } from './tls.ts';
