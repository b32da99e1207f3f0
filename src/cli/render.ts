// `iotedge-operator render FILE`: the Kubernetes objects the operator would apply for a desired state.
import { Command } from 'commander';
import type { KubernetesObject } from '@kubernetes/client-node';
import { defaultSettings, toWire } from '../translate/index.ts';
import { desiredStateSource, manifestOf, passwordsIn, redactedPassword, scrubber, settingsFromText, sourceDocument, targetFor, translateOffline } from './desired-state.ts';
import { CliError, formatIssues, processStreams, readInput, yamlDocuments } from './io.ts';
import type { CliStreams } from './io.ts';

interface RenderOptions {
  namespace?: string;
  name?: string;
  deviceId?: string;
  hubHostName?: string;
  settings?: string;
}

/** Secret values never leave the command: pull Secrets are printed with their values replaced. */
function redactSecret(object: KubernetesObject): KubernetesObject {
  if (object.kind !== 'Secret') return object;
  const secret = object as KubernetesObject & { data?: Record<string, string>; stringData?: Record<string, string> };
  const redact = (values: Record<string, string> | undefined) => (values ? Object.fromEntries(Object.keys(values).map((k) => [k, redactedPassword])) : undefined);
  return { ...secret, ...(secret.data ? { data: redact(secret.data) } : {}), ...(secret.stringData ? { stringData: redact(secret.stringData) } : {}) } as KubernetesObject;
}

export function renderCommand(streams: CliStreams = processStreams): Command {
  return new Command('render')
    .summary('print the Kubernetes objects the operator would apply')
    .description(
      'Print the Kubernetes objects the operator would apply for a deployment manifest or an EdgeDeployment, as ' +
        'multi-document YAML (Secret values replaced by REDACTED). Warnings and errors go to stderr.',
    )
    .argument('<file>', 'deployment.json, an EdgeDeployment in YAML or JSON, or - for stdin')
    .option('--namespace <namespace>', "namespace of the device (default: the EdgeDeployment's, else \"default\")")
    .option('--name <name>', "name of the owning EdgeDeployment (default: the EdgeDeployment's, else the namespace)")
    .option('--device-id <id>', "IoT Hub device id (default: spec.deviceId, else the namespace)")
    .option('--hub-host-name <host>', 'IoT Hub host name given to modules (default: spec.iotHub.hostName, else empty)')
    .option('--settings <file>', 'operator settings (YAML or JSON) over the built-in defaults')
    .action(async (file: string, options: RenderOptions) => {
      const text = await readInput(file, streams);
      const settings = options.settings ? settingsFromText(await readInput(options.settings, streams), options.settings) : defaultSettings;
      const source = desiredStateSource(text);
      if (!source.ok) {
        streams.stderr(formatIssues('error', source.errors));
        throw new CliError('', 1);
      }
      const desired = source.value;
      const scrub = scrubber(passwordsIn(sourceDocument(desired)));
      const manifest = manifestOf(desired);
      const translated = manifest.ok ? translateOffline(manifest.value, targetFor(desired, options, settings), desired) : manifest;
      streams.stderr(scrub(formatIssues('warning', manifest.ok ? [...manifest.warnings, ...translated.warnings] : manifest.warnings)));
      if (!translated.ok) {
        streams.stderr(scrub(formatIssues('error', translated.errors)));
        throw new CliError('', 1);
      }
      const { objects, volumeClaims } = translated.value;
      streams.stdout(scrub(yamlDocuments([...objects, ...volumeClaims].map((o) => toWire(redactSecret(o))))));
    });
}
