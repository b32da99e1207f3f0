// The normalised IoT Edge deployment model: what a deployment manifest (deployment.json) or an
// EdgeDeployment resource means once parsed, validated, defaulted and its createOptions joined.
// Translation consumes only this.

/** $edgeAgent schema versions: edgeAgent reads 1.0 and 1.1. */
export type SchemaVersion = '1.0' | '1.1';
/** $edgeHub schema versions: edgeHub reads 1.0 to 1.3 (1.2 adds mqttBroker, 1.3 adds integrity). */
export type HubSchemaVersion = '1.0' | '1.1' | '1.2' | '1.3';
export type RestartPolicy = 'never' | 'on-failure' | 'on-unhealthy' | 'always';
export type DesiredStatus = 'running' | 'stopped';
export type ImagePullPolicy = 'on-create' | 'never';

/** IoT Edge's default startupOrder (uint32 max): start after every module that names an order. */
export const defaultStartupOrder = 4294967295;

/** Docker's ContainerCreate body, as createOptions carries it (parsed; chunks already joined). */
export type DockerCreateOptions = Record<string, unknown>;

export interface SecretKeyRef {
  name: string;
  key: string;
}

export interface RegistryCredential {
  /** The id under runtime.settings.registryCredentials. */
  name: string;
  address: string;
  username: string;
  /** Inline only when read from a deployment.json; never stored in a resource. */
  password?: string;
  /** Where the password lives when the desired state came from an EdgeDeployment. */
  passwordSecretRef?: SecretKeyRef;
}

export interface ModuleSpec {
  /** The module id exactly as IoT Hub knows it, e.g. "SimulatedTemperatureSensor" or "edgeHub". */
  id: string;
  /** edgeAgent or edgeHub. */
  system: boolean;
  version?: string;
  type: 'docker';
  status: DesiredStatus;
  restartPolicy: RestartPolicy;
  startupOrder: number;
  imagePullPolicy: ImagePullPolicy;
  image: string;
  createOptions: DockerCreateOptions;
  /** Module-level env (env.<K>.value); createOptions.Env is kept in createOptions. */
  env: Record<string, string>;
}

export interface AgentDesired {
  schemaVersion: SchemaVersion;
  runtime: {
    type: 'docker';
    settings: {
      minDockerVersion?: string;
      loggingOptions?: string;
      registryCredentials: Record<string, RegistryCredential>;
    };
  };
  systemModules: {
    /** Reported, never deployed: the operator itself plays edgeAgent. */
    edgeAgent: { image: string; createOptions: DockerCreateOptions; env: Record<string, string> };
    edgeHub?: ModuleSpec;
  };
  modules: Record<string, ModuleSpec>;
}

export interface Route {
  name: string;
  /** The route text: FROM <source> [WHERE <condition>] INTO <sink>. */
  route: string;
  /** 0 is highest, 9 lowest (the default). */
  priority: number;
  timeToLiveSecs?: number;
}

export interface HubDesired {
  schemaVersion: HubSchemaVersion;
  routes: Record<string, Route>;
  storeAndForwardConfiguration: { timeToLiveSecs?: number };
}

export interface DeploymentManifest {
  agent: AgentDesired;
  hub: HubDesired;
}

/** A fault found in desired state, located by a JSON-pointer-like path such as /modulesContent/$edgeAgent/.../image. */
export interface ManifestIssue {
  code: string;
  path: string;
  message: string;
}

/** The result of parsing, validating or translating: a value with warnings, or every error found. */
export type Outcome<T> =
  | { ok: true; value: T; warnings: ManifestIssue[] }
  | { ok: false; errors: ManifestIssue[]; warnings: ManifestIssue[] };
