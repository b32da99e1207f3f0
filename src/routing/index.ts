// The routing layer's public API: edgeHub routes compiled once into closures and evaluated per
// message. Pure: no I/O, no clock, no logging; the hub owns all of that.

export { compileRoutes, compileRoutesFromJson, messagePath, sourcePrefix } from './router.ts';
export type { Router } from './router.ts';
export { endpointId, parseEndpointId, systemPropertyNames } from './types.ts';
export type { Endpoint, MessageSource, RouteCompileError, RouteMatch, RoutedMessage } from './types.ts';
export { compileCondition } from './compile.ts';
export type { StaticType } from './compile.ts';
export type { Value } from './values.ts';
