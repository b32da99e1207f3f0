// Tokens of the route condition language, lexed the way edgeHub's grammar does where it matters
// to users: keywords FROM/WHERE/INTO/SELECT/AND/OR/NOT are case-insensitive, but the literals
// true/false/null/undefined are lower case only (`TRUE` is an application property named TRUE),
// and a name may contain '-' and '.' (so `a-b` is the property "a-b"; write `a - b` to subtract).

export type TokenKind =
  | 'keyword' // FROM WHERE INTO SELECT AND OR NOT (text upper-cased)
  | 'literal' // true false null undefined
  | 'name' // a bare name: property, function, BrokeredEndpoint
  | 'dollar' // $name, text without the '$'
  | 'string' // text is the unescaped value
  | 'number'
  | 'punct'
  | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  /** The source text of the token, exactly as written. */
  raw: string;
  offset: number;
}

/** Thrown inside the route parser only; parseRoute turns it into a positioned error. */
export class RouteSyntaxFault extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

const keywords = new Set(['FROM', 'WHERE', 'INTO', 'SELECT', 'AND', 'OR', 'NOT']);
const literals = new Set(['true', 'false', 'null', 'undefined']);
const nameStart = /[A-Za-z_]/;
const nameChar = /[A-Za-z0-9_.-]/;
// `[` `]` let a body query index arrays: $body.readings[0].value.
const dollarChar = /[A-Za-z0-9_.\-[\]]/;
const punctuation = ['<>', '<=', '>=', '!=', '||', '??', '(', ')', ',', '{', '}', '*', '/', '%', '+', '-', '=', '<', '>'];

export function isKeyword(word: string): boolean {
  return keywords.has(word.toUpperCase());
}

export function isLiteralWord(word: string): boolean {
  return literals.has(word);
}

/** Whether `name` lexes back as one bare-name token (used by the printer and the property tests). */
export function isBareName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name) && !isKeyword(name) && !isLiteralWord(name);
}

export function describeToken(token: Token): string {
  return token.kind === 'eof' ? 'the end of the route' : `'${token.raw}'`;
}

export function tokenize(text: string, start: number): Token[] {
  const tokens: Token[] = [];
  let i = start;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new RouteSyntaxFault('unterminated comment', i);
      i = end + 2;
      continue;
    }
    if (c === '"' || c === "'") {
      i = lexString(text, i, tokens);
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      i = lexNumber(text, i, tokens);
      continue;
    }
    if (c === '$') {
      let j = i + 1;
      while (j < text.length && dollarChar.test(text[j] as string)) j++;
      if (j === i + 1) throw new RouteSyntaxFault("'$' must be followed by a property name, e.g. $contentType or $body.temperature", i);
      const raw = text.slice(i, j);
      tokens.push({ kind: 'dollar', text: raw.slice(1), raw, offset: i });
      i = j;
      continue;
    }
    if (nameStart.test(c)) {
      let j = i + 1;
      while (j < text.length && nameChar.test(text[j] as string)) j++;
      const raw = text.slice(i, j);
      if (isKeyword(raw)) tokens.push({ kind: 'keyword', text: raw.toUpperCase(), raw, offset: i });
      else if (isLiteralWord(raw)) tokens.push({ kind: 'literal', text: raw, raw, offset: i });
      else tokens.push({ kind: 'name', text: raw, raw, offset: i });
      i = j;
      continue;
    }
    const p = punctuation.find((op) => text.startsWith(op, i));
    if (p === undefined) throw new RouteSyntaxFault(`unexpected character '${c}'`, i);
    tokens.push({ kind: 'punct', text: p, raw: p, offset: i });
    i += p.length;
  }
  tokens.push({ kind: 'eof', text: '', raw: '', offset: text.length });
  return tokens;
}

function lexString(text: string, start: number, tokens: Token[]): number {
  const quote = text[start];
  let value = '';
  let i = start + 1;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === quote) {
      tokens.push({ kind: 'string', text: value, raw: text.slice(start, i + 1), offset: start });
      return i + 1;
    }
    if (c === '\\') {
      const next = text[i + 1];
      if (next === '"' || next === "'" || next === '\\') {
        value += next;
        i += 2;
        continue;
      }
      if (next === 'u' && /^[0-9A-Fa-f]{4}$/.test(text.slice(i + 2, i + 6))) {
        value += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
        i += 6;
        continue;
      }
      throw new RouteSyntaxFault("invalid escape in string: only \\\", \\', \\\\ and \\uXXXX are allowed", i);
    }
    value += c;
    i++;
  }
  throw new RouteSyntaxFault('unterminated string', start);
}

function lexNumber(text: string, start: number, tokens: Token[]): number {
  const hex = /^0[xX][0-9A-Fa-f]+/.exec(text.slice(start));
  const match = hex ?? /^(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(text.slice(start));
  if (!match) throw new RouteSyntaxFault('malformed number', start);
  const raw = match[0];
  const end = start + raw.length;
  if (nameChar.test(text[end] ?? ' ') && !/[.-]/.test(text[end] ?? ' ')) {
    throw new RouteSyntaxFault(`malformed number '${raw}${text[end]}'`, start);
  }
  tokens.push({ kind: 'number', text: raw, raw, offset: start });
  return end;
}

export function numberValue(raw: string): number {
  return /^0[xX]/.test(raw) ? parseInt(raw.slice(2), 16) : Number(raw);
}
