// The $edgeHub reporter's I/O: in IoT Hub mode the hub connects as its device's `$edgeHub` module (the key
// derived from the device root key, as for every module; the operator gives the `$edgeHub` identity that key)
// and patches that twin's reported properties (see reported.ts). Without IoT Hub (kubectl mode) there is
// nothing to report to.
import type { Logger } from '../runtime/logger.ts';
import type { HubConfig } from './config.ts';
import type { ConnectionTable } from './connections.ts';
import { EdgeHubReporter } from './reported.ts';
import type { EdgeHubReporterOptions } from './reported.ts';
import { moduleConnectionString, UpstreamLink } from './upstream.ts';

export const edgeHubModuleId = '$edgeHub';

export function createEdgeHubReporter(
  config: HubConfig,
  connections: ConnectionTable,
  logger: Logger,
  options: Partial<Pick<EdgeHubReporterOptions, 'coalesceMs' | 'holdOffMs' | 'minBackoffMs' | 'maxBackoffMs'>> = {},
): EdgeHubReporter | undefined {
  const upstream = config.upstream;
  if (!upstream) return undefined;
  const link = new UpstreamLink(edgeHubModuleId, moduleConnectionString(upstream, config.deviceId, edgeHubModuleId, config.rootKey), {
    // The routes come from the routes file the operator writes, not from this twin's desired properties.
    desired: () => undefined,
    method: (_m, name) => Promise.resolve({ status: 404, payload: { message: `the built-in edge hub has no direct method ${name}` } }),
    state: (_m, connected, error) => {
      logger.debug({ error: error?.message }, connected ? '$edgeHub linked to IoT Hub' : '$edgeHub link to IoT Hub closed');
      // Called only once the link has connected, which is after `reporter` is set.
      if (!connected) reporter.linkLost();
    },
    log: (message, fields) => logger.debug(fields ?? {}, `$edgeHub: ${message}`),
  });
  const reporter: EdgeHubReporter = new EdgeHubReporter({
    ...options,
    link,
    table: () => connections.snapshot(),
    ownId: `${config.deviceId}/${edgeHubModuleId}`,
    log: (level, message, fields) => logger[level](fields ?? {}, message),
  });
  return reporter;
}
