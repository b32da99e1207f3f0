// `iotedge-operator deploy`: pushes a deployment manifest to one IoT Edge device with the service
// SDK's applyConfigurationContentOnDevice, as `az iot edge set-modules` does. The manifest is validated
// first, so a manifest the operator would refuse never reaches the hub.
import { readFileSync } from 'node:fs';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { Command } from 'commander';
import iothub from 'azure-iothub';
import { parseDeploymentManifest, parseManifestText } from '../manifest/parse.ts';
import { CliError, readInput, usageError, type CliStreams } from './io.ts';

interface DeployOptions {
  hubConnectionString?: string;
  device: string;
  caFile?: string;
}

/** The modulesContent object of a manifest (deployment.json, or {content:{modulesContent}}). */
function modulesContentOf(manifest: unknown): Record<string, unknown> | undefined {
  const m = manifest as { modulesContent?: unknown; content?: { modulesContent?: unknown } } | null;
  const content = m?.modulesContent ?? m?.content?.modulesContent;
  return content && typeof content === 'object' && !Array.isArray(content) ? content as Record<string, unknown> : undefined;
}

export function deployCommand(streams: CliStreams): Command {
  return new Command('deploy')
    .description('push a deployment manifest to an IoT Edge device through IoT Hub (applyConfigurationContentOnDevice)')
    .argument('<file>', 'deployment manifest (JSON or YAML; "-" for stdin)')
    .requiredOption('--device <id>', 'the IoT Edge device id')
    .option('--hub-connection-string <cs>', 'IoT Hub service connection string (or env IOTEDGE_HUB_CONNECTION_STRING)')
    .option('--ca-file <pem>', 'extra CA certificate to trust for the hub (a private hub or the emulator)')
    .action(async (file: string, options: DeployOptions) => {
      const connectionString = options.hubConnectionString ?? process.env.IOTEDGE_HUB_CONNECTION_STRING;
      if (!connectionString) throw usageError('--hub-connection-string or IOTEDGE_HUB_CONNECTION_STRING is required');
      if (!/SharedAccessKeyName=/.test(connectionString)) throw usageError('--hub-connection-string must be a service (policy) connection string with SharedAccessKeyName');
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
        const message = (error as Error).message.replace(/SharedAccessKey=[^;\s]*/g, 'SharedAccessKey=[REDACTED]');
        throw new CliError(`IoT Hub refused the deployment for device ${options.device}: ${message}`, 1);
      }
      streams.stdout(`deployed ${Object.keys(modulesContent).join(', ')} to device ${options.device}\n`);
    });
}
