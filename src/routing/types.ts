// What the router sees of a message and what it answers. The hub converts its wire messages into
// RoutedMessage once, routes them, and stores one copy per endpoint the answer names.

/** Where a message came from; decides which route sources (FROM …) it matches. */
export type MessageSource =
  /** A module's message; `outputName` is absent when the module sent without an output. */
  | { kind: 'module'; deviceId: string; moduleId: string; outputName?: string }
  /** A twin change notification (source /twinChangeNotifications). */
  | { kind: 'twinChangeNotification'; deviceId: string; moduleId?: string }
  /** Device-to-cloud telemetry from a (leaf) device, not a module. */
  | { kind: 'device'; deviceId: string };

export interface RoutedMessage {
  body: Buffer;
  /** Application properties. Names are matched case-insensitively, as edgeHub does. */
  properties: Record<string, string>;
  /**
   * System properties by their names without '$' (see systemPropertyNames), matched
   * case-insensitively. `$body` queries need contentType application/json and a contentEncoding
   * of utf-8, utf-16 or utf-32 here.
   */
  systemProperties: Record<string, string>;
  source: MessageSource;
}

/**
 * The system property names a WHERE clause can read as `$<name>`, as the hub should fill them.
 * These are IoT Hub's names; conditions may spell them in any case.
 */
export const systemPropertyNames = [
  'messageId',
  'correlationId',
  'userId',
  'to',
  'contentType',
  'contentEncoding',
  'connectionDeviceId',
  'connectionModuleId',
  'connectionDeviceGenerationId',
  'connectionAuthMethod',
  'outputName',
  'enqueuedTime',
  'expiryTimeUtc',
  'creationTime',
  'messageSchema',
] as const;

export type Endpoint = { kind: 'upstream' } | { kind: 'moduleInput'; moduleId: string; input: string };

/**
 * A stable text id for an endpoint, used as the store's queue name: `$upstream`, or
 * `/modules/<module>/inputs/<input>` as BrokeredEndpoint writes it. Module and input names keep
 * their case: edgeHub delivers to inputs exactly as named.
 */
export function endpointId(e: Endpoint): string {
  return e.kind === 'upstream' ? '$upstream' : `/modules/${e.moduleId}/inputs/${e.input}`;
}

/** The inverse of endpointId; undefined for text that endpointId never produces. */
export function parseEndpointId(id: string): Endpoint | undefined {
  if (id === '$upstream') return { kind: 'upstream' };
  const m = /^\/modules\/([^/]+)\/inputs\/([^/]+)$/.exec(id);
  return m ? { kind: 'moduleInput', moduleId: m[1] as string, input: m[2] as string } : undefined;
}

/** One endpoint a message goes to, with the winning route's priority and time to live. */
export interface RouteMatch {
  endpoint: Endpoint;
  /** 0 is the highest priority, 9 the lowest (the default for routes that do not say). */
  priority: number;
  /** The route's timeToLiveSecs, else storeAndForwardConfiguration.timeToLiveSecs; undefined = never expires. */
  timeToLiveSecs: number | undefined;
  /** The name of the route that won for this endpoint. */
  routeName: string;
}

export interface RouteCompileError {
  routeName: string;
  /**
   * IEO_ROUTE_SYNTAX (the route does not parse), IEO_ROUTE_TYPE (it parses, but edgeHub would refuse
   * to compile it), or IEO_MANIFEST_SCHEMA (the desired properties around the routes are malformed; routeName '').
   */
  code: 'IEO_ROUTE_SYNTAX' | 'IEO_ROUTE_TYPE' | 'IEO_MANIFEST_SCHEMA';
  message: string;
}
