// The controller's watching and queueing API: informers over list + watch, the work queue and its
// worker pool, and the errors a reconciler throws to choose what happens next.
export { InformerSyncTimeoutError, PermanentError, TemporaryError } from './errors.ts';
export { KubeApiError, KubeClient, WatchEventParser, decodeWatchStream, isGone, silentLogger } from './kube-client.ts';
export type { KubeClientOptions, KubeList, KubeStatus, ListOptions, Logger, RequestOptions, WatchEvent, WatchEventType, WatchOptions } from './kube-client.ts';
export {
  EDGE_DEPLOYMENT_LABEL,
  Informer,
  JitteredBackoff,
  deepFreeze,
  diffRelist,
  enqueueObject,
  ingest,
  keyOf,
  mapToOwner,
  namespacedPath,
  ownerKeyOf,
} from './informer.ts';
export type { InformerEvent, InformerEventType, InformerHandler, InformerHooks, InformerOptions, ListWatchClient, RelistDiff } from './informer.ts';
export {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  WorkQueue,
  defaultControllerRateLimiter,
} from './workqueue.ts';
export type { RateLimiter, ReconcileContext, ReconcileFn, ReconcileMetrics, ReconcileResult, RunWorkersOptions, WorkQueueMetrics, WorkQueueOptions } from './workqueue.ts';
