// A jest reporter for the SDK fidelity harness: after the run, how many scenarios passed and failed per
// area and transport (the test file name, `<area>[.<transport>].test.ts`), and each failure's first line.
import { basename } from 'node:path';

interface AssertionResult {
  status: string;
  fullName: string;
  failureMessages: string[];
}
interface FileResult {
  testFilePath: string;
  testResults: AssertionResult[];
  testExecError?: { message: string };
}
interface AggregatedResult {
  testResults: FileResult[];
}

interface Row {
  area: string;
  transport: string;
  passed: number;
  failed: number;
  skipped: number;
}

function rowFor(file: FileResult): Row {
  const [area = '?', transport = '-'] = basename(file.testFilePath).replace(/\.test\.ts$/, '').split('.');
  const row: Row = { area, transport, passed: 0, failed: 0, skipped: 0 };
  for (const t of file.testResults) {
    if (t.status === 'passed') row.passed += 1;
    else if (t.status === 'failed') row.failed += 1;
    else row.skipped += 1;
  }
  // A file that could not run at all (syntax, import, beforeAll outside a test) counts as one failure.
  if (file.testExecError && row.failed === 0) row.failed = 1;
  return row;
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.trim().slice(0, 200);
}

export function summarize(results: AggregatedResult): string {
  const rows = results.testResults.map(rowFor).sort((a, b) => a.area.localeCompare(b.area) || a.transport.localeCompare(b.transport));
  const total = rows.reduce((sum, r) => ({ ...sum, passed: sum.passed + r.passed, failed: sum.failed + r.failed, skipped: sum.skipped + r.skipped }), {
    area: 'total',
    transport: '',
    passed: 0,
    failed: 0,
    skipped: 0,
  });
  const line = (r: Row) => `  ${r.area.padEnd(22)} ${r.transport.padEnd(8)} ${String(r.passed).padStart(6)} ${String(r.failed).padStart(6)} ${String(r.skipped).padStart(7)}`;
  const out = ['', 'SDK end-to-end scenarios against the emulator', `  ${'area'.padEnd(22)} ${'over'.padEnd(8)} ${'passed'.padStart(6)} ${'failed'.padStart(6)} ${'skipped'.padStart(7)}`];
  out.push(...rows.map(line), line(total));
  out.push(`  ${total.passed} of ${total.passed + total.failed} scenarios pass.`);
  const failures = results.testResults.flatMap((file) => {
    const area = basename(file.testFilePath).replace(/\.test\.ts$/, '');
    const failed = file.testResults.filter((t) => t.status === 'failed').map((t) => `  [${area}] ${t.fullName}: ${firstLine(t.failureMessages.join('\n'))}`);
    if (file.testExecError && failed.length === 0) failed.push(`  [${area}] (file did not run): ${firstLine(file.testExecError.message)}`);
    return failed;
  });
  if (failures.length > 0) out.push('', 'Failing scenarios:', ...failures);
  return out.join('\n');
}

export default class SummaryReporter {
  onRunComplete(_contexts: unknown, results: AggregatedResult): void {
    process.stdout.write(`${summarize(results)}\n`);
  }
}
