// Limits on the desired state as text and as a JSON tree, checked before anything walks it: a hostile
// manifest must be refused with a coded error, not crash the validator with a stack overflow or hold it
// for seconds. IoT Hub keeps each twin's desired properties within 32 KB and 10 levels (limits.ts); these
// bounds are far above anything a real deployment needs and stop what would get past those checks
// (EdgeDeployments written directly, createOptions strings, module twins).
import type { ManifestIssue } from './model.ts';
import { pointerJoin } from './names.ts';

/** The largest desired-state text read: an EdgeDeployment is an etcd object (about 1.5 MB at most). */
export const maxDesiredStateBytes = 2 * 1024 * 1024;
/** The deepest nesting read, counted from the document root. A real manifest nests about 12 levels. */
export const maxNestingDepth = 64;

export function textSizeIssue(text: string, path = ''): ManifestIssue | undefined {
  // UTF-16 length bounds the UTF-8 length from below at a third; an exact count is not needed to refuse.
  if (text.length <= maxDesiredStateBytes / 3) return undefined;
  const bytes = new TextEncoder().encode(text).length;
  if (bytes <= maxDesiredStateBytes) return undefined;
  return { code: 'IEO_MANIFEST_LIMIT', path, message: `the desired state is ${bytes} bytes; the operator reads at most ${maxDesiredStateBytes}` };
}

/**
 * The first place where `value` nests deeper than maxNestingDepth, as an issue at that path; undefined
 * when it does not. Iterative, and it stops at the first excess, so any input costs at most its size.
 */
export function nestingIssue(value: unknown, path = ''): ManifestIssue | undefined {
  const stack: { node: unknown; depth: number; at: string }[] = [{ node: value, depth: 0, at: path }];
  while (stack.length > 0) {
    const { node, depth, at } = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= maxNestingDepth) {
      return { code: 'IEO_MANIFEST_LIMIT', path: at, message: `the desired state nests deeper than ${maxNestingDepth} levels here` };
    }
    for (const [key, child] of Object.entries(node)) {
      if (child !== null && typeof child === 'object') stack.push({ node: child, depth: depth + 1, at: pointerJoin(at, key) });
    }
  }
  return undefined;
}
