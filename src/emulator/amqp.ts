// The service side of AMQP 1.0 that azure-iothub's Client speaks (on 5671 over TLS, and over WebSockets with
// the `AMQPWSB10` subprotocol): claims-based security on `$cbs` (a put-token with the service policy's SAS),
// cloud-to-device sends on `/messages/devicebound`, and feedback batches on `/messages/serviceBound/feedback`.
// rhea (the AMQP library azure-iothub itself uses) does the protocol; this file only decides what each link does.
// Not emulated here: the device side of AMQP, file-upload notifications, the Event Hubs-compatible endpoint.
import type { Duplex } from 'node:stream';
import rhea from 'rhea';
import type { Connection, EventContext, Message, Sender } from 'rhea';
import type { WebSocket } from 'ws';
import type { CloudToDeviceQueues, FeedbackAck, FeedbackRecord } from './c2d.ts';
import { HubError } from './errors.ts';

export const amqpWebSocketSubprotocol = 'AMQPWSB10';
const cbsAddress = '$cbs';
const deviceboundAddress = '/messages/devicebound';
const feedbackAddress = '/messages/servicebound/feedback';
const feedbackContentType = 'application/vnd.microsoft.iothub.feedback.json';

export interface AmqpServiceOptions {
  c2d: CloudToDeviceQueues;
  /** Checks a put-token's SAS; resolves when it grants service access, throws with the reason otherwise. */
  checkServiceToken: (token: string) => void;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

interface ConnectionState {
  authorized: boolean;
  cbsReplies: Sender | undefined;
}

function addressOf(context: EventContext, side: 'source' | 'target'): string {
  const link = (context.sender ?? context.receiver) as unknown as { remote?: { attach?: Record<string, { address?: string } | undefined> } };
  return (link.remote?.attach?.[side]?.address ?? '').toLowerCase();
}

function idText(id: unknown): string | undefined {
  if (id === undefined || id === null) return undefined;
  if (Buffer.isBuffer(id) && id.length === 16) return rhea.uuid_to_string(id);
  return String(id);
}

function bodyBytes(body: unknown): Buffer {
  const content = (body as { typecode?: number; content?: unknown } | undefined)?.content ?? body;
  if (Buffer.isBuffer(content)) return content;
  if (content === undefined || content === null) return Buffer.alloc(0);
  return Buffer.from(typeof content === 'string' ? content : JSON.stringify(content));
}

function stringProperties(properties: Record<string, unknown> | undefined): { ack: FeedbackAck; properties: Record<string, string> } {
  const result: Record<string, string> = {};
  let ack: FeedbackAck = 'none';
  for (const [key, value] of Object.entries(properties ?? {})) {
    if (key === 'iothub-ack') {
      if (value === 'positive' || value === 'negative' || value === 'full' || value === 'none') ack = value;
      continue;
    }
    result[key] = String(value);
  }
  return { ack, properties: result };
}

/** The AMQP error condition IoT Hub answers a refused send with; azure-iothub maps these to its error classes. */
function conditionOf(error: unknown): { condition: string; description: string } {
  if (error instanceof HubError) {
    const condition = error.code === 'DeviceNotFound' ? 'amqp:not-found'
      : error.code === 'DeviceMaximumQueueDepthExceeded' ? 'amqp:resource-limit-exceeded'
        : error.code === 'IotHubUnauthorizedAccess' ? 'amqp:unauthorized-access'
          : error.status < 500 ? 'amqp:invalid-field' : 'amqp:internal-error';
    return { condition, description: error.message };
  }
  return { condition: 'amqp:internal-error', description: error instanceof Error ? error.message : String(error) };
}

export class AmqpServiceEndpoint {
  private readonly options: AmqpServiceOptions;
  private readonly container = rhea.create_container({ id: 'iothub-emulator', autoaccept: false });
  private readonly states = new WeakMap<Connection, ConnectionState>();
  private readonly feedbackSenders = new Set<Sender>();
  private readonly connections = new Set<Connection>();

  constructor(options: AmqpServiceOptions) {
    this.options = options;
    this.container.on('connection_open', (context: EventContext) => this.state(context.connection));
    this.container.on('sender_open', (context: EventContext) => this.onSenderOpen(context));
    this.container.on('sender_close', (context: EventContext) => this.onSenderGone(context));
    this.container.on('receiver_open', (context: EventContext) => this.onReceiverOpen(context));
    this.container.on('message', (context: EventContext) => this.onMessage(context));
    this.container.on('sendable', () => this.offerFeedback());
    this.container.on('disconnected', (context: EventContext) => this.onDisconnected(context));
    this.container.on('connection_close', (context: EventContext) => this.onDisconnected(context));
    this.container.on('error', (error: unknown) => this.options.log('AMQP error', { error: error instanceof Error ? error.message : String(error) }));
  }

  /** Serves one accepted TLS connection. */
  handle(socket: Duplex): void {
    this.container.create_connection({}).accept(socket as never);
  }

  /** Serves one accepted WebSocket (subprotocol AMQPWSB10). */
  handleWebSocket(socket: WebSocket): void {
    this.container.websocket_accept(socket as never, {});
  }

