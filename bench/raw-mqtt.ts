// A minimal MQTT 3.1.1 client over TLS for the benches, on mqtt-packet: CONNECT, SUBSCRIBE, QoS 1 PUBLISH
// with a callback on PUBACK, and an automatic PUBACK for every QoS 1 message received. What a client
// writes in one pass of the event loop goes out in one writev (PacketWriter, as the hub's own). mqtt.js,
// at about 2,500 msg/s in one process here, was the limit of every row of the hub bench, relays
// included; this client is not.
import { EventEmitter } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import mqttPacket from 'mqtt-packet';
import type { Packet } from 'mqtt-packet';
import { PacketWriter } from '../src/iothub-mqtt/packet-writer.ts';

export interface RawConnectOptions {
  port: number;
  ca: string;
  clientId: string;
  username?: string;
  password?: string;
  clean?: boolean;
  keepalive?: number;
}

export class RawMqttClient extends EventEmitter {
  private readonly socket: TLSSocket;
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private readonly pending = new Map<number, () => void>();
  private readonly subacks = new Map<number, () => void>();
  private nextId = 0;
  private readonly writer: PacketWriter;
  private ended = false;
  private connected = false;

  private constructor(socket: TLSSocket) {
    super();
    this.socket = socket;
    this.writer = new PacketWriter(socket);
    this.parser.on('packet', (packet: Packet) => this.onPacket(packet));
    socket.on('data', (chunk: Buffer) => this.parser.parse(chunk));
    // After end() the broker may reset the connection (a stopped hub): nothing to report then.
    socket.on('error', (error) => {
      // Before CONNACK, connect()'s promise reports the error.
      if (this.connected && !this.ended) this.emit('error', error);
    });
  }

  static connect(options: RawConnectOptions): Promise<RawMqttClient> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: options.port, ca: options.ca });
      const client = new RawMqttClient(socket);
      socket.once('error', reject);
      client.once('connack', (returnCode: number) => {
        socket.off('error', reject);
        client.connected = true;
        if (returnCode === 0) resolve(client);
        else reject(new Error(`CONNACK ${returnCode}`));
      });
      socket.once('secureConnect', () => {
        client.write({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: options.clientId,
          clean: options.clean ?? false,
          keepalive: options.keepalive ?? 60,
          ...(options.username !== undefined ? { username: options.username } : {}),
          ...(options.password !== undefined ? { password: Buffer.from(options.password) } : {}),
        });
      });
    });
  }

  subscribe(topic: string): Promise<void> {
    const messageId = this.id();
    return new Promise((resolve) => {
      this.subacks.set(messageId, resolve);
      this.write({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos: 1 }] });
    });
  }

  /** QoS 1; `acked` runs on the PUBACK. */
  publish(topic: string, payload: Buffer, acked: () => void): void {
    const messageId = this.id();
    this.pending.set(messageId, acked);
    this.write({ cmd: 'publish', topic, payload, qos: 1, messageId, retain: false, dup: false });
  }

  end(): void {
    this.ended = true;
    this.write({ cmd: 'disconnect' });
    this.flush();
    this.socket.end();
  }

  private id(): number {
    do this.nextId = (this.nextId % 65_535) + 1;
    while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private onPacket(packet: Packet): void {
    switch (packet.cmd) {
      case 'connack':
        this.emit('connack', packet.returnCode);
        return;
      case 'puback': {
        const acked = this.pending.get(packet.messageId as number);
        this.pending.delete(packet.messageId as number);
        acked?.();
        return;
      }
      case 'suback':
        this.subacks.get(packet.messageId as number)?.();
        this.subacks.delete(packet.messageId as number);
        return;
      case 'publish':
        if (packet.qos === 1) this.write({ cmd: 'puback', messageId: packet.messageId as number });
        this.emit('message', packet.topic, packet.payload);
        return;
      default:
        return;
    }
  }

  private write(packet: Packet): void {
    this.writer.write(packet);
  }

  private flush(): void {
    this.writer.flush();
  }
}
