// The manifest layer's public API: parse and validate IoT Edge deployment manifests, and the
// edgeHub route grammar.

export type * from './model.ts';
export { defaultStartupOrder } from './model.ts';
export {
  joinCreateOptions,
  moduleTwinsDesired,
  normaliseSchemaVersion,
  parseDeploymentManifest,
  parseDesiredProperties,
  parseManifestText,
} from './parse.ts';
export { checkRoutes, modulesReferencedByRoute, parseRoute, routeFunctions, sourceText, summariseRoutes } from './routes.ts';
export type { BinaryOperator, Expr, FunctionName, RouteAst, RouteParseResult, RouteSink, RouteSource, RouteSummary, RouteSyntaxError } from './routes.ts';
export { printExpr, printRoute, printSink } from './routes-print.ts';
export { bodyPathFault, bodyPathSegment, conditionType, twinChangePrefixes } from './routes-types.ts';
export type { ConditionType } from './routes-types.ts';
export { checkUserModuleName, jsonPointer, maxModuleIdLength, moduleIdFault, pointerJoin } from './names.ts';
export { checkTwinLimits, desiredDepth, desiredSizeBytes, maxDesiredBytes, maxDesiredDepth } from './limits.ts';
export { edgeAgentDesiredSchema, edgeHubDesiredSchema, imagePullPolicies, restartPolicies, desiredStatuses } from './schema.ts';