  stop(): void {
    this.options.c2d.setFeedbackListener(undefined);
    for (const connection of this.connections) connection.close();
    this.connections.clear();
  }

  private state(connection: Connection): ConnectionState {
    let state = this.states.get(connection);
    if (!state) {
      state = { authorized: false, cbsReplies: undefined };
      this.states.set(connection, state);
      this.connections.add(connection);
    }
    return state;
  }

  private onSenderOpen(context: EventContext): void {
    const sender = context.sender;
    if (!sender) return;
    const address = addressOf(context, 'source');
    const state = this.state(context.connection);
    if (address === cbsAddress) {
      state.cbsReplies = sender;
      return;
    }
    if (address === feedbackAddress) {
      if (!state.authorized) {
        sender.close({ condition: 'amqp:unauthorized-access', description: 'Put a service token on $cbs first.' });
        return;
      }
      this.feedbackSenders.add(sender);
      this.options.c2d.setFeedbackListener((records) => this.sendFeedback(records));
      return;
    }
    sender.close({ condition: 'amqp:not-found', description: `The emulator serves no messages from ${address}.` });
  }

  private onSenderGone(context: EventContext): void {
    if (context.sender) this.feedbackSenders.delete(context.sender);
  }

  private onReceiverOpen(context: EventContext): void {
    const address = addressOf(context, 'target');
    if (address === cbsAddress || address === deviceboundAddress) return;
    context.receiver?.close({ condition: 'amqp:not-found', description: `The emulator takes no messages at ${address}.` });
  }

  private onDisconnected(context: EventContext): void {
    this.connections.delete(context.connection);
    for (const sender of [...this.feedbackSenders]) if (sender.connection === context.connection) this.feedbackSenders.delete(sender);
  }

  private onMessage(context: EventContext): void {
    const message = context.message;
    const delivery = context.delivery;
    if (!message || !delivery) return;
    const address = addressOf(context, 'target');
    if (address === cbsAddress) {
      delivery.accept();
      this.putToken(context, message);
      return;
    }
    try {
      if (!this.state(context.connection).authorized) throw new HubError('IotHubUnauthorizedAccess', 'Unauthorized. Put a service token on $cbs first.');
      this.enqueue(message);
      delivery.accept();
    } catch (error) {
      const refused = conditionOf(error);
      this.options.log('cloud-to-device send refused', refused);
      delivery.reject(refused);
    }
  }

  private putToken(context: EventContext, request: Message): void {
    const state = this.state(context.connection);
    const properties = (request.application_properties ?? {}) as Record<string, unknown>;
    let status = 200;
    let description = 'OK';
    try {
      if (properties.operation !== 'put-token') throw new Error(`unsupported $cbs operation ${String(properties.operation)}`);
      this.options.checkServiceToken(String(request.body ?? ''));
      state.authorized = true;
    } catch (error) {
      status = 401;
      description = error instanceof Error ? error.message : String(error);
      this.options.log('AMQP put-token refused', { reason: description });
    }
    const reply: Message = {
      body: undefined,
      ...(request.message_id === undefined ? {} : { correlation_id: request.message_id }),
      ...(request.reply_to === undefined ? {} : { to: request.reply_to }),
      application_properties: { 'status-code': status, 'status-description': description },
    };
    state.cbsReplies?.send(reply);
  }

  private enqueue(message: Message): void {
    const to = String(message.to ?? '');
    const match = /^\/devices\/([^/]+)\/messages\/devicebound$/i.exec(to);
    if (!match?.[1]) throw new HubError('ArgumentInvalid', `The message's to (${to}) is not /devices/{deviceId}/messages/devicebound.`);
    const deviceId = decodeURIComponent(match[1]);
    const { ack, properties } = stringProperties(message.application_properties as Record<string, unknown> | undefined);
    // rhea decodes an AMQP timestamp as a Date, though its typings say number.
    const expiry = message.absolute_expiry_time as unknown;
    this.options.c2d.enqueue(deviceId, {
      body: bodyBytes(message.body),
      ...(idText(message.message_id) === undefined ? {} : { messageId: idText(message.message_id) }),
      ...(idText(message.correlation_id) === undefined ? {} : { correlationId: idText(message.correlation_id) }),
      ...(message.user_id === undefined ? {} : { userId: bodyBytes(message.user_id).toString('utf8') }),
      ...(message.content_type === undefined ? {} : { contentType: String(message.content_type) }),
      ...(message.content_encoding === undefined ? {} : { contentEncoding: String(message.content_encoding) }),
      ...(expiry instanceof Date || typeof expiry === 'number' ? { expiresAt: new Date(expiry) } : {}),
      ack,
      properties,
    });
  }

  /** Sends one batch to the first feedback receiver with credit; false when none can take it now. */
  private sendFeedback(records: FeedbackRecord[]): boolean {
    const sender = [...this.feedbackSenders].find((s) => s.sendable());
    if (!sender) return false;
    sender.send({
      message_id: rhea.generate_uuid(),
      content_type: feedbackContentType,
      body: rhea.message.data_section(Buffer.from(JSON.stringify(records))),
    });
    return true;
  }

  private offerFeedback(): void {
    if (this.feedbackSenders.size > 0) this.options.c2d.setFeedbackListener((records) => this.sendFeedback(records));
  }
}
