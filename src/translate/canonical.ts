// Byte-identical output for identical input: object keys sorted, undefined members dropped. Array order is
// meaningful in Kubernetes objects and is kept as built.

export function canonical<T>(value: T): T {
  return sortDeep(value) as T;
}

function sortDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortDeep);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      if (member !== undefined) out[key] = sortDeep(member);
    }
    return out;
  }
  return value;
}

/** JSON with sorted keys: the form hashed for change-detection annotations. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value));
}

/** Model field names of @kubernetes/client-node that differ from the API's JSON names. */
const wireNames: Record<string, string> = { _from: 'from' };

/** An object in the API's JSON form (what kubectl and YAML manifests use), keys sorted. */
export function toWire<T>(value: T): T {
  return rename(canonical(value)) as T;
}

function rename(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rename);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, member] of Object.entries(value)) out[wireNames[key] ?? key] = rename(member);
    return canonical(out);
  }
  return value;
}
