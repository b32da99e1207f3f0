// Runs IoT Hub twin queries over the documents a QuerySource lists: WHERE filtering, projection,
// aggregates (COUNT, SUM, AVG, MIN, MAX) with GROUP BY, TOP, and paging by continuation token.
import { HubError } from '../errors.ts';
import type { Json, JsonObject } from '../twin.ts';
import type { Collection, Expr, QueryAst, SelectItem } from './ast.ts';
import { checkCalls, evaluate } from './evaluate.ts';
import type { Value } from './evaluate.ts';
import { invalid, parseCondition, parseQuery } from './parser.ts';

/** A device or module twin as the REST API returns it (deviceId, moduleId, tags, properties, …). */
export type TwinDocument = JsonObject;

/** What a query reads: each collection's documents, built when the query runs. */
export interface QuerySource {
  deviceTwins(): Iterable<TwinDocument>;
  moduleTwins(): Iterable<TwinDocument>;
  /** devices.jobs; without it, such a query is refused. */
  jobs?(): Iterable<JsonObject>;
}

export interface QueryPaging {
  /** x-ms-max-item-count. Default 100. */
  maxItemCount?: number;
  /** x-ms-continuation from the previous page. */
  continuation?: string;
}

export interface QueryPage {
  items: Json[];
  /** Absent on the last page. */
  continuation: string | undefined;
}

const defaultPageSize = 100;
const maxPageSize = 10_000;

/** Compiles a WHERE condition once; the returned test is true only when the condition is true. */
export function compileCondition(text: string): (twin: TwinDocument) => boolean {
  if (typeof text !== 'string' || text.trim() === '') throw new HubError('ArgumentInvalid', 'The condition is empty.');
  const expr = parseCondition(text);
  checkCalls(expr, (message) => invalid('condition', text, message));
  return (twin) => evaluate(expr, twin) === true;
}

export interface CompiledQuery {
  readonly from: Collection;
  /** Every result, in order, before paging. */
  results(source: QuerySource): Json[];
}

/** Compiles a whole query once (configurations evaluate their metrics queries repeatedly). */
export function compileQuery(text: string): CompiledQuery {
  if (typeof text !== 'string' || text.trim() === '') throw new HubError('ArgumentInvalid', 'The query is empty.');
  const ast = parseQuery(text);
  for (const expr of expressionsOf(ast)) checkCalls(expr, (message) => invalid('query', text, message));
  checkGrouping(ast, text);
  return { from: ast.from, results: (source) => execute(ast, source) };
}

/** Runs a query and returns one page of its results. */
export function runQuery(text: string, source: QuerySource, paging: QueryPaging = {}): QueryPage {
  const all = compileQuery(text).results(source);
  const size = pageSize(paging.maxItemCount);
  const offset = paging.continuation ? decodeContinuation(paging.continuation) : 0;
  const items = all.slice(offset, offset + size);
  const next = offset + size;
  return { items, continuation: next < all.length ? encodeContinuation(next) : undefined };
}

function pageSize(requested: number | undefined): number {
  if (requested === undefined) return defaultPageSize;
  if (!Number.isInteger(requested) || requested < 1 || requested > maxPageSize) {
    throw new HubError('ArgumentInvalid', `x-ms-max-item-count must be an integer from 1 to ${maxPageSize}`);
  }
  return requested;
}

function encodeContinuation(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64');
}

function decodeContinuation(token: string): number {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
    const offset = (parsed as { offset?: unknown }).offset;
    if (typeof offset === 'number' && Number.isInteger(offset) && offset >= 0) return offset;
  } catch {
    // reported below
  }
  throw new HubError('ArgumentInvalid', 'x-ms-continuation is not a continuation token this hub issued');
}

function expressionsOf(ast: QueryAst): Expr[] {
  const selected = (ast.select ?? []).flatMap((item) => (item.kind === 'value' ? [item.expr] : item.arg ? [item.arg] : []));
  return [...selected, ...(ast.where ? [ast.where] : []), ...ast.groupBy];
}

