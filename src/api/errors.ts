// The catalogue of coded errors. Every code here is documented in docs/errors.md, and a unit test
// keeps the two in sync. `next` says what happens after the error (kopf's naming): a permanent
// error waits for a new desired state; a temporary one is retried with backoff.
// `edgeAgentStatus` is the lastDesiredStatus.code that IoT Hub sees (200, 400, 406, 412, 417, 500).

export type NextStep = 'permanent' | 'temporary';

export interface ErrorDefinition {
  edgeAgentStatus: 400 | 406 | 412 | 417 | 500;
  next: NextStep;
  summary: string;
}

export const errorCatalogue = {
  IEO_MANIFEST_JSON: { edgeAgentStatus: 400, next: 'permanent', summary: 'The desired state is not valid JSON or YAML.' },
  IEO_MANIFEST_LIMIT: { edgeAgentStatus: 400, next: 'permanent', summary: 'The desired state is larger than 2 MiB or nests deeper than 64 levels; it is refused before it is read further.' },
  IEO_MANIFEST_SCHEMA: { edgeAgentStatus: 400, next: 'permanent', summary: 'The desired state does not match the deployment manifest schema.' },
  IEO_SCHEMA_VERSION: { edgeAgentStatus: 412, next: 'permanent', summary: 'The schemaVersion is not one edgeAgent (1.0, 1.1) or edgeHub (1.0 to 1.3) reads.' },
  IEO_EMPTY_CONFIG: { edgeAgentStatus: 417, next: 'permanent', summary: 'The desired state has no $edgeAgent configuration.' },
  IEO_ROUTE_SYNTAX: { edgeAgentStatus: 400, next: 'permanent', summary: 'A route in $edgeHub is not valid route syntax.' },
  IEO_ROUTE_TYPE: { edgeAgentStatus: 400, next: 'permanent', summary: 'A route condition gives an operator or function operands of the wrong type (e.g. a string property compared with a number), which edgeHub refuses to compile.' },
  IEO_MODULE_NAME: { edgeAgentStatus: 400, next: 'permanent', summary: 'A module name breaks IoT Hub module id rules or reuses a reserved name.' },
  IEO_TWIN_LIMIT: { edgeAgentStatus: 400, next: 'permanent', summary: 'Desired properties exceed an IoT Hub twin limit (32 KB per module, nesting depth 10).' },
  IEO_CREATE_OPTIONS: { edgeAgentStatus: 400, next: 'permanent', summary: 'A module createOptions is not a JSON object.' },
  IEO_CREATE_OPTIONS_CHUNKS: { edgeAgentStatus: 400, next: 'permanent', summary: 'The createOptions01..NN chunks of a module are not numbered without gaps.' },
  IEO_CREATE_OPTION_VALUE: { edgeAgentStatus: 400, next: 'permanent', summary: 'A createOptions field has a value Docker would reject or that cannot be expressed on Kubernetes.' },
  IEO_K8S_EXTENSION: { edgeAgentStatus: 400, next: 'permanent', summary: 'The k8s block of a module createOptions is malformed.' },
  IEO_NAME_COLLISION: { edgeAgentStatus: 400, next: 'permanent', summary: 'Two modules, volumes or registry credentials map to the same Kubernetes object name.' },
  IEO_POLICY_DENIED: { edgeAgentStatus: 500, next: 'permanent', summary: "A module's pod would break the operator's security policy (Pod Security Standards baseline by default, plus volume-type, Secret and API-token rules); the message ends with the reason, e.g. [HostPathDenied]." },
  IEO_REGISTRY_CREDENTIAL: { edgeAgentStatus: 500, next: 'temporary', summary: 'The password of a registry credential could not be resolved.' },
  IEO_DUPLICATE_DEVICE: { edgeAgentStatus: 400, next: 'permanent', summary: 'Another EdgeDeployment in the namespace already is its device; one namespace serves one device.' },
  IEO_CA_SECRET: { edgeAgentStatus: 400, next: 'permanent', summary: 'The device CA Secret named in spec.certificates.deviceCaSecretRef is missing, or holds no usable RSA CA certificate and key.' },
  IEO_REGISTRY_SECRET: { edgeAgentStatus: 400, next: 'permanent', summary: 'A registry credential refers to a Secret or key that does not exist.' },
  IEO_STORE_FULL: { edgeAgentStatus: 500, next: 'temporary', summary: "The built-in hub's message store reached its disk budget (or the disk is full); the message was refused and is accepted again once delivered or expired messages free space." },
  IEO_STORE_WRITE: { edgeAgentStatus: 500, next: 'temporary', summary: "The built-in hub's message store could not write a message (an I/O error other than a full disk); the message was refused." },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof errorCatalogue;

/** Warnings never block a deployment; they say what was not done as written (e.g. an unmapped createOptions field). */
export const warningCatalogue = {
  IEO_W_UNKNOWN_ROUTE_MODULE: { summary: 'A route names a module that is not in the deployment.' },
  IEO_W_UNSUPPORTED_CREATE_OPTION: { summary: 'A createOptions field has no Kubernetes mapping and is ignored.' },
  IEO_W_NO_HEALTHCHECK: { summary: 'A module with restartPolicy on-unhealthy has no Healthcheck, so it restarts only when it exits.' },
  IEO_W_NON_NUMERIC_USER: { summary: 'createOptions.User names a user or group by name; Kubernetes needs numeric ids, so the image default is used.' },
  IEO_W_RESERVED_ENV: { summary: "A module sets a variable the runtime provides (IOTEDGE_*, or one of edgeHub's runtime settings), or one a root edgeHub must not have; the runtime value is used." },
  IEO_W_SHARED_VOLUME: { summary: 'A single-node (ReadWriteOnce) volume is mounted by several modules, whose pods must then share a node.' },
  IEO_W_DEVICE_ACCESS: { summary: 'A host device is mounted into a non-privileged container; its device cgroup may deny access.' },
  IEO_W_MODULE_TWIN_NOT_CONVERTED: { summary: "A module twin's desired properties in a deployment manifest have no place in an EdgeDeployment and were left out." },
  IEO_W_ROUTE_FIELD_IGNORED: { summary: "edgeHub's local configuration (kubectl mode) takes a route's text only; its priority and timeToLiveSecs are ignored." },
  IEO_W_K8S_FIELD_MOVED: { summary: 'A pod-level field written in k8s.securityContext was applied to the pod securityContext.' },
  IEO_W_PORT_SKIPPED: { summary: 'An ExposedPorts or PortBindings key, or a HostPort, is not a port a Service can publish; that port is skipped.' },
  IEO_W_LABEL_KEY_CLEANED: { summary: 'A Docker label key is not a valid Kubernetes annotation key; it was cleaned into one, as the preview did.' },
  IEO_W_K8S_EXPERIMENTAL: { summary: "A k8s-experimental setting (Microsoft's preview) was not used as written: k8s sets the same field, or the preview ignored it too." },
  IEO_W_COERCED_VALUE: { summary: "A boolean or number written as a JSON string was read as its value, as edgeAgent's JSON reader does." },
  IEO_W_LEGACY_MODULE_CONTENT: { summary: 'The manifest uses the legacy key moduleContent, which is read as modulesContent.' },
  IEO_W_HUB_FEATURE_IGNORED: { summary: 'A $edgeHub setting of schema 1.2 or later (mqttBroker, integrity) is not implemented and is ignored.' },
  IEO_W_ANONYMOUS_VOLUME: { summary: 'An anonymous Docker volume became an emptyDir, deleted with the pod as Docker deletes the volume with the container.' },
  IEO_W_MOUNT_MERGED: { summary: 'Two mounts of one container path became one, as Docker merges a device node, /dev/shm or an anonymous volume with another mount.' },
  IEO_W_SYSTEM_MODULE_FIELD_IGNORED: { summary: "A system module's member that edgeAgent does not read, or edgeAgent's own env, has no effect here and is ignored." },
} as const satisfies Record<string, { summary: string }>;

export type WarningCode = keyof typeof warningCatalogue;

/** An error with a catalogue code and, where it has one, the path of the fault in the desired state. */
export class CodedError extends Error {
  override name = 'CodedError';
  readonly code: ErrorCode;
  readonly path: string | undefined;
  constructor(code: ErrorCode, message: string, path?: string) {
    super(message);
    this.code = code;
    this.path = path;
  }
  get definition(): ErrorDefinition {
    return errorCatalogue[this.code];
  }
}
