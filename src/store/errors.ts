// The store's coded errors. The codes are in the catalogue (src/api/errors.ts, docs/errors.md);
// this layer may not import src/api, so a unit test keeps the two spellings together.

/** Refused because the disk budget is used up (or the disk itself is full). Retry after acks or expiry free space. */
export class StoreFullError extends Error {
  override name = 'StoreFullError';
  readonly code = 'IEO_STORE_FULL';
  /** Bytes the refused enqueue needed, and the budget's state when it was refused. */
  readonly neededBytes: number;
  readonly usedBytes: number;
  readonly maxBytes: number;
  constructor(message: string, neededBytes: number, usedBytes: number, maxBytes: number) {
    super(message);
    this.neededBytes = neededBytes;
    this.usedBytes = usedBytes;
    this.maxBytes = maxBytes;
  }
}

/** Any other failure to write: the enqueue was not stored. */
export class StoreWriteError extends Error {
  override name = 'StoreWriteError';
  readonly code = 'IEO_STORE_WRITE';
}