function isAggregating(ast: QueryAst): boolean {
  return ast.groupBy.length > 0 || (ast.select ?? []).some((item) => item.kind === 'aggregate');
}

function checkGrouping(ast: QueryAst, text: string): void {
  if (!isAggregating(ast)) return;
  if (ast.select === undefined) throw invalid('query', text, 'SELECT * cannot be grouped');
  const grouped = new Set(ast.groupBy.map((e) => JSON.stringify(e)));
  for (const item of ast.select) {
    if (item.kind === 'aggregate') {
      if (item.name !== 'COUNT' && item.arg === undefined) throw invalid('query', text, `${item.name} needs an argument`);
      continue;
    }
    if (!grouped.has(JSON.stringify(item.expr))) {
      throw invalid('query', text, 'a selected value must be an aggregate or one of the GROUP BY expressions');
    }
  }
}

function documents(from: Collection, source: QuerySource): Iterable<JsonObject> {
  if (from === 'devices') return source.deviceTwins();
  if (from === 'devices.modules') return source.moduleTwins();
  if (!source.jobs) throw new HubError('ArgumentInvalid', 'Queries FROM devices.jobs are not served by this hub.');
  return source.jobs();
}

function execute(ast: QueryAst, source: QuerySource): Json[] {
  const matches: JsonObject[] = [];
  for (const doc of documents(ast.from, source)) {
    if (ast.where === undefined || evaluate(ast.where, doc) === true) matches.push(doc);
  }
  const rows = isAggregating(ast) ? aggregateRows(ast, matches) : matches.map((doc) => project(ast.select, doc));
  return ast.top === undefined ? rows : rows.slice(0, ast.top);
}

function columnName(item: SelectItem, index: number): string {
  if (item.alias !== undefined) return item.alias;
  if (item.kind === 'value' && item.expr.kind === 'path') return item.expr.segments.at(-1) ?? `$${index + 1}`;
  return `$${index + 1}`;
}

function project(select: SelectItem[] | undefined, doc: JsonObject): Json {
  if (select === undefined) return doc;
  const row: JsonObject = {};
  select.forEach((item, i) => {
    if (item.kind !== 'value') return;
    const value = evaluate(item.expr, doc);
    if (value !== undefined) row[columnName(item, i)] = value;
  });
  return row;
}

function aggregateRows(ast: QueryAst, matches: JsonObject[]): Json[] {
  const groups = new Map<string, JsonObject[]>();
  for (const doc of matches) {
    const key = JSON.stringify(ast.groupBy.map((e) => evaluate(e, doc) ?? '$undefined'));
    const group = groups.get(key);
    if (group) group.push(doc);
    else groups.set(key, [doc]);
  }
  if (ast.groupBy.length === 0 && groups.size === 0) groups.set('[]', []);
  return [...groups.values()].map((group) => groupRow(ast.select ?? [], group));
}

function groupRow(select: SelectItem[], group: JsonObject[]): JsonObject {
  const row: JsonObject = {};
  select.forEach((item, i) => {
    const value = item.kind === 'aggregate' ? aggregate(item.name, item.arg, group) : group[0] === undefined ? undefined : evaluate(item.expr, group[0]);
    if (value !== undefined) row[columnName(item, i)] = value;
  });
  return row;
}

function aggregate(name: string, arg: Expr | undefined, group: JsonObject[]): Value {
  if (name === 'COUNT') return arg === undefined ? group.length : group.filter((doc) => evaluate(arg, doc) !== undefined).length;
  const numbers = group.map((doc) => (arg ? evaluate(arg, doc) : undefined)).filter((v): v is number => typeof v === 'number');
  if (numbers.length === 0) return name === 'SUM' ? 0 : undefined;
  if (name === 'SUM') return numbers.reduce((a, b) => a + b, 0);
  if (name === 'AVG') return numbers.reduce((a, b) => a + b, 0) / numbers.length;
  return name === 'MIN' ? Math.min(...numbers) : Math.max(...numbers);
}
