// Shared by the routing tests: compile one condition and evaluate it against a message.
import { parseRoute } from '../../../src/manifest/index.ts';
import type { Expr } from '../../../src/manifest/index.ts';
import { compileCondition } from '../../../src/routing/index.ts';
import type { RoutedMessage, Value } from '../../../src/routing/index.ts';
import { newEvalContext } from '../../../src/routing/compile.ts';

export const jsonBody = {
  machine: { temperature: 30.5, pressure: 1.2, running: true, stopped: false, label: 'press-7', nothing: null, readings: [10, 20, 30], history: [{ month: 'Feb', t: 5 }] },
  count: 3,
};

export function message(overrides: Partial<RoutedMessage> = {}): RoutedMessage {
  return {
    body: Buffer.from(JSON.stringify(jsonBody)),
    properties: { key1: 'value1', key2: '3', Key3: 'VALUE3', $sys4: 'app4', '$body.machine.label': 'from-property' },
    systemProperties: { sys1: 'sysvalue1', sys2: '4', sys4: 'sysvalue4', contentType: 'application/json', contentEncoding: 'utf-8', connectionModuleId: 'sensor', connectionDeviceId: 'dev1' },
    source: { kind: 'module', deviceId: 'dev1', moduleId: 'sensor', outputName: 'out1' },
    ...overrides,
  };
}

export function conditionOf(text: string): Expr {
  const parsed = parseRoute(`FROM /* WHERE ${text} INTO $upstream`);
  if (!parsed.ok) throw new Error(`test condition does not parse: ${text}\n${parsed.error.message}`);
  if (parsed.route.condition === undefined) throw new Error('no condition');
  return parsed.route.condition;
}

/** The condition's value, or { error } when it does not compile. */
export function evaluate(text: string, msg: RoutedMessage = message()): Value | { error: string } {
  const compiled = compileCondition(conditionOf(text));
  if (!compiled.ok) return { error: compiled.message };
  return compiled.evaluate(newEvalContext(msg));
}
