// The IoT Hub query language: WHERE conditions over device and module twins (configurations'
// targetCondition, jobs' queryCondition) and whole queries for POST /devices/query.
// See docs/emulator.md ("Queries") for what is emulated and how it differs from IoT Hub.
export { compileCondition, compileQuery, runQuery } from './run.ts';
export type { CompiledQuery, QueryPage, QueryPaging, QuerySource, TwinDocument } from './run.ts';
export { parseCondition, parseQuery } from './parser.ts';
export type { Expr, QueryAst } from './ast.ts';
