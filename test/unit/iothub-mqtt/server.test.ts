// The MQTT 3.1.1 server core on its own: raw packets (mqtt-packet's generate and parser) over a real
// loopback TCP socket, with fake hooks standing in for the owner's policy (IotHubBroker in production).
// Server and client share this process, so a PINGREQ round trip is a barrier: whatever the server
// wrote in reaction to earlier events is on the wire before the PINGRESP.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { IConnackPacket, IConnectPacket, IPublishPacket, ISubackPacket, Packet } from 'mqtt-packet';
import { DeliveryAbandoned, MqttServerCore } from '../../../src/iothub-mqtt/server.ts';
import type { ConnectRefusal, MqttConnection, ServerHooks } from '../../../src/iothub-mqtt/server.ts';

interface State {
  clientId: string;
}
type Conn = MqttConnection<State>;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A promise's outcome, observable without awaiting (and never an unhandled rejection). */
interface Tracked {
  state: 'pending' | 'resolved' | 'rejected';
  error?: unknown;
}

function track(promise: Promise<void>): Tracked {
  const t: Tracked = { state: 'pending' };
  promise.then(
    () => {
      t.state = 'resolved';
    },
    (error: unknown) => {
      t.state = 'rejected';
      t.error = error;
    },
  );
  return t;
}

/** The owner's policy, faked: records every call; refusals and publish answers are set per test. */
class FakeHooks {
  readonly refusals = new Map<string, ConnectRefusal>();
  readonly refusedTopics = new Set<string>();
  readonly authenticated: string[] = [];
  readonly ready: Conn[] = [];
  readonly closed: { connection: Conn; error: Error | undefined }[] = [];
  readonly publishes: { connection: Conn; topic: string; payload: string; qos: 0 | 1 }[] = [];
  subscribedCalls = 0;
  /** What publish() returns; undefined (accepted at once) unless a test says otherwise. */
  answer: (topic: string, qos: 0 | 1) => void | Promise<void> = () => undefined;

  authenticate(connect: IConnectPacket): { state: State } | ConnectRefusal {
    this.authenticated.push(connect.clientId);
    return this.refusals.get(connect.clientId) ?? { state: { clientId: connect.clientId } };
  }

  readyHook(connection: Conn): void {
    this.ready.push(connection);
  }

  publish(connection: Conn, topic: string, payload: Buffer, qos: 0 | 1): void | Promise<void> {
    this.publishes.push({ connection, topic, payload: payload.toString(), qos });
    return this.answer(topic, qos);
  }

  authorizeSubscribe(_connection: Conn, topic: string): boolean {
    return !this.refusedTopics.has(topic);
  }

  subscribed(): void {
    this.subscribedCalls++;
  }

  log(): void {}

  asHooks(): ServerHooks<State> {
    return {
      authenticate: (c) => this.authenticate(c),
      ready: (c) => this.readyHook(c),
      publish: (c, t, p, q) => this.publish(c, t, p, q),
      authorizeSubscribe: (c, t) => this.authorizeSubscribe(c, t),
      subscribed: () => this.subscribed(),
      closed: (c, e) => this.closed.push({ connection: c, error: e }),
      log: () => this.log(),
    };
  }
}

/** A raw MQTT client: writes generated packets, parses what comes back. */
class RawClient {
  readonly socket: net.Socket;
  readonly received: Packet[] = [];
  private cursor = 0;
  isClosed = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet: Packet) => this.received.push(packet));
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    // A reset is one way a server close may look from here; `close` follows either way.
    socket.on('error', () => {});
    socket.on('close', () => {
      this.isClosed = true;
    });
  }

  send(...packets: Packet[]): void {
    this.sendRaw(Buffer.concat(packets.map((p) => mqttPacket.generate(p))));
  }

  sendRaw(data: Buffer): void {
    this.socket.write(data);
  }

  /** The next packet not yet taken; throws when the connection closes first. */
  async next(): Promise<Packet> {
    await until(() => this.received.length > this.cursor || this.isClosed, 'a packet');
    if (this.received.length > this.cursor) return this.received[this.cursor++] as Packet;
    throw new Error('the connection closed before a packet came');
  }

  /** Packets written before the answer to a PINGREQ sent now (which it takes). */
  async barrier(): Promise<Packet[]> {
    this.send({ cmd: 'pingreq' });
    const before: Packet[] = [];
    for (;;) {
      const p = await this.next();
      if (p.cmd === 'pingresp') return before;
      before.push(p);
    }
  }

  async closedWithin(ms = 5_000): Promise<void> {
    await until(() => this.isClosed, 'the server to close the connection', ms);
  }

  /** Every packet received and not yet taken. */
  rest(): Packet[] {
    const r = this.received.slice(this.cursor);
    this.cursor = this.received.length;
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function connectPacket(clientId: string, extra: Partial<IConnectPacket> = {}): IConnectPacket {
  return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId, ...extra };
}

