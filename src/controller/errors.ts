// Errors a reconciler throws to tell the work queue what happens next (kopf's naming):
// a TemporaryError is retried, after its own delay or with the queue's per-key backoff;
// a PermanentError is not retried until something changes and the key is added again.
// Any other thrown value is treated as temporary and retried with backoff.

export class TemporaryError extends Error {
  override name = 'TemporaryError';
  /** When set, the key is retried after exactly this delay instead of the rate limiter's backoff. */
  readonly delayMs: number | undefined;
  constructor(message: string, delayMs?: number, options?: { cause?: unknown }) {
    super(message, options);
    if (delayMs !== undefined && (!Number.isFinite(delayMs) || delayMs < 0)) {
      throw new RangeError(`TemporaryError delayMs must be a finite number >= 0, got ${delayMs}`);
    }
    this.delayMs = delayMs;
  }
}

export class PermanentError extends Error {
  override name = 'PermanentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An informer did not complete its first list within its sync timeout. */
export class InformerSyncTimeoutError extends Error {
  override name = 'InformerSyncTimeoutError';
}
