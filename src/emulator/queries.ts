// POST /devices/query: the twin query API (azure-iothub's registry.createQuery). The query
// language itself lives in ./query/ (pure); this file lists the hub's twins as its documents.
import { HubError } from './errors.ts';
import { runQuery } from './query/index.ts';
import type { QuerySource } from './query/index.ts';
import { twinJson } from './rest.ts';
import { isJsonObject } from './twin.ts';
import type { Json } from './twin.ts';
import type { HubEmulator } from './emulator.ts';

/** Every device twin and every module twin, as GET /twins returns them. */
export function hubQuerySource(hub: HubEmulator): QuerySource {
  return {
    deviceTwins: () => hub.registry.listDevices().map((d) => twinJson(hub, d.deviceId, undefined)),
    moduleTwins: () => hub.registry.listDevices().flatMap((d) => Object.keys(d.modules).map((m) => twinJson(hub, d.deviceId, m))),
    jobs: () => hub.jobs.deviceJobs(),
  };
}

function parsePageSize(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new HubError('ArgumentInvalid', `x-ms-max-item-count "${value}" is not an integer`);
  return n;
}

/** One page of a query's results and the headers that carry paging (no x-ms-continuation on the last page). */
export function serveQuery(hub: HubEmulator, body: unknown, maxItemCount: string | undefined, continuation: string | undefined): { items: Json[]; headers: Record<string, string> } {
  if (!isJsonObject(body) || typeof body.query !== 'string') throw new HubError('ArgumentInvalid', 'the body must be {"query": "<query text>"}');
  const page = runQuery(body.query, hubQuerySource(hub), { maxItemCount: parsePageSize(maxItemCount), ...(continuation ? { continuation } : {}) });
  return { items: page.items, headers: page.continuation === undefined ? {} : { 'x-ms-continuation': page.continuation } };
}
