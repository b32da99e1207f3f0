// The iotedge-operator command. Each subcommand lives in its own file and exports a function returning
// its commander Command; adding one is one line in `subcommands`. Only the subcommand being run is loaded,
// so `validate` does not pay for the Kubernetes client or the IoT Hub SDKs that `run` needs.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { scrubSecrets } from '../runtime/scrub.ts';
import { CliError, processStreams } from './io.ts';
import type { CliStreams } from './io.ts';

type Subcommand = (streams: CliStreams) => Promise<Command>;

const subcommands: Record<string, Subcommand> = {
  validate: async (s) => (await import('./validate.ts')).validateCommand(s),
  convert: async (s) => (await import('./convert.ts')).convertCommand(s),
  render: async (s) => (await import('./render.ts')).renderCommand(s),
  'hub-emulator': async () => (await import('./hub-emulator.ts')).hubEmulatorCommand(),
  run: async () => (await import('./run.ts')).runCommand(),
  deploy: async (s) => (await import('./deploy.ts')).deployCommand(s),
  edgehub: async () => (await import('./edgehub.ts')).edgeHubCommand(),
};

/** The subcommand named on the command line, if it is one we know: then only that one is loaded. */
function requested(argv: string[]): string | undefined {
  const first = argv.find((a) => !a.startsWith('-'));
  return first !== undefined && Object.hasOwn(subcommands, first) ? first : undefined;
}

function configure(command: Command, streams: CliStreams): void {
  command
    .exitOverride()
    .showHelpAfterError(`(run ${command.parent ? `iotedge-operator ${command.name()}` : 'iotedge-operator'} --help for usage)`)
    .configureOutput({ writeOut: streams.stdout, writeErr: streams.stderr });
  for (const sub of command.commands) configure(sub, streams);
}

/** Runs the command line `argv` (without node and script) and returns the exit code: 0, 1 invalid input, 2 usage. */
export async function main(argv: string[], original: CliStreams = processStreams): Promise<number> {
  let streams = original;
  const program = new Command('iotedge-operator')
    .description('Run Azure IoT Edge deployments natively on Kubernetes: one EdgeDeployment per device namespace.')
    .version(packageJson.version)
    .addHelpText('after', '\nExit codes: 0 success, 1 invalid input, 2 usage error.');
  // Errors and warnings may quote what they were given; the shared scrubber keeps keys out of them.
  // stdout is left alone: `hub-emulator` prints connection strings there on purpose.
  streams = { ...streams, stderr: (text) => original.stderr(scrubSecrets(text)) };
  const only = requested(argv);
  const names = only ? [only] : Object.keys(subcommands);
  try {
    for (const name of names) program.addCommand(await (subcommands[name] as Subcommand)(streams));
    configure(program, streams);
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; anything else commander refuses is a usage error, already printed.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof CliError) {
      if (error.message) streams.stderr(`error: ${error.message}\n`);
      return error.exitCode;
    }
    streams.stderr(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
