// Cloud-to-device messages for devices, as IoT Hub keeps them: a queue per device (at most 50 messages),
// each message delivered over MQTT on devices/{id}/messages/devicebound/{property bag} at QoS 1. Over MQTT
// the PUBACK completes the message (MQTT devices can neither reject nor abandon). Expired messages leave
// the queue. Feedback records (asked for with the message's `ack`) collect until a service feedback
// receiver takes them (see amqp.ts).
import { randomUUID } from 'node:crypto';
import { formatPropertyBag } from '../iothub-mqtt/index.ts';
import type { Identity } from '../iothub-mqtt/index.ts';
import { HubError } from './errors.ts';

export type FeedbackAck = 'none' | 'positive' | 'negative' | 'full';

/** A message as the service sent it. */
export interface CloudToDeviceRequest {
  body: Buffer;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  contentType?: string;
  contentEncoding?: string;
  /** Absolute expiry; default: enqueue time + the hub's default TTL (1 hour). */
  expiresAt?: Date;
  ack?: FeedbackAck;
  properties?: Record<string, string>;
}

export type CloudToDeviceState = 'enqueued' | 'delivering' | 'completed' | 'expired';

export interface CloudToDeviceMessage {
  deviceId: string;
  /** The hub's own id for the message (the lock token on AMQP and HTTP devices). */
  lockToken: string;
  messageId: string | undefined;
  correlationId: string | undefined;
  userId: string | undefined;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  body: Buffer;
  properties: Record<string, string>;
  ack: FeedbackAck;
  enqueuedTimeUtc: string;
  expiryTimeUtc: string;
  /** Whether the service gave the expiry (then the device sees it as `$.exp`). */
  explicitExpiry: boolean;
  state: CloudToDeviceState;
  deliveryCount: number;
}

/** One feedback record, in the JSON IoT Hub's feedback batches hold. */
export interface FeedbackRecord {
  originalMessageId: string;
  deviceGenerationId: string;
  deviceId: string;
  enqueuedTimeUtc: string;
  statusCode: 'Success' | 'Expired' | 'DeliveryCountExceeded' | 'Rejected' | 'Purged';
  description: string;
}

export interface CloudToDeviceOptions {
  /** QoS 1 delivery; resolves on the device's PUBACK, rejects when the delivery is abandoned. */
  deliver: (identity: Identity, topic: string, payload: Buffer) => Promise<void>;
  isSubscribed: (identity: Identity, topic: string) => boolean;
  /** The device's generation id; throws HubError DeviceNotFound for an unknown device. */
  generationId: (deviceId: string) => string;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/** IoT Hub's documented limits: 50 messages per device queue, a default time to live of one hour. */
export const maxQueueDepth = 50;
export const defaultTtlMs = 60 * 60 * 1000;
const feedbackLimit = 10_000;
const finishedLimit = 1000;

export function deviceboundTopic(message: CloudToDeviceMessage): string {
  const systemProperties: Record<string, string> = {};
  if (message.messageId !== undefined) systemProperties['$.mid'] = message.messageId;
  systemProperties['$.to'] = `/devices/${message.deviceId}/messages/devicebound`;
  if (message.explicitExpiry) systemProperties['$.exp'] = message.expiryTimeUtc;
  if (message.correlationId !== undefined) systemProperties['$.cid'] = message.correlationId;
  if (message.userId !== undefined) systemProperties['$.uid'] = message.userId;
  if (message.contentType !== undefined) systemProperties['$.ct'] = message.contentType;
  if (message.contentEncoding !== undefined) systemProperties['$.ce'] = message.contentEncoding;
  return `devices/${message.deviceId}/messages/devicebound/${formatPropertyBag({ systemProperties, properties: message.properties })}`;
}

const positiveAcks: readonly FeedbackAck[] = ['positive', 'full'];
const negativeAcks: readonly FeedbackAck[] = ['negative', 'full'];

export class CloudToDeviceQueues {
  private readonly options: CloudToDeviceOptions;
  private readonly queues = new Map<string, CloudToDeviceMessage[]>();
  private readonly pumping = new Set<string>();
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  private readonly finished: CloudToDeviceMessage[] = [];
  private readonly pendingFeedback: FeedbackRecord[] = [];
  private readonly feedbackLog: FeedbackRecord[] = [];
  private feedbackListener: ((records: FeedbackRecord[]) => boolean) | undefined;
  private stopped = false;

  constructor(options: CloudToDeviceOptions) {
    this.options = options;
  }

  /** Queues a message for a device and starts delivering if the device listens. Throws HubError for an unknown device or a full queue. */
  enqueue(deviceId: string, request: CloudToDeviceRequest): CloudToDeviceMessage {
    this.options.generationId(deviceId);
    const queue = this.queues.get(deviceId) ?? [];
    if (queue.length >= maxQueueDepth) {
      throw new HubError('DeviceMaximumQueueDepthExceeded', `Device ${deviceId} already has ${maxQueueDepth} cloud-to-device messages queued.`);
    }
    const now = Date.now();
    const expiresAt = request.expiresAt?.getTime() ?? now + defaultTtlMs;
    const message: CloudToDeviceMessage = {
      deviceId,
      lockToken: randomUUID(),
      messageId: request.messageId,
      correlationId: request.correlationId,
      userId: request.userId,
      contentType: request.contentType,
      contentEncoding: request.contentEncoding,
      body: request.body,
      properties: request.properties ?? {},
      ack: request.ack ?? 'none',
      enqueuedTimeUtc: new Date(now).toISOString(),
      expiryTimeUtc: new Date(expiresAt).toISOString(),
      explicitExpiry: request.expiresAt !== undefined,
      state: 'enqueued',
      deliveryCount: 0,
    };
    queue.push(message);
    this.queues.set(deviceId, queue);
    this.armExpiry(message, expiresAt - now);
    this.pump(deviceId);
    return message;
  }

