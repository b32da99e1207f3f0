// `iotedge-operator validate FILE`: is this desired state one the operator would deploy?
import { Command } from 'commander';
import { desiredStateSource, manifestOf, passwordsIn, scrubber, settingsFromText, sourceDocument, targetFor, translateOffline } from './desired-state.ts';
import { CliError, formatIssues, processStreams, readInput } from './io.ts';
import type { CliStreams } from './io.ts';
import { defaultSettings } from '../translate/index.ts';
import type { ManifestIssue } from '../manifest/model.ts';

interface ValidateOptions {
  settings?: string;
  namespace?: string;
  manifestOnly?: boolean;
}

export function validateCommand(streams: CliStreams = processStreams): Command {
  return new Command('validate')
    .summary('check a deployment manifest or EdgeDeployment; list every fault with its path')
    .description(
      'Check a deployment manifest (deployment.json) or an EdgeDeployment: the manifest rules edgeAgent applies, ' +
        "then the translation to Kubernetes under the operator's policy. Prints every fault as " +
        '"error CODE /path: message" and exits 1, or prints "valid" (after any warnings) and exits 0.',
    )
    .argument('<file>', 'deployment.json, an EdgeDeployment in YAML or JSON, or - for stdin')
    .option('--settings <file>', 'operator settings (YAML) whose policy to check against; default: the built-in defaults')
    .option('--namespace <namespace>', 'namespace the device would run in (affects names only)')
    .option('--manifest-only', 'check the manifest rules only, not the translation to Kubernetes')
    .action(async (file: string, options: ValidateOptions) => {
      const text = await readInput(file, streams);
      const settings = options.settings ? settingsFromText(await readInput(options.settings, streams), options.settings) : defaultSettings;
      const source = desiredStateSource(text);
      const scrub = scrubber(source.ok ? passwordsIn(sourceDocument(source.value)) : new Set());
      const warnings: ManifestIssue[] = [];
      const report = (errors: ManifestIssue[]): never => {
        streams.stdout(scrub(formatIssues('warning', warnings) + formatIssues('error', errors)));
        streams.stdout(`invalid: ${errors.length} error${errors.length === 1 ? '' : 's'}\n`);
        throw new CliError('', 1);
      };
      if (!source.ok) return report(source.errors);
      const desired = source.value;
      const manifest = manifestOf(desired);
      warnings.push(...manifest.warnings);
      if (!manifest.ok) return report(manifest.errors);
      if (!options.manifestOnly) {
        const translated = translateOffline(manifest.value, targetFor(desired, options, settings), desired);
        warnings.push(...translated.warnings);
        if (!translated.ok) return report(translated.errors);
      }
      streams.stdout(scrub(formatIssues('warning', warnings)));
      streams.stdout('valid\n');
    });
}
