// What the hub needs from IoT Hub's device SDK, loaded only when the hub has an IoT Hub. The SDK and its
// MQTT stack take about 30 MB of a process's memory; in kubectl mode (no IoT Hub) the hub never loads them.
import type { createEdgeHubReporter } from './reported-upstream.ts';
import type { moduleConnectionString, UpstreamLink } from './upstream.ts';

export interface UpstreamModule {
  UpstreamLink: typeof UpstreamLink;
  moduleConnectionString: typeof moduleConnectionString;
  createEdgeHubReporter: typeof createEdgeHubReporter;
}

export async function loadUpstreamModule(): Promise<UpstreamModule> {
  const [upstream, reported] = await Promise.all([import('./upstream.ts'), import('./reported-upstream.ts')]);
  return { UpstreamLink: upstream.UpstreamLink, moduleConnectionString: upstream.moduleConnectionString, createEdgeHubReporter: reported.createEdgeHubReporter };
}
