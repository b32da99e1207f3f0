// IoT Hub's twin limits on desired properties, checked before a deployment is accepted so that a
// manifest the real hub would refuse is refused here too.

import type { ManifestIssue } from './model.ts';
import { pointerJoin } from './names.ts';

/** IoT Hub: the desired properties of one twin are at most 32 KB. */
export const maxDesiredBytes = 32 * 1024;
/** IoT Hub: JSON objects in desired properties nest at most 10 levels. */
export const maxDesiredDepth = 10;

// Twin metadata the hub adds to what it sends; not part of what the author wrote or what the limit counts.
const twinMetadataKeys = new Set(['$version', '$metadata']);

function withoutMetadata(desired: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(desired).filter(([k]) => !twinMetadataKeys.has(k)));
}

/** UTF-8 length of the compact JSON of desired properties (how the hub measures them), metadata excluded. */
export function desiredSizeBytes(desired: Record<string, unknown>): number {
  return new TextEncoder().encode(JSON.stringify(withoutMetadata(desired))).length;
}

/**
 * Nesting depth as IoT Hub counts it for desired properties: the desired object itself is level 0,
 * each object (or array) value below it adds one level, and leaf values add none. So
 * `{"a": {"b": 1}}` has depth 1 and ten nested objects `{"l1": {"l2": … {"l10": {"x": 1}}}}` have
 * depth 10, the most IoT Hub allows (its documented example of a valid twin). Returns the depth
 * and the pointer (relative to the desired object) of one of the deepest objects.
 */
export function desiredDepth(desired: Record<string, unknown>): { depth: number; deepest: string } {
  let best = { depth: 0, deepest: '' };
  // Iterative so a hostile, very deep document cannot exhaust the stack.
  const stack: { value: unknown; depth: number; path: string }[] = [{ value: withoutMetadata(desired), depth: 0, path: '' }];
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop() as { value: unknown; depth: number; path: string };
    if (depth > best.depth) best = { depth, deepest: path };
    if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (v !== null && typeof v === 'object') stack.push({ value: v, depth: depth + 1, path: pointerJoin(path, k) });
      }
    }
  }
  return best;
}

/** Issues for one twin's desired properties; `path` points at that desired object in the document. */
export function checkTwinLimits(desired: Record<string, unknown>, path: string, twinName: string): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const size = desiredSizeBytes(desired);
  if (size > maxDesiredBytes) {
    issues.push({
      code: 'IEO_TWIN_LIMIT',
      path,
      message: `the desired properties of ${twinName} are ${size} bytes of JSON; IoT Hub allows at most ${maxDesiredBytes} (32 KB)`,
    });
  }
  const { depth, deepest } = desiredDepth(desired);
  if (depth > maxDesiredDepth) {
    issues.push({
      code: 'IEO_TWIN_LIMIT',
      path: `${path}${deepest}`,
      message: `the desired properties of ${twinName} nest ${depth} levels deep here; IoT Hub allows at most ${maxDesiredDepth}`,
    });
  }
  return issues;
}
