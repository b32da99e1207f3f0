// IoT Hub mode: twin sync as the device's $edgeAgent, module identities, and the pure pieces they use.
export { TwinSyncSupervisor, operatorVersion } from './supervisor.ts';
export type { TwinSyncSupervisorOptions } from './supervisor.ts';
export { DeviceTwinSync, defaultTimings, twinStatusFieldManager, desiredAcceptedCondition, caCertSecretKey, connectionReasons, scrubSecrets } from './twin-sync.ts';
export type { DeviceTwinSyncOptions, TwinSyncTimings, TwinSyncMetrics } from './twin-sync.ts';
export { parseConnectionString, moduleConnectionString, ConnectionStringError } from './connection-string.ts';
export type { HubCredentials } from './connection-string.ts';
export { decidePatch, mergeDesiredPatch, stripTwinMetadata, specFromDesired, statusForIssues, twinPath } from './desired.ts';
export type { PatchDecision, DesiredSpec, DesiredOutcome } from './desired.ts';
export { buildReported, diffReported, reportedSchemaVersion, unknownTime } from './reported.ts';
export type { ReportedInput, Platform, OperatorVersion } from './reported.ts';
export { DeviceApi, HubRestError } from './device-api.ts';
export type { ModuleIdentity } from './device-api.ts';
export { syncModuleIdentities, planIdentities, moduleSecretName, twinSyncFieldManager, edgeManagedBy } from './identities.ts';
