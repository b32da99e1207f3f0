// The hub's Prometheus metrics, named as edgeHub names them where edgeHub has one
// (edgehub_messages_received_total, edgehub_messages_sent_total, edgehub_queue_length,
// edgehub_message_process_duration_seconds, edgehub_messages_dropped_total, …), so dashboards
// built for edgeHub keep working. The rest use the same prefix and say what they count.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type DropReason = 'ttl' | 'no_route';

export class HubMetrics {
  readonly registry = new Registry();
  readonly received: Counter<'id' | 'route_output'>;
  readonly sent: Counter<'from' | 'to' | 'to_route_input'>;
  readonly dropped: Counter<'endpoint' | 'reason'>;
  readonly queueLength: Gauge<'endpoint' | 'priority'>;
  readonly processDuration: Histogram<'from' | 'to'>;
  readonly connectedClients: Gauge;
  readonly clientConnects: Counter<'id'>;
  readonly refusedConnections: Counter<'protocol' | 'reason'>;
  readonly storeRefusals: Counter<'reason'>;
  readonly storeBytes: Gauge;
  readonly storeFull: Gauge;
  readonly redeliveries: Counter<'endpoint'>;
  readonly upstreamConnected: Gauge;
  readonly routeReloads: Counter<'result'>;
  readonly twinRequests: Counter<'operation' | 'served_from'>;
  readonly directMethods: Counter<'result'>;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.received = new Counter({ name: 'edgehub_messages_received_total', help: 'Messages received from modules, per module (id) and output.', labelNames: ['id', 'route_output'], registers });
    this.sent = new Counter({ name: 'edgehub_messages_sent_total', help: 'Messages delivered (acknowledged by the receiver), per sender, endpoint and input.', labelNames: ['from', 'to', 'to_route_input'], registers });
    this.dropped = new Counter({ name: 'edgehub_messages_dropped_total', help: 'Messages dropped: expired by their time to live (ttl, per endpoint) or matched by no route (no_route).', labelNames: ['endpoint', 'reason'], registers });
    this.queueLength = new Gauge({ name: 'edgehub_queue_length', help: 'Messages stored and not yet acknowledged, per endpoint.', labelNames: ['endpoint', 'priority'], registers });
    this.processDuration = new Histogram({
      name: 'edgehub_message_process_duration_seconds',
      help: 'Time from a message\'s arrival at the hub to its acknowledgement by the endpoint.',
      labelNames: ['from', 'to'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    });
    this.connectedClients = new Gauge({ name: 'edgehub_connected_clients', help: 'Modules connected to the hub.', registers });
    this.clientConnects = new Counter({ name: 'edgehub_client_connect_success_total', help: 'Successful module connections, per module.', labelNames: ['id'], registers });
    this.refusedConnections = new Counter({ name: 'edgehub_refused_connections_total', help: 'Connections refused: unsupported protocols (amqp, websocket, unknown) and failed authentication (mqtt).', labelNames: ['protocol', 'reason'], registers });
    this.storeRefusals = new Counter({ name: 'edgehub_store_refusals_total', help: 'Messages refused because the store could not take them (disk budget full, store error).', labelNames: ['reason'], registers });
    this.storeBytes = new Gauge({ name: 'edgehub_store_bytes', help: 'Bytes the message store holds.', registers });
    this.storeFull = new Gauge({ name: 'edgehub_store_full', help: '1 while the disk budget is exhausted and publishes are refused.', registers });
    this.redeliveries = new Counter({ name: 'edgehub_messages_redelivered_total', help: 'Messages sent again to an endpoint (after a reconnect, a restart or a failed send).', labelNames: ['endpoint'], registers });
    this.upstreamConnected = new Gauge({ name: 'edgehub_upstream_connected', help: '1 while IoT Hub is reachable, 0 while offline, -1 when there is no IoT Hub (kubectl mode).', registers });
    this.routeReloads = new Counter({ name: 'edgehub_route_reloads_total', help: 'Route file reloads, by result (applied, rejected).', labelNames: ['result'], registers });
    this.twinRequests = new Counter({ name: 'edgehub_twin_requests_total', help: 'Module twin requests, by operation and where the answer came from (upstream, local).', labelNames: ['operation', 'served_from'], registers });
    this.directMethods = new Counter({ name: 'edgehub_direct_methods_total', help: 'Direct method calls from IoT Hub forwarded to modules, by result.', labelNames: ['result'], registers });
  }

  private readonly children = new Map<string, { sent: { inc(): void }; duration: { observe(v: number): void } }>();
  private readonly receivedChildren = new Map<string, { inc(): void }>();

  /**
   * Counts one delivered message. The labelled children are looked up once per (sender, endpoint, input):
   * prom-client hashes the label object on every call otherwise, a measurable share of a message's cost.
   */
  delivered(from: string, to: string, input: string, seconds: number): void {
    const key = `${from}\u0000${to}\u0000${input}`;
    let child = this.children.get(key);
    if (!child) {
      child = { sent: this.sent.labels({ from, to, to_route_input: input }), duration: this.processDuration.labels({ from, to }) };
      this.children.set(key, child);
    }
    child.sent.inc();
    child.duration.observe(seconds);
  }

  /** Counts one message received from a module's output. */
  receivedFrom(id: string, output: string): void {
    const key = `${id}\u0000${output}`;
    let child = this.receivedChildren.get(key);
    if (!child) {
      child = this.received.labels({ id, route_output: output });
      this.receivedChildren.set(key, child);
    }
    child.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
