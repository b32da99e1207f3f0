// The router: every route of $edgeHub's desired properties compiled once, then each message
// matched against all of them. See README.md for the rules and where they come from.

import { normaliseSchemaVersion, parseRoute, sourceText } from '../manifest/index.ts';
import type { HubDesired, Route, RouteSource } from '../manifest/index.ts';
import { validateHubDesired } from '../manifest/schema.ts';
import { compileCondition, newEvalContext } from './compile.ts';
import type { Evaluate } from './compile.ts';
import { endpointId } from './types.ts';
import type { Endpoint, MessageSource, RouteCompileError, RouteMatch, RoutedMessage } from './types.ts';

interface CompiledRoute {
  /** The lower-cased source path with one trailing '/', e.g. `/messages/modules/sensor/`. */
  prefix: string;
  /** undefined when the route has no WHERE. */
  evaluate: Evaluate | undefined;
  endpointId: string;
  match: RouteMatch;
}

export interface Router {
  /** The endpoints a message goes to: one entry per endpoint, the highest-priority matching route winning. */
  route(msg: RoutedMessage): RouteMatch[];
  /** The names of the routes that compiled, in declaration order. */
  readonly routeNames: readonly string[];
  /** Every endpoint some compiled route can send to, by endpointId. */
  readonly endpoints: ReadonlyMap<string, Endpoint>;
}

/** How edgeHub turns a route source into a prefix: drop a trailing '*', then any trailing '/', then add one '/'. */
export function sourcePrefix(source: RouteSource): string {
  let text = sourceText(source).trim();
  while (text.endsWith('*')) text = text.slice(0, -1);
  text = text.replace(/\/+$/, '');
  return `${text}/`.toLowerCase();
}

/** The path a message's source has, lower-cased, with a trailing '/': what route prefixes are matched against. */
export function messagePath(source: MessageSource): string {
  switch (source.kind) {
    case 'module':
      return `/messages/modules/${source.moduleId}${source.outputName !== undefined ? `/outputs/${source.outputName}` : ''}/`.toLowerCase();
    case 'device':
      return '/messages/';
    case 'twinChangeNotification':
      return '/twinchangenotifications/';
  }
}

/** A route's time to live: its own when positive (edgeHub reads 0 as "not set"), else the store-and-forward one, else none. */
function effectiveTtl(route: Route, globalTtl: number | undefined): number | undefined {
  if (route.timeToLiveSecs !== undefined && route.timeToLiveSecs > 0) return route.timeToLiveSecs;
  return globalTtl !== undefined && globalTtl >= 0 ? globalTtl : undefined;
}

function compileRoute(route: Route, globalTtl: number | undefined): CompiledRoute | RouteCompileError {
  const parsed = parseRoute(route.route);
  if (!parsed.ok) return { routeName: route.name, code: 'IEO_ROUTE_SYNTAX', message: `route '${route.name}': ${parsed.error.message}` };
  const { source, condition, sink } = parsed.route;
  let evaluate: Evaluate | undefined;
  if (condition !== undefined) {
    const compiled = compileCondition(condition);
    if (!compiled.ok) return { routeName: route.name, code: 'IEO_ROUTE_TYPE', message: `route '${route.name}': ${compiled.message}` };
    evaluate = compiled.evaluate;
  }
  const endpoint: Endpoint = Object.freeze(sink.kind === 'upstream' ? { kind: 'upstream' } : { kind: 'moduleInput', moduleId: sink.module, input: sink.input });
  const match: RouteMatch = Object.freeze({ endpoint, priority: route.priority, timeToLiveSecs: effectiveTtl(route, globalTtl), routeName: route.name });
  return { prefix: sourcePrefix(source), evaluate, endpointId: endpointId(endpoint), match };
}

/**
 * Compiles every route of $edgeHub's desired properties. A route that does not compile is left out
 * and reported in `errors`; edgeHub refuses the whole configuration then, so a hub that wants its
 * behaviour keeps its previous router while `errors` is not empty.
 */
export function compileRoutes(hub: HubDesired): { router: Router; errors: RouteCompileError[] } {
  const routes: CompiledRoute[] = [];
  const errors: RouteCompileError[] = [];
  const globalTtl = hub.storeAndForwardConfiguration.timeToLiveSecs;
  for (const route of Object.values(hub.routes)) {
    const compiled = compileRoute(route, globalTtl);
    if ('code' in compiled) errors.push(compiled);
    else routes.push(compiled);
  }
  return { router: makeRouter(routes), errors };
}

function makeRouter(routes: CompiledRoute[]): Router {
  const endpoints = new Map<string, Endpoint>(routes.map((r) => [r.endpointId, r.match.endpoint]));
  return {
    routeNames: routes.map((r) => r.match.routeName),
    endpoints,
    route(msg) {
      const path = messagePath(msg.source);
      const ctx = newEvalContext(msg);
      let winners: Map<string, CompiledRoute> | undefined;
      let only: CompiledRoute | undefined;
      for (const r of routes) {
        if (!path.startsWith(r.prefix)) continue;
        if (r.evaluate !== undefined && r.evaluate(ctx) !== true) continue;
        // Most messages match one route: keep that case free of a Map.
        if (only === undefined && winners === undefined) {
          only = r;
          continue;
        }
        winners ??= new Map([[only!.endpointId, only!]]);
        const previous = winners.get(r.endpointId);
        if (previous === undefined || r.match.priority < previous.match.priority) winners.set(r.endpointId, r);
      }
      if (winners !== undefined) return [...winners.values()].map((r) => r.match);
      return only === undefined ? [] : [only.match];
    },
  };
}

/**
 * Reads $edgeHub's desired properties as the routes file holds them (JSON: schemaVersion, routes as
 * strings or {route, priority, timeToLiveSecs}, storeAndForwardConfiguration) and compiles them.
 * A document that does not match the schema gives an empty router and IEO_MANIFEST_SCHEMA errors.
 */
export function compileRoutesFromJson(desired: unknown): { router: Router; errors: RouteCompileError[] } {
  const issues = validateHubDesired(desired, '/$edgeHub/properties.desired');
  const version = typeof desired === 'object' && desired !== null ? normaliseSchemaVersion((desired as { schemaVersion?: unknown }).schemaVersion) : undefined;
  if (issues.length > 0 || version === undefined) {
    const messages = issues.length > 0 ? issues.map((i) => `${i.path}: ${i.message}`) : ['$edgeHub desired properties: schemaVersion must be 1.0 or 1.1'];
    return { router: makeRouter([]), errors: messages.map((message) => ({ routeName: '', code: 'IEO_MANIFEST_SCHEMA', message })) };
  }
  const raw = desired as { routes?: Record<string, string | { route: string; priority?: number; timeToLiveSecs?: number }>; storeAndForwardConfiguration?: { timeToLiveSecs?: number } };
  const routes: Record<string, Route> = {};
  for (const [name, r] of Object.entries(raw.routes ?? {})) {
    routes[name] = typeof r === 'string' ? { name, route: r, priority: 9 } : { name, route: r.route, priority: r.priority ?? 9, ...(r.timeToLiveSecs !== undefined ? { timeToLiveSecs: r.timeToLiveSecs } : {}) };
  }
  const ttl = raw.storeAndForwardConfiguration?.timeToLiveSecs;
  return compileRoutes({ schemaVersion: version, routes, storeAndForwardConfiguration: ttl !== undefined ? { timeToLiveSecs: ttl } : {} });
}
