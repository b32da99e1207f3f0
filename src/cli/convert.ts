// `iotedge-operator convert FILE --namespace NS`: a deployment manifest as an EdgeDeployment for kubectl apply.
import { Command } from 'commander';
import { resourceFromManifest } from '../manifest/resource.ts';
import { desiredStateSource, passwordsIn, scrubber } from './desired-state.ts';
import { CliError, formatIssues, processStreams, readInput, usageError, yamlDocuments } from './io.ts';
import type { CliStreams } from './io.ts';

interface ConvertOptions {
  namespace: string;
  name?: string;
  deviceId?: string;
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function convertCommand(streams: CliStreams = processStreams): Command {
  return new Command('convert')
    .summary('turn a deployment.json into an EdgeDeployment (and a Secret for registry passwords)')
    .description(
      'Convert a deployment manifest (deployment.json) into an EdgeDeployment, printed as YAML for kubectl apply -f -. ' +
        'Registry passwords go into a Secret <name>-registry-credentials printed before it; createOptions become ' +
        'objects (chunks joined) and string routes become route objects. Warnings go to stderr.',
    )
    .argument('<file>', 'deployment.json (JSON or YAML), or - for stdin')
    .requiredOption('--namespace <namespace>', 'namespace of the device, where the EdgeDeployment and Secret go')
    .option('--name <name>', 'name of the EdgeDeployment (default: the namespace name)')
    .option('--device-id <id>', 'IoT Hub device id, when it differs from the namespace name')
    .action(async (file: string, options: ConvertOptions) => {
      for (const [flag, value] of [['--namespace', options.namespace], ['--name', options.name]] as const) {
        if (value !== undefined && (value.length > 63 || !dnsLabel.test(value))) {
          throw usageError(`${flag} ${JSON.stringify(value)} is not a valid Kubernetes name (lower-case letters, digits and '-', at most 63)`);
        }
      }
      const source = desiredStateSource(await readInput(file, streams));
      if (!source.ok) {
        streams.stderr(formatIssues('error', source.errors));
        throw new CliError('', 1);
      }
      if (source.value.kind === 'resource') throw new CliError(`${file} is already an EdgeDeployment; convert reads deployment manifests`, 1);
      const { document } = source.value;
      const scrub = scrubber(passwordsIn(document));
      const target = { namespace: options.namespace, name: options.name ?? options.namespace, ...(options.deviceId !== undefined ? { deviceId: options.deviceId } : {}) };
      const outcome = resourceFromManifest(document, target);
      streams.stderr(scrub(formatIssues('warning', outcome.warnings)));
      if (!outcome.ok) {
        streams.stderr(scrub(formatIssues('error', outcome.errors)));
        throw new CliError('', 1);
      }
      const { resource, secrets } = outcome.value;
      // The Secret comes first so that kubectl apply creates it before the resource that refers to it.
      streams.stdout(yamlDocuments([...secrets, resource]));
    });
}
