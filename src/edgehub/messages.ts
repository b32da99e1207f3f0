// A module's message in its three shapes: as it arrives (the MQTT property bag), as the router reads
// it (RoutedMessage: IoT Hub's system property names), and as the store keeps it (bytes). The stored
// form is a length-prefixed JSON header followed by the raw body, so a body is never re-encoded.
import type { PropertyBag, TelemetryMessage } from '../iothub-mqtt/index.ts';
import type { RoutedMessage } from '../routing/index.ts';

/** Property-bag keys of IoT Hub's MQTT dialect and the system property each carries. */
const wireToSystem: Readonly<Record<string, string>> = {
  '$.mid': 'messageId',
  '$.cid': 'correlationId',
  '$.uid': 'userId',
  '$.to': 'to',
  '$.ct': 'contentType',
  '$.ce': 'contentEncoding',
  '$.exp': 'expiryTimeUtc',
  '$.ctime': 'creationTime',
  '$.schema': 'messageSchema',
  '$.on': 'outputName',
};

/** What a module receiving the message sees in its property bag, as edgeHub writes it. */
const systemToWire: Readonly<Record<string, string>> = {
  messageId: '$.mid',
  correlationId: '$.cid',
  userId: '$.uid',
  to: '$.to',
  contentType: '$.ct',
  contentEncoding: '$.ce',
  expiryTimeUtc: '$.exp',
  creationTime: '$.ctime',
  messageSchema: '$.schema',
  // No `$.on`: the input name is in the topic, and the Node SDK would hand the sender's output name to the
  // receiver as an application property, which a module copying properties to its own output then re-sends.
  connectionDeviceId: '$.cdid',
  connectionModuleId: '$.cmid',
};

/** A module's telemetry as the router reads it; the hub stamps the connection and enqueue time. */
export function routedFromTelemetry(message: TelemetryMessage, moduleId: string): RoutedMessage {
  const systemProperties: Record<string, string> = {};
  for (const [key, value] of Object.entries(message.systemProperties)) {
    const name = wireToSystem[key];
    if (name !== undefined) systemProperties[name] = value;
  }
  systemProperties.connectionDeviceId = message.deviceId;
  systemProperties.connectionModuleId = moduleId;
  systemProperties.connectionAuthMethod = '{"scope":"module","type":"sas","issuer":"iothub"}';
  systemProperties.enqueuedTime = message.receivedAt;
  return {
    body: message.body,
    properties: message.properties,
    systemProperties,
    source: { kind: 'module', deviceId: message.deviceId, moduleId, ...(message.outputName !== undefined ? { outputName: message.outputName } : {}) },
  };
}

/** A reported-properties patch as a /twinChangeNotifications message, as edgeHub raises one. */
export function twinChangeNotification(deviceId: string, moduleId: string, patch: unknown, version: number): RoutedMessage {
  return {
    body: Buffer.from(JSON.stringify({ version, properties: { reported: patch } })),
    properties: {},
    systemProperties: {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      connectionDeviceId: deviceId,
      connectionModuleId: moduleId,
      messageSchema: 'twinChangeNotification',
      enqueuedTime: new Date().toISOString(),
    },
    source: { kind: 'twinChangeNotification', deviceId, moduleId },
  };
}

/** The property bag a module's input receives. */
export function inputPropertyBag(message: RoutedMessage): PropertyBag {
  const systemProperties: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.systemProperties)) {
    const key = systemToWire[name];
    if (key !== undefined) systemProperties[key] = value;
  }
  return { systemProperties, properties: message.properties };
}

interface StoredHeader {
  p: Record<string, string>;
  s: Record<string, string>;
  src: RoutedMessage['source'];
}

/** The bytes the store keeps: a 4-byte header length, the JSON header, the body. */
export function encodeStored(message: RoutedMessage): Buffer {
  const header = Buffer.from(JSON.stringify({ p: message.properties, s: message.systemProperties, src: message.source } satisfies StoredHeader));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(header.length, 0);
  return Buffer.concat([length, header, message.body]);
}

export function decodeStored(bytes: Uint8Array): RoutedMessage {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = buffer.readUInt32BE(0);
  const header = JSON.parse(buffer.subarray(4, 4 + headerLength).toString('utf8')) as StoredHeader;
  return { properties: header.p, systemProperties: header.s, source: header.src, body: buffer.subarray(4 + headerLength) };
}

/** The module a message came from, for upstream telemetry "from the sending module". */
export function senderModule(message: RoutedMessage): string | undefined {
  return message.source.kind === 'device' ? undefined : message.source.moduleId;
}
