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
  IEO_MANIFEST_SCHEMA: { edgeAgentStatus: 400, next: 'permanent', summary: 'The desired state does not match the deployment manifest schema.' },
  IEO_SCHEMA_VERSION: { edgeAgentStatus: 412, next: 'permanent', summary: 'The schemaVersion is not one edgeAgent supports (1.0 or 1.1).' },
  IEO_EMPTY_CONFIG: { edgeAgentStatus: 417, next: 'permanent', summary: 'The desired state has no $edgeAgent configuration.' },
  IEO_ROUTE_SYNTAX: { edgeAgentStatus: 400, next: 'permanent', summary: 'A route in $edgeHub is not valid route syntax.' },
  IEO_MODULE_NAME: { edgeAgentStatus: 400, next: 'permanent', summary: 'A module name breaks IoT Hub module id rules or reuses a reserved name.' },
  IEO_TWIN_LIMIT: { edgeAgentStatus: 400, next: 'permanent', summary: 'Desired properties exceed an IoT Hub twin limit (32 KB per module, nesting depth 10).' },
  IEO_CREATE_OPTIONS: { edgeAgentStatus: 400, next: 'permanent', summary: 'A module createOptions is not a JSON object.' },
  IEO_CREATE_OPTIONS_CHUNKS: { edgeAgentStatus: 400, next: 'permanent', summary: 'The createOptions01..NN chunks of a module are not numbered without gaps.' },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof errorCatalogue;

/** Warnings never block a deployment; they say what was not done as written (e.g. an unmapped createOptions field). */
export const warningCatalogue = {
  IEO_W_UNKNOWN_ROUTE_MODULE: { summary: 'A route names a module that is not in the deployment.' },
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
