// $edgeHub's reported properties in IoT Hub mode: the connection table (edgeHub's `clients`), its
// `schemaVersion` and `lastDesiredStatus`, on the `$edgeHub` module twin of the hub's device, as the stock
// edgeHub reports them:
// - at start it clears `clients` (a patch with `clients: null`): the table starts empty at every start;
// - each connect or disconnect patches that client's entry alone (`<deviceId>/<moduleId>`, with `.`, `$` and
//   space percent-encoded as edgeHub encodes twin keys, so `$edgeAgent` is `%24edgeAgent`);
// - while IoT Hub cannot be reached the changes are kept and sent when it can again.
// Unlike edgeHub, which sends one patch per connect or disconnect, changes are coalesced: the first change
// starts a short timer (1 s) and one patch then carries every client that changed since, each with its
// latest entry (status and both times), so churn costs at most one patch a second and an outage one patch
// at its end. The pure part (what to send) is apart from the I/O (when, over which link).
import type { ClientConnectionStatus } from './connections.ts';
import type { JsonObject } from './twins.ts';

export const reportedSchemaVersion = '1.0';

/** edgeHub's `lastDesiredStatus`: 200 once the routes are in use, 400 when they were refused. */
export interface DesiredStatus {
  code: number;
  description: string;
}

export interface RouteError {
  routeName: string;
  message: string;
}

/** lastDesiredStatus for refused routes: 400, as edgeHub reports a configuration it cannot apply, with each reason. */
export function refusedStatus(errors: readonly RouteError[]): DesiredStatus {
  const reasons = errors.map((e) => (e.routeName ? `route ${e.routeName}: ${e.message}` : e.message));
  return { code: 400, description: `the routes were refused (the previous routes stay in use): ${reasons.join('; ')}` };
}

/** What has changed since the last patch IoT Hub took. */
export interface PendingReport {
  /** `clients` is still to be cleared (the hub started, or the clear was not taken yet). */
  clear: boolean;
  /** Client ids whose entries changed. */
  clients: Set<string>;
  desiredStatus: DesiredStatus | undefined;
}

export function emptyPending(): PendingReport {
  return { clear: false, clients: new Set(), desiredStatus: undefined };
}

export function hasPending(p: PendingReport): boolean {
  return p.clear || p.clients.size > 0 || p.desiredStatus !== undefined;
}

/** Puts back what a failed send carried under what changed meanwhile (newer wins; the table is read at send time). */
export function requeue(into: PendingReport, failed: PendingReport): void {
  into.clear ||= failed.clear;
  for (const id of failed.clients) into.clients.add(id);
  into.desiredStatus ??= failed.desiredStatus;
}

