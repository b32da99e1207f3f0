// The IoT Hub twin query grammar, parsed with chevrotain (an LL(k) parser library: the grammar
// below is the whole definition, and its error messages name the expected tokens).
// Keywords are case-insensitive; a keyword may still name a property after a dot (`tags.from`);
// `[[any text]]` names a property whose key is not an identifier (`configurations.[[my-id]]`).
import { createToken, EmbeddedActionsParser, EOF, Lexer } from 'chevrotain';
import type { IToken, TokenType } from 'chevrotain';
import { HubError } from '../errors.ts';
import type { Json } from '../twin.ts';
import type { AggregateName, BinaryOperator, Collection, Expr, QueryAst, SelectItem } from './ast.ts';

const Name = createToken({ name: 'Name', pattern: Lexer.NA });
const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_$][A-Za-z0-9_$]*/, categories: [Name] });

function keyword(word: string): TokenType {
  return createToken({ name: word, pattern: new RegExp(word, 'i'), longer_alt: Identifier, categories: [Name] });
}

const Select = keyword('SELECT');
const From = keyword('FROM');
const Where = keyword('WHERE');
const Top = keyword('TOP');
const As = keyword('AS');
const Group = keyword('GROUP');
const By = keyword('BY');
const And = keyword('AND');
const Or = keyword('OR');
const Not = keyword('NOT');
const Nin = keyword('NIN');
const In = keyword('IN');
const True = keyword('TRUE');
const False = keyword('FALSE');
const Null = keyword('NULL');

