// Structured JSON logging on pino. Secrets are kept out of every line in two layers:
// pino's `redact` censors values at known object paths, and a last pass over each serialized
// line scrubs SAS tokens, connection-string keys and `"password":"…"` pairs wherever they hide
// (messages, error stacks, nested JSON strings, child bindings, objects at any depth).
import { pino } from 'pino';
import type { DestinationStream, LevelWithSilent, Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;

export const REDACTED = '[REDACTED]';

/** Paths pino censors before serializing; `*.x` covers one level of nesting, the line scrubber covers the rest. */
export const redactPaths: readonly string[] = [
  'password', '*.password',
  'passwd', '*.passwd',
  'secret', '*.secret',
  'clientSecret', '*.clientSecret',
  'sharedAccessKey', '*.sharedAccessKey',
  'primaryKey', '*.primaryKey',
  'secondaryKey', '*.secondaryKey',
  'symmetricKey', '*.symmetricKey',
  'connectionString', '*.connectionString',
  'sasToken', '*.sasToken',
  'token', '*.token',
  'accessToken', '*.accessToken',
  'privateKey', '*.privateKey',
  'auth', '*.auth',
  'authorization', '*.authorization',
  'headers.authorization', '*.headers.authorization',
  'headers.cookie', '*.headers.cookie',
];

/** Property names whose string value is a secret wherever they appear in a line, at any depth. */
const secretKeyNames = [
  'password', 'passwd', 'secret', 'clientSecret', 'sharedAccessKey', 'primaryKey', 'secondaryKey', 'symmetricKey',
  'connectionString', 'sasToken', 'token', 'accessToken', 'privateKey', 'authorization', 'sharedAccessSignature',
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
  // HTTP credentials written out in text.
  { pattern: /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, replace: `$1 ${REDACTED}` },
  // Userinfo in URLs: amqps://user:pass@host.
  { pattern: /([a-z][a-z0-9+.-]*:\/\/[^:/@\s"\\]+:)[^@/\s"\\]+@/gi, replace: `$1${REDACTED}@` },
];

// One cheap test decides whether a line needs the full pass; most lines contain none of these words.
const mightHoldSecret = new RegExp(String.raw`${keyAlternation}|AccountKey|Pwd=|sig=|Bearer|Basic|://[^/\s"]*@`, 'i');

/** Removes SAS signatures, connection-string keys, passwords and similar secrets from any text. */
export function scrubSecrets(text: string): string {
  if (!mightHoldSecret.test(text)) return text;
  let out = text;
  for (const { pattern, replace } of scrubbers) out = out.replace(pattern, replace);
  return out;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Appears as `name` on every line, e.g. `iotedge-operator`. */
  name?: string;
  /** Where lines go; standard output when absent. Tests pass an in-memory stream. */
  destination?: DestinationStream;
  /** Extra paths to censor, in pino `redact` syntax. */
  redact?: readonly string[];
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const config = {
    level: options.level ?? 'info',
    ...(options.name ? { name: options.name } : {}),
    redact: { paths: [...redactPaths, ...(options.redact ?? [])], censor: REDACTED },
    // Text levels ("info") are what log pipelines and humans grep for; the number adds nothing.
    formatters: { level: (label: string) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: { streamWrite: scrubSecrets },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}

/** `namespace/name`, the key every log line about an EdgeDeployment carries. */
export type EdgeDeploymentKey = string | { namespace: string; name: string };

export function edgeDeploymentKey(key: EdgeDeploymentKey): string {
  return typeof key === 'string' ? key : `${key.namespace}/${key.name}`;
}

/** A child logger whose every line carries `edgeDeployment: "ns/name"`. */
export function forEdgeDeployment(logger: Logger, key: EdgeDeploymentKey): Logger {
  return logger.child({ edgeDeployment: edgeDeploymentKey(key) });
}

/** A logger that writes nothing, for callers that were given none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const levels: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] satisfies LogLevel[];

/** For validating a `--log-level` flag. */
export function isLogLevel(value: string): value is LogLevel {
  return levels.includes(value);
}
