// Collects the errors and warnings of one translation. Translation keeps going after an error so that a
// single run reports every fault in the desired state.
import type { ErrorCode, WarningCode } from '../api/errors.ts';
import type { ManifestIssue } from '../manifest/model.ts';

export class Issues {
  readonly errors: ManifestIssue[] = [];
  readonly warnings: ManifestIssue[] = [];

  error(code: ErrorCode, path: string, message: string): void {
    this.errors.push({ code, path, message });
  }

  warn(code: WarningCode, path: string, message: string): void {
    this.warnings.push({ code, path, message });
  }

  unsupported(path: string, field: string, why = 'it has no Kubernetes mapping'): void {
    this.warn('IEO_W_UNSUPPORTED_CREATE_OPTION', path, `createOptions field ${field} is ignored: ${why}`);
  }
}