function publish(topic: string, payload: string, qos: 0 | 1 | 2, messageId?: number): IPublishPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(payload), qos, dup: false, retain: false, ...(messageId === undefined ? {} : { messageId }) };
}

describe('MqttServerCore', () => {
  let hooks: FakeHooks;

  /** Makes the owner answer each publish with a promise the test settles; returns them in arrival order. */
  function answerLater(): Deferred[] {
    const answers: Deferred[] = [];
    hooks.answer = () => {
      const d = deferred();
      answers.push(d);
      return d.promise;
    };
    return answers;
  }
  let core: MqttServerCore<State>;
  let server: net.Server;
  let serverSockets: net.Socket[];
  let clients: RawClient[];

  beforeEach(async () => {
    hooks = new FakeHooks();
    core = new MqttServerCore<State>(hooks.asHooks());
    serverSockets = [];
    clients = [];
    server = net.createServer((socket) => {
      serverSockets.push(socket);
      core.handle(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    for (const c of clients) c.destroy();
    core.close(new Error('test over'));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function open(): Promise<RawClient> {
    const { port } = server.address() as AddressInfo;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    clients.push(client);
    return client;
  }

  /** Opens a connection and sends CONNECT; returns the client and the CONNACK. */
  async function connect(clientId: string, extra: Partial<IConnectPacket> = {}): Promise<{ client: RawClient; connack: IConnackPacket }> {
    const client = await open();
    client.send(connectPacket(clientId, extra));
    const connack = await client.next();
    expect(connack.cmd).toBe('connack');
    return { client, connack: connack as IConnackPacket };
  }

  /** Connects and expects CONNACK 0; also returns the server side of the connection. */
  async function connected(clientId: string, extra: Partial<IConnectPacket> = {}): Promise<{ client: RawClient; connection: Conn; connack: IConnackPacket }> {
    const { client, connack } = await connect(clientId, extra);
    expect(connack.returnCode).toBe(0);
    const connection = core.connectionOf(clientId);
    if (!connection) throw new Error(`no connection for ${clientId}`);
    return { client, connection, connack };
  }

  describe('CONNECT', () => {
    it('accepts protocol levels 4 and 3 (MQIsdp) with CONNACK 0 and tells the owner', async () => {
      const v4 = await connected('dev-a');
      expect(v4.connack.sessionPresent).toBe(false);
      const v3 = await connected('dev-b', { protocolId: 'MQIsdp', protocolVersion: 3 });
      expect(v3.connack.returnCode).toBe(0);
      expect(hooks.ready.map((c) => c.clientId)).toEqual(['dev-a', 'dev-b']);
      expect(hooks.ready[0]?.state).toEqual({ clientId: 'dev-a' });
      expect(core.connectionOf('dev-a')?.isOpen).toBe(true);
    });

    it('answers a protocol level other than 3 or 4 with CONNACK 1 and closes', async () => {
      const { client, connack } = await connect('dev-5', { protocolVersion: 5 });
      expect(connack.returnCode).toBe(1);
      await client.closedWithin();
      expect(hooks.authenticated).toEqual([]);
      expect(core.connectionOf('dev-5')).toBeUndefined();
    });

    it('answers a protocol level the parser does not know (6) with CONNACK 1 and closes', async () => {
      const client = await open();
      const bytes = mqttPacket.generate(connectPacket('dev-6'));
      // Fixed header (2 bytes) + protocol name (2 + 4 bytes): the protocol level is byte 8.
      expect(bytes[8]).toBe(4);
      bytes[8] = 6;
      client.sendRaw(bytes);
      await client.closedWithin();
      expect(client.rest()).toEqual([expect.objectContaining({ cmd: 'connack', returnCode: 1 })]);
      expect(hooks.authenticated).toEqual([]);
    });

    it('answers an empty or over-300-character client id with CONNACK 2 and closes', async () => {
      const empty = await connect('');
      expect(empty.connack.returnCode).toBe(2);
      await empty.client.closedWithin();
      const long = await connect('x'.repeat(301));
      expect(long.connack.returnCode).toBe(2);
      await long.client.closedWithin();
      expect(hooks.authenticated).toEqual([]);
      // 300 is still fine.
      await connected('y'.repeat(300));
    });

    it.each([3, 5] as const)('answers the owner refusing with its code (%i) and closes, no ready/closed hooks', async (returnCode) => {
      hooks.refusals.set('refused', { returnCode, reason: 'no' });
      const { client, connack } = await connect('refused');
      expect(connack.returnCode).toBe(returnCode);
      expect(connack.sessionPresent).toBe(false);
      await client.closedWithin();
      expect(hooks.authenticated).toEqual(['refused']);
      expect(hooks.ready).toEqual([]);
      expect(hooks.closed).toEqual([]);
      expect(core.connectionOf('refused')).toBeUndefined();
      expect(core.sessionOf('refused')).toBeUndefined();
    });

    it('closes a connection whose first packet is not CONNECT, without a CONNACK', async () => {
      const client = await open();
      client.send(publish('t', 'x', 1, 1));
      await client.closedWithin();
      expect(client.rest()).toEqual([]);
      expect(hooks.authenticated).toEqual([]);
      expect(hooks.publishes).toEqual([]);
    });

    it('closes on a second CONNECT on the same connection', async () => {
      const { client } = await connected('dev');
      client.send(connectPacket('dev'));
      await client.closedWithin();
      expect(hooks.closed).toHaveLength(1);
      expect(hooks.closed[0]?.error?.message).toMatch(/unexpected connect/);
    });
  });

  describe('inbound PUBLISH', () => {
    it('sends PUBACKs in the order the publishes came, whatever order the owner resolves them in', async () => {
      const answers = new Map<string, Deferred>();
      hooks.answer = (topic) => {
        const d = deferred();
        answers.set(topic, d);
        return d.promise;
      };
      const { client } = await connected('dev');
      client.send(publish('t/1', 'a', 1, 11), publish('t/2', 'b', 1, 12), publish('t/3', 'c', 1, 13));
      await until(() => hooks.publishes.length === 3, 'three publishes at the owner');
      expect(hooks.publishes.map((p) => [p.topic, p.payload, p.qos])).toEqual([
        ['t/1', 'a', 1],
        ['t/2', 'b', 1],
        ['t/3', 'c', 1],
      ]);

      answers.get('t/3')?.resolve();
      expect(await client.barrier()).toEqual([]);
      answers.get('t/2')?.resolve();
      expect(await client.barrier()).toEqual([]);
      answers.get('t/1')?.resolve();
      const acks = await client.barrier();
      expect(acks.map((p) => [p.cmd, p.messageId])).toEqual([
        ['puback', 11],
        ['puback', 12],
        ['puback', 13],
      ]);
    });

    it('sends the PUBACKs that are due as soon as the head of the line resolves', async () => {
      const answers = answerLater();
      const { client } = await connected('dev');
      client.send(publish('t', '1', 1, 1), publish('t', '2', 1, 2), publish('t', '3', 1, 3));
      await until(() => answers.length === 3, 'three publishes at the owner');
      answers[1]?.resolve();
      answers[0]?.resolve();
      expect((await client.barrier()).map((p) => p.messageId)).toEqual([1, 2]);
      answers[2]?.resolve();
      expect((await client.barrier()).map((p) => p.messageId)).toEqual([3]);
    });

    it('acknowledges a publish the owner takes synchronously (no promise)', async () => {
      const { client } = await connected('dev');
      client.send(publish('t', 'x', 1, 7));
      expect(await client.barrier()).toEqual([expect.objectContaining({ cmd: 'puback', messageId: 7 })]);
    });

    it('closes without a PUBACK when the owner rejects, and never acknowledges what came after', async () => {
      const answers = answerLater();
      const { client } = await connected('dev');
      client.send(publish('t', '1', 1, 1), publish('t', '2', 1, 2), publish('t', '3', 1, 3));
      await until(() => answers.length === 3, 'three publishes at the owner');
      answers[0]?.resolve();
      expect((await client.barrier()).map((p) => [p.cmd, p.messageId])).toEqual([['puback', 1]]);
      answers[2]?.resolve();
      answers[1]?.reject(new Error('store full'));
      await client.closedWithin();
      expect(client.rest()).toEqual([]);
      expect(hooks.closed.map((c) => c.error?.message)).toEqual(['store full']);
    });

    it('closes when the owner throws', async () => {
      hooks.answer = () => {
        throw new Error('refused');
      };
      const { client } = await connected('dev');
      client.send(publish('t', 'x', 1, 1));
      await client.closedWithin();
      expect(client.rest()).toEqual([]);
      expect(hooks.closed[0]?.error?.message).toBe('refused');
    });

    it('sends no PUBACK for QoS 0', async () => {
      const { client } = await connected('dev');
      client.send(publish('t/0', 'zero', 0));
      expect(await client.barrier()).toEqual([]);
      expect(hooks.publishes.map((p) => [p.topic, p.payload, p.qos])).toEqual([['t/0', 'zero', 0]]);
    });

    it('closes on a QoS 2 publish without handing it to the owner', async () => {
      const { client } = await connected('dev');
      client.send(publish('t/2', 'two', 2, 5));
      await client.closedWithin();
      expect(client.rest()).toEqual([]);
      expect(hooks.publishes).toEqual([]);
    });

    it('stops reading at 1,000 unacknowledged publishes and reads on once the owner catches up', async () => {
      const answers = answerLater();
      const { client } = await connected('dev');
      const batch = (from: number, to: number) => {
        const packets: Packet[] = [];
        for (let id = from; id <= to; id++) packets.push(publish('t', String(id), 1, id));
        return packets;
      };
      client.send(...batch(1, 1_000));
      await until(() => hooks.publishes.length === 1_000, '1,000 publishes at the owner');
      // The window is full: what comes now stays unread.
      client.send(...batch(1_001, 1_200));
      await sleep(300);
      expect(hooks.publishes).toHaveLength(1_000);

      // The owner catches up with most of the window: reading resumes and the rest arrives in order.
      for (const d of answers.slice(0, 800)) d.resolve();
      await until(() => hooks.publishes.length === 1_200, 'the remaining 200 publishes at the owner');
      expect(hooks.publishes.map((p) => p.payload)).toEqual(batch(1, 1_200).map((p) => (p as IPublishPacket).payload.toString()));
      for (const d of answers) d.resolve();
      const acks = await client.barrier();
      expect(acks.map((p) => p.messageId)).toEqual(batch(1, 1_200).map((p) => p.messageId));
    });

    it('does not time out a keep-alive while it is the server that stopped reading', async () => {
      const answers = answerLater();
      const { client } = await connected('dev', { keepalive: 1 });
      const packets: Packet[] = [];
      for (let id = 1; id <= 1_000; id++) packets.push(publish('t', 'x', 1, id));
      client.send(...packets);
      await until(() => hooks.publishes.length === 1_000, '1,000 publishes at the owner');
      // A well-behaved client keeps pinging; the server is not reading them, by its own choice.
      for (let i = 0; i < 6; i++) {
        client.send({ cmd: 'pingreq' });
        await sleep(400);
      }
      expect(client.isClosed).toBe(false);
      for (const d of answers) d.resolve();
      const after = await client.barrier();
      expect(after.filter((p) => p.cmd === 'puback')).toHaveLength(1_000);
      expect(client.isClosed).toBe(false);
    });
  });

  describe('sessions', () => {
    it('answers SUBSCRIBE with the granted QoS: 0x80 for refused filters and QoS 2 requests', async () => {
      hooks.refusedTopics.add('forbidden/#');
      const { client, connection } = await connected('dev');
      client.send({
        cmd: 'subscribe',
        messageId: 42,
        subscriptions: [
          { topic: 'a/#', qos: 1 },
          { topic: 'b/+', qos: 0 },
          { topic: 'forbidden/#', qos: 1 },
          { topic: 'c', qos: 2 },
        ],
      });
      const suback = (await client.next()) as ISubackPacket;
      expect(suback).toMatchObject({ cmd: 'suback', messageId: 42, granted: [1, 0, 0x80, 0x80] });
      expect([...(connection.session?.subscriptions ?? [])]).toEqual([
        ['a/#', 1],
        ['b/+', 0],
      ]);
      expect(hooks.subscribedCalls).toBe(1);

      client.send({ cmd: 'unsubscribe', messageId: 43, unsubscriptions: ['a/#'] });
      expect(await client.next()).toMatchObject({ cmd: 'unsuback', messageId: 43 });
      expect([...(connection.session?.subscriptions.keys() ?? [])]).toEqual(['b/+']);
    });

    it('keeps subscriptions and resends unacknowledged deliveries (DUP) across a clean=false reconnect', async () => {
      const first = await connected('dev', { clean: false });
      expect(first.connack.sessionPresent).toBe(false);
      first.client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/#', qos: 1 }] });
      expect(await first.client.next()).toMatchObject({ cmd: 'suback', granted: [1] });

      const d1 = track(first.connection.deliver('a/1', Buffer.from('one')));
      const d2 = track(first.connection.deliver('a/2', Buffer.from('two')));
      const written = (await first.client.barrier()) as IPublishPacket[];
      expect(written.map((p) => [p.cmd, p.topic, p.payload.toString(), p.qos, p.dup])).toEqual([
        ['publish', 'a/1', 'one', 1, false],
        ['publish', 'a/2', 'two', 1, false],
      ]);
      const ids = written.map((p) => p.messageId);
      expect(new Set(ids).size).toBe(2);

      // The client drops without acknowledging either.
      first.client.destroy();
      await until(() => hooks.closed.length === 1, 'the closed hook');
      expect(core.connectionOf('dev')).toBeUndefined();
      expect(core.sessionOf('dev')?.outgoing.size).toBe(2);
      expect([d1.state, d2.state]).toEqual(['pending', 'pending']);

      const second = await connect('dev', { clean: false });
      expect(second.connack).toMatchObject({ returnCode: 0, sessionPresent: true });
      const resent = [(await second.client.next()) as IPublishPacket, (await second.client.next()) as IPublishPacket];
      expect(resent.map((p) => [p.cmd, p.topic, p.payload.toString(), p.qos, p.dup, p.messageId])).toEqual([
        ['publish', 'a/1', 'one', 1, true, ids[0]],
        ['publish', 'a/2', 'two', 1, true, ids[1]],
      ]);
      const connection = core.connectionOf('dev');
      expect(connection).not.toBe(first.connection);
      expect([...(connection?.session?.subscriptions ?? [])]).toEqual([['a/#', 1]]);

      second.client.send({ cmd: 'puback', messageId: ids[0] as number });
      await until(() => d1.state !== 'pending', 'the first delivery to settle');
      expect([d1.state, d2.state]).toEqual(['resolved', 'pending']);
      second.client.send({ cmd: 'puback', messageId: ids[1] as number });
      await until(() => d2.state !== 'pending', 'the second delivery to settle');
      expect(d2.state).toBe('resolved');
      expect(core.sessionOf('dev')?.outgoing.size).toBe(0);
    });

    it('resolves a delivery on its PUBACK on the same connection', async () => {
      const { client, connection } = await connected('dev');
      const d = track(connection.deliver('x', Buffer.from('y')));
      const [p] = (await client.barrier()) as IPublishPacket[];
      expect(p).toMatchObject({ cmd: 'publish', topic: 'x', qos: 1, dup: false });
      await sleep(50);
      expect(d.state).toBe('pending');
      client.send({ cmd: 'puback', messageId: p?.messageId as number });
      await until(() => d.state !== 'pending', 'the delivery to settle');
      expect(d.state).toBe('resolved');
    });

    it('abandons pending deliveries when the client comes back with clean=true', async () => {
      const first = await connected('dev', { clean: false });
      first.client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/#', qos: 1 }] });
      await first.client.next();
      const d = track(first.connection.deliver('a/1', Buffer.from('one')));
      await first.client.barrier();
      first.client.destroy();
      await until(() => hooks.closed.length === 1, 'the closed hook');
      expect(d.state).toBe('pending');

      const second = await connect('dev', { clean: true });
      expect(second.connack).toMatchObject({ returnCode: 0, sessionPresent: false });
      await until(() => d.state !== 'pending', 'the delivery to settle');
      expect(d.state).toBe('rejected');
      expect(d.error).toBeInstanceOf(DeliveryAbandoned);
      // Nothing is resent, and the old subscriptions are gone.
      expect(await second.client.barrier()).toEqual([]);
      expect(core.connectionOf('dev')?.session?.subscriptions.size).toBe(0);
    });

    it('abandons pending deliveries when a clean session ends', async () => {
      const { client, connection } = await connected('dev', { clean: true });
      const d = track(connection.deliver('a', Buffer.from('b')));
      await client.barrier();
      client.destroy();
      await until(() => d.state !== 'pending', 'the delivery to settle');
      expect(d.error).toBeInstanceOf(DeliveryAbandoned);
      expect(core.sessionOf('dev')).toBeUndefined();
    });
  });

  describe('takeover', () => {
    it('closes the older connection when another CONNECTs with the same client id', async () => {
      const first = await connected('dev');
      const second = await connected('dev');
      await first.client.closedWithin();
      expect(hooks.closed).toHaveLength(1);
      expect(hooks.closed[0]?.connection).toBe(first.connection);
      expect(hooks.closed[0]?.error?.message).toMatch(/took over/);
      expect(core.connectionOf('dev')).toBe(second.connection);
      expect(second.connection.isOpen).toBe(true);
      expect(first.connection.isOpen).toBe(false);
      expect(core.connections()).toEqual([second.connection]);
      // The new connection works.
      expect(await second.client.barrier()).toEqual([]);
      expect(second.client.isClosed).toBe(false);
    });

    it('hands a clean=false session over with its pending deliveries', async () => {
      const first = await connected('dev', { clean: false });
      const d = track(first.connection.deliver('a', Buffer.from('b')));
      const [p] = (await first.client.barrier()) as IPublishPacket[];
      const second = await connect('dev', { clean: false });
      expect(second.connack.sessionPresent).toBe(true);
      expect(await second.client.next()).toMatchObject({ cmd: 'publish', topic: 'a', dup: true, messageId: p?.messageId });
      second.client.send({ cmd: 'puback', messageId: p?.messageId as number });
      await until(() => d.state !== 'pending', 'the delivery to settle');
      expect(d.state).toBe('resolved');
    });
  });

  describe('Will', () => {
    const will = { topic: 'will/dev', payload: Buffer.from('gone'), qos: 1 as const, retain: false };

    it('hands the Will of a connection that drops without DISCONNECT to the publish hook', async () => {
      const { client, connection } = await connected('dev', { will });
      client.destroy();
      await until(() => hooks.publishes.length === 1, 'the Will at the owner');
      expect(hooks.publishes[0]).toMatchObject({ topic: 'will/dev', payload: 'gone', qos: 1 });
      expect(hooks.publishes[0]?.connection).toBe(connection);
      expect(hooks.closed[0]?.error).toBeInstanceOf(Error);
    });

    it('drops the Will when the client sends DISCONNECT', async () => {
      const { client } = await connected('dev', { will });
      client.send({ cmd: 'disconnect' });
      client.socket.end();
      await client.closedWithin();
      await until(() => hooks.closed.length === 1, 'the closed hook');
      await sleep(50);
      expect(hooks.closed[0]?.error).toBeUndefined();
      expect(hooks.publishes).toEqual([]);
    });
  });

  describe('keep-alive', () => {
    it('answers PINGREQ with PINGRESP', async () => {
      const { client } = await connected('dev');
      client.send({ cmd: 'pingreq' });
      expect(await client.next()).toEqual(expect.objectContaining({ cmd: 'pingresp' }));
    });

    it('closes a client that sends nothing for one and a half keep-alive periods', async () => {
      const { client } = await connected('dev', { keepalive: 1, will: { topic: 'will/dev', payload: 'gone', qos: 0, retain: false } });
      await client.closedWithin(4_000);
      expect(hooks.closed[0]?.error?.message).toMatch(/keep-alive/);
      // A timeout is a drop: the Will goes out.
      expect(hooks.publishes.map((p) => p.topic)).toEqual(['will/dev']);
    });

    it('keeps a client that pings within its keep-alive', async () => {
      const { client } = await connected('dev', { keepalive: 1 });
      for (let i = 0; i < 7; i++) {
        await sleep(400);
        expect(await client.barrier()).toEqual([]);
      }
      expect(client.isClosed).toBe(false);
    });
  });

  it('writes what one synchronous pass produces in one socket write, all of it, in order', async () => {
    const { client, connection } = await connected('dev');
    // What reaches the socket's handle: one _writev per corked batch, one _write per single buffer.
    const socket = serverSockets[0] as net.Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    let writes = 0;
    const write = socket._write.bind(socket);
    const writev = socket._writev.bind(socket);
    socket._write = (...a: unknown[]) => {
      writes++;
      write(...a);
    };
    socket._writev = (...a: unknown[]) => {
      writes++;
      writev(...a);
    };
    const deliveries: Tracked[] = [];
    for (let i = 0; i < 500; i++) {
      if (i % 2 === 0) connection.publish0('q0', Buffer.from(String(i)));
      else deliveries.push(track(connection.deliver('q1', Buffer.from(String(i)))));
    }
    const received = (await client.barrier()) as IPublishPacket[];
    expect(writes).toBe(2); // the 500 publishes, then the PINGRESP
    expect(received.map((p) => [p.topic, p.qos, p.payload.toString()])).toEqual(
      Array.from({ length: 500 }, (_, i) => (i % 2 === 0 ? ['q0', 0, String(i)] : ['q1', 1, String(i)])),
    );
    client.send(...received.filter((p) => p.qos === 1).map((p): Packet => ({ cmd: 'puback', messageId: p.messageId as number })));
    await until(() => deliveries.every((d) => d.state === 'resolved'), 'every delivery to resolve');
  });

  it('close(error) closes every connection and rejects every session\'s pending deliveries with that error', async () => {
    const will = { topic: 'will', payload: 'gone', qos: 0 as const, retain: false };
    const clean = await connected('clean', { clean: true, will });
    const persistent = await connected('persistent', { clean: false, will });
    const away = await connected('away', { clean: false });
    const deliveries = [
      track(clean.connection.deliver('t', Buffer.from('1'))),
      track(persistent.connection.deliver('t', Buffer.from('2'))),
      track(away.connection.deliver('t', Buffer.from('3'))),
    ];
    await Promise.all([clean.client.barrier(), persistent.client.barrier(), away.client.barrier()]);
    away.client.destroy();
    await until(() => hooks.closed.length === 1, 'the closed hook for away');
    expect(core.sessionOf('away')?.outgoing.size).toBe(1);

    const error = new Error('server stopping');
    core.close(error);
    await until(() => deliveries.every((d) => d.state !== 'pending'), 'every delivery to settle');
    expect(deliveries.map((d) => [d.state, d.error])).toEqual([
      ['rejected', error],
      ['rejected', error],
      ['rejected', error],
    ]);
    await clean.client.closedWithin();
    await persistent.client.closedWithin();
    expect(core.connections()).toEqual([]);
    expect(core.sessionOf('persistent')).toBeUndefined();
    // The server closing on purpose is not a drop: no Will.
    expect(hooks.publishes).toEqual([]);
  });
});
