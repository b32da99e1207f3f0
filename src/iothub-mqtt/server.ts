// A lean MQTT 3.1.1 server core for IoT Hub's dialect, on mqtt-packet (the parser and writer that mqtt.js
// and aedes use). IoT Hub's dialect needs little of a general broker: clients never publish to each other
// (the hub answers or takes every PUBLISH itself), there are no retained messages and no QoS 2. So this
// core keeps only what the dialect uses: CONNECT with a synchronous check, per-client-id sessions
// (subscriptions and unacknowledged QoS 1 deliveries survive a reconnect with clean=false), keep-alive,
// client-id takeover, Will messages, and ordered PUBACKs that wait for the owner's promise.
//
// Why not aedes any more: every packet went through its generic pipeline (persistence layer, mqemitter,
// topic trie, per-packet callbacks) for features this dialect never uses; the hub's profile showed that
// pipeline as the largest cost per message. Here a PUBLISH is parsed and handed to the owner in one call,
// and what a connection writes in one event-loop pass goes out in one socket write (one TLS record
// batch), which also batches PUBACKs.
import type { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import type { IConnectPacket, IPublishPacket, IPubackPacket, ISubscribePacket, IUnsubscribePacket, Packet } from 'mqtt-packet';
import { PacketWriter } from './packet-writer.ts';
import { topicMatches } from './topics.ts';

/** Unacknowledged QoS 1 publishes a connection may have before its socket stops being read. */
const inboundWindow = 1_000;
/** Bytes waiting in a socket's write buffer above which reading from that connection pauses. */
const writeHighWater = 4 * 1024 * 1024;
const maxClientIdLength = 300;
/** A connection that has not sent CONNECT by then is closed. */
const connectTimeoutMs = 30_000;

export type ConnectRefusal = { returnCode: 2 | 3 | 4 | 5; reason: string };

/** A QoS 1 delivery written to a session and not yet acknowledged. */
interface Outgoing {
  topic: string;
  payload: Buffer;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** What outlives a connection when it asked for clean=false: its subscriptions and unacknowledged deliveries. */
export class Session {
  readonly clientId: string;
  /** Granted filters and their QoS; changed through subscribe() and unsubscribe() only. */
  readonly subscriptions: ReadonlyMap<string, 0 | 1> = new Map<string, 0 | 1>();
  readonly outgoing = new Map<number, Outgoing>();
  /**
   * Whether a topic matches a subscription, per topic asked: the hub asks before every batch of deliveries,
   * for the same few topics. Emptied whenever the subscriptions change.
   */
  private readonly matches = new Map<string, boolean>();
  private lastMessageId = 0;

  constructor(clientId: string) {
    this.clientId = clientId;
  }

  subscribe(filter: string, qos: 0 | 1): void {
    (this.subscriptions as Map<string, 0 | 1>).set(filter, qos);
    this.matches.clear();
  }

  unsubscribe(filter: string): void {
    (this.subscriptions as Map<string, 0 | 1>).delete(filter);
    this.matches.clear();
  }

  isSubscribed(topic: string): boolean {
    let matched = this.matches.get(topic);
    if (matched === undefined) {
      matched = false;
      for (const filter of this.subscriptions.keys()) if (topicMatches(filter, topic)) matched = true;
      if (this.matches.size < 256) this.matches.set(topic, matched);
    }
    return matched;
  }

  nextMessageId(): number {
    // Packet ids in use are skipped; 65,535 deliveries unacknowledged at once is far beyond any window.
    for (let i = 0; i < 65_535; i++) {
      this.lastMessageId = (this.lastMessageId % 65_535) + 1;
      if (!this.outgoing.has(this.lastMessageId)) return this.lastMessageId;
    }
    throw new Error(`session ${this.clientId} has 65,535 deliveries unacknowledged`);
  }

  abandon(error: Error): void {
    const pending = [...this.outgoing.values()];
    this.outgoing.clear();
    for (const o of pending) o.reject(error);
  }
}

/** What the owner (IotHubBroker) decides; the core does the protocol. */
export interface ServerHooks<T> {
  /** Checks a CONNECT; returns the owner's per-connection state, or a refusal (CONNACK code and why). */
  authenticate(connect: IConnectPacket): { state: T } | ConnectRefusal;
  /** The CONNACK went out. */
  ready(connection: MqttConnection<T>): void;
  /**
   * A PUBLISH (or a Will). `payload` may be a view into the connection's read buffer: an owner that keeps
   * it beyond handling it copies it (Buffer.from), or it keeps the whole chunk alive. For QoS 1 the PUBACK goes out, in order, once the returned promise resolves;
   * a throw or a rejection closes the connection without PUBACK (MQTT 3.1.1's only refusal).
   */
  publish(connection: MqttConnection<T>, topic: string, payload: Buffer, qos: 0 | 1): void | Promise<void>;
  /** Whether to grant a subscription (QoS 2 is never granted). */
  authorizeSubscribe(connection: MqttConnection<T>, topic: string): boolean;
  subscribed(connection: MqttConnection<T>): void;
  /** The connection is gone; `error` says why when it did not end with DISCONNECT. */
  closed(connection: MqttConnection<T>, error: Error | undefined): void;
  log(message: string, fields?: Record<string, unknown>): void;
}

/** A PUBLISH awaiting its owner's promise, so PUBACKs go out in the order the publishes came. */
interface InboundAck {
  messageId: number;
  done: boolean;
}

/** One client connection: the parser, the batched writer, keep-alive, and the ordered PUBACKs. */
export class MqttConnection<T> {
  readonly socket: Duplex;
  state: T | undefined;
  session: Session | undefined;
  clientId = '';
  clean = true;
  /** Seconds; 0 means none. */
  keepalive = 0;
  lastSeenMs = Date.now();
  readonly openedMs = Date.now();
  private readonly server: MqttServerCore<T>;
  private readonly parser: ReturnType<typeof mqttPacket.parser>;
  private connected = false;
  private closedFlag = false;
  private will: { topic: string; payload: Buffer; qos: 0 | 1 } | undefined;
  private readonly writer: PacketWriter;
  private readonly inbound: InboundAck[] = [];
  private inboundHead = 0;
  private pausedForWindow = false;

  constructor(server: MqttServerCore<T>, socket: Duplex) {
    this.server = server;
    this.socket = socket;
    this.writer = new PacketWriter(socket, () => {
      if (socket.writableLength > writeHighWater) socket.pause();
    });
    this.parser = mqttPacket.parser({ protocolVersion: 4 });
    this.parser.on('packet', (packet: Packet) => {
      // A throw from the owner's hooks ends this connection, not the process.
      try {
        this.onPacket(packet);
      } catch (error) {
        this.server.hooks.log('closing a connection after an internal error', { clientId: this.clientId, error: asError(error).message });
        this.close(asError(error), true);
      }
    });
    this.parser.on('error', (error: Error) => this.onParseError(error));
    socket.on('data', (chunk: Buffer) => {
      this.lastSeenMs = Date.now();
      this.parser.parse(chunk);
    });
    socket.on('error', (error: Error) => this.close(error));
    socket.on('end', () => this.close(new Error('the client closed its end')));
    socket.on('close', () => this.close(new Error('the connection closed')));
    socket.on('drain', () => this.maybeResume());
    socket.resume();
  }

  get isConnected(): boolean {
    return this.connected;
  }

  get isOpen(): boolean {
    return this.connected && !this.closedFlag;
  }

  /** Whether reading is paused because the owner has a full window of publishes to settle. */
  get waitingOnOwner(): boolean {
    return this.pausedForWindow;
  }

  /** Writes a PUBLISH with QoS 0. */
  publish0(topic: string, payload: Buffer): void {
    this.write({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
  }

  /** Writes a QoS 1 delivery into the session; settles on the client's PUBACK (or the session's end). */
  deliver(topic: string, payload: Buffer): Promise<void> {
    const session = this.session as Session;
    // A closed clean session was abandoned already: a delivery added to it would never settle.
    if (this.closedFlag && this.clean) return Promise.reject(new DeliveryAbandoned(`${this.clientId} is not connected`));
    return new Promise<void>((resolve, reject) => {
      const messageId = session.nextMessageId();
      session.outgoing.set(messageId, { topic, payload, resolve, reject });
      this.write({ cmd: 'publish', topic, payload, qos: 1, messageId, retain: false, dup: false });
    });
  }

  /** Closes the connection (no Will when the server closes it on purpose with `quiet`). */
  close(error?: Error, quiet = false): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (quiet) this.will = undefined;
    this.flush();
    // What was just written (a refusal's CONNACK) still goes out: end() flushes, then destroy() once the
    // socket has finished, or after a second when the peer does not read.
    if (this.socket.writableLength > 0 && !this.socket.destroyed) {
      const timer = setTimeout(() => this.socket.destroy(), 1_000);
      timer.unref();
      this.socket.end(() => {
        clearTimeout(timer);
        this.socket.destroy();
      });
    } else {
      this.socket.destroy();
    }
    this.server.onClosed(this, error, this.will);
  }

  /** The parser refused the bytes: a protocol violation, so the connection closes. */
  private onParseError(error: Error): void {
    // MQTT 3.1.1 §3.1.2.2: an unsupported protocol level is answered with CONNACK 1, then the close.
    // mqtt-packet itself refuses levels other than 3, 4 and 5 while parsing the CONNECT (5 comes through
    // and onConnect answers it), so that CONNACK has to go out from here.
    if (!this.connected && error.message === 'Invalid protocol version') this.write({ cmd: 'connack', returnCode: 1, sessionPresent: false });
    this.close(error);
  }

  /** The client sent DISCONNECT: no Will. */
  private disconnect(): void {
    this.will = undefined;
    this.close(undefined);
  }

  private write(packet: Packet): void {
    if (this.closedFlag) return;
    this.writer.write(packet);
  }

  private flush(): void {
    this.writer.flush();
  }

  private maybeResume(): void {
    if (this.closedFlag || this.pausedForWindow) return;
    if (this.socket.writableLength <= writeHighWater) this.socket.resume();
  }

  private onPacket(packet: Packet): void {
    if (this.closedFlag) return;
    if (!this.connected) {
      if (packet.cmd !== 'connect') return this.close(new Error(`the first packet was ${packet.cmd}, not CONNECT`));
      return this.onConnect(packet);
    }
    switch (packet.cmd) {
      case 'publish':
        return this.onPublish(packet);
      case 'puback':
        return this.onPuback(packet);
      case 'subscribe':
        return this.onSubscribe(packet);
      case 'unsubscribe':
        return this.onUnsubscribe(packet);
      case 'pingreq':
        return this.write({ cmd: 'pingresp' });
      case 'disconnect':
        return this.disconnect();
      default:
        // A second CONNECT, QoS 2 flow packets, or server-only packets: a protocol violation.
        return this.close(new Error(`unexpected ${packet.cmd} packet`));
    }
  }

  private onConnect(packet: IConnectPacket): void {
    const refuse = (returnCode: number, reason: string) => {
      this.write({ cmd: 'connack', returnCode, sessionPresent: false });
      this.server.hooks.log('connection refused', { clientId: packet.clientId, reason });
      this.close(new Error(reason), true);
    };
    if (packet.protocolVersion !== 4 && packet.protocolVersion !== 3) return refuse(1, `MQTT protocol level ${packet.protocolVersion} is not 3.1.1`);
    if (!packet.clientId || packet.clientId.length > maxClientIdLength) return refuse(2, 'the client id is empty or too long');
    const decided = this.server.hooks.authenticate(packet);
    if ('returnCode' in decided) return refuse(decided.returnCode, decided.reason);
    this.state = decided.state;
    this.clientId = packet.clientId;
    this.clean = packet.clean !== false;
    this.keepalive = packet.keepalive ?? 0;
    if (packet.will) {
      const qos = packet.will.qos === 1 ? 1 : 0;
      this.will = { topic: packet.will.topic, payload: Buffer.from(packet.will.payload ?? ''), qos };
    }
    const { session, present } = this.server.takeOver(this);
    this.session = session;
    this.connected = true;
    this.write({ cmd: 'connack', returnCode: 0, sessionPresent: present });
    this.server.hooks.ready(this);
    // Deliveries the last connection of this session left unacknowledged go again, as DUP.
    for (const [messageId, o] of session.outgoing) this.write({ cmd: 'publish', topic: o.topic, payload: o.payload, qos: 1, messageId, dup: true, retain: false });
  }

  private onPublish(packet: IPublishPacket): void {
    if (packet.qos === 2) return this.close(new Error('QoS 2 is not supported'));
    // Not copied: the payload may share memory with the read chunk (see ServerHooks.publish).
    const payload = packet.payload as Buffer;
    if (packet.qos === 0) {
      try {
        const taken = this.server.hooks.publish(this, packet.topic, payload, 0);
        if (taken) taken.catch((error: unknown) => this.close(asError(error)));
      } catch (error) {
        this.close(asError(error));
      }
      return;
    }
    const ack: InboundAck = { messageId: packet.messageId as number, done: false };
    this.inbound.push(ack);
    if (this.inbound.length - this.inboundHead >= inboundWindow && !this.pausedForWindow) {
      this.pausedForWindow = true;
      this.socket.pause();
    }
    let taken: void | Promise<void>;
    try {
      taken = this.server.hooks.publish(this, packet.topic, payload, 1);
    } catch (error) {
      return this.close(asError(error));
    }
    if (!taken) return this.acknowledge(ack);
    taken.then(() => this.acknowledge(ack), (error: unknown) => this.close(asError(error)));
  }

  private acknowledge(ack: InboundAck): void {
    ack.done = true;
    if (this.closedFlag) return;
    while (this.inboundHead < this.inbound.length && (this.inbound[this.inboundHead] as InboundAck).done) {
      this.write({ cmd: 'puback', messageId: (this.inbound[this.inboundHead] as InboundAck).messageId });
      this.inboundHead++;
    }
    if (this.inboundHead > 1024 && this.inboundHead * 2 > this.inbound.length) {
      this.inbound.splice(0, this.inboundHead);
      this.inboundHead = 0;
    }
    if (this.pausedForWindow && this.inbound.length - this.inboundHead < inboundWindow / 2) {
      this.pausedForWindow = false;
      // The client's packets (PINGREQs too) waited unread while the owner caught up: its keep-alive
      // period starts again from here.
      this.lastSeenMs = Date.now();
      this.maybeResume();
    }
  }

  private onPuback(packet: IPubackPacket): void {
    const session = this.session as Session;
    const o = session.outgoing.get(packet.messageId as number);
    if (!o) return;
    session.outgoing.delete(packet.messageId as number);
    o.resolve();
  }

  private onSubscribe(packet: ISubscribePacket): void {
    const session = this.session as Session;
    const granted = packet.subscriptions.map((s) => {
      if (s.qos === 2 || !this.server.hooks.authorizeSubscribe(this, s.topic)) {
        this.server.hooks.log('subscription refused', { clientId: this.clientId, topic: s.topic });
        return 128;
      }
      const qos = s.qos === 1 ? 1 : 0;
      session.subscribe(s.topic, qos);
      return qos;
    });
    this.write({ cmd: 'suback', messageId: packet.messageId, granted });
    this.server.hooks.subscribed(this);
  }

  private onUnsubscribe(packet: IUnsubscribePacket): void {
    const session = this.session as Session;
    for (const topic of packet.unsubscriptions) session.unsubscribe(topic);
    this.write({ cmd: 'unsuback', messageId: packet.messageId, granted: [] });
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** The connections and sessions of one server. */
export class MqttServerCore<T> {
  readonly hooks: ServerHooks<T>;
  private readonly current = new Map<string, MqttConnection<T>>();
  private readonly sessions = new Map<string, Session>();
  private readonly all = new Set<MqttConnection<T>>();
  private readonly keepaliveTimer: NodeJS.Timeout;

  constructor(hooks: ServerHooks<T>) {
    this.hooks = hooks;
    // One timer for every connection's keep-alive: refreshing a timer per packet costs more than the check.
    this.keepaliveTimer = setInterval(() => this.checkKeepalives(), 1_000);
    this.keepaliveTimer.unref();
  }

  handle(socket: Duplex): MqttConnection<T> {
    const connection = new MqttConnection(this, socket);
    this.all.add(connection);
    return connection;
  }

  connectionOf(clientId: string): MqttConnection<T> | undefined {
    return this.current.get(clientId);
  }

  /** A client id's session, connected or not. */
  sessionOf(clientId: string): Session | undefined {
    return this.sessions.get(clientId);
  }

  connections(): MqttConnection<T>[] {
    return [...this.current.values()];
  }

  /** Makes `connection` the client id's current one (closing an older one) and gives it its session. */
  takeOver(connection: MqttConnection<T>): { session: Session; present: boolean } {
    const older = this.current.get(connection.clientId);
    if (older && older !== connection) older.close(new Error('another connection took over the client id'));
    this.current.set(connection.clientId, connection);
    let session = this.sessions.get(connection.clientId);
    const present = session !== undefined && !connection.clean;
    if (session && connection.clean) {
      session.abandon(new DeliveryAbandoned('the client started a clean session'));
      session = undefined;
    }
    if (!session) {
      session = new Session(connection.clientId);
      this.sessions.set(connection.clientId, session);
    }
    return { session, present };
  }

  onClosed(connection: MqttConnection<T>, error: Error | undefined, will: { topic: string; payload: Buffer; qos: 0 | 1 } | undefined): void {
    this.all.delete(connection);
    if (!connection.session) return;
    const isCurrent = this.current.get(connection.clientId) === connection;
    if (isCurrent) this.current.delete(connection.clientId);
    if (connection.clean && isCurrent) {
      this.sessions.delete(connection.clientId);
      connection.session.abandon(new DeliveryAbandoned('the client left a clean session'));
    }
    this.hooks.closed(connection, error);
    if (will && error) {
      try {
        const taken = this.hooks.publish(connection, will.topic, will.payload, will.qos);
        if (taken) taken.catch((e: unknown) => this.hooks.log('the Will message was refused', { clientId: connection.clientId, error: asError(e).message }));
      } catch (e) {
        this.hooks.log('the Will message was refused', { clientId: connection.clientId, error: asError(e).message });
      }
    }
  }

  private checkKeepalives(): void {
    const now = Date.now();
    for (const c of this.all) {
      // MQTT 3.1.1 §3.1.2.10: one and a half times the keep-alive without a packet, and the server disconnects.
      // Not while the server itself has stopped reading the connection to let the owner catch up: the
      // client's PINGREQs are then waiting unread, and it is not the client that went quiet.
      if (c.keepalive > 0 && !c.waitingOnOwner && now - c.lastSeenMs > c.keepalive * 1_500) c.close(new Error('keep-alive timeout'));
      else if (!c.isConnected && now - c.openedMs > connectTimeoutMs) c.close(new Error('no CONNECT in time'), true);
    }
  }

  /** Closes every connection and ends every session's pending deliveries with `error`. */
  close(error: Error): void {
    clearInterval(this.keepaliveTimer);
    // Sessions first: closing a clean session's connection would otherwise end its deliveries with
    // that connection's own reason ('the client left a clean session') instead of `error`.
    for (const s of this.sessions.values()) s.abandon(error);
    this.sessions.clear();
    for (const c of [...this.all]) c.close(error, true);
  }
}

/** A delivery's session ended before its PUBACK (clean session, or the server stopped). */
export class DeliveryAbandoned extends Error {
  override name = 'DeliveryAbandoned';
}