/** A twin key as edgeHub writes a client id: `.`, `$` and space (not allowed in twin keys) percent-encoded. */
export function encodeTwinKey(id: string): string {
  return id.replace(/[.$ ]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

const maxDescription = 1000;

/**
 * The patches to send for `pending`, in order, reading each changed client's entry from `table`: first the
 * clear (`clients: null`) when one is due (a patch cannot both clear `clients` and set entries in it), then
 * the changed entries; a client no longer in the table is removed (null). Empty when nothing is pending.
 */
export function reportedPatches(pending: PendingReport, table: Readonly<Record<string, ClientConnectionStatus>>): JsonObject[] {
  const patches: JsonObject[] = [];
  const status = pending.desiredStatus
    ? { lastDesiredStatus: { code: pending.desiredStatus.code, description: pending.desiredStatus.description.slice(0, maxDescription) } }
    : {};
  if (pending.clear) patches.push({ schemaVersion: reportedSchemaVersion, ...status, clients: null });
  if (pending.clients.size > 0 || (!pending.clear && pending.desiredStatus)) {
    const clients: JsonObject = {};
    for (const id of [...pending.clients].sort()) {
      const entry = table[id];
      clients[encodeTwinKey(id)] = entry
        ? {
            status: entry.status,
            ...(entry.lastConnectedTimeUtc !== undefined ? { lastConnectedTimeUtc: entry.lastConnectedTimeUtc } : {}),
            ...(entry.lastDisconnectedTimeUtc !== undefined ? { lastDisconnectedTimeUtc: entry.lastDisconnectedTimeUtc } : {}),
          }
        : null;
    }
    patches.push({ schemaVersion: reportedSchemaVersion, ...(pending.clear ? {} : status), ...(pending.clients.size > 0 ? { clients } : {}) });
  }
  return patches;
}

/** The next wait after a failed send: doubling from `minMs` up to `maxMs`. */
export function nextBackoff(previousMs: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, Math.max(minMs, previousMs * 2));
}

/** The link the reporter patches through: UpstreamLink as `$edgeHub`, or a fake in tests. */
export interface ReportedLink {
  patchReported(patch: JsonObject): Promise<void>;
  close(): Promise<void>;
}

export interface EdgeHubReporterOptions {
  link: ReportedLink;
  /** The connection table now (ConnectionTable.snapshot). */
  table: () => Record<string, ClientConnectionStatus>;
  log: (level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>) => void;
  /** The hub's own client id (`<deviceId>/$edgeHub`): edgeHub leaves itself out of `clients`. */
  ownId?: string;
  /** Changes within this window go in one patch. */
  coalesceMs?: number;
  /** After IoT Hub dropped the link, no reconnect before this long (another `$edgeHub` connection, such as the
   * operator's short read of `$edgeHub`'s desired properties, takes the identity over; let it finish). */
  holdOffMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Sends the pending changes to `$edgeHub`'s reported properties: coalesced, one send at a time, kept and
 * retried with backoff while IoT Hub cannot be reached. The link is opened only to send, so after IoT Hub
 * drops it (another connection as `$edgeHub`) it stays closed until there is something to report.
 */
export class EdgeHubReporter {
  private readonly o: EdgeHubReporterOptions;
  private readonly coalesceMs: number;
  private readonly holdOffMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private pending = emptyPending();
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private backoffMs = 0;
  private notBefore = 0;
  private lastFailure: string | undefined;
  private stopped = false;
  /** Patches IoT Hub took (for tests and the log). */
  sent = 0;

  constructor(options: EdgeHubReporterOptions) {
    this.o = options;
    this.coalesceMs = options.coalesceMs ?? 1_000;
    this.holdOffMs = options.holdOffMs ?? 5_000;
    this.minBackoffMs = options.minBackoffMs ?? 1_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
  }

  /** The hub started: clear `clients` (and say the schema version) as edgeHub does. */
  start(): void {
    this.pending.clear = true;
    this.schedule(0);
  }

  /** A client's entry in the connection table changed. */
  clientChanged(clientId: string): void {
    if (clientId === this.o.ownId) return;
    this.pending.clients.add(clientId);
    this.schedule(this.coalesceMs);
  }

  /** The routes file was loaded: lastDesiredStatus 200. */
  routesApplied(): void {
    this.desiredStatus({ code: 200, description: '' });
  }

  /** The routes file was refused (the routes in use stay): lastDesiredStatus 400 with the reasons. */
  routesRefused(errors: readonly RouteError[]): void {
    this.desiredStatus(refusedStatus(errors));
  }

  private desiredStatus(status: DesiredStatus): void {
    this.pending.desiredStatus = status;
    this.schedule(this.coalesceMs);
  }

  /** The `$edgeHub` link was lost (IoT Hub closed it): reconnect only after the hold-off. */
  linkLost(): void {
    this.notBefore = Date.now() + this.holdOffMs;
  }

  /** IoT Hub is reachable again (another link reconnected): send what waits without the rest of the backoff. */
  upstreamBack(): void {
    // Only while backing off: otherwise a send is due within the coalescing window anyway, and pushing it back on
    // every module link that connects would postpone it for as long as modules keep connecting.
    if (this.backoffMs === 0 || !hasPending(this.pending) || this.sending) return;
    this.backoffMs = 0;
    this.reschedule(this.coalesceMs);
  }

  /** Stops sending; a send under way is not waited for (it may wait on an unreachable IoT Hub), its link is closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.o.link.close();
  }

  /** Sends after `delayMs` unless a send is already due or under way (which then picks these changes up). */
  private schedule(delayMs: number): void {
    if (this.stopped || this.timer || this.sending) return;
    this.arm(delayMs);
  }

  private reschedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.arm(delayMs);
  }

  private arm(delayMs: number): void {
    if (this.stopped) return;
    const wait = Math.max(delayMs, this.notBefore - Date.now(), 0);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.send().finally(() => {
        this.sending = undefined;
        if (this.stopped || !hasPending(this.pending)) return;
        this.schedule(this.backoffMs > 0 ? this.backoffMs : this.coalesceMs);
      });
    }, wait);
    this.timer.unref();
  }

  private async send(): Promise<void> {
    const taking = this.pending;
    this.pending = emptyPending();
    const patches = reportedPatches(taking, this.o.table());
    try {
      for (const patch of patches) {
        await this.o.link.patchReported(patch);
        this.sent += 1;
        // Once the clear is taken (it carries the desired status too), only the entries are left to send.
        if (taking.clear) {
          taking.clear = false;
          taking.desiredStatus = undefined;
        }
      }
      this.backoffMs = 0;
      if (this.lastFailure !== undefined) this.o.log('info', '$edgeHub reported properties sent again');
      this.lastFailure = undefined;
      this.o.log('debug', '$edgeHub reported properties sent', { patches: patches.length, clients: taking.clients.size });
    } catch (error) {
      requeue(this.pending, taking);
      this.backoffMs = nextBackoff(this.backoffMs, this.minBackoffMs, this.maxBackoffMs);
      const message = error instanceof Error ? error.message : String(error);
      if (!this.stopped && message !== this.lastFailure) {
        this.lastFailure = message;
        this.o.log('warn', '$edgeHub reported properties not sent; kept and retried', { error: message, retryInMs: this.backoffMs });
      }
    }
  }
}
