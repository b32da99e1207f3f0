// `iotedge-operator deploy`: pushes a deployment manifest to one IoT Edge device with the service
// SDK's applyConfigurationContentOnDevice, as `az iot edge set-modules` does. The manifest is validated
// first, so a manifest the operator would refuse never reaches the hub.
import { readFileSync } from 'node:fs';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { Command, Option } from 'commander';
import iothub from 'azure-iothub';
import { parseDeploymentManifest, parseManifestText } from '../manifest/parse.ts';
import { scrubSecrets } from '../runtime/scrub.ts';
import { CliError, readInput, usageError, type CliStreams } from './io.ts';

interface DeployOptions {
  hubConnectionString?: string;
  hubConnectionStringFile?: string;
  device: string;
  caFile?: string;
}

/** The modulesContent object of a manifest (deployment.json, or {content:{modulesContent}}). */
function modulesContentOf(manifest: unknown): Record<string, unknown> | undefined {
  const m = manifest as { modulesContent?: unknown; content?: { modulesContent?: unknown } } | null;
  const content = m?.modulesContent ?? m?.content?.modulesContent;
  return content && typeof content === 'object' && !Array.isArray(content) ? content as Record<string, unknown> : undefined;
}

/** The service connection string from IOTEDGE_HUB_CONNECTION_STRING or a file; never from argv. */
function readConnectionString(options: DeployOptions): string {
  if (options.hubConnectionString !== undefined) {
    throw usageError('--hub-connection-string is not accepted: the command line is visible to every user of the machine. Put the connection string in IOTEDGE_HUB_CONNECTION_STRING or in a file named by --hub-connection-string-file');
  }
  let text = process.env.IOTEDGE_HUB_CONNECTION_STRING;
  if (options.hubConnectionStringFile !== undefined) {
    try {
      text = readFileSync(options.hubConnectionStringFile, 'utf8');
    } catch (error) {
      throw usageError(`cannot read --hub-connection-string-file ${options.hubConnectionStringFile}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  }
  const connectionString = text?.trim();
  if (!connectionString) throw usageError('the IoT Hub service connection string is required: set IOTEDGE_HUB_CONNECTION_STRING or give --hub-connection-string-file');
  if (!/SharedAccessKeyName=/.test(connectionString)) throw usageError('the IoT Hub connection string must be a service (policy) connection string with SharedAccessKeyName');
  return connectionString;
}

export function deployCommand(streams: CliStreams): Command {
  return new Command('deploy')
    .description('push a deployment manifest to an IoT Edge device through IoT Hub (applyConfigurationContentOnDevice)')
    .argument('<file>', 'deployment manifest (JSON or YAML; "-" for stdin)')
    .requiredOption('--device <id>', 'the IoT Edge device id')
    .option('--hub-connection-string-file <path>', 'file holding the IoT Hub service connection string (or env IOTEDGE_HUB_CONNECTION_STRING)')
    // Refused with a reason: a connection string in argv is visible to every user of the machine (ps, /proc).
    .addOption(new Option('--hub-connection-string <cs>').hideHelp())
    .option('--ca-file <pem>', 'extra CA certificate to trust for the hub (a private hub or the emulator)')
    .action(async (file: string, options: DeployOptions) => {
      const connectionString = readConnectionString(options);
      const text = await readInput(file, streams);
      const parsedText = parseManifestText(text);
      if (!parsedText.ok) throw new CliError(parsedText.errors.map((i) => `${i.code} ${i.path}: ${i.message}`).join('\n'), 1);
      const validated = parseDeploymentManifest(parsedText.value);
      if (!validated.ok) throw new CliError(validated.errors.map((i) => `${i.code} ${i.path}: ${i.message}`).join('\n'), 1);
      const modulesContent = modulesContentOf(parsedText.value);
      if (!modulesContent) throw new CliError('the manifest has no modulesContent', 1);
      if (options.caFile) {
        // azure-iothub has no CA option of its own; it uses Node's default trust store.
        const pem = readFileSync(options.caFile, 'utf8');
        setDefaultCACertificates([...getCACertificates('default'), pem]);
      }
      const registry = iothub.Registry.fromConnectionString(connectionString);
      try {
        await registry.applyConfigurationContentOnDevice(options.device, { modulesContent } as never);
      } catch (error) {
        throw new CliError(`IoT Hub refused the deployment for device ${options.device}: ${scrubSecrets((error as Error).message)}`, 1);
      }
      streams.stdout(`deployed ${Object.keys(modulesContent).join(', ')} to device ${options.device}\n`);
    });
}
