// The syntax tree of an IoT Hub twin query: SELECT <list> FROM <collection> [WHERE <condition>]
// [GROUP BY <paths>]. Nothing positional is kept: the tree is what the evaluator needs.
import type { Json } from '../twin.ts';

export type ComparisonOperator = '=' | '!=' | '<>' | '<' | '>' | '<=' | '>=';
export type ArithmeticOperator = '+' | '-' | '*' | '/' | '%';
export type BinaryOperator = 'AND' | 'OR' | ComparisonOperator | ArithmeticOperator;

export type Expr =
  | { kind: 'literal'; value: Json }
  /** `[a, b, c]`: the right side of IN and NIN, or an array value. */
  | { kind: 'array'; items: Expr[] }
  /** `tags.location.region`, `properties.desired.$version`, `configurations.[[my-id]].status`. */
  | { kind: 'path'; segments: string[] }
  | { kind: 'not'; operand: Expr }
  | { kind: 'negate'; operand: Expr }
  | { kind: 'binary'; op: BinaryOperator; left: Expr; right: Expr }
  /** `x IN [...]` (`negated`: NIN). */
  | { kind: 'in'; negated: boolean; value: Expr; list: Expr }
  /** `IS_DEFINED(x)`, `STARTSWITH(x, 'a')`; `name` is upper-cased. */
  | { kind: 'call'; name: string; args: Expr[] };

export type AggregateName = 'COUNT' | 'SUM' | 'AVG' | 'MIN' | 'MAX';

export type SelectItem =
  | { kind: 'value'; expr: Expr; alias: string | undefined }
  | { kind: 'aggregate'; name: AggregateName; arg: Expr | undefined; alias: string | undefined };

export type Collection = 'devices' | 'devices.modules' | 'devices.jobs';

export interface QueryAst {
  /** undefined: `SELECT *`. */
  select: SelectItem[] | undefined;
  top: number | undefined;
  from: Collection;
  where: Expr | undefined;
  groupBy: Expr[];
}
