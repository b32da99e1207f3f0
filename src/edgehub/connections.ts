// The hub's connection table, kept as edgeHub keeps the `clients` of its reported properties: one entry
// per module identity (`<deviceId>/<moduleId>`), Connected with the time it connected, or Disconnected
// with the time it left; each time survives the other change (edgeHub patches one of the two). Like
// edgeHub, which clears `clients` when it starts, the table begins empty at every start of the hub.
// GET /status on the metrics port serves it with the upstream state (see HubStatusDocument); the
// operator reads it through the API server's pod proxy and shows it in the EdgeDeployment's status.

export type ClientConnectionState = 'Connected' | 'Disconnected';

export interface ClientConnectionStatus {
  status: ClientConnectionState;
  /** ISO 8601, UTC. */
  lastConnectedTimeUtc?: string;
  lastDisconnectedTimeUtc?: string;
}

/**
 * What the hub says of $upstream: whether IoT Hub is reachable, whether messages routed there can only
 * expire (no IoT Hub at all: kubectl mode), how many wait, and how many expired since the hub started.
 */
export interface UpstreamStatus {
  connected: boolean;
  expiring: boolean;
  queued: number;
  expired: number;
}

/** The document GET /status serves: edgeHub's `clients` reported property, plus the upstream state. */
export interface HubStatusDocument {
  schemaVersion: '1.0';
  clients: Record<string, ClientConnectionStatus>;
  upstream: UpstreamStatus;
}

export class ConnectionTable {
  private readonly clients = new Map<string, ClientConnectionStatus>();

  connected(clientId: string, at: Date): void {
    const previous = this.clients.get(clientId);
    this.clients.set(clientId, { ...previous, status: 'Connected', lastConnectedTimeUtc: at.toISOString() });
  }

  /** A module's connection closed; `stillConnected` when a newer connection of the same identity took over. */
  disconnected(clientId: string, at: Date, stillConnected = false): void {
    const previous = this.clients.get(clientId);
    if (stillConnected && previous?.status === 'Connected') return;
    this.clients.set(clientId, { ...previous, status: 'Disconnected', lastDisconnectedTimeUtc: at.toISOString() });
  }

  /** The table by client id, sorted, as a plain object. */
  snapshot(): Record<string, ClientConnectionStatus> {
    return Object.fromEntries([...this.clients.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, s]) => [id, { ...s }]));
  }

  get connectedCount(): number {
    let n = 0;
    for (const s of this.clients.values()) if (s.status === 'Connected') n += 1;
    return n;
  }
}

/** edgeHub's client id of a module: `<deviceId>/<moduleId>`. */
export function clientIdOf(deviceId: string, moduleId: string): string {
  return `${deviceId}/${moduleId}`;
}
