// Pod Security Admission labels on device namespaces, so the API server enforces the same boundary as
// the operator's policy even if the operator has a bug. Where the operator lacks the right to patch
// Namespaces (namespace mode without the optional ClusterRole) it says so once and carries on: the
// operator's own policy still holds. A label someone else set is left alone (server-side apply without
// force reports the conflict), so an administrator's stricter or looser choice wins.
import { KubeApiError, type KubeClient, type Logger } from './kube-client.ts';

export const podSecurityLabel = 'pod-security.kubernetes.io/enforce';
export const namespaceFieldManager = 'iotedge-operator-pod-security';

export type LabelOutcome = 'labelled' | 'forbidden' | 'owned-by-another' | 'failed';

export class NamespaceSecurityLabeler {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly level: string;
  /** Namespaces settled this process (labelled, or found impossible to label): no further writes. */
  private readonly settled = new Map<string, LabelOutcome>();

  constructor(client: KubeClient, log: Logger, level: string) {
    this.client = client;
    this.log = log;
    this.level = level;
  }

  async ensure(namespace: string): Promise<LabelOutcome> {
    const known = this.settled.get(namespace);
    if (known) return known;
    const outcome = await this.apply(namespace);
    if (outcome !== 'failed') this.settled.set(namespace, outcome);
    return outcome;
  }

  private async apply(namespace: string): Promise<LabelOutcome> {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
    try {
      // Read first, so that a restart over labelled namespaces writes nothing.
      const current = await this.client.request<{ metadata?: { labels?: Record<string, string> } }>('GET', path);
      const label = current.metadata?.labels?.[podSecurityLabel];
      if (label === this.level) return 'labelled';
    } catch (error) {
      return this.failure(namespace, error);
    }
    const body = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { [podSecurityLabel]: this.level, [`${podSecurityLabel}-version`]: 'latest' } } };
    try {
      await this.client.request('PATCH', path, { fieldManager: namespaceFieldManager }, {
        body, contentType: 'application/apply-patch+yaml',
      });
      this.log.info({ namespace, level: this.level }, 'labelled the namespace for Pod Security Admission');
      return 'labelled';
    } catch (error) {
      return this.failure(namespace, error);
    }
  }

  private failure(namespace: string, error: unknown): LabelOutcome {
    if (error instanceof KubeApiError && error.status === 403) {
      this.log.info({ namespace }, 'no right to label the namespace for Pod Security Admission; the operator policy alone guards it');
      return 'forbidden';
    }
    if (error instanceof KubeApiError && error.status === 409) {
      this.log.info({ namespace }, 'the namespace carries a Pod Security Admission label set by someone else; leaving it');
      return 'owned-by-another';
    }
    this.log.warn({ namespace, err: error }, 'could not label the namespace for Pod Security Admission; will try again');
    return 'failed';
  }
}
