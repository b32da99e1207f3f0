// The edgeHub route grammar: FROM <source> [WHERE <condition>] INTO <sink>, with conditions in the
// IoT Hub routing query language as edgeHub compiles it. A hand-written recursive-descent parser:
// the source path (`/messages/modules/m/outputs/*`) lexes differently from the condition (where
// `/` and `*` are operators), which a single-lexer generator would need modes for, and every
// fault needs an exact offset for the caret excerpt.

import type { DeploymentManifest, ManifestIssue } from './model.ts';
import type { BinaryOperator, Expr, FunctionName, RouteAst, RouteParseResult, RouteSink, RouteSource } from './routes-ast.ts';
import { RouteSyntaxFault, describeToken, numberValue, tokenize } from './routes-lexer.ts';
import type { Token } from './routes-lexer.ts';
import { jsonPointer } from './names.ts';
import { conditionType } from './routes-types.ts';

export type { BinaryOperator, Expr, FunctionName, RouteAst, RouteParseResult, RouteSink, RouteSource, RouteSyntaxError } from './routes-ast.ts';

/** edgeHub's builtins and their arities (min, max). Names are case-insensitive in routes. */
export const routeFunctions: Readonly<Record<FunctionName, readonly [number, number]>> = {
  ABS: [1, 1], EXP: [1, 1], POWER: [2, 2], SQUARE: [1, 1], CEILING: [1, 1], FLOOR: [1, 1], SIGN: [1, 1], SQRT: [1, 1],
  AS_NUMBER: [1, 1], IS_BOOL: [1, 1], IS_DEFINED: [1, 1], IS_NULL: [1, 1], IS_NUMBER: [1, 1], IS_STRING: [1, 1],
  CONCAT: [2, Number.POSITIVE_INFINITY], LENGTH: [1, 1], LOWER: [1, 1], UPPER: [1, 1], SUBSTRING: [2, 3], INDEX_OF: [2, 2],
  STARTS_WITH: [2, 2], ENDS_WITH: [2, 2], CONTAINS: [2, 2],
};

// IoT Hub's cloud routing has these; edgeHub does not, and fails to compile a route that calls them.
const cloudOnlyFunctions = new Set(['IS_OBJECT', 'IS_ARRAY', 'IS_PRIMITIVE']);

/** Deeper nesting than this is refused rather than risking the call stack on hostile input. */
const maxExpressionDepth = 200;

const binaryPrecedence: Record<BinaryOperator, number> = {
  OR: 1, AND: 2,
  '=': 4, '!=': 4, '<>': 4,
  '<': 5, '>': 5, '<=': 5, '>=': 5,
  '??': 6,
  '+': 7, '-': 7, '||': 7,
  '*': 8, '/': 8, '%': 8,
};
/** NOT sits between AND and the comparisons, as in SQL: NOT a = b is NOT (a = b). */
export const notPrecedence = 3;
export const negatePrecedence = 9;
export const primaryPrecedence = 10;
export { binaryPrecedence };

const binaryLevels: BinaryOperator[][] = [['OR'], ['AND'], [], ['=', '!=', '<>'], ['<', '>', '<=', '>='], ['??'], ['+', '-', '||'], ['*', '/', '%']];

const sourceForms = '/*, /messages/*, /messages/modules/*, /messages/modules/<module>[/*], /messages/modules/<module>/outputs/<output|*>, /twinChangeNotifications';

