// A module's message in its three shapes: as it arrives (the MQTT property bag), as the router reads
// it (RoutedMessage: IoT Hub's system property names), and as the store keeps it (bytes). The stored
// form is a length-prefixed JSON header followed by the raw body, so a body is never re-encoded.
import { formatPropertyBag } from '../iothub-mqtt/index.ts';
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

/**
 * The bytes the store keeps (format 2): a marker byte 0xfe and the format byte, the sending module and
 * the property bag a module input receives (both ready for delivery, so delivering reads no JSON), then
 * the JSON header (properties, system properties, source) and the body:
 *   0xfe 0x02 | u16 sender length | sender | u32 bag length | bag | u32 header length | header | body
 * Format 1 (a u32 header length, the header, the body) is what earlier hubs stored; it is still read: its
 * first byte is 0, since no header comes near 2^24 bytes.
 */
const format2Marker = 0xfe;

export function encodeStored(message: RoutedMessage): Buffer {
  // Strings are written straight into the one buffer: no intermediate Buffer per part.
  const sender = senderModule(message) ?? '';
  const bag = formatPropertyBag(inputPropertyBag(message));
  const header = JSON.stringify({ p: message.properties, s: message.systemProperties, src: message.source } satisfies StoredHeader);
  const senderLength = Buffer.byteLength(sender);
  const bagLength = Buffer.byteLength(bag);
  const headerLength = Buffer.byteLength(header);
  const out = Buffer.allocUnsafe(2 + 2 + senderLength + 4 + bagLength + 4 + headerLength + message.body.length);
  let at = 0;
  out[at++] = format2Marker;
  out[at++] = 2;
  at = out.writeUInt16BE(senderLength, at);
  at += out.write(sender, at, 'utf8');
  at = out.writeUInt32BE(bagLength, at);
  at += out.write(bag, at, 'utf8');
  at = out.writeUInt32BE(headerLength, at);
  at += out.write(header, at, 'utf8');
  message.body.copy(out, at);
  return out;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** What a delivery to a module input needs of a stored message, read without parsing JSON. */
export interface StoredForInput {
  /** The sending module, or undefined (a device, or format 1 without it). */
  sender: string | undefined;
  /** The property bag for the input topic. */
  bag: string;
  body: Buffer;
}

/** Where the parts of stored bytes lie: format 2's prefix (sender, bag), then the header and the body of both formats. */
interface StoredLayout {
  prefix: { sender: [number, number]; bag: [number, number] } | undefined;
  header: [number, number];
  bodyAt: number;
}

function layoutOf(buffer: Buffer): StoredLayout {
  let at = 0;
  let prefix: StoredLayout['prefix'];
  if (buffer[0] === format2Marker) {
    const senderAt = 4;
    const senderEnd = senderAt + buffer.readUInt16BE(2);
    const bagAt = senderEnd + 4;
    const bagEnd = bagAt + buffer.readUInt32BE(senderEnd);
    prefix = { sender: [senderAt, senderEnd], bag: [bagAt, bagEnd] };
    at = bagEnd;
  }
  const headerEnd = at + 4 + buffer.readUInt32BE(at);
  return { prefix, header: [at + 4, headerEnd], bodyAt: headerEnd };
}

export function storedForInput(bytes: Uint8Array): StoredForInput {
  const buffer = asBuffer(bytes);
  const { prefix, bodyAt } = layoutOf(buffer);
  if (!prefix) {
    const message = decodeStored(buffer);
    return { sender: senderModule(message), bag: formatPropertyBag(inputPropertyBag(message)), body: message.body };
  }
  const sender = buffer.toString('utf8', ...prefix.sender);
  return { sender: sender === '' ? undefined : sender, bag: buffer.toString('utf8', ...prefix.bag), body: buffer.subarray(bodyAt) };
}

export function decodeStored(bytes: Uint8Array): RoutedMessage {
  const buffer = asBuffer(bytes);
  const { header: [from, to], bodyAt } = layoutOf(buffer);
  const header = JSON.parse(buffer.toString('utf8', from, to)) as StoredHeader;
  return { properties: header.p, systemProperties: header.s, source: header.src, body: buffer.subarray(bodyAt) };
}

/** The module a message came from, for upstream telemetry "from the sending module". */
export function senderModule(message: RoutedMessage): string | undefined {
  return message.source.kind === 'device' ? undefined : message.source.moduleId;
}
