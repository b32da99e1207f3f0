// Kubernetes Events on an EdgeDeployment. The reconciler records them only on transitions (a new
// generation applied, validity flipping, a policy denial), never once per reconcile, so a steady
// state makes no writes. Messages are built by the caller from coded errors; a message that quotes a
// manifest value is scrubbed all the same.
import { randomBytes } from 'node:crypto';
import type { KubeClient } from './kube-client.ts';
import type { Logger } from './kube-client.ts';
import type { EdgeDeployment } from '../api/edge-deployment.ts';
import { scrubSecrets } from '../runtime/scrub.ts';

export type EventType = 'Normal' | 'Warning';

function clip(message: string): string {
  return message.length > 1024 ? `${message.slice(0, 1020)} …` : message;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly component: string;
  constructor(client: KubeClient, log: Logger, component = 'iotedge-operator') {
    this.client = client;
    this.log = log;
    this.component = component;
  }

  async record(ed: EdgeDeployment, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = ed.metadata?.namespace ?? 'default';
    const now = new Date().toISOString();
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${ed.metadata?.name}.${randomBytes(8).toString('hex')}`, namespace },
      involvedObject: {
        apiVersion: ed.apiVersion,
        kind: ed.kind,
        name: ed.metadata?.name,
        namespace,
        uid: ed.metadata?.uid,
        resourceVersion: ed.metadata?.resourceVersion,
      },
      type,
      reason,
      // The API limits an Event message to 1 KiB. Scrubbed here, the one place every Event passes.
      message: clip(scrubSecrets(message)),
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.client.request('POST', `/api/v1/namespaces/${namespace}/events`, {}, { body });
    } catch (error) {
      // An Event is informative; failing to record one must not fail the reconcile.
      this.log.warn({ err: error, reason }, 'could not record an Event');
    }
  }
}
