// Structured JSON logging on pino. Secrets are kept out of every line in two layers:
// pino's `redact` censors values at known object paths, and a last pass over each serialized
// line (scrub.ts, the scrubber Events, conditions and CLI errors share) removes SAS tokens,
// connection-string keys and `"password":"…"` pairs wherever they hide.
import { pino } from 'pino';
import type { DestinationStream, LevelWithSilent, Logger as PinoLogger } from 'pino';
import { REDACTED, scrubSecrets } from './scrub.ts';

export { REDACTED, scrubDeep, scrubSecrets } from './scrub.ts';

export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;

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
