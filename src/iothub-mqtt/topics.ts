// IoT Hub's MQTT topics for devices and modules: what a client may publish and subscribe to, how
// property bags are written, and the hub→client topics (twin responses, desired notifications,
// method requests, module inputs). Pure string work, shared by the emulator and the built-in hub.

export interface Identity {
  deviceId: string;
  moduleId: string | undefined;
}

/** `deviceId` or `deviceId/moduleId`: the MQTT client id and the key of an identity. */
export function identityKey(id: Identity): string {
  return id.moduleId === undefined ? id.deviceId : `${id.deviceId}/${id.moduleId}`;
}

/** The identity a client id names, or undefined when it is neither `d` nor `d/m`. */
export function parseClientId(clientId: string): Identity | undefined {
  const parts = clientId.split('/');
  if (parts.length === 1 && parts[0]) return { deviceId: parts[0], moduleId: undefined };
  if (parts.length === 2 && parts[0] && parts[1]) return { deviceId: parts[0], moduleId: parts[1] };
  return undefined;
}

/** `devices/{d}` or `devices/{d}/modules/{m}`: the prefix of an identity's own topics. */
export function identityTopicPrefix(id: Identity): string {
  return id.moduleId === undefined ? `devices/${id.deviceId}` : `devices/${id.deviceId}/modules/${id.moduleId}`;
}

/** MQTT topic filter match (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export function queryOf(topic: string): URLSearchParams {
  const q = topic.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : topic.slice(q + 1));
}

export interface PropertyBag {
  /** Application properties. */
  properties: Record<string, string>;
  /** System properties (`$.mid`, `$.cid`, `$.ct`, `$.ce`, `$.on`, …) keyed as sent. */
  systemProperties: Record<string, string>;
}

/** Splits a property bag (`k=v&k2=v2`, each part URL-encoded) into system and application properties. */
export function parsePropertyBag(bag: string): PropertyBag {
  const properties: Record<string, string> = {};
  const systemProperties: Record<string, string> = {};
  for (const part of bag.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(rawKey);
      value = decodeURIComponent(rawValue);
    } catch {
      key = rawKey;
      value = rawValue;
    }
    if (key.startsWith('$.')) systemProperties[key] = value;
    else properties[key] = value;
  }
  return { properties, systemProperties };
}

/** The inverse of parsePropertyBag: system properties first, each key and value URL-encoded. */
export function formatPropertyBag(bag: PropertyBag): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(bag.systemProperties)) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  for (const [k, v] of Object.entries(bag.properties)) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return parts.join('&');
}

/** The filters a client may subscribe to; IoT Hub refuses anything else. */
export function allowedSubscriptions(id: Identity): string[] {
  return [
    '$iothub/twin/res/#',
    '$iothub/twin/PATCH/properties/desired/#',
    '$iothub/methods/POST/#',
    `${identityTopicPrefix(id)}/inputs/#`,
    `devices/${id.deviceId}/messages/devicebound/#`,
  ];
}

/** What a client's PUBLISH asks for, decided by its topic alone. */
export type ClientPublish =
  | { kind: 'twinGet'; rid: string }
  | { kind: 'twinPatchReported'; rid: string }
  | { kind: 'twinUnsupported'; rid: string; operation: string }
  | { kind: 'methodResponse'; rid: string; status: number }
  /** Telemetry, with the property bag; `outputName` is `$.on` (ModuleClient.sendOutputEvent). */
  | { kind: 'telemetry'; bag: PropertyBag; outputName: string | undefined }
  | { kind: 'forbidden' };

export function classifyPublish(id: Identity, topic: string): ClientPublish {
  if (topic.startsWith('$iothub/twin/')) {
    const rid = queryOf(topic).get('$rid') ?? '';
    if (topic.startsWith('$iothub/twin/GET/')) return { kind: 'twinGet', rid };
    if (topic.startsWith('$iothub/twin/PATCH/properties/reported/')) return { kind: 'twinPatchReported', rid };
    return { kind: 'twinUnsupported', rid, operation: topic.split('?')[0] ?? topic };
  }
  if (topic.startsWith('$iothub/methods/res/')) {
    const status = Number(topic.slice('$iothub/methods/res/'.length).split('/')[0]);
    return { kind: 'methodResponse', rid: queryOf(topic).get('$rid') ?? '', status: Number.isInteger(status) ? status : 500 };
  }
  const events = `${identityTopicPrefix(id)}/messages/events/`;
  if (topic === events.slice(0, -1) || topic.startsWith(events)) {
    const bag = parsePropertyBag(topic.slice(events.length).replace(/\/$/, ''));
    return { kind: 'telemetry', bag, outputName: bag.systemProperties['$.on'] };
  }
  return { kind: 'forbidden' };
}

export function twinResponseTopic(status: number, rid: string, version?: number): string {
  return `$iothub/twin/res/${status}/?$rid=${rid}${version === undefined ? '' : `&$version=${version}`}`;
}

export function desiredPatchTopic(version: number): string {
  return `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
}

export function methodRequestTopic(methodName: string, rid: string): string {
  return `$iothub/methods/POST/${methodName}/?$rid=${rid}`;
}

/**
 * Where edgeHub delivers a routed message to a module input, with its property bag as formatPropertyBag
 * writes it (the hub stores it that way); the SDK's regex needs the `/` after the input.
 */
export function moduleInputTopic(deviceId: string, moduleId: string, input: string, formattedBag: string): string {
  return `devices/${deviceId}/modules/${moduleId}/inputs/${input}/${formattedBag}`;
}

/** The body IoT Hub sends with a failed twin request; the SDK turns `message` into an Error. */
export function twinErrorBody(code: number, message: string, trackingId: string): string {
  return JSON.stringify({ errorCode: code, trackingId, message, timestampUtc: new Date().toISOString() });
}

/** A method response body as the service sees it: JSON when it parses, the text otherwise, null when empty. */
export function parseMethodPayload(payload: Buffer): unknown {
  const text = payload.toString('utf8');
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
