// The one secret scrubber: the logger's last pass over each line, Events, status conditions and
// lastDesiredStatus, health reasons, twin sync's messages and the CLI's errors all go through it, so what
// one of them hides none of the others shows. It finds secrets by their shape (SharedAccessKey=…, sig=…,
// "password":"…", Bearer …, user:pass@ in URLs, PEM private keys) wherever they hide: messages, error stacks, nested JSON.

export const REDACTED = '[REDACTED]';

/** Property names whose string value is a secret wherever they appear in a line, at any depth. */
const secretKeyNames = [
  'password', 'passwd', 'secret', 'clientSecret', 'sharedAccessKey', 'primaryKey', 'secondaryKey', 'symmetricKey',
  'connectionString', 'sasToken', 'token', 'accessToken', 'privateKey', 'authorization', 'sharedAccessSignature',
  // The device root key every module key derives from (Secret <edep>-device-identity, data rootKey).
  'rootKey',
];
const keyAlternation = secretKeyNames.join('|');

// A JSON string body at nesting level 0: plain characters or a backslash escape.
const level0Body = String.raw`(?:[^"\\]|\\.)*`;
// The same body once more JSON-encoded (a JSON document logged as a string): the inner string's
// escapes appear doubled, and its closing quote appears as \".
const level1Body = String.raw`(?:[^"\\]|\\\\\\\\|\\\\\\"|\\\\[^"\\]|\\[^"\\])*`;

interface Scrubber {
  pattern: RegExp;
  replace: string;
}

const scrubbers: Scrubber[] = [
  // "password":"hunter2" as it appears in a serialized line or in a JSON text.
  { pattern: new RegExp(String.raw`("(?:${keyAlternation})"\s*:\s*")${level0Body}(")`, 'gi'), replace: `$1${REDACTED}$2` },
  // \"password\":\"hunter2\" inside a string value that itself holds JSON.
  { pattern: new RegExp(String.raw`(\\"(?:${keyAlternation})\\"\s*:\s*\\")${level1Body}(\\")`, 'gi'), replace: `$1${REDACTED}$2` },
  // Connection strings: HostName=…;DeviceId=…;SharedAccessKey=<base64>; also Password=… in other connection strings.
  { pattern: /\b(SharedAccessKey|AccountKey|Password|Pwd)=[^;&\s"\\,]+/gi, replace: `$1=${REDACTED}` },
  // SAS tokens (SharedAccessSignature sr=…&sig=…&se=…) and signed URLs: the signature is the secret.
  { pattern: /\b(sig)=[^;&\s"\\,]+/gi, replace: `$1=${REDACTED}` },
  // PEM private keys (the device CA's and edgeHub's, or a user's CA): everything between the armour lines.
  { pattern: /(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----)/g, replace: `$1${REDACTED}$2` },
  // HTTP credentials written out in text.
  { pattern: /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, replace: `$1 ${REDACTED}` },
  // Userinfo in URLs: amqps://user:pass@host.
  { pattern: /([a-z][a-z0-9+.-]*:\/\/[^:/@\s"\\]+:)[^@/\s"\\]+@/gi, replace: `$1${REDACTED}@` },
];

// One cheap test decides whether a line needs the full pass; most lines contain none of these words.
const mightHoldSecret = new RegExp(String.raw`${keyAlternation}|AccountKey|Pwd=|sig=|Bearer|Basic|PRIVATE KEY|://[^/\s"]*@`, 'i');

/** Removes SAS signatures, connection-string keys, passwords and similar secrets from any text. */
export function scrubSecrets(text: string): string {
  if (!mightHoldSecret.test(text)) return text;
  let out = text;
  for (const { pattern, replace } of scrubbers) out = out.replace(pattern, replace);
  return out;
}

/** A copy of `value` with every string scrubbed (for status objects and Event bodies). */
export function scrubDeep<T>(value: T): T {
  if (typeof value === 'string') return scrubSecrets(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => scrubDeep(v)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubDeep(v)])) as T;
  }
  return value;
}