/** Characters IoT Hub allows in a module id, less '*' (a wildcard in a source path). */
const moduleSegment = /^[A-Za-z0-9\-.+%_#?!(),:=@$']+$/;

class RouteParser {
  readonly text: string;
  tokens: Token[] = [];
  pos = 0;
  depth = 0;
  source: RouteSource = { kind: 'all' };

  constructor(text: string) {
    this.text = text;
  }

  parse(): RouteAst {
    let i = this.skipSpace(0);
    let select = false;
    if (this.wordAt(i, 'SELECT')) {
      select = true;
      i = this.skipSpace(i + 6);
      if (this.text[i] !== '*') throw new RouteSyntaxFault("expected '*' after SELECT", i);
      i = this.skipSpace(i + 1);
    }
    if (!this.wordAt(i, 'FROM')) {
      throw new RouteSyntaxFault(i >= this.text.length ? 'empty route: expected FROM <source> [WHERE <condition>] INTO <sink>' : 'a route must start with FROM', i);
    }
    i = this.skipSpace(i + 4);
    let end = i;
    while (end < this.text.length && !/\s/.test(this.text[end] as string)) end++;
    this.source = this.parseSource(this.text.slice(i, end), i);

    this.tokens = tokenize(this.text, end);
    let condition: Expr | undefined;
    if (this.peekKeyword('WHERE')) {
      this.pos++;
      condition = this.parseExpression();
    }
    const into = this.peek();
    if (!(into.kind === 'keyword' && into.text === 'INTO')) {
      throw new RouteSyntaxFault(condition === undefined ? `expected WHERE or INTO, found ${describeToken(into)}` : `expected INTO or an operator, found ${describeToken(into)}`, into.offset);
    }
    this.pos++;
    const sink = this.parseSink();
    const rest = this.peek();
    if (rest.kind !== 'eof') throw new RouteSyntaxFault(`unexpected ${describeToken(rest)} after the sink`, rest.offset);
    return condition === undefined ? { select, source: this.source, sink } : { select, source: this.source, condition, sink };
  }

  skipSpace(i: number): number {
    while (i < this.text.length && /\s/.test(this.text[i] as string)) i++;
    return i;
  }

  wordAt(i: number, word: string): boolean {
    return this.text.slice(i, i + word.length).toUpperCase() === word && !/[A-Za-z0-9_.-]/.test(this.text[i + word.length] ?? ' ');
  }

  parseSource(path: string, offset: number): RouteSource {
    if (path === '') throw new RouteSyntaxFault(`expected a source after FROM (${sourceForms})`, offset);
    if (path === '/*') return { kind: 'all' };
    if (path === '/twinChangeNotifications') return { kind: 'twinChangeNotifications' };
    if (path === '/messages/*') return { kind: 'allMessages' };
    if (path === '/messages/modules/*') return { kind: 'allModules' };
    const segments = path.split('/');
    // '' messages modules <m> [...]
    if (segments[0] === '' && segments[1] === 'messages' && segments[2] === 'modules' && segments.length >= 4) {
      const module = segments[3] as string;
      const moduleOffset = offset + '/messages/modules/'.length;
      if (!moduleSegment.test(module)) {
        throw new RouteSyntaxFault(`'${module}' is not a module id (letters, digits and - . + % _ # ? ! ( ) , : = @ $ ')`, moduleOffset);
      }
      const rest = segments.slice(4);
      if (rest.length === 0) return { kind: 'module', module, wildcard: false };
      if (rest.length === 1 && rest[0] === '*') return { kind: 'module', module, wildcard: true };
      if (rest[0] === 'outputs' && rest.length === 2 && rest[1] !== '') {
        return rest[1] === '*' ? { kind: 'moduleOutputs', module } : { kind: 'moduleOutput', module, output: rest[1] as string };
      }
      throw new RouteSyntaxFault(`unknown source '${path}': after /messages/modules/${module} expected nothing, /* or /outputs/<output|*>`, moduleOffset + module.length);
    }
    throw new RouteSyntaxFault(`unknown source '${path}'; expected one of ${sourceForms}`, offset);
  }

  parseSink(): RouteSink {
    const t = this.next();
    if (t.kind === 'dollar') {
      if (t.text.toLowerCase() === 'upstream') return { kind: 'upstream' };
      throw new RouteSyntaxFault(`unknown sink '${t.raw}'; expected $upstream or BrokeredEndpoint("/modules/<module>/inputs/<input>")`, t.offset);
    }
    if (t.kind === 'name' && t.text.toLowerCase() === 'brokeredendpoint') {
      this.expectPunct('(', 'after BrokeredEndpoint');
      const target = this.next();
      if (target.kind !== 'string') throw new RouteSyntaxFault(`expected a quoted endpoint such as "/modules/<module>/inputs/<input>", found ${describeToken(target)}`, target.offset);
      const m = /^\/modules\/([^/\s]+)\/inputs\/([^/\s]+)$/.exec(target.text);
      if (!m) throw new RouteSyntaxFault(`BrokeredEndpoint must name "/modules/<module>/inputs/<input>", not "${target.text}"`, target.offset);
      this.expectPunct(')', 'to close BrokeredEndpoint(');
      return { kind: 'moduleInput', module: m[1] as string, input: m[2] as string };
    }
    throw new RouteSyntaxFault(`expected a sink ($upstream or BrokeredEndpoint("/modules/<module>/inputs/<input>")), found ${describeToken(t)}`, t.offset);
  }

  peek(): Token {
    return this.tokens[this.pos] as Token;
  }

  next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  peekKeyword(word: string): boolean {
    const t = this.peek();
    return t.kind === 'keyword' && t.text === word;
  }

  peekPunct(p: string): boolean {
    const t = this.peek();
    return t.kind === 'punct' && t.text === p;
  }

  expectPunct(p: string, context: string): Token {
    const t = this.next();
    if (t.kind !== 'punct' || t.text !== p) throw new RouteSyntaxFault(`expected '${p}' ${context}, found ${describeToken(t)}`, t.offset);
    return t;
  }

  parseExpression(): Expr {
    return this.parseBinary(0);
  }

  /** Precedence climbing over binaryLevels; level 2 is the prefix NOT. */
  parseBinary(level: number): Expr {
    if (level === 2) return this.parseNot();
    if (level >= binaryLevels.length) return this.parseUnary();
    const ops = binaryLevels[level] as BinaryOperator[];
    let left = this.parseBinary(level + 1);
    for (;;) {
      const op = this.matchOperator(ops);
      if (op === undefined) return left;
      const right = this.parseBinary(level + 1);
      left = { type: 'binary', op, left, right };
    }
  }

  matchOperator(ops: BinaryOperator[]): BinaryOperator | undefined {
    const t = this.peek();
    const text = t.kind === 'keyword' || t.kind === 'punct' ? t.text : undefined;
    const op = ops.find((o) => o === text);
    if (op !== undefined) this.pos++;
    return op;
  }

  enter(t: Token): void {
    if (++this.depth > maxExpressionDepth) throw new RouteSyntaxFault(`condition nested more than ${maxExpressionDepth} levels deep`, t.offset);
  }

  parseNot(): Expr {
    const t = this.peek();
    if (t.kind === 'keyword' && t.text === 'NOT') {
      this.pos++;
      this.enter(t);
      const operand = this.parseNot();
      this.depth--;
      return { type: 'not', operand };
    }
    return this.parseBinary(3);
  }

  parseUnary(): Expr {
    const t = this.peek();
    if (t.kind === 'punct' && t.text === '-') {
      this.pos++;
      this.enter(t);
      const operand = this.parseUnary();
      this.depth--;
      return { type: 'negate', operand };
    }
    return this.parsePrimary();
  }

  parsePrimary(): Expr {
    const t = this.next();
    switch (t.kind) {
      case 'string':
        return { type: 'string', value: t.text };
      case 'number':
        return { type: 'number', value: numberValue(t.raw), raw: t.raw };
      case 'literal':
        if (t.text === 'true' || t.text === 'false') return { type: 'boolean', value: t.text === 'true' };
        return t.text === 'null' ? { type: 'null' } : { type: 'undefined' };
      case 'dollar':
        return dollarReference(t.text, false);
      case 'name':
        return this.peekPunct('(') ? this.parseCall(t) : { type: 'property', name: t.text };
      case 'punct':
        if (t.text === '(') {
          this.enter(t);
          const inner = this.parseExpression();
          this.depth--;
          if (!this.peekPunct(')')) {
            throw new RouteSyntaxFault(`missing ')' to close the '(' at column ${columnOf(this.text, t.offset)}, found ${describeToken(this.peek())}`, this.peek().offset);
          }
          this.pos++;
          return inner;
        }
        if (t.text === '{') {
          const inner = this.next();
          if (inner.kind !== 'dollar') throw new RouteSyntaxFault(`expected a $property inside '{ }', found ${describeToken(inner)}`, inner.offset);
          this.expectPunct('}', `to close '{${inner.raw}'`);
          return dollarReference(inner.text, true);
        }
        if (t.text === ')') throw new RouteSyntaxFault("unmatched ')'", t.offset);
        break;
      case 'keyword':
        break;
      case 'eof':
        throw new RouteSyntaxFault('the condition ends where an expression was expected', t.offset);
    }
    throw new RouteSyntaxFault(`expected an expression, found ${describeToken(t)}`, t.offset);
  }

  parseCall(nameToken: Token): Expr {
    const upper = nameToken.text.toUpperCase();
    const open = this.expectPunct('(', 'after a function name');
    if (upper === 'TWIN_CHANGE_INCLUDES') {
      const arg = this.next();
      if (arg.kind !== 'name' && arg.kind !== 'dollar') throw new RouteSyntaxFault(`TWIN_CHANGE_INCLUDES takes one twin path such as properties.desired.x, found ${describeToken(arg)}`, arg.offset);
      this.expectPunct(')', 'to close TWIN_CHANGE_INCLUDES(');
      if (this.source.kind !== 'twinChangeNotifications') {
        throw new RouteSyntaxFault('TWIN_CHANGE_INCLUDES is only valid in a route FROM /twinChangeNotifications', nameToken.offset);
      }
      return { type: 'twinChangeIncludes', path: arg.raw };
    }
    if (cloudOnlyFunctions.has(upper)) {
      throw new RouteSyntaxFault(`${upper} is an IoT Hub cloud routing function that edgeHub does not implement`, nameToken.offset);
    }
    if (!Object.hasOwn(routeFunctions, upper)) {
      throw new RouteSyntaxFault(`unknown function '${nameToken.text}'; edgeHub knows ${Object.keys(routeFunctions).join(', ')}, TWIN_CHANGE_INCLUDES`, nameToken.offset);
    }
    const name = upper as FunctionName;
    const args: Expr[] = [];
    this.enter(open);
    if (!this.peekPunct(')')) {
      for (;;) {
        args.push(this.parseExpression());
        if (this.peekPunct(',')) {
          this.pos++;
          continue;
        }
        if (this.peekPunct(')')) break;
        throw new RouteSyntaxFault(`expected ',' or ')' in the arguments of ${name}, found ${describeToken(this.peek())}`, this.peek().offset);
      }
    }
    this.depth--;
    this.pos++;
    const [min, max] = routeFunctions[name];
    if (args.length < min || args.length > max) {
      const wanted = min === max ? `${min}` : max === Number.POSITIVE_INFINITY ? `at least ${min}` : `${min} or ${max}`;
      throw new RouteSyntaxFault(`${name} takes ${wanted} argument${wanted === '1' ? '' : 's'}, got ${args.length}`, nameToken.offset);
    }
    return { type: 'call', name, args };
  }
}

function dollarReference(name: string, escaped: boolean): Expr {
  const lower = name.toLowerCase();
  if (lower.startsWith('body.') && name.length > 5) return { type: 'body', path: name.slice(5), escaped };
  if (lower.startsWith('twin.') && name.length > 5) return { type: 'twin', path: name.slice(5), escaped };
  return { type: 'systemProperty', name, escaped };
}

function lineAndColumn(text: string, offset: number): { line: number; column: number; lineText: string } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const lineStart = before.lastIndexOf('\n') + 1;
  const lineEnd = text.indexOf('\n', offset);
  return { line, column: offset - lineStart + 1, lineText: text.slice(lineStart, lineEnd < 0 ? text.length : lineEnd) };
}

