// $body queries: a message body is read as JSON only when its system properties say so
// (contentType application/json, contentEncoding utf-8, utf-16 or utf-32, as edgeHub requires),
// decoded at most once per routed message, and queried with edgeHub's JSON-path subset:
// dot-separated names, each optionally followed by one [index].

import { bodyPathSegment } from '../manifest/index.ts';
import type { Value } from './values.ts';

export interface PathSegment {
  name: string;
  index?: number;
}

/** Parses a body path such as `machine.readings[0].value`; a reason string when edgeHub would refuse it. */
export function parseBodyPath(path: string): PathSegment[] | string {
  if (path === '') return '$body query cannot be empty';
  const segments: PathSegment[] = [];
  for (const part of path.split('.')) {
    const m = bodyPathSegment.exec(part);
    if (!m) return `'${path}' is not a supported $body path (names separated by '.', each optionally followed by one [index])`;
    segments.push(m[2] === undefined ? { name: m[1] as string } : { name: m[1] as string, index: Number(m[2]) });
  }
  return segments;
}

export type JsonRoot = Record<string, unknown>;

/** The parsed body, or undefined when the message is not a JSON object edgeHub could query. */
export function decodeJsonBody(body: Buffer, contentType: string | undefined, contentEncoding: string | undefined): JsonRoot | undefined {
  if (contentType === undefined || contentType.toLowerCase() !== 'application/json') return undefined;
  const text = decodeText(body, contentEncoding);
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as JsonRoot) : undefined;
  } catch {
    return undefined;
  }
}

function decodeText(body: Buffer, encoding: string | undefined): string | undefined {
  switch (encoding?.toLowerCase()) {
    case 'utf-8':
      return body.toString('utf8');
    case 'utf-16':
      return body.toString('utf16le');
    case 'utf-32':
      return decodeUtf32le(body);
    default:
      return undefined;
  }
}

function decodeUtf32le(body: Buffer): string | undefined {
  if (body.length % 4 !== 0) return undefined;
  const codePoints: number[] = [];
  for (let i = 0; i < body.length; i += 4) {
    const cp = body.readUInt32LE(i);
    if (cp > 0x10ffff) return undefined;
    codePoints.push(cp);
  }
  let text = '';
  for (let i = 0; i < codePoints.length; i += 4096) text += String.fromCodePoint(...codePoints.slice(i, i + 4096));
  return text;
}

/**
 * Follows a path into a parsed body. A path that leads nowhere gives null (edgeHub's answer for
 * a missing member); a path that ends on an object or array gives undefined (not a value).
 */
export function queryJson(root: JsonRoot, path: readonly PathSegment[]): Value {
  let current: unknown = root;
  for (const segment of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, segment.name)) return null;
    current = (current as Record<string, unknown>)[segment.name];
    if (segment.index !== undefined) {
      if (!Array.isArray(current) || segment.index >= current.length) return null;
      current = current[segment.index];
    }
  }
  if (current === null) return null;
  switch (typeof current) {
    case 'string':
    case 'number':
    case 'boolean':
      return current;
    default:
      return undefined;
  }
}

/** Whether a path is present in a twin change document (twin_change_includes): an explicit null counts as present. */
export function jsonIncludes(root: JsonRoot, path: readonly PathSegment[]): boolean {
  let current: unknown = root;
  for (const segment of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, segment.name)) return false;
    current = (current as Record<string, unknown>)[segment.name];
    if (segment.index !== undefined) {
      if (!Array.isArray(current) || segment.index >= current.length) return false;
      current = current[segment.index];
    }
  }
  return true;
}
