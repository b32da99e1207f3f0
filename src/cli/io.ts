// What every subcommand shares: reading FILE or stdin, the exit codes, and how issues are printed.
import { readFile } from 'node:fs/promises';
import { dump } from 'js-yaml';
import type { ManifestIssue } from '../manifest/model.ts';

/** 1: the input is invalid. 2: the command was used wrongly (options, unreadable file). */
export type ExitCode = 1 | 2;

/** An error the user can act on: printed as its message, never as a stack trace. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode) {
    super(message);
    this.exitCode = exitCode;
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, 2);
}

/** Where the command writes; tests and main pass the process streams. */
export interface CliStreams {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => Promise<string>;
}

export const processStreams: CliStreams = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  stdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

/** The text of FILE, or of stdin when FILE is "-". */
export async function readInput(file: string, streams: CliStreams): Promise<string> {
  if (file === '-') return streams.stdin();
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, not a file' : code === 'EACCES' ? 'permission denied' : String(code ?? error);
    throw usageError(`cannot read ${file}: ${why}`);
  }
}

/**
 * `error IEO_CODE /path: message`, one line per issue (the document root prints as "/"). A message's
 * further lines, such as a route with a caret under the fault, follow indented, so `grep '^error'` still
 * gives one line per fault.
 */
export function formatIssue(severity: 'error' | 'warning', issue: ManifestIssue): string {
  const [first, ...rest] = issue.message.split('\n');
  return [`${severity} ${issue.code} ${issue.path || '/'}: ${first ?? ''}`, ...rest.map((line) => `    ${line}`)].join('\n');
}

export function formatIssues(severity: 'error' | 'warning', issues: ManifestIssue[]): string {
  return issues.map((i) => `${formatIssue(severity, i)}\n`).join('');
}

/** Kubernetes objects as multi-document YAML, as kubectl apply -f - reads it. */
export function yamlDocuments(objects: unknown[]): string {
  return objects.map((o) => `---\n${dump(o, { noRefs: true, lineWidth: -1 })}`).join('');
}
