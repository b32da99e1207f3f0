// What the demo shows of messages moving: per route, what the built-in hub's /metrics says it delivered
// (edgehub_messages_sent_total by endpoint), and per module what it sent or received; upstream, what the
// IoT Hub emulator received. Pure parsing here; the demo does the reading.

/** One sample of Prometheus' text format: `name{a="1",b="2"} 3`. */
export interface Sample { name: string; labels: Record<string, string>; value: number }

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

export const sum = (samples: Sample[], name: string, match: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((total, s) => total + s.value, 0);

/** A route's sink: $upstream, or a module's input (BrokeredEndpoint). */
export function routeSink(route: string): { kind: 'upstream' } | { kind: 'module'; module: string; input: string } | undefined {
  if (/\bINTO\s+\$upstream\s*$/i.test(route)) return { kind: 'upstream' };
  const brokered = /BrokeredEndpoint\(\s*"\/modules\/([^/]+)\/inputs\/([^"]+)"\s*\)\s*$/i.exec(route);
  return brokered ? { kind: 'module', module: brokered[1]!, input: brokered[2]! } : undefined;
}

/** The module a route takes messages from, when its source names one. */
export const routeSourceModule = (route: string) => /FROM\s+\/messages\/modules\/([^/\s]+)/i.exec(route)?.[1];

/**
 * Messages the hub delivered for a route: those it sent from the route's source module to its sink.
 * edgeHub counts per sender and endpoint, not per route; two routes with the same source and sink share a count.
 */
export function deliveredOnRoute(samples: Sample[], route: string): number | undefined {
  const sink = routeSink(route);
  if (!sink) return undefined;
  const from = routeSourceModule(route);
  const byFrom: Record<string, string> = from ? { from } : {};
  if (sink.kind === 'upstream') return sum(samples, 'edgehub_messages_sent_total', { ...byFrom, to: '$upstream' });
  return sum(samples, 'edgehub_messages_sent_total', { ...byFrom, to: sink.module, to_route_input: sink.input });
}

/** Messages a module published to the hub (edgehub_messages_received_total by id). */
export const receivedFromModule = (samples: Sample[], module: string) => sum(samples, 'edgehub_messages_received_total', { id: module });