function columnOf(text: string, offset: number): number {
  return lineAndColumn(text, offset).column;
}

/** Parses one route. Never throws: any input gives a route or a positioned error. */
export function parseRoute(text: string): RouteParseResult {
  const parser = new RouteParser(text);
  try {
    return { ok: true, route: parser.parse() };
  } catch (err) {
    if (!(err instanceof RouteSyntaxFault)) throw err;
    const offset = Math.min(Math.max(err.offset, 0), text.length);
    const { line, column, lineText } = lineAndColumn(text, offset);
    const excerpt = `${lineText.replace(/\t/g, ' ')}\n${' '.repeat(column - 1)}^`;
    return { ok: false, error: { message: `${err.message} (line ${line}, column ${column})\n${excerpt}`, offset, line, column } };
  }
}

/** Module ids a route names, in source-then-sink order, without repeats. */
export function modulesReferencedByRoute(ast: RouteAst): string[] {
  const names: string[] = [];
  const s = ast.source;
  if (s.kind === 'module' || s.kind === 'moduleOutputs' || s.kind === 'moduleOutput') names.push(s.module);
  if (ast.sink.kind === 'moduleInput' && !names.includes(ast.sink.module)) names.push(ast.sink.module);
  return names;
}

export function routePath(routeName: string, pathPrefix = ''): string {
  return `${pathPrefix}/$edgeHub/properties.desired/routes/${jsonPointer(routeName)}`;
}

