// When the API server refuses a child object: what counts as a refusal, how it is described to a person
// (the object, the module it belongs to, the API's own message), and the edgeAgent status code IoT Hub is
// told. A refusal is a fault of the desired state as the server sees it, so it is reported and retried
// with backoff, never retried in a tight loop without a word.
import type { KubernetesObject } from '@kubernetes/client-node';
import { labelKeys } from '../translate/names.ts';
import { KubeApiError } from './kube-client.ts';
import { objectId } from './resources.ts';

export interface Refusal {
  /** Kind/name of the child. */
  object: string;
  /** The module id the child belongs to, when it belongs to one. */
  moduleId?: string;
  status: number;
  message: string;
}

/**
 * The API server refused the object itself: any 4xx but a conflict or throttling (which a retry resolves),
 * or a 500 from an apply, which server-side apply returns when the object cannot be merged (for example
 * two list entries with one key).
 */
export function isRefusal(error: unknown): error is KubeApiError | TakeoverRefused {
  if (error instanceof TakeoverRefused) return true;
  if (!(error instanceof KubeApiError)) return false;
  if (error.status === 500) return error.method === 'PATCH' || error.method === 'POST';
  return error.status >= 400 && error.status < 500 && error.status !== 409 && error.status !== 429;
}

/** An object of the desired name exists and is not this EdgeDeployment's: it is never taken over. */
export class TakeoverRefused extends Error {
  override name = 'TakeoverRefused';
  readonly status = 409;
  constructor(object: string, ownerKind: string | undefined) {
    super(`${object} already exists and is not owned by this EdgeDeployment${ownerKind ? ` (its controller is a ${ownerKind})` : ''}; rename the module or remove the object`);
  }
}

export function refusalOf(object: KubernetesObject, error: KubeApiError | TakeoverRefused, moduleIdByName: ReadonlyMap<string, string>): Refusal {
  const moduleName = object.metadata?.labels?.[labelKeys.module];
  const moduleId = moduleName !== undefined ? moduleIdByName.get(moduleName) : undefined;
  const message = error instanceof KubeApiError ? (error.body?.message ?? error.message) : error.message;
  return { object: objectId(object), ...(moduleId !== undefined ? { moduleId } : {}), status: error.status, message };
}

export function describeRefusal(r: Refusal): string {
  return `${r.object}${r.moduleId !== undefined ? ` (module ${JSON.stringify(r.moduleId)})` : ''} refused by the API server (${r.status}): ${r.message}`;
}

/** edgeAgent reports 400 for a deployment it cannot use as written, 500 when the runtime fails it. */
export function edgeAgentStatusOf(refusals: readonly Refusal[]): 400 | 500 {
  return refusals.some((r) => r.status >= 500) ? 500 : 400;
}

/** IoT Hub refuses reported strings over 4 KB; every reported string is kept within this many UTF-8 bytes. */
export const maxReportedStringBytes = 4000;

/** The text cut to `maxBytes` UTF-8 bytes, ending in a mark that says so, on a character boundary. */
export function boundText(text: string, maxBytes = maxReportedStringBytes): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const mark = ' … (cut)';
  let cut = text.slice(0, maxBytes);
  while (Buffer.byteLength(cut + mark, 'utf8') > maxBytes) cut = cut.slice(0, -Math.max(1, Math.ceil((Buffer.byteLength(cut + mark, 'utf8') - maxBytes) / 4)));
  return cut + mark;
}

/** Backoff of a refused desired state: 5 s doubling to 5 min. */
export function refusalBackoffMs(attempt: number): number {
  return Math.min(5_000 * 2 ** Math.max(0, attempt - 1), 300_000);
}
