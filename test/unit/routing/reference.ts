// A slow, literal reading of src/routing/README.md: a tree-walking interpreter that re-derives
// every type and re-reads the message (decoding the body again) at every node. It shares no code
// with the compiler, so the property tests can hold the compiled closures to it.
import type { Expr } from '../../../src/manifest/index.ts';
import type { RoutedMessage, Value } from '../../../src/routing/index.ts';

type T = 'bool' | 'number' | 'string' | 'null' | 'undefined' | 'dynamic';

export class ReferenceTypeError extends Error {}

function fail(): never {
  throw new ReferenceTypeError('type');
}

function lookup(bag: Record<string, string>, name: string): string | undefined {
  if (Object.hasOwn(bag, name)) return bag[name];
  for (const key of Object.keys(bag)) if (key.toLowerCase() === name.toLowerCase()) return bag[key];
  return undefined;
}

function pathSegments(path: string): { name: string; index?: number }[] | undefined {
  const out: { name: string; index?: number }[] = [];
  for (const part of path.split('.')) {
    const m = /^([^()<>@,;:\\"/[\]?={}.\s]+)(?:\[(\d+)\])?$/.exec(part);
    if (!m) return undefined;
    out.push(m[2] === undefined ? { name: m[1] as string } : { name: m[1] as string, index: Number(m[2]) });
  }
  return out;
}

function body(msg: RoutedMessage): Record<string, unknown> | undefined {
  let ct = lookup(msg.systemProperties, 'contentType');
  let ce = lookup(msg.systemProperties, 'contentEncoding');
  if (msg.source.kind === 'twinChangeNotification' && ct === undefined) {
    ct = 'application/json';
    ce = ce ?? 'utf-8';
  }
  if (ct?.toLowerCase() !== 'application/json') return undefined;
  const enc = ce?.toLowerCase();
  if (enc !== 'utf-8' && enc !== 'utf-16') return undefined; // the generators never make utf-32
  try {
    const v: unknown = JSON.parse(msg.body.toString(enc === 'utf-8' ? 'utf8' : 'utf16le'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function walk(root: unknown, path: { name: string; index?: number }[]): { found: boolean; value: unknown } {
  let cur = root;
  for (const s of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, s.name)) return { found: false, value: undefined };
    cur = (cur as Record<string, unknown>)[s.name];
    if (s.index !== undefined) {
      if (!Array.isArray(cur) || s.index >= cur.length) return { found: false, value: undefined };
      cur = cur[s.index];
    }
  }
  return { found: true, value: cur };
}

function bodyQuery(msg: RoutedMessage, path: string): Value {
  const root = body(msg);
  if (root === undefined) return undefined;
  const { found, value } = walk(root, pathSegments(path) ?? fail());
  if (!found || value === null) return null;
  return typeof value === 'object' ? undefined : (value as Value);
}

export function typeOf(e: Expr): T {
  switch (e.type) {
    case 'string': return 'string';
    case 'number': return 'number';
    case 'boolean': return 'bool';
    case 'null': return 'null';
    case 'undefined': return 'undefined';
    case 'property': return 'string';
    case 'systemProperty': return /[[\]]/.test(e.name) ? 'undefined' : 'string';
    case 'twin': return 'string';
    case 'body': if (pathSegments(e.path) === undefined) fail(); return 'dynamic';
    case 'twinChangeIncludes':
      if (pathSegments(e.path) === undefined || !/^(properties\.reported\.|properties\.desired\.|tags\.)/i.test(e.path)) fail();
      return 'bool';
    case 'not': { const t = typeOf(e.operand); if (t !== 'bool' && t !== 'null' && t !== 'dynamic') fail(); return 'bool'; }
    case 'negate': if (typeOf(e.operand) !== 'number') fail(); return 'number';
    case 'binary': return binaryType(e.op, typeOf(e.left), typeOf(e.right));
    case 'call': return callType(e.name, e.args.map(typeOf));
  }
}

const plain = ['null', 'number', 'string', 'bool'];
const comparable = (l: T, r: T) => l === r || (l === 'dynamic' && plain.includes(r)) || (r === 'dynamic' && plain.includes(l));

function binaryType(op: string, l: T, r: T): T {
  if (op === 'AND' || op === 'OR') {
    const ok = ['null', 'bool', 'undefined', 'dynamic'];
    if (!ok.includes(l) || (!ok.includes(r) && l !== 'dynamic')) fail();
    if (l === 'dynamic' || r === 'dynamic') {
      if (op === 'AND' && (l === 'null' || r === 'null')) fail();
      return 'bool';
    }
    if ((l === 'null' && r === 'undefined') || (l === 'undefined' && r === 'null')) fail();
    if (op === 'AND' && (l === 'null' || r === 'null')) return 'null';
    return l === 'null' && r === 'null' ? 'null' : 'bool';
  }
  if (['=', '!=', '<>', '<', '>', '<=', '>='].includes(op)) { if (!comparable(l, r)) fail(); return 'bool'; }
  if (op === '??') { if (!comparable(l, r)) fail(); return l === r ? l : 'dynamic'; }
  if (op === '||') { if (![l, r].every((t) => t === 'string' || t === 'dynamic')) fail(); return 'string'; }
  if (![l, r].every((t) => t === 'number' || t === 'dynamic')) fail();
  if (op === '%' && (l === 'dynamic' || r === 'dynamic')) fail();
  return l === 'dynamic' || r === 'dynamic' ? 'dynamic' : 'number';
}

function callType(name: string, ts: T[]): T {
  const num = (t: T | undefined) => t === 'number' || t === 'dynamic';
  const str = (t: T | undefined) => t === 'string' || t === 'dynamic';
  switch (name) {
    case 'ABS': case 'EXP': case 'SQUARE': case 'CEILING': case 'FLOOR': case 'SIGN': case 'SQRT':
      if (!num(ts[0])) fail(); return 'number';
    case 'POWER': if (!ts.every(num)) fail(); return 'number';
    case 'AS_NUMBER': if (!num(ts[0]) && !str(ts[0])) fail(); return 'number';
    case 'IS_BOOL': case 'IS_DEFINED': case 'IS_NULL': case 'IS_NUMBER': case 'IS_STRING': return 'bool';
    case 'CONCAT': case 'LOWER': case 'UPPER': if (!ts.every(str)) fail(); return 'string';
    case 'LENGTH': case 'INDEX_OF': if (!ts.every(str)) fail(); return 'number';
    case 'STARTS_WITH': case 'ENDS_WITH': case 'CONTAINS': if (!ts.every(str)) fail(); return 'bool';
    case 'SUBSTRING': if (!str(ts[0]) || !ts.slice(1).every(num)) fail(); return 'string';
    default: return fail();
  }
}

const kind = (v: Value) => (v === null ? 'null' : typeof v);
const isNum = (v: Value): v is number => typeof v === 'number';
const isStr = (v: Value): v is string => typeof v === 'string';
const nan = (x: number): Value => (Number.isNaN(x) ? undefined : x);

/** Evaluates a condition that typeOf accepted. */
export function interpret(e: Expr, msg: RoutedMessage): Value {
  switch (e.type) {
    case 'string': case 'number': case 'boolean': return e.value;
    case 'null': return null;
    case 'undefined': return undefined;
    case 'property': return lookup(msg.properties, e.name);
    case 'systemProperty':
    case 'twin': {
      const name = e.type === 'twin' ? `twin.${e.path}` : e.name;
      if (/[[\]]/.test(name)) return undefined;
      if (!e.escaped) { const app = lookup(msg.properties, `$${name}`); if (app !== undefined) return app; }
      return lookup(msg.systemProperties, name);
    }
    case 'body': {
      if (!e.escaped && !e.path.includes('[')) { const app = lookup(msg.properties, `$body.${e.path}`); if (app !== undefined) return app; }
      return bodyQuery(msg, e.path);
    }
    case 'twinChangeIncludes': {
      const root = body(msg);
      return root === undefined ? undefined : walk(root, pathSegments(e.path) ?? fail()).found;
    }
    case 'not': {
      if (typeOf(e.operand) === 'null') return true;
      const v = interpret(e.operand, msg);
      return typeof v === 'boolean' ? !v : undefined;
    }
    case 'negate': { const v = interpret(e.operand, msg); return isNum(v) ? -v : undefined; }
    case 'binary': return binary(e.op, e.left, e.right, msg);
    case 'call': return call(e.name, e.args, msg);
  }
}

function binary(op: string, le: Expr, re: Expr, msg: RoutedMessage): Value {
  const lt = typeOf(le);
  const rt = typeOf(re);
  const l = interpret(le, msg);
  const r = interpret(re, msg);
  switch (op) {
    case 'AND': case 'OR': {
      if (lt === 'dynamic' || rt === 'dynamic') {
        if (typeof l !== 'boolean' || typeof r !== 'boolean') return undefined;
        return op === 'AND' ? l && r : l || r;
      }
      if (op === 'AND' && (lt === 'null' || rt === 'null')) return null;
      if (lt === 'null' && rt === 'null') return null;
      if (lt === 'null') return r;
      if (rt === 'null') return l;
      if (op === 'AND') return l === false || r === false ? false : l === true && r === true ? true : undefined;
      return l === true || r === true ? true : l === false && r === false ? false : undefined;
    }
    case '??': return lt === 'undefined' ? r : l !== undefined ? l : r;
    case '||': return isStr(l) && isStr(r) ? l + r : undefined;
    case '+': return isNum(l) && isNum(r) ? nan(l + r) : undefined;
    case '-': return isNum(l) && isNum(r) ? nan(l - r) : undefined;
    case '*': return isNum(l) && isNum(r) ? nan(l * r) : undefined;
    case '/': return isNum(l) && isNum(r) ? nan(l / r) : undefined;
    case '%': return isNum(l) && isNum(r) ? nan(l % r) : undefined;
    default: {
      if (l === undefined || r === undefined) return undefined;
      if (kind(l) !== kind(r)) return op === '=' ? false : op === '!=' || op === '<>' ? true : undefined;
      const eq = l === r;
      const lt2 = l !== null && r !== null && l < r;
      const gt = l !== null && r !== null && l > r;
      return ({ '=': eq, '!=': !eq, '<>': !eq, '<': lt2, '>': gt, '<=': lt2 || eq, '>=': gt || eq } as Record<string, boolean>)[op];
    }
  }
}

function asNumber(v: Value): Value {
  if (isNum(v)) return v;
  if (!isStr(v)) return undefined;
  const t = v.trim();
  if (t === 'Infinity' || t === '+Infinity' || t === '∞') return Infinity;
  if (t === '-Infinity' || t === '-∞') return -Infinity;
  const negParen = /^\((.*)\)$/.exec(t);
  const inner = (negParen ? negParen[1] as string : t).trim();
  if (negParen && /^[+-]/.test(inner)) return undefined;
  const m = /^([+-])?\s*(\d[\d,]*)?(\.\d*)?([eE][+-]?\d+)?$/.exec(inner);
  if (!m || (m[2] === undefined && (m[3] ?? '').length <= 1)) return undefined;
  const x = Number(`${(m[2] ?? '0').replace(/,/g, '')}${m[3] === '.' ? '' : m[3] ?? ''}${m[4] ?? ''}`);
  return negParen || m[1] === '-' ? -x : x;
}

function call(name: string, args: Expr[], msg: RoutedMessage): Value {
  const t0 = typeOf(args[0] as Expr);
  const v = args.map((a) => interpret(a, msg));
  const [a, b, c] = v;
  const math = (f: (x: number) => number) => (isNum(a) ? nan(f(a)) : undefined);
  switch (name) {
    case 'ABS': return math(Math.abs);
    case 'EXP': return math(Math.exp);
    case 'SQUARE': return math((x) => x * x);
    case 'CEILING': return math(Math.ceil);
    case 'FLOOR': return math(Math.floor);
    case 'SIGN': return math((x) => (x > 0 ? 1 : x < 0 ? -1 : 0));
    case 'SQRT': return math(Math.sqrt);
    case 'POWER': return isNum(a) && isNum(b) ? nan(a ** b) : undefined;
    case 'AS_NUMBER': return asNumber(a);
    case 'IS_BOOL': return t0 === 'bool' || t0 === 'dynamic' ? (a === undefined ? undefined : typeof a === 'boolean') : false;
    case 'IS_DEFINED': return t0 === 'null' ? true : a !== undefined;
    case 'IS_NULL': return t0 === 'null' ? true : t0 === 'dynamic' ? (a === undefined ? undefined : a === null) : false;
    case 'IS_NUMBER': return (t0 === 'number' || t0 === 'dynamic') && isNum(a) && Number.isFinite(a);
    case 'IS_STRING': return (t0 === 'string' || t0 === 'dynamic') && isStr(a);
    case 'CONCAT': return v.every(isStr) ? v.join('') : undefined;
    case 'LENGTH': return isStr(a) ? a.length : undefined;
    case 'LOWER': return isStr(a) ? a.toLowerCase() : undefined;
    case 'UPPER': return isStr(a) ? a.toUpperCase() : undefined;
    case 'INDEX_OF': return isStr(a) && isStr(b) ? a.indexOf(b) : undefined;
    case 'STARTS_WITH': return isStr(a) && isStr(b) ? a.startsWith(b) : undefined;
    case 'ENDS_WITH': return isStr(a) && isStr(b) ? a.endsWith(b) : undefined;
    case 'CONTAINS': return isStr(a) && isStr(b) ? a.includes(b) : undefined;
    case 'SUBSTRING': {
      if (!isStr(a) || !isNum(b)) return undefined;
      if (args.length === 2) return b >= 0 && b <= a.length ? a.slice(Math.trunc(b)) : undefined;
      if (!isNum(c) || b < 0 || b >= a.length || c < 0 || c > a.length - b) return undefined;
      return a.slice(Math.trunc(b), Math.trunc(b) + Math.trunc(c));
    }
    default: return fail();
  }
}