/**
 * Parses and type-checks every route of a manifest. Syntax faults (IEO_ROUTE_SYNTAX) and conditions
 * edgeHub would refuse to compile (IEO_ROUTE_TYPE) are errors; a route naming a module that the
 * deployment does not have is a warning (edgeHub accepts it; messages simply never flow).
 * `pathPrefix` is what precedes `/$edgeHub` in the document the manifest came from (e.g. `/modulesContent`).
 */
export function checkRoutes(manifest: DeploymentManifest, pathPrefix = ''): { errors: ManifestIssue[]; warnings: ManifestIssue[] } {
  const errors: ManifestIssue[] = [];
  const warnings: ManifestIssue[] = [];
  const known = new Set(Object.keys(manifest.agent.modules));
  if (manifest.agent.systemModules.edgeHub) known.add('edgeHub');
  for (const [name, route] of Object.entries(manifest.hub.routes)) {
    const path = routePath(name, pathPrefix);
    const parsed = parseRoute(route.route);
    if (!parsed.ok) {
      errors.push({ code: 'IEO_ROUTE_SYNTAX', path, message: `route '${name}': ${parsed.error.message}` });
      continue;
    }
    // edgeHub refuses to compile a condition with mismatched operand types; so does the built-in hub.
    const typed = parsed.route.condition === undefined ? undefined : conditionType(parsed.route.condition);
    if (typed !== undefined && !typed.ok) {
      errors.push({ code: 'IEO_ROUTE_TYPE', path, message: `route '${name}': ${typed.message}` });
      continue;
    }
    for (const module of modulesReferencedByRoute(parsed.route)) {
      if (!known.has(module)) {
        warnings.push({ code: 'IEO_W_UNKNOWN_ROUTE_MODULE', path, message: `route '${name}' names module '${module}', which is not in this deployment` });
      }
    }
  }
  return { errors, warnings };
}

