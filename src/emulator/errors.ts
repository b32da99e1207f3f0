// Errors the emulator answers with, in IoT Hub's own codes, so the SDKs map them as they would a
// real hub's (azure-iothub's RestApiClient.translateError keys on the HTTP status and the
// `ErrorCode:` text of `Message`).

export interface HubErrorInfo {
  status: number;
  /** IoT Hub's six-digit code, e.g. 404001. */
  numeric: number;
}

export const hubErrorCodes = {
  ArgumentInvalid: { status: 400, numeric: 400004 },
  InvalidProtocolVersion: { status: 400, numeric: 400001 },
  DeviceNotEdgeDevice: { status: 400, numeric: 400004 },
  IotHubUnauthorizedAccess: { status: 401, numeric: 401002 },
  SystemModuleModifyUnauthorizedAccess: { status: 401, numeric: 401100 },
  DeviceNotFound: { status: 404, numeric: 404001 },
  ModuleNotFound: { status: 404, numeric: 404010 },
  ConfigurationNotFound: { status: 404, numeric: 404000 },
  DeviceNotOnline: { status: 404, numeric: 404103 },
  NotFound: { status: 404, numeric: 404000 },
  JobNotFound: { status: 404, numeric: 404002 },
  MethodNotAllowed: { status: 405, numeric: 405000 },
  DeviceMaximumQueueDepthExceeded: { status: 403, numeric: 403004 },
  DeviceAlreadyExists: { status: 409, numeric: 409001 },
  ModuleAlreadyExistsOnDevice: { status: 409, numeric: 409301 },
  ConfigurationAlreadyExists: { status: 409, numeric: 409000 },
  JobAlreadyExists: { status: 409, numeric: 409005 },
  PreconditionFailed: { status: 412, numeric: 412001 },
  RequestEntityTooLarge: { status: 413, numeric: 413000 },
  ServerError: { status: 500, numeric: 500001 },
  ServiceUnavailable: { status: 503, numeric: 503001 },
  GatewayTimeout: { status: 504, numeric: 504101 },
} as const satisfies Record<string, HubErrorInfo>;

export type HubErrorCode = keyof typeof hubErrorCodes;

export class HubError extends Error {
  override name = 'HubError';
  readonly code: HubErrorCode;
  constructor(code: HubErrorCode, message: string) {
    super(message);
    this.code = code;
  }
  get status(): number {
    return hubErrorCodes[this.code].status;
  }
  get numeric(): number {
    return hubErrorCodes[this.code].numeric;
  }
}
