// Module names as IoT Hub accepts them, and JSON pointers for reporting where a fault is.

import type { ManifestIssue } from './model.ts';

/** IoT Hub module ids: up to 128 ASCII letters, digits and - . + % _ # * ? ! ( ) , : = @ $ ' (case-sensitive). */
export const maxModuleIdLength = 128;
const moduleIdChars = /^[A-Za-z0-9\-.+%_#*?!(),:=@$']+$/;

export const systemModuleNames = ['edgeAgent', 'edgeHub'] as const;

/** One JSON-pointer reference token (RFC 6901): '~' and '/' are escaped. */
export function jsonPointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Joins reference tokens under a base pointer, escaping each. */
export function pointerJoin(base: string, ...segments: (string | number)[]): string {
  return segments.reduce<string>((acc, s) => `${acc}/${jsonPointer(String(s))}`, base);
}

/** Why `id` cannot be a module id, or undefined when IoT Hub would accept it. */
export function moduleIdFault(id: string): string | undefined {
  if (id.length === 0) return 'a module name must not be empty';
  if (id.length > maxModuleIdLength) return `module name '${id.slice(0, 40)}…' is ${id.length} characters; IoT Hub allows at most ${maxModuleIdLength}`;
  if (!moduleIdChars.test(id)) {
    const bad = [...id].find((c) => !moduleIdChars.test(c)) ?? '';
    return `module name '${id}' contains '${bad}'; IoT Hub module ids allow only ASCII letters, digits and - . + % _ # * ? ! ( ) , : = @ $ '`;
  }
  if (id.startsWith('$')) return `module name '${id}' starts with '$', which IoT Hub reserves for its own modules`;
  return undefined;
}

/**
 * Checks a user module's name (under `modules`): IoT Hub's id rules, and that it is not one of the
 * system modules. The system names are refused in any letter case: `EdgeHub` would be a distinct
 * IoT Hub identity but the same Kubernetes object name as edgeHub.
 */
export function checkUserModuleName(id: string, path: string): ManifestIssue[] {
  const fault = moduleIdFault(id);
  if (fault !== undefined) return [{ code: 'IEO_MODULE_NAME', path, message: fault }];
  const system = systemModuleNames.find((s) => s.toLowerCase() === id.toLowerCase());
  if (system !== undefined) {
    return [{ code: 'IEO_MODULE_NAME', path, message: `module name '${id}' is reserved: ${system} may appear only under systemModules` }];
  }
  return [];
}
