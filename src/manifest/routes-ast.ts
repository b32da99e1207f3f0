// The syntax tree of an edgeHub route: FROM <source> [WHERE <condition>] INTO <sink>.
// Conditions follow the IoT Hub routing query language as edgeHub compiles it, so the tree keeps
// what a later evaluator needs (body paths, system properties, functions) and nothing positional:
// two routes that differ only in spacing, keyword case or redundant parentheses give equal trees.

export type RouteSource =
  /** `/*`: every message and twin change notification. */
  | { kind: 'all' }
  /** `/messages/*`: every device-to-cloud message, from modules and leaf devices. */
  | { kind: 'allMessages' }
  /** `/messages/modules/*`: every message sent by any module. */
  | { kind: 'allModules' }
  /** `/messages/modules/<m>` or `/messages/modules/<m>/*` (`wildcard` tells which was written). */
  | { kind: 'module'; module: string; wildcard: boolean }
  /** `/messages/modules/<m>/outputs/*`. */
  | { kind: 'moduleOutputs'; module: string }
  /** `/messages/modules/<m>/outputs/<o>`. */
  | { kind: 'moduleOutput'; module: string; output: string }
  /** `/twinChangeNotifications`. */
  | { kind: 'twinChangeNotifications' };

export type RouteSink =
  | { kind: 'upstream' }
  /** BrokeredEndpoint("/modules/<m>/inputs/<i>"). */
  | { kind: 'moduleInput'; module: string; input: string };

export type BinaryOperator =
  | 'OR' | 'AND'
  | '=' | '!=' | '<>'
  | '<' | '>' | '<=' | '>='
  | '??'
  | '+' | '-' | '||'
  | '*' | '/' | '%';

export type FunctionName =
  | 'ABS' | 'EXP' | 'POWER' | 'SQUARE' | 'CEILING' | 'FLOOR' | 'SIGN' | 'SQRT'
  | 'AS_NUMBER' | 'IS_BOOL' | 'IS_DEFINED' | 'IS_NULL' | 'IS_NUMBER' | 'IS_STRING'
  | 'CONCAT' | 'LENGTH' | 'LOWER' | 'UPPER' | 'SUBSTRING' | 'INDEX_OF' | 'STARTS_WITH' | 'ENDS_WITH' | 'CONTAINS';

export type Expr =
  | { type: 'string'; value: string }
  /** `raw` is the literal as written (e.g. `0x1F`, `1e3`), kept so printing gives the same text back. */
  | { type: 'number'; value: number; raw: string }
  | { type: 'boolean'; value: boolean }
  | { type: 'null' }
  | { type: 'undefined' }
  /** A bare name: an application property of the message. */
  | { type: 'property'; name: string }
  /** `$name` (or `{$name}`, which skips the application-property lookup): a system property such as contentType. */
  | { type: 'systemProperty'; name: string; escaped: boolean }
  /** `$body.<path>`: a query into a JSON message body; `path` excludes the `$body.` prefix. */
  | { type: 'body'; path: string; escaped: boolean }
  /** `$twin.<path>`: a twin reference (tags or properties); `path` excludes the `$twin.` prefix. */
  | { type: 'twin'; path: string; escaped: boolean }
  | { type: 'not'; operand: Expr }
  | { type: 'negate'; operand: Expr }
  | { type: 'binary'; op: BinaryOperator; left: Expr; right: Expr }
  | { type: 'call'; name: FunctionName; args: Expr[] }
  /** twin_change_includes(<json path>), only valid when the source is /twinChangeNotifications. */
  | { type: 'twinChangeIncludes'; path: string };

export interface RouteAst {
  /** Whether the route was written with the optional `SELECT *` prefix. */
  select: boolean;
  source: RouteSource;
  condition?: Expr;
  sink: RouteSink;
}

export interface RouteSyntaxError {
  /** A one-line reason, then the offending line and a caret under the fault. */
  message: string;
  /** 0-based offset into the route text. */
  offset: number;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

export type RouteParseResult = { ok: true; route: RouteAst } | { ok: false; error: RouteSyntaxError };
