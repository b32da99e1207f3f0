// Run-time values of route conditions and the operations on them. A value is a JS primitive:
// boolean, number, string, null, or undefined for IoT Hub's "undefined" (a missing property, a
// failed conversion, a comparison of mismatched values). NaN never escapes: every numeric result
// passes through num(), which turns it into undefined, as edgeHub treats NaN as undefined.

export type Value = boolean | number | string | null | undefined;

export function num(x: number): number | undefined {
  return Number.isNaN(x) ? undefined : x;
}

/** Kleene AND: false wins over undefined; non-boolean operands count as undefined. */
export function and(a: Value, b: Value): boolean | undefined {
  if (a === false || b === false) return false;
  return a === true && b === true ? true : undefined;
}

/** Kleene OR: true wins over undefined; non-boolean operands count as undefined. */
export function or(a: Value, b: Value): boolean | undefined {
  if (a === true || b === true) return true;
  return a === false && b === false ? false : undefined;
}

/** AND/OR on values read from a $body: defined only when both sides are booleans. */
export function dynamicAnd(a: Value, b: Value): boolean | undefined {
  return typeof a === 'boolean' && typeof b === 'boolean' ? a && b : undefined;
}

export function dynamicOr(a: Value, b: Value): boolean | undefined {
  return typeof a === 'boolean' && typeof b === 'boolean' ? a || b : undefined;
}

export type CompareOp = '=' | '!=' | '<' | '>' | '<=' | '>=';

function kindOf(v: Value): string {
  return v === null ? 'null' : typeof v;
}

/**
 * Compares two values. Undefined on either side gives undefined. Values of different kinds are
 * unequal (= false, != true) and unordered (< etc. undefined). null equals null. Strings compare
 * by UTF-16 code units (ordinal), booleans as false < true.
 */
export function compare(op: CompareOp, a: Value, b: Value): boolean | undefined {
  if (a === undefined || b === undefined) return undefined;
  if (kindOf(a) !== kindOf(b)) {
    if (op === '=') return false;
    if (op === '!=') return true;
    return undefined;
  }
  const c = a === null ? 0 : a < (b as typeof a) ? -1 : a > (b as typeof a) ? 1 : 0;
  switch (op) {
    case '=':
      return c === 0;
    case '!=':
      return c !== 0;
    case '<':
      return c < 0;
    case '>':
      return c > 0;
    case '<=':
      return c <= 0;
    case '>=':
      return c >= 0;
  }
}

export function arithmetic(op: '+' | '-' | '*' | '/' | '%', a: Value, b: Value): number | undefined {
  if (typeof a !== 'number' || typeof b !== 'number') return undefined;
  switch (op) {
    case '+':
      return num(a + b);
    case '-':
      return num(a - b);
    case '*':
      return num(a * b);
    case '/':
      return num(a / b);
    case '%':
      return num(a % b);
  }
}

/** as_number: .NET's double.TryParse with NumberStyles.Any in the invariant culture, near enough. */
const numberText = /^\s*(\()?\s*([+-])?\s*(\d[\d,]*)?(\.\d*)?(?:[eE]([+-]?\d+))?\s*(\))?\s*$/;

export function parseNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === 'Infinity' || trimmed === '+Infinity' || trimmed === '∞') return Number.POSITIVE_INFINITY;
  if (trimmed === '-Infinity' || trimmed === '-∞') return Number.NEGATIVE_INFINITY;
  const m = numberText.exec(text);
  if (!m) return undefined;
  const [, open, sign, int, frac, exp, close] = m;
  if ((open === undefined) !== (close === undefined)) return undefined;
  if (open !== undefined && sign !== undefined) return undefined;
  const digits = (int ?? '').replace(/,/g, '');
  const fraction = frac ?? '';
  if (digits === '' && fraction.length <= 1) return undefined;
  const value = Number(`${digits || '0'}${fraction === '.' ? '' : fraction}${exp !== undefined ? `e${exp}` : ''}`);
  if (Number.isNaN(value)) return undefined;
  return open !== undefined || sign === '-' ? -value : value;
}