export interface RouteSummary {
  name: string;
  /** The source path, e.g. /messages/modules/filter/outputs/output1; '(invalid)' when the route does not parse. */
  source: string;
  /** `$upstream` or `<module>/<input>`; '(invalid)' when the route does not parse. */
  sink: string;
  /** Whether the route has a WHERE condition. */
  filtered: boolean;
  priority: number;
  /** The route's own TTL, else the store-and-forward TTL, else undefined (edgeHub's default). */
  ttl: number | undefined;
}

export function sourceText(source: RouteSource): string {
  switch (source.kind) {
    case 'all':
      return '/*';
    case 'allMessages':
      return '/messages/*';
    case 'allModules':
      return '/messages/modules/*';
    case 'module':
      return `/messages/modules/${source.module}${source.wildcard ? '/*' : ''}`;
    case 'moduleOutputs':
      return `/messages/modules/${source.module}/outputs/*`;
    case 'moduleOutput':
      return `/messages/modules/${source.module}/outputs/${source.output}`;
    case 'twinChangeNotifications':
      return '/twinChangeNotifications';
  }
}

/** A short table of routes for status displays, highest priority first, then by name. */
export function summariseRoutes(manifest: DeploymentManifest): RouteSummary[] {
  const globalTtl = manifest.hub.storeAndForwardConfiguration.timeToLiveSecs;
  return Object.entries(manifest.hub.routes)
    .map(([name, route]): RouteSummary => {
      const parsed = parseRoute(route.route);
      const ttl = route.timeToLiveSecs ?? globalTtl;
      if (!parsed.ok) return { name, source: '(invalid)', sink: '(invalid)', filtered: false, priority: route.priority, ttl };
      const { source, sink, condition } = parsed.route;
      return {
        name,
        source: sourceText(source),
        sink: sink.kind === 'upstream' ? '$upstream' : `${sink.module}/${sink.input}`,
        filtered: condition !== undefined,
        priority: route.priority,
        ttl,
      };
    })
    .sort((a, b) => a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
