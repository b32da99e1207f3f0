// The store layer's public API: durable per-endpoint message queues (see README.md).
export { MessageStore, perMessageOverheadBytes } from './store.ts';
export type { EndpointStats, EnqueueItem, StoreOptions, StoredMessage } from './store.ts';
export { StoreFullError, StoreWriteError } from './errors.ts';
