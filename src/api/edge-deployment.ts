// Names of the EdgeDeployment resource and of its status conditions. The resource's shape lives in
// crds/edgedeployments.iotedge-operator.io.yaml; its types are generated into ./generated/.
export type {
  EdgeDeployment,
  EdgeDeploymentList,
  EdgeDeploymentSpec,
  EdgeDeploymentStatus,
  EdgeDeploymentCondition,
  AgentSpec,
  HubSpec,
  RouteSpec,
  ModuleSpecification,
  ModuleSettingsSpec,
  EdgeAgentModuleSpec,
  RegistryCredentialSpec,
  SecretKeyReference,
  IoTHubBinding,
  ModuleStatus,
  RouteStatus,
  IoTHubStatus,
  EdgeHubStatus,
  EdgeHubClientStatus,
  EdgeHubUpstreamStatus,
  LastDesiredStatus,
} from './generated/edge-deployment.ts';

export const edgeDeploymentGroup = 'iotedge-operator.io';
export const edgeDeploymentVersion = 'v1alpha1';
export const edgeDeploymentApiVersion = `${edgeDeploymentGroup}/${edgeDeploymentVersion}` as const;
export const edgeDeploymentKind = 'EdgeDeployment';
export const edgeDeploymentListKind = 'EdgeDeploymentList';
export const edgeDeploymentPlural = 'edgedeployments';
export const edgeDeploymentSingular = 'edgedeployment';
export const edgeDeploymentShortName = 'edep';
/** metadata.name of the CRD. */
export const edgeDeploymentCrdName = `${edgeDeploymentPlural}.${edgeDeploymentGroup}`;

/** The condition types the operator sets on status.conditions. */
export const conditionTypes = {
  /** Every module desired running is running (edgeHub included). */
  ready: 'Ready',
  /** A desired-state change is being applied or a module is starting. */
  progressing: 'Progressing',
  /** A module failed, is backing off, or an object could not be applied. */
  degraded: 'Degraded',
  /** The desired state passed validation and this resource is the namespace's device. */
  valid: 'Valid',
  /** With spec.iotHub: the operator is connected to IoT Hub as the device. */
  iotHubConnected: 'IoTHubConnected',
  /** With the built-in hub: the operator can read the hub's status (status.edgeHub); reason and message say why not. */
  edgeHubStatusKnown: 'EdgeHubStatusKnown',
} as const;

export type ConditionType = (typeof conditionTypes)[keyof typeof conditionTypes];

/** Reasons with a meaning beyond one message, so that tools can match them. */
export const conditionReasons = {
  /**
   * Valid=False: another EdgeDeployment in the namespace is older (by creationTimestamp, then name), so this one
   * is ignored; one namespace hosts one device.
   */
  duplicateDevice: 'DuplicateDevice',
  /** Valid=False: the desired state has errors; the message lists their codes and paths. */
  invalidDesiredState: 'InvalidDesiredState',
  /** Valid=True. */
  desiredStateValid: 'DesiredStateValid',
} as const;

/** How the printer column MODULES reads: running modules out of modules desired running. */
export function moduleSummary(running: number, desired: number): string {
  return `${running}/${desired}`;
}