const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /\s+/, group: Lexer.SKIPPED });
const BracketName = createToken({ name: 'BracketName', pattern: /\[\[(?:[^\]]|\](?!\]))*\]\]/ });
const StringLiteral = createToken({ name: 'StringLiteral', pattern: /'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/ });
const NumberLiteral = createToken({ name: 'NumberLiteral', pattern: /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/ });
const LParen = createToken({ name: 'LParen', pattern: /\(/ });
const RParen = createToken({ name: 'RParen', pattern: /\)/ });
const LBracket = createToken({ name: 'LBracket', pattern: /\[/ });
const RBracket = createToken({ name: 'RBracket', pattern: /\]/ });
const Comma = createToken({ name: 'Comma', pattern: /,/ });
const Dot = createToken({ name: 'Dot', pattern: /\./ });
const Comparison = createToken({ name: 'Comparison', pattern: /<>|!=|<=|>=|=|<|>/ });
const Additive = createToken({ name: 'Additive', pattern: /[+-]/ });
const Star = createToken({ name: 'Star', pattern: /\*/ });
const Multiplicative = createToken({ name: 'Multiplicative', pattern: /[/%]/ });

const keywordTokens = [Select, From, Where, Top, As, Group, By, And, Or, Not, Nin, In, True, False, Null];
const allTokens = [
  WhiteSpace, BracketName, StringLiteral, NumberLiteral, ...keywordTokens, Identifier, Name,
  LParen, RParen, LBracket, RBracket, Comma, Dot, Comparison, Additive, Star, Multiplicative,
];

const queryLexer = new Lexer(allTokens, { ensureOptimizations: false, positionTracking: 'onlyOffset' });

const aggregates = new Set<string>(['COUNT', 'SUM', 'AVG', 'MIN', 'MAX']);

function unquote(image: string): string {
  return image.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c);
}

function segmentName(token: IToken): string {
  return token.tokenType === BracketName ? token.image.slice(2, -2) : token.image;
}

class QueryParser extends EmbeddedActionsParser {
  constructor() {
    super(allTokens, { maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  query = this.RULE('query', (): QueryAst => {
    this.CONSUME(Select);
    let top: number | undefined;
    this.OPTION(() => {
      this.CONSUME(Top);
      const n = this.CONSUME(NumberLiteral);
      top = this.ACTION(() => Number(n.image));
    });
    const select = this.SUBRULE(this.selectList);
    this.CONSUME(From);
    const from = this.SUBRULE(this.collection);
    let where: Expr | undefined;
    this.OPTION2(() => {
      this.CONSUME(Where);
      where = this.SUBRULE(this.condition);
    });
    const groupBy: Expr[] = [];
    this.OPTION3(() => {
      this.CONSUME(Group);
      this.CONSUME(By);
      this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => groupBy.push(this.SUBRULE(this.path)) });
    });
    return { select, top, from, where, groupBy };
  });

  selectList = this.RULE('selectList', (): SelectItem[] | undefined => {
    return this.OR([
      { ALT: () => { this.CONSUME(Star); return undefined; } },
      {
        ALT: () => {
          const items: SelectItem[] = [];
          this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => items.push(this.SUBRULE(this.selectItem)) });
          return items;
        },
      },
    ]);
  });

  selectItem = this.RULE('selectItem', (): SelectItem => {
    const expr = this.SUBRULE(this.additive);
    let alias: string | undefined;
    this.OPTION(() => {
      this.CONSUME(As);
      alias = segmentName(this.OR([{ ALT: () => this.CONSUME(Name) }, { ALT: () => this.CONSUME(BracketName) }]));
    });
    return this.ACTION(() => {
      if (expr.kind === 'call' && aggregates.has(expr.name)) {
        return { kind: 'aggregate', name: expr.name as AggregateName, arg: expr.args[0], alias };
      }
      return { kind: 'value', expr, alias };
    });
  });

  collection = this.RULE('collection', (): Collection => {
    const path = this.SUBRULE(this.path);
    return this.ACTION(() => {
      const name = path.kind === 'path' ? path.segments.join('.').toLowerCase() : '';
      if (name === 'devices' || name === 'devices.modules' || name === 'devices.jobs') return name;
      throw new QueryFault(`FROM names devices, devices.modules or devices.jobs, not ${path.kind === 'path' ? path.segments.join('.') : '?'}`, this.LA(0).startOffset);
    });
  });

  condition = this.RULE('condition', (): Expr => {
    let left = this.SUBRULE(this.conjunction);
    this.MANY(() => {
      this.CONSUME(Or);
      const right = this.SUBRULE2(this.conjunction);
      left = { kind: 'binary', op: 'OR', left, right };
    });
    return left;
  });

  conjunction = this.RULE('conjunction', (): Expr => {
    let left = this.SUBRULE(this.negation);
    this.MANY(() => {
      this.CONSUME(And);
      const right = this.SUBRULE2(this.negation);
      left = { kind: 'binary', op: 'AND', left, right };
    });
    return left;
  });

  negation = this.RULE('negation', (): Expr => {
    return this.OR([
      {
        ALT: () => {
          this.CONSUME(Not);
          return { kind: 'not', operand: this.SUBRULE(this.negation) };
        },
      },
      { ALT: () => this.SUBRULE(this.comparison) },
    ]);
  });

  comparison = this.RULE('comparison', (): Expr => {
    const left = this.SUBRULE(this.additive);
    let result: Expr = left;
    this.OPTION(() => {
      this.OR([
        {
          ALT: () => {
            const op = this.CONSUME(Comparison).image as BinaryOperator;
            result = { kind: 'binary', op, left, right: this.SUBRULE2(this.additive) };
          },
        },
        {
          ALT: () => {
            const negated = this.OR2([{ ALT: () => { this.CONSUME(In); return false; } }, { ALT: () => { this.CONSUME(Nin); return true; } }]);
            result = { kind: 'in', negated, value: left, list: this.SUBRULE(this.arrayLiteral) };
          },
        },
      ]);
    });
    return result;
  });

  additive = this.RULE('additive', (): Expr => {
    let left = this.SUBRULE(this.multiplicative);
    this.MANY(() => {
      const op = this.CONSUME(Additive).image as BinaryOperator;
      const right = this.SUBRULE2(this.multiplicative);
      left = { kind: 'binary', op, left, right };
    });
    return left;
  });

  multiplicative = this.RULE('multiplicative', (): Expr => {
    let left = this.SUBRULE(this.unary);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(Star) }, { ALT: () => this.CONSUME(Multiplicative) }]).image as BinaryOperator;
      const right = this.SUBRULE2(this.unary);
      left = { kind: 'binary', op, left, right };
    });
    return left;
  });

  unary = this.RULE('unary', (): Expr => {
    return this.OR([
      {
        ALT: () => {
          const sign = this.CONSUME(Additive).image;
          const operand = this.SUBRULE(this.unary);
          return sign === '-' ? { kind: 'negate', operand } : operand;
        },
      },
      { ALT: () => this.SUBRULE(this.primary) },
    ]);
  });

  primary = this.RULE('primary', (): Expr => {
    return this.OR([
      { ALT: () => ({ kind: 'literal', value: unquoteToken(this.CONSUME(StringLiteral)) }) },
      { ALT: () => ({ kind: 'literal', value: numberToken(this.CONSUME(NumberLiteral)) }) },
      { ALT: () => { this.CONSUME(True); return { kind: 'literal', value: true }; } },
      { ALT: () => { this.CONSUME(False); return { kind: 'literal', value: false }; } },
      { ALT: () => { this.CONSUME(Null); return { kind: 'literal', value: null }; } },
      { ALT: () => this.SUBRULE(this.arrayLiteral) },
      { GATE: () => this.LA(2).tokenType === LParen, ALT: () => this.SUBRULE(this.call) },
      { ALT: () => this.SUBRULE(this.path) },
      {
        ALT: () => {
          this.CONSUME(LParen);
          const inner = this.SUBRULE(this.condition);
          this.CONSUME(RParen);
          return inner;
        },
      },
    ]);
  });

  call = this.RULE('call', (): Expr => {
    const name = this.CONSUME(Identifier).image.toUpperCase();
    this.CONSUME(LParen);
    const args: Expr[] = [];
    this.MANY_SEP({ SEP: Comma, DEF: () => args.push(this.SUBRULE(this.condition)) });
    this.CONSUME(RParen);
    return { kind: 'call', name, args };
  });

  arrayLiteral = this.RULE('arrayLiteral', (): Expr => {
    this.CONSUME(LBracket);
    const items: Expr[] = [];
    this.MANY_SEP({ SEP: Comma, DEF: () => items.push(this.SUBRULE(this.additive)) });
    this.CONSUME(RBracket);
    return { kind: 'array', items };
  });

  path = this.RULE('path', (): Expr => {
    const segments: string[] = [];
    const first = this.OR([{ ALT: () => this.CONSUME(Identifier) }, { ALT: () => this.CONSUME(BracketName) }]);
    segments.push(segmentName(first));
    this.MANY(() => {
      this.CONSUME(Dot);
      const next = this.OR2([{ ALT: () => this.CONSUME(Name) }, { ALT: () => this.CONSUME2(BracketName) }]);
      segments.push(segmentName(next));
    });
    return { kind: 'path', segments };
  });
}