  /** Every message still queued (oldest first), then the last finished ones. */
  messages(deviceId?: string): CloudToDeviceMessage[] {
    const queued = [...this.queues.values()].flat();
    return [...this.finished, ...queued].filter((m) => deviceId === undefined || m.deviceId === deviceId);
  }

  /** Every feedback record produced so far (the last 10 000), whether or not a receiver took it. */
  feedback(): FeedbackRecord[] {
    return [...this.feedbackLog];
  }

  /**
   * Sets who takes feedback batches (one service receiver at a time); it returns false when it cannot take them
   * now. Records produced while nobody takes them wait, as on IoT Hub, and go to the next listener.
   */
  setFeedbackListener(listener: ((records: FeedbackRecord[]) => boolean) | undefined): void {
    this.feedbackListener = listener;
    this.flushFeedback();
  }

  /** Delivers what the device's queue holds if the device is connected and subscribed; call on connect and subscribe. */
  pump(deviceId: string): void {
    if (this.stopped || this.pumping.has(deviceId)) return;
    const head = this.queues.get(deviceId)?.[0];
    if (!head) return;
    const identity: Identity = { deviceId, moduleId: undefined };
    const topic = deviceboundTopic(head);
    if (!this.options.isSubscribed(identity, topic)) return;
    this.pumping.add(deviceId);
    head.state = 'delivering';
    head.deliveryCount += 1;
    this.options.deliver(identity, topic, head.body).then(
      () => {
        this.pumping.delete(deviceId);
        this.complete(head);
        this.pump(deviceId);
      },
      (error: unknown) => {
        // Abandoned (disconnect with a clean session, or the hub stopping): the message stays first in line.
        this.pumping.delete(deviceId);
        if (head.state === 'delivering') head.state = 'enqueued';
        this.options.log('cloud-to-device delivery abandoned; kept queued', { deviceId, error: error instanceof Error ? error.message : String(error) });
      },
    );
  }

  /** Drops a deleted device's queue; its messages' senders get Purged feedback where they asked for negative feedback. */
  purge(deviceId: string, generationId: string): number {
    const queue = this.queues.get(deviceId) ?? [];
    this.queues.delete(deviceId);
    for (const message of queue) {
      this.disarmExpiry(message);
      this.finish(message, 'expired');
      if (negativeAcks.includes(message.ack)) this.addFeedback(message, generationId, 'Purged', 'Message purged');
    }
    return queue.length;
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.expiryTimers.values()) clearTimeout(timer);
    this.expiryTimers.clear();
  }

  private complete(message: CloudToDeviceMessage): void {
    this.remove(message);
    this.finish(message, 'completed');
    if (positiveAcks.includes(message.ack)) this.addFeedback(message, this.generationOf(message.deviceId), 'Success', 'Success');
  }

  private expire(message: CloudToDeviceMessage): void {
    // A message on its way to the device is settled by the device's PUBACK, not by the clock.
    if (message.state !== 'enqueued') return;
    this.remove(message);
    this.finish(message, 'expired');
    if (negativeAcks.includes(message.ack)) this.addFeedback(message, this.generationOf(message.deviceId), 'Expired', 'Message Expired');
  }

  private generationOf(deviceId: string): string {
    try {
      return this.options.generationId(deviceId);
    } catch {
      return '';
    }
  }

  private remove(message: CloudToDeviceMessage): void {
    this.disarmExpiry(message);
    const queue = this.queues.get(message.deviceId);
    const index = queue?.indexOf(message) ?? -1;
    if (queue && index >= 0) queue.splice(index, 1);
    if (queue?.length === 0) this.queues.delete(message.deviceId);
  }

  private finish(message: CloudToDeviceMessage, state: 'completed' | 'expired'): void {
    message.state = state;
    this.finished.push(message);
    if (this.finished.length > finishedLimit) this.finished.shift();
  }

  private armExpiry(message: CloudToDeviceMessage, inMs: number): void {
    const timer = setTimeout(() => {
      this.expiryTimers.delete(message.lockToken);
      this.expire(message);
    }, Math.max(0, Math.min(inMs, 2 ** 31 - 1)));
    timer.unref();
    this.expiryTimers.set(message.lockToken, timer);
  }

  private disarmExpiry(message: CloudToDeviceMessage): void {
    const timer = this.expiryTimers.get(message.lockToken);
    if (timer) clearTimeout(timer);
    this.expiryTimers.delete(message.lockToken);
  }

  private addFeedback(message: CloudToDeviceMessage, deviceGenerationId: string, statusCode: FeedbackRecord['statusCode'], description: string): void {
    const record: FeedbackRecord = {
      originalMessageId: message.messageId ?? '',
      deviceGenerationId,
      deviceId: message.deviceId,
      enqueuedTimeUtc: new Date().toISOString(),
      statusCode,
      description,
    };
    this.feedbackLog.push(record);
    if (this.feedbackLog.length > feedbackLimit) this.feedbackLog.shift();
    this.pendingFeedback.push(record);
    if (this.pendingFeedback.length > feedbackLimit) this.pendingFeedback.shift();
    this.flushFeedback();
  }

  private flushFeedback(): void {
    if (!this.feedbackListener || this.pendingFeedback.length === 0) return;
    const batch = [...this.pendingFeedback];
    if (this.feedbackListener(batch)) this.pendingFeedback.splice(0, batch.length);
  }
}
