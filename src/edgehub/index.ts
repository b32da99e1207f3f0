// The built-in edge hub process: configuration, store, hub, probes and metrics, started together.
import { mkdirSync } from 'node:fs';
import { HealthChecks, startOperatorEndpoints } from '../runtime/health.ts';
import type { OperatorEndpoints } from '../runtime/health.ts';
import type { Logger } from '../runtime/logger.ts';
import { loadHubConfig } from './config.ts';
import type { HubFlags } from './config.ts';
import { EdgeHub } from './hub.ts';
import { HubMetrics } from './metrics.ts';
import { openHubQueues } from './store-adapter.ts';
import { loadUpstreamModule } from './upstream-module.ts';

export { HubConfigError, loadHubConfig } from './config.ts';
export type { HubConfig, HubFlags } from './config.ts';
export { EdgeHub } from './hub.ts';
export { loadUpstreamModule } from './upstream-module.ts';
export { HubMetrics } from './metrics.ts';
export { unsupportedProtocolMessage } from './listener.ts';
export type { ClientConnectionStatus, HubStatusDocument, UpstreamStatus } from './connections.ts';

export interface RunningHub {
  hub: EdgeHub;
  endpoints: OperatorEndpoints;
  stop(): Promise<void>;
}

export async function startEdgeHubProcess(flags: HubFlags, logger: Logger): Promise<RunningHub> {
  mkdirSync(flags.storeDir, { recursive: true });
  const config = loadHubConfig(flags);
  const queues = await openHubQueues(config.storeDir, config.storeMaxBytes, 'full', config.storeFsync);
  const metrics = new HubMetrics();
  const upstream = config.upstream ? await loadUpstreamModule() : undefined;
  const hub = new EdgeHub({ config, queues, metrics, logger, ...(upstream ? { upstream } : {}) });
  const checks = new HealthChecks();
  checks.addReadinessCheck('routes', () => {
    if (!hub.routesLoaded) throw new Error(`the routes file ${config.routesFile} has not been loaded (see the log)`);
  });
  checks.addReadinessCheck('listener', () => {
    if (hub.port === 0) throw new Error('the MQTT listener is not bound yet');
  });
  let endpoints: OperatorEndpoints | undefined;
  try {
    endpoints = await startOperatorEndpoints({
      probeAddress: config.healthProbeBindAddress, metricsAddress: config.metricsBindAddress, checks, metrics, logger,
      documents: { '/status': () => hub.statusDocument() },
    });
    await hub.start();
  } catch (error) {
    await endpoints?.stop();
    await queues.close();
    throw error;
  }
  const started = endpoints;
  return {
    hub,
    endpoints: started,
    stop: async () => {
      await hub.stop();
      await started.stop();
      await queues.close();
    },
  };
}