function unquoteToken(token: IToken): string {
  return unquote(token.image);
}

function numberToken(token: IToken): number {
  return Number(token.image);
}

/** A syntax fault with the offset it was found at; turned into a HubError by the entry points. */
class QueryFault extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

// One parser instance serves every parse (chevrotain's recommended use: analysis runs once).
const parser = new QueryParser();

/** IoT Hub answers a query it cannot parse with 400; the message names the text and the position (1-based). */
export function invalid(kind: string, text: string, message: string, offset?: number): HubError {
  return new HubError('ArgumentInvalid', `Invalid ${kind} "${text}": ${message}${offset === undefined ? '' : ` at position ${offset + 1}`}`);
}

function parseWith<T>(text: string, kind: string, rule: () => T): T {
  const lexed = queryLexer.tokenize(text);
  const lexError = lexed.errors[0];
  if (lexError) throw invalid(kind, text, `unexpected character '${text[lexError.offset] ?? ''}'`, lexError.offset);
  parser.input = lexed.tokens;
  let result: T;
  try {
    result = rule();
  } catch (error) {
    if (error instanceof QueryFault) throw invalid(kind, text, error.message, error.offset);
    throw error;
  }
  const parseError = parser.errors[0];
  if (parseError) {
    const atEnd = parseError.token.tokenType === EOF || !Number.isFinite(parseError.token.startOffset);
    const offset = atEnd ? text.length : parseError.token.startOffset;
    throw invalid(kind, text, atEnd ? `the ${kind} ends early` : `unexpected '${parseError.token.image}'`, offset);
  }
  return result;
}

/** Parses a whole query; throws HubError ArgumentInvalid (400) with the position of a syntax fault. */
export function parseQuery(text: string): QueryAst {
  return parseWith(text, 'query', () => parser.query());
}

/** Parses a WHERE condition alone (a configuration's targetCondition, a job's queryCondition). */
export function parseCondition(text: string): Expr {
  return parseWith(text, 'condition', () => parser.condition());
}

export type { Json };
