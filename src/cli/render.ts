// `iotedge-operator render FILE`: the Kubernetes objects the operator would apply for a desired state.
import { Command } from 'commander';
import { defaultSettings, toWire } from '../translate/index.ts';
import { desiredStateSource, manifestOf, passwordsIn, scrubber, settingsFromText, sourceDocument, targetFor, translateOffline } from './desired-state.ts';
import { CliError, formatIssues, processStreams, readInput, yamlDocuments } from './io.ts';
import type { CliStreams } from './io.ts';

interface RenderOptions {
  namespace?: string;
  name?: string;
  deviceId?: string;
  hubHostName?: string;
  settings?: string;
  includeSecrets?: boolean;
}

/** What replaces a secret inside a printed value; the YAML writer quotes it, since `*` would start an alias. */
export const redactedValue = '***';

/**
 * Every string in the object with each secret replaced, before it is written as YAML: replacing in the
 * YAML text instead could leave `value: ***`, which YAML reads as an alias, so the output would not parse.
 */
export function redactStrings<T>(value: T, secrets: ReadonlySet<string>): T {
  const list = [...secrets].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  const redact = (v: unknown): unknown => {
    if (typeof v === 'string') return list.reduce((text, secret) => text.split(secret).join(redactedValue), v);
    if (Array.isArray(v)) return v.map(redact);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, member]) => [k, redact(member)]));
    return v;
  };
  return redact(value) as T;
}

export function renderCommand(streams: CliStreams = processStreams): Command {
  return new Command('render')
    .summary('print the Kubernetes objects the operator would apply')
    .description(
      'Print the Kubernetes objects the operator would apply for a deployment manifest or an EdgeDeployment, as ' +
        'multi-document YAML that kubectl apply -f - reads. Secrets are left out unless --include-secrets is given; ' +
        'a password found in any other value is replaced by a quoted "***". Warnings and errors go to stderr.',
    )
    .argument('<file>', 'deployment.json, an EdgeDeployment in YAML or JSON, or - for stdin')
    .option('--namespace <namespace>', "namespace of the device (default: the EdgeDeployment's, else \"default\")")
    .option('--name <name>', "name of the owning EdgeDeployment (default: the EdgeDeployment's, else the namespace)")
    .option('--device-id <id>', "IoT Hub device id (default: spec.deviceId, else the namespace)")
    .option('--hub-host-name <host>', 'IoT Hub host name given to modules (default: spec.iotHub.hostName, else empty)')
    .option('--settings <file>', 'operator settings (YAML or JSON) over the built-in defaults')
    .option('--include-secrets', 'also print the Secrets (registry pull Secrets), with the passwords the input holds', false)
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
      const secrets = passwordsIn(sourceDocument(desired));
      const printed = [...objects, ...volumeClaims].flatMap((o) => {
        if (o.kind !== 'Secret') return [redactStrings(toWire(o), secrets)];
        // Passwords held in cluster Secrets are unknown offline: translateOffline put a placeholder there.
        return options.includeSecrets ? [toWire(o)] : [];
      });
      const left = objects.filter((o) => o.kind === 'Secret').map((o) => o.metadata?.name);
      if (left.length > 0 && !options.includeSecrets) {
        streams.stderr(`note: ${left.length} Secret(s) not printed (${left.join(', ')}); --include-secrets prints them\n`);
      }
      streams.stdout(yamlDocuments(printed));
    });
}
