// IoT Hub shared access signatures: sign, parse and verify.
// The string-to-sign is the URL-encoded resource URI exactly as it appears on the wire, a newline and
// the expiry; the key is base64. Verification therefore HMACs the raw `sr` as received: the Node SDK
// sends uppercase percent-escapes, other SDKs lowercase, and the hub accepts both.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** encodeURIComponent plus `!'()*`, as azure-iot-common does; so tokens we sign match the SDK's byte for byte. */
export function encodeUriComponentStrict(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A new symmetric key: 32 random bytes, base64, like the hub generates. */
export function generateSymmetricKey(): string {
  return randomBytes(32).toString('base64');
}

export interface SasSignInput {
  /** The resource URI, not encoded, e.g. `127.0.0.2/devices/dev1/modules/$edgeAgent` or a hub host name. */
  resourceUri: string;
  /** The base64 shared access key. */
  key: string;
  /** Policy name (`skn`), only for policy keys such as `iothubowner`. */
  keyName?: string;
  /** Expiry, seconds since the epoch. */
  expiry: number;
}

export function signature(encodedResourceUri: string, expiry: number | string, key: string): string {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(`${encodedResourceUri}\n${expiry}`).digest('base64');
}

/** `SharedAccessSignature sr=…&sig=…&se=…[&skn=…]`. */
export function signSas(input: SasSignInput): string {
  const sr = encodeUriComponentStrict(input.resourceUri);
  const sig = encodeUriComponentStrict(signature(sr, input.expiry, input.key));
  const skn = input.keyName === undefined ? '' : `&skn=${encodeUriComponentStrict(input.keyName)}`;
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${input.expiry}${skn}`;
}

export interface ParsedSas {
  /** `sr` exactly as sent (still URL-encoded): the signed bytes. */
  rawResource: string;
  /** `sr` decoded, for matching against identities. */
  resource: string;
  /** The signature, decoded to plain base64. */
  signature: string;
  /** Expiry, seconds since the epoch. */
  expiry: number;
  rawExpiry: string;
  keyName: string | undefined;
}

export class SasError extends Error {
  override name = 'SasError';
  readonly reason: 'malformed' | 'expired' | 'signature' | 'scope' | 'unknown-key';
  constructor(reason: SasError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

const prefix = 'SharedAccessSignature ';

/** Parses a token; throws SasError('malformed') naming the missing or bad field. Never echoes the signature. */
export function parseSas(token: string): ParsedSas {
  if (!token.startsWith(prefix)) throw new SasError('malformed', 'token does not start with "SharedAccessSignature "');
  const fields = new Map<string, string>();
  for (const part of token.slice(prefix.length).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SasError('malformed', `token field "${part.slice(0, 20)}" is not key=value`);
    const name = part.slice(0, eq);
    if (fields.has(name)) throw new SasError('malformed', `token field ${name} appears twice`);
    fields.set(name, part.slice(eq + 1));
  }
  const rawResource = fields.get('sr');
  const sig = fields.get('sig');
  const rawExpiry = fields.get('se');
  if (rawResource === undefined || rawResource === '') throw new SasError('malformed', 'token has no sr');
  if (sig === undefined || sig === '') throw new SasError('malformed', 'token has no sig');
  if (rawExpiry === undefined || !/^\d+$/.test(rawExpiry)) throw new SasError('malformed', 'token se is not a number of seconds');
  const skn = fields.get('skn');
  try {
    return {
      rawResource,
      resource: decodeURIComponent(rawResource),
      signature: decodeURIComponent(sig),
      expiry: Number(rawExpiry),
      rawExpiry,
      keyName: skn === undefined ? undefined : decodeURIComponent(skn),
    };
  } catch {
    throw new SasError('malformed', 'token has an invalid percent-encoding');
  }
}

/** True when the signature was made with `key`. Constant-time comparison. */
export function signatureMatches(parsed: ParsedSas, key: string): boolean {
  const expected = Buffer.from(signature(parsed.rawResource, parsed.rawExpiry, key));
  const actual = Buffer.from(parsed.signature);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * True when `resource` is a prefix of `target` by whole path segments: `h/devices/d` covers
 * `h/devices/d/modules/m` but not `h/devices/dx`. The host segment compares case-insensitively
 * (host names are), the rest exactly (device ids are case-sensitive).
 */
export function resourceCovers(resource: string, target: string): boolean {
  const strip = (s: string) => s.replace(/^https?:\/\//i, '').replace(/\/+$/, '');
  const have = strip(resource).split('/');
  const want = strip(target).split('/');
  if (have.length > want.length) return false;
  return have.every((segment, i) => (i === 0 ? segment.toLowerCase() === want[0]?.toLowerCase() : segment === want[i]));
}

/**
 * Verifies a parsed token against the candidate keys and the clock. Throws SasError with the reason;
 * the caller decides which resources the token must cover (see resourceCovers).
 */
export function verifySas(parsed: ParsedSas, keys: readonly string[], nowSeconds: number = Math.floor(Date.now() / 1000)): void {
  if (parsed.expiry <= nowSeconds) throw new SasError('expired', `token expired at ${new Date(parsed.expiry * 1000).toISOString()}`);
  if (!keys.some((k) => k !== '' && signatureMatches(parsed, k))) throw new SasError('signature', `token signature does not match a key for ${parsed.resource}`);
}

/**
 * A module's symmetric key derived from the device root key, as aziot-identityd derives them:
 * base64(HMAC-SHA256(key = the decoded root key, message = "<deviceId>/<moduleId>")).
 */
export function deriveModuleKey(rootKeyBase64: string, deviceId: string, moduleId: string): string {
  const root = Buffer.from(rootKeyBase64, 'base64');
  if (root.length === 0) throw new Error('the device root key is empty or not base64');
  return createHmac('sha256', root).update(`${deviceId}/${moduleId}`, 'utf8').digest('base64');
}
